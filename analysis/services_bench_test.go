package analysis_test

import (
	"context"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/analysis/analysistest"
)

// BenchmarkServicesStore1M is the services overview (the Services page and
// /api/v1/services, without the analysis cache) over an hour holding
// 100,000 requests, about 1,000,000 spans, read from a real store. Loading
// takes a minute or two and is not timed:
//
//	go test ./analysis -run '^$' -bench ServicesStore1M -benchtime 5x
func BenchmarkServicesStore1M(b *testing.B) {
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Hour)
	ds := analysistest.Generate(analysistest.Scenario{Seed: 7, Traces: 100_000, ErrorRate: 0.01, Start: start})
	q := analysis.ServicesQuery{From: start, To: start.Add(time.Hour), Now: start.Add(2 * time.Hour)}
	for _, s := range benchStores() {
		b.Run(s.name, func(b *testing.B) {
			db, vacuum := s.load(b, ds.Spans)
			ctx := context.Background()
			run := func(b *testing.B) {
				b.ReportMetric(float64(len(ds.Spans)), "spans")
				for b.Loop() {
					rep, err := analysis.ServiceStats(ctx, db, q)
					if err != nil {
						b.Fatal(err)
					}
					if len(rep.Services) == 0 {
						b.Fatal("no services")
					}
				}
			}
			if vacuum == nil {
				run(b)
				return
			}
			b.Run("just-written", run)
			vacuum(b)
			b.Run("vacuumed", run)
		})
	}
}
