package analysis_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/postgres"
	"github.com/tailscope/tailscope/store/sqlite"
)

// benchStore is a real store the 1M-span benchmarks read from. Each
// benchmark runs one sub-benchmark per store, named after it, and loads
// the store inside it, so `-bench 'X/sqlite'` loads SQLite alone.
type benchStore struct {
	name string
	open func(b *testing.B) (db store.Store, vacuum func(b *testing.B))
}

// benchStores are PostgreSQL (a fresh database) and SQLite (a file in
// the benchmark's temporary directory). vacuum, nil on SQLite, runs
// VACUUM (ANALYZE): the state autovacuum leaves within a minute
// (PostgreSQL answers from a covering index alone only for pages a vacuum
// has marked all-visible, and plans on the statistics ANALYZE keeps).
func benchStores() []benchStore {
	return []benchStore{
		{"postgres", func(b *testing.B) (store.Store, func(*testing.B)) {
			url := testenv.FreshPostgres(b)
			db, err := postgres.Open(context.Background(), url)
			if err != nil {
				b.Fatal(err)
			}
			return db, func(b *testing.B) {
				conn, err := pgx.Connect(context.Background(), url)
				if err != nil {
					b.Fatal(err)
				}
				defer conn.Close(context.Background())
				if _, err := conn.Exec(context.Background(), "VACUUM (ANALYZE)"); err != nil {
					b.Fatal(err)
				}
			}
		}},
		{"sqlite", func(b *testing.B) (store.Store, func(*testing.B)) {
			db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			return db, nil
		}},
	}
}

// load opens the store, writes spans into it in batches of 10,000 as the
// ingest pipeline commits them, and folds the appended rollup rows as the
// server does every 30 s: the steady state pages read. Loading takes a
// minute or two for a million spans and is not timed; the store is closed
// when the benchmark ends.
func (s benchStore) load(b *testing.B, spans []store.Span) (store.Store, func(*testing.B)) {
	b.Helper()
	db, vacuum := s.open(b)
	b.Cleanup(func() { db.Close() })
	loadMore(b, db, spans)
	return db, vacuum
}

// loadMore writes spans into a store in batches of 10,000 and compacts
// its rollups.
func loadMore(b *testing.B, db store.Store, spans []store.Span) {
	b.Helper()
	ctx := context.Background()
	const batch = 10_000
	for i := 0; i < len(spans); i += batch {
		if err := db.WriteSpans(ctx, spans[i:min(i+batch, len(spans))]); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.CompactRollups(ctx); err != nil {
		b.Fatal(err)
	}
}
