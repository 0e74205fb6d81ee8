package postgres

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Planner statistics (issue 18, part 3). A new day partition has none, and
// autovacuum may be off (it is on the test machine) or slow to reach a
// partition that fills in hours: plans made without statistics read the
// wrong index, and the same searches ran 2-7x faster after ANALYZE. So the
// store runs ANALYZE itself:
//   - on a day partition as soon as the writer moves on to the next day
//     (the partition has filled and changes little from then on);
//   - every StatsInterval on the tables that changed by a tenth since their
//     last ANALYZE (by either ANALYZE or autovacuum), at least
//     minStaleRows: the current day partition and trace_index, or a
//     partition a backfill wrote to. Days untouched cost nothing.
//
// ANALYZE reads a fixed sample (300 × default_statistics_target rows) of a
// table, ~0.1-0.5 s for a day partition of millions of spans.

// DefaultStatsInterval is how often stale tables are analysed by default.
const DefaultStatsInterval = 10 * time.Minute

// minStaleRows: a table with fewer changed rows is not worth analysing.
const minStaleRows = 10_000

// dayStats notices the writer moving to a new day.
type dayStats struct {
	mu     sync.Mutex
	seen   bool  // a batch was written
	latest int64 // the latest day written
	filled chan int64
}

func newDayStats() *dayStats { return &dayStats{filled: make(chan int64, 4)} }

// wrote records the days of a committed batch; when it reaches past the
// latest day, the day before is handed to the stats loop.
func (s *dayStats) wrote(days []int64) {
	if len(days) == 0 {
		return
	}
	newest := days[0]
	for _, d := range days[1:] {
		newest = max(newest, d)
	}
	s.mu.Lock()
	prev, seen := s.latest, s.seen
	if !seen || newest > prev {
		s.latest, s.seen = newest, true
	}
	s.mu.Unlock()
	if seen && newest > prev {
		select {
		case s.filled <- prev:
		default: // the loop is behind; the next round finds the day stale
		}
	}
}

// statsLoop runs ANALYZE as described above until Close.
func (db *DB) statsLoop(every time.Duration) {
	defer db.done.Done()
	var tick <-chan time.Time
	if every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}
	for {
		var tables []string
		select {
		case <-db.stop:
			return
		case day := <-db.stats.filled:
			tables = []string{partitionName(day), "trace_index"}
		case <-tick:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			var err error
			tables, err = db.staleTables(ctx)
			cancel()
			if err != nil {
				db.log.Warn("postgres: finding tables to analyze", "err", err)
				continue
			}
		}
		db.analyze(tables)
	}
}

// staleTables lists the span partitions and trace_index when they changed
// by a tenth (and minStaleRows) since their last ANALYZE.
func (db *DB) staleTables(ctx context.Context) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT relname FROM pg_stat_user_tables
WHERE schemaname = current_schema() AND (relname LIKE 'spans\_p%' OR relname = 'trace_index')
  AND n_mod_since_analyze >= greatest($1, n_live_tup / 10)
ORDER BY relname`, int64(minStaleRows))
	if err != nil {
		return nil, mapErr(ctx, "stale tables", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// analyze runs ANALYZE on each table, logging failures: statistics are an
// optimisation, and the next round retries.
func (db *DB) analyze(tables []string) {
	for _, t := range tables {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		start := time.Now()
		_, err := db.pool.Exec(ctx, "ANALYZE "+pgx.Identifier{t}.Sanitize())
		cancel()
		if err != nil {
			db.log.Warn("postgres: analyze", "table", t, "err", err)
			continue
		}
		db.log.Debug("postgres: analyzed", "table", t, "took", time.Since(start))
	}
}
