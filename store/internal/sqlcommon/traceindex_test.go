package sqlcommon

import (
	"encoding/json"
	"maps"
	"testing"

	"github.com/tailscope/tailscope/store"
)

// TestServicesJSON: the services object decodes to each service's longest
// span, whatever the service name holds.
func TestServicesJSON(t *testing.T) {
	tests := []struct {
		name  string
		spans map[string][]int64
	}{
		{"plain", map[string][]int64{"feed-api": {5, 9}, "db": {3}}},
		{"escapes", map[string][]int64{`a"b\c`: {1}, "tab\there": {2}, "ünï€": {3, 1}}},
		{"none", map[string][]int64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var spans []store.Span
			want := map[string]int64{}
			for svc, durs := range tc.spans {
				for i, d := range durs {
					spans = append(spans, store.Span{TraceID: store.TraceID{1}, SpanID: store.SpanID{byte(len(spans) + 1)},
						Service: svc, StartUnixNano: int64(i), DurationNano: d})
					want[svc] = max(want[svc], d)
				}
			}
			rows := IndexRows(spans, nil)
			if len(spans) == 0 {
				if len(rows) != 0 {
					t.Fatalf("rows of no spans: %v", rows)
				}
				return
			}
			var got map[string]int64
			if err := json.Unmarshal([]byte(rows[0].ServicesJSON()), &got); err != nil {
				t.Fatalf("%s: %v", rows[0].ServicesJSON(), err)
			}
			if !maps.Equal(got, want) {
				t.Errorf("services %v, want %v", got, want)
			}
		})
	}
}
