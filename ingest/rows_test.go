package ingest

import (
	"errors"
	"reflect"
	"testing"

	"github.com/tailscope/tailscope/ingest/internal/otlptest"
	"github.com/tailscope/tailscope/ingest/otlpconv"
	"github.com/tailscope/tailscope/store"
)

// feedRows converts the feed fixture as the receiver would.
func feedRows(tb testing.TB, n int) []store.Span {
	tb.Helper()
	conv, err := otlpconv.NewConverter(otlpconv.DefaultOptions())
	if err != nil {
		tb.Fatal(err)
	}
	spans, _ := conv.Convert(otlptest.FeedTraces(n, 7))
	if len(spans) == 0 {
		tb.Fatal("fixture converted to no spans")
	}
	return spans
}

// TestRowsVersion1 reads a record of the version before weights: its
// spans read back with weight 1, what they were counted as.
func TestRowsVersion1(t *testing.T) {
	spans := testSpans(3, 1, "svc", "v1")
	for i := range spans {
		spans[i].Weight = 1 // written without the weight flag, as version 1 wrote every span
	}
	rec := appendRows(nil, spans)
	rec[0] = rowsVersionV1
	got, err := decodeRows(nil, rec)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, spans) {
		t.Fatalf("version 1 record decoded as %+v, want %+v", got, spans)
	}
	rec[0] = rowsVersion + 1
	if _, err := decodeRows(nil, rec); !errors.Is(err, errBadRows) {
		t.Fatalf("a later version decoded (err %v), want errBadRows", err)
	}
}

func TestRowsRoundTrip(t *testing.T) {
	withEverything := testSpans(3, 1, "svc", "v1")
	withEverything[1].Events = []store.Event{{TimeUnixNano: -5, Name: "ev", Attributes: store.Attributes(`{"a":1}`)}, {Name: ""}}
	withEverything[1].Links = []store.Link{{TraceID: store.TraceID{1}, SpanID: store.SpanID{2}, Attributes: store.Attributes(`{"b":true}`)}}
	withEverything[2].Resource = store.Attributes(`{"service.name":"other"}`)
	withEverything[2].StatusMessage = "ünïcode ✓"
	withEverything[0].PayloadBytes = -1 << 40
	withEverything[0].Weight = 20
	withEverything[1].Weight = 1
	withEverything[2].Weight = 1.0416666666666667
	tests := []struct {
		name  string
		spans []store.Span
	}{
		{"feed fixture", feedRows(t, 20)},
		{"events, links, odd values", withEverything},
		{"one span", testSpans(1, 9, "a", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := appendRows(nil, tt.spans)
			got, err := decodeRows(nil, rec)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.spans) {
				for i := range got {
					if !reflect.DeepEqual(got[i], tt.spans[i]) {
						t.Fatalf("span %d:\n got %+v\nwant %+v", i, got[i], tt.spans[i])
					}
				}
				t.Fatalf("decoded %d spans, encoded %d", len(got), len(tt.spans))
			}
		})
	}
}

func TestRowsRejectDamage(t *testing.T) {
	rec := appendRows(nil, feedRows(t, 3))
	for cut := range len(rec) {
		if _, err := decodeRows(nil, rec[:cut]); !errors.Is(err, errBadRows) {
			t.Fatalf("record cut at %d of %d: err %v, want errBadRows", cut, len(rec), err)
		}
	}
	if _, err := decodeRows(nil, append(rec, 0)); !errors.Is(err, errBadRows) {
		t.Fatalf("trailing byte: err %v", err)
	}
}

func FuzzDecodeRows(f *testing.F) {
	f.Add(appendRows(nil, testSpans(2, 1, "s", "v")))
	f.Fuzz(func(t *testing.T, b []byte) {
		spans, err := decodeRows(nil, b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to a record that decodes the same.
		again, err := decodeRows(nil, appendRows(nil, spans))
		if err != nil || len(again) != len(spans) {
			t.Fatalf("re-encoded record: %d spans, err %v; want %d", len(again), err, len(spans))
		}
	})
}

func BenchmarkRows(b *testing.B) {
	spans := feedRows(b, 50)
	rec := appendRows(nil, spans)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, len(rec))
		for b.Loop() {
			buf = appendRows(buf[:0], spans)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(spans)), "ns/span")
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		var dst []store.Span
		for b.Loop() {
			var err error
			if dst, err = decodeRows(dst[:0], rec); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(spans)), "ns/span")
	})
}
