package analysis_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/sqlite"
)

// benchBudgetData is the shape issue 14 describes: a 30-day budget whose
// traffic is 2,000 requests spread over the period and 20,000 in its last
// hour, a tenth of those with a profile-svc call a second slower.
func benchBudgetData(end time.Time) []store.Span {
	start := end.Add(-30 * 24 * time.Hour)
	quiet := analysistest.Generate(analysistest.Scenario{Seed: 141, Start: start, Window: 30*24*time.Hour - time.Hour, Traces: 2000})
	busy := analysistest.Generate(analysistest.Scenario{Seed: 142, Start: end.Add(-time.Hour), Window: time.Hour, Traces: 20_000,
		Causes: []analysistest.Cause{{Name: "slow-profile", Dependency: analysistest.ProfileSvc, Probability: 0.1, Extra: time.Second}}})
	return append(quiet.Spans, busy.Spans...)
}

func benchBudget() store.Budget {
	return store.Budget{
		Name: "feed", Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint,
		Threshold: 500 * time.Millisecond, Target: 0.99, Period: 30 * 24 * time.Hour,
		Hops: []store.HopBudget{
			{Service: analysistest.FeedAPI, Dependency: analysistest.ProfileSvc, Allocation: 150 * time.Millisecond},
			{Service: analysistest.FeedAPI, Dependency: analysistest.CandidateSvc, Allocation: 120 * time.Millisecond},
			{Service: analysistest.CandidateSvc, Dependency: analysistest.Postgres, Allocation: 100 * time.Millisecond},
		},
	}
}

// BenchmarkCompliance: one budget's compliance over its 30-day period
// (22,000 requests, about 240,000 spans), from memory and from SQLite:
//
//	go test ./analysis -run '^$' -bench Compliance -benchtime 20x
func BenchmarkCompliance(b *testing.B) {
	end := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	spans := benchBudgetData(end)
	bud := benchBudget()
	ctx := context.Background()
	run := func(b *testing.B, src analysis.SpanSource) {
		b.ReportAllocs()
		for b.Loop() {
			rep, err := analysis.Compliance(ctx, src, bud, time.Time{}, time.Time{}, end)
			if err != nil {
				b.Fatal(err)
			}
			if rep.Total != 22_000 {
				b.Fatalf("%d requests", rep.Total)
			}
			b.ReportMetric(float64(rep.SampledRequests), "sampled")
		}
	}
	b.Run("memory", func(b *testing.B) { run(b, analysistest.NewSource(spans)) })
	b.Run("sqlite", func(b *testing.B) {
		db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		loadMore(b, db, spans)
		b.ResetTimer()
		run(b, db)
	})
}
