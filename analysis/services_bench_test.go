package analysis_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/postgres"
	"github.com/tailscope/tailscope/store/sqlite"
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
	var pgURL string
	stores := []struct {
		name   string
		open   func(b *testing.B) store.Store
		vacuum func(b *testing.B)
	}{
		{"postgres", func(b *testing.B) store.Store {
			pgURL = testenv.FreshPostgres(b)
			db, err := postgres.Open(context.Background(), pgURL)
			if err != nil {
				b.Fatal(err)
			}
			return db
		}, func(b *testing.B) {
			conn, err := pgx.Connect(context.Background(), pgURL)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close(context.Background())
			if _, err := conn.Exec(context.Background(), "VACUUM (ANALYZE)"); err != nil {
				b.Fatal(err)
			}
		}},
		{"sqlite", func(b *testing.B) store.Store {
			db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			return db
		}, nil},
	}
	for _, s := range stores {
		b.Run(s.name, func(b *testing.B) {
			db := s.open(b)
			defer db.Close()
			ctx := context.Background()
			const batch = 10_000
			for i := 0; i < len(ds.Spans); i += batch {
				if err := db.WriteSpans(ctx, ds.Spans[i:min(i+batch, len(ds.Spans))]); err != nil {
					b.Fatal(err)
				}
			}
			// The server folds appended rollup rows every 30 s; measure
			// that steady state (a store without rollups has nothing to do).
			if c, ok := db.(interface{ CompactRollups(context.Context) error }); ok {
				if err := c.CompactRollups(ctx); err != nil {
					b.Fatal(err)
				}
			}
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
			if s.vacuum == nil {
				run(b)
				return
			}
			b.Run("just-written", run)
			s.vacuum(b)
			b.Run("vacuumed", run)
		})
	}
}
