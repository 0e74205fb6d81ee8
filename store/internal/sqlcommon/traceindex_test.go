package sqlcommon

import (
	"encoding/json"
	"fmt"
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
		{"wide", func() map[string][]int64 { // past servicesScan: found through the map
			m := map[string][]int64{}
			for i := range 3 * servicesScan {
				m[fmt.Sprintf("svc-%02d", i)] = []int64{int64(i), int64(100 - i), 7}
			}
			return m
		}()},
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

// BenchmarkIndexRowsWideTrace aggregates one trace whose every span names
// a service of its own (a hostile or broken client): the per-service max
// must stay linear in the spans.
//
//	go test ./store/internal/sqlcommon -run '^$' -bench IndexRowsWideTrace
func BenchmarkIndexRowsWideTrace(b *testing.B) {
	for _, n := range []int{10, 1_000, 20_000} {
		spans := make([]store.Span, n)
		for i := range spans {
			spans[i] = store.Span{TraceID: store.TraceID{1}, SpanID: store.SpanID{byte(i), byte(i >> 8), byte(i >> 16)},
				Service: fmt.Sprintf("service-%06d", i), StartUnixNano: int64(i), DurationNano: int64(i)}
		}
		b.Run(fmt.Sprintf("spans=%d", n), func(b *testing.B) {
			for b.Loop() {
				if rows := IndexRows(spans, nil); len(rows[0].Services) != n {
					b.Fatalf("%d services, want %d", len(rows[0].Services), n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/span")
		})
	}
}
