package analysis_test

import (
	"context"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/analysis/analysistest"
)

// BenchmarkOutliersStore1M is the figure: outlier analysis of an
// endpoint over a window of 100,000 requests (about 1,000,000 spans) read
// from a real store, the samples query and the examined traces included.
// Loading the store takes a minute or two and is not timed:
//
//	go test ./analysis -run '^$' -bench OutliersStore1M -benchtime 5x
func BenchmarkOutliersStore1M(b *testing.B) {
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Hour)
	ds := analysistest.Generate(analysistest.Scenario{Seed: 99, Traces: 100_000, ErrorRate: 0.01, Start: start,
		Causes:       []analysistest.Cause{{Name: "acme-profile", Dependency: analysistest.ProfileSvc, Tenant: "acme", Probability: 0.1, Extra: 500 * time.Millisecond}},
		LargePayload: &analysistest.LargePayload{Probability: 0.005}})
	q := analysis.OutlierQuery{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint, From: start, To: start.Add(time.Hour)}
	for _, s := range benchStores() {
		b.Run(s.name, func(b *testing.B) {
			db, vacuum := s.load(b, ds.Spans)
			ctx := context.Background()
			run := func(b *testing.B) {
				b.ReportMetric(float64(len(ds.Spans)), "spans")
				for b.Loop() {
					rep, err := analysis.Outliers(ctx, db, q)
					if err != nil {
						b.Fatal(err)
					}
					if rep.RequestCount != 100_000 || len(rep.Groups) == 0 {
						b.Fatalf("unexpected report: %d requests, %d groups", rep.RequestCount, len(rep.Groups))
					}
				}
			}
			if vacuum == nil {
				run(b)
				return
			}
			// PostgreSQL answers the samples query from the covering index
			// alone only for pages a vacuum has marked all-visible: right
			// after a bulk write it reads the heap too. Autovacuum catches
			// up within a minute (the partitions' settings); both states
			// are measured.
			b.Run("just-written", run)
			vacuum(b)
			b.Run("vacuumed", run)
		})
	}
}
