package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/storetest"
)

// BenchmarkWriteSpans measures committed (fsynced) spans per second with
// realistic spans (see storetest.BatchGen). Use a short -benchtime:
//
//	go test ./store/sqlite -run '^$' -bench WriteSpans -benchtime 20x
func BenchmarkWriteSpans(b *testing.B) {
	for _, size := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			db := openTemp(b)
			gen := storetest.NewBatchGen(size, time.Now(), 0)
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				if err := db.WriteSpans(ctx, gen.Next()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "spans/s")
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
