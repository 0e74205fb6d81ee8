package analysis_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/analysis/analysistest"
)

// mapBenchData is an hour of 100,000 requests (about 1,000,000 spans).
func mapBenchData() (analysistest.Dataset, time.Time) {
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Hour)
	return analysistest.Generate(analysistest.Scenario{Seed: 99, Traces: 100_000, ErrorRate: 0.01, Start: start, Window: time.Hour,
		Causes: []analysistest.Cause{{Name: "acme-profile", Dependency: analysistest.ProfileSvc, Tenant: "acme", Probability: 0.1, Extra: 500 * time.Millisecond}}}), start
}

// BenchmarkServiceMap1M is the map's own CPU over an hour of ~1M spans
// held in memory, at the default sample and at four times it:
//
//	go test ./analysis -run '^$' -bench 'ServiceMap1M' -benchtime 5x
func BenchmarkServiceMap1M(b *testing.B) {
	ds, start := mapBenchData()
	src := analysistest.NewSource(ds.Spans)
	for _, traces := range []int{analysis.DefaultMapTraces, 4 * analysis.DefaultMapTraces} {
		b.Run("traces="+strconv.Itoa(traces), func(b *testing.B) {
			b.ReportMetric(float64(len(ds.Spans)), "spans")
			for b.Loop() {
				m, err := analysis.BuildServiceMap(context.Background(), src, analysis.ServiceMapQuery{From: start, To: start.Add(time.Hour), Traces: traces})
				if err != nil || len(m.Edges) == 0 {
					b.Fatalf("map: %v, %d edges", err, len(m.Edges))
				}
			}
		})
	}
}

// BenchmarkServiceMapStore1M is the service map and the operations table
// over the same hour read from each store (loading is not timed):
//
//	go test ./analysis -run '^$' -bench 'ServiceMapStore1M' -benchtime 3x
func BenchmarkServiceMapStore1M(b *testing.B) {
	ds, start := mapBenchData()
	q := analysis.ServiceMapQuery{From: start, To: start.Add(time.Hour)}
	for _, s := range benchStores() {
		b.Run(s.name, func(b *testing.B) {
			db, vacuum := s.load(b, ds.Spans)
			ctx := context.Background()
			if vacuum != nil {
				vacuum(b)
			}
			// The endpoint listing the map starts from (every page reads
			// it, cached): a scan of the window's entry spans.
			endpoints := func(b *testing.B) {
				for b.Loop() {
					if _, err := db.Endpoints(ctx, q.From, q.To); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.Run("endpoints", endpoints)
			b.Run("map", func(b *testing.B) {
				for b.Loop() {
					m, err := analysis.BuildServiceMap(ctx, db, q)
					if err != nil || len(m.Edges) == 0 {
						b.Fatalf("map: %v, %d edges", err, len(m.Edges))
					}
				}
			})
			// Without a group-by, from the operation rollups.
			operations := func(b *testing.B) {
				for b.Loop() {
					rep, err := analysis.OperationsRED(ctx, db, analysis.REDQuery{From: q.From, To: q.To})
					if err != nil || len(rep.Operations) == 0 {
						b.Fatalf("operations: %v", err)
					}
				}
			}
			b.Run("operations", operations)
			b.Run("operations-by-attribute", func(b *testing.B) {
				for b.Loop() {
					if _, err := analysis.OperationsRED(ctx, db, analysis.REDQuery{From: q.From, To: q.To, GroupBy: "tenant.id"}); err != nil {
						b.Fatal(err)
					}
				}
			})
			// The loader's batches each span the hour, so every batch
			// appended a rollup row to every (key, minute); the server's
			// compactor (every 30 s) folds them to one: the rollup reads
			// again as the server keeps them.
			if err := db.CompactRollups(ctx); err != nil {
				b.Fatal(err)
			}
			b.Run("compacted/endpoints", endpoints)
			b.Run("compacted/operations", operations)
		})
	}
}
