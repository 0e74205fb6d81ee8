package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/sqlite"
	"github.com/tailscope/tailscope/store/storetest"
)

// BenchmarkWriteSpans measures committed (fsynced) spans per second with
// realistic spans (see storetest.BatchGen). Use a short -benchtime:
//
//	go test ./store/sqlite -run '^$' -bench WriteSpans -benchtime 20x
func BenchmarkWriteSpans(b *testing.B) {
	for _, c := range []struct{ size, tenants int }{{1000, 0}, {5000, 0}, {5000, 200}} {
		name := fmt.Sprintf("batch=%d", c.size)
		if c.tenants > 0 {
			name += fmt.Sprintf("/tenants=%d", c.tenants)
		}
		size := c.size
		b.Run(name, func(b *testing.B) {
			db := openTemp(b)
			gen := storetest.NewBatchGen(size, time.Now(), 0)
			if c.tenants > 0 {
				gen.SpreadTenants(c.tenants)
			}
			ctx := context.Background()
			cpu0 := storetest.ProcessCPU()
			b.ResetTimer()
			for b.Loop() {
				if err := db.WriteSpans(ctx, gen.Next()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "spans/s")
			b.ReportMetric(float64((storetest.ProcessCPU()-cpu0).Microseconds())/float64(b.N*size), "cpu-us/span")
		})
	}
}

// BenchmarkSamples reads 100,000 entry spans of one endpoint (out of
// 300,000 spans), what outlier analysis reads per window.
func BenchmarkSamples(b *testing.B) {
	db := openTemp(b)
	ctx := context.Background()
	start := time.Now().Add(-time.Hour)
	const roots = 100_000
	storetest.LoadSamples(b, db, start, roots)
	q := store.SampleQuery{Service: "api", Endpoint: "GET /v1/feed", From: start, To: start.Add(time.Hour)}
	b.ResetTimer()
	for b.Loop() {
		got, err := db.Samples(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != roots {
			b.Fatalf("got %d samples, want %d", len(got), roots)
		}
	}
	b.ReportMetric(float64(b.N*roots)/b.Elapsed().Seconds(), "rows/s")
}

// loadMillion writes 1,000,000 spans (storetest.BatchGen traces) from
// streams generators sharing start times, so 5,000 × streams spans per
// second of start time, and returns the store, one trace id per batch and
// the time range written.
func loadMillion(b *testing.B, streams int) (db *sqlite.DB, ids []store.TraceID, from, to time.Time) {
	b.Helper()
	db = openTemp(b)
	from = time.Now().Add(-time.Hour)
	for s := range streams {
		gen := storetest.NewBatchGen(5000, from, byte(s))
		for range 200 / streams {
			batch := gen.Next()
			if err := db.WriteSpans(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
			ids = append(ids, batch[len(batch)/2].TraceID)
			if end := time.Unix(0, batch[len(batch)-1].StartUnixNano+1); end.After(to) {
				to = end
			}
		}
	}
	return db, ids, from, to
}

// BenchmarkTrace reads one five-span trace by id from a store of 1,000,000
// spans. A lookup scans the start-time index over the trace's start times
// (migration 00003), so its cost grows with the spans stored per second:
// 5,000/s and 50,000/s here.
//
//	go test ./store/sqlite -run '^$' -bench 'Trace$|SearchTraces' -benchtime 50x
func BenchmarkTrace(b *testing.B) {
	for _, streams := range []int{1, 10} {
		b.Run(fmt.Sprintf("spans/s=%d", streams*5000), func(b *testing.B) {
			db, ids, _, _ := loadMillion(b, streams)
			ctx := context.Background()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				spans, err := db.Trace(ctx, ids[i%len(ids)])
				if err != nil {
					b.Fatal(err)
				}
				if len(spans) != storetest.SpansPerTrace {
					b.Fatalf("%d spans, want %d", len(spans), storetest.SpansPerTrace)
				}
				i++
			}
		})
	}
}

// BenchmarkSearchTraces is the search page's query: the 200 slowest traces
// of an endpoint over the whole store, summarised (root, span count,
// errors), which reads each result trace by id.
func BenchmarkSearchTraces(b *testing.B) {
	for _, streams := range []int{1, 10} {
		b.Run(fmt.Sprintf("spans/s=%d", streams*5000), func(b *testing.B) {
			db, _, from, to := loadMillion(b, streams)
			ctx := context.Background()
			q := store.TraceQuery{Service: "feed-api", Endpoint: "GET /v1/feed", Order: store.OrderSlowest, Limit: 200, From: from, To: to}
			b.ResetTimer()
			for b.Loop() {
				got, err := db.SearchTraces(ctx, q)
				if err != nil {
					b.Fatal(err)
				}
				if len(got) != 200 || got[0].SpanCount != storetest.SpansPerTrace {
					b.Fatalf("%d traces, want 200 of %d spans", len(got), storetest.SpansPerTrace)
				}
			}
		})
	}
}
