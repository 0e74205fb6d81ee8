package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/store/storetest"
)

// BenchmarkSearchPage runs the search page's queries over 1,000,000 spans
// (storetest.SearchBenchCases), first as loaded (no statistics on the new
// day partitions: autovacuum may be off, and is on this machine), then
// after ANALYZE.
//
//	go test ./store/postgres -run '^$' -bench SearchPage -benchtime 20x
func BenchmarkSearchPage(b *testing.B) {
	db := open(b, testenv.FreshPostgres(b))
	from, to := storetest.LoadMillion(b, db, time.Now().Add(-time.Hour))
	b.Run("stats=none", func(b *testing.B) { storetest.BenchSearch(b, db, from, to) })
	if _, err := db.pool.Exec(context.Background(), "ANALYZE"); err != nil {
		b.Fatal(err)
	}
	b.Run("stats=analyzed", func(b *testing.B) { storetest.BenchSearch(b, db, from, to) })
}
