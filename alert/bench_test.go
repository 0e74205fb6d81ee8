package alert

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/sqlite"
)

// BenchmarkTick: one evaluation of a budget whose endpoint served 100,000
// requests in the last hour (a day of history in the longest window), from
// SQLite. "first" builds the counts from the whole longest window (what a
// start does); "incremental" is every later minute, which re-reads only
// the lateness (2 min).
//
//	go test ./alert -run '^$' -bench Tick -benchtime 20x
func BenchmarkTick(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	now := time.Now().Truncate(time.Minute)
	ds := analysistest.Generate(analysistest.Scenario{Seed: 9, Start: now.Add(-time.Hour), Window: time.Hour, Traces: 100_000})
	for i := 0; i < len(ds.Spans); i += 10_000 {
		if err := db.WriteSpans(ctx, ds.Spans[i:min(i+10_000, len(ds.Spans))]); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.CreateBudget(ctx, store.Budget{Name: "feed", Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint,
		Threshold: 2 * time.Second, Target: 0.99, Period: 30 * 24 * time.Hour}); err != nil {
		b.Fatal(err)
	}
	clock := now
	cfg := Config{Now: func() time.Time { return clock }}
	b.Run("first", func(b *testing.B) {
		for b.Loop() {
			if err := New(db, cfg).Tick(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("incremental", func(b *testing.B) {
		e := New(db, cfg)
		if err := e.Tick(ctx); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			clock = clock.Add(time.Minute)
			if err := e.Tick(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
