package sqlite

import (
	"context"
	"time"
)

// Planner statistics (issue 18, part 3): SQLite's own advice for a
// long-lived connection, on the writer (ANALYZE writes sqlite_stat1):
// PRAGMA optimize=0x10002 at open (analyse the tables that need it, with
// a bounded sample), then PRAGMA optimize every StatsInterval and at
// Close, which re-analyses only the tables whose size changed ~25x or that
// queries showed would benefit. Readers load the new statistics with the
// schema on their next statement.

// DefaultStatsInterval is how often PRAGMA optimize runs by default.
const DefaultStatsInterval = 10 * time.Minute

// optimize runs one PRAGMA optimize form on the writer, logging failure:
// statistics are an optimisation, and the next round retries.
func (db *DB) optimize(ctx context.Context, pragma string) {
	if _, err := db.w.ExecContext(ctx, pragma); err != nil {
		db.log.Warn("sqlite: "+pragma, "err", err)
	}
}

// statsLoop runs PRAGMA optimize every interval until Close.
func (db *DB) statsLoop(every time.Duration) {
	defer db.done.Done()
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			db.optimize(ctx, "PRAGMA optimize")
			cancel()
		}
	}
}
