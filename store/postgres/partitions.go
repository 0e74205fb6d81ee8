package postgres

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

// Spans are partitioned by UTC day on start_ns: partition spans_pYYYYMMDD
// holds [day start, next day start) in Unix nanoseconds.
const dayNS = int64(24 * time.Hour)

// dayOf returns the day number (days since the Unix epoch, floored) of a
// Unix-nanosecond time.
func dayOf(ns int64) int64 {
	d := ns / dayNS
	if ns%dayNS < 0 {
		d--
	}
	return d
}

func partitionName(day int64) string {
	return "spans_p" + time.Unix(day*86400, 0).UTC().Format("20060102")
}

// dayBounds returns the partition range. The last day representable in
// int64 nanoseconds ends at MaxValue.
func dayBounds(day int64) (from, to string) {
	from = fmt.Sprint(day * dayNS)
	if day >= dayOf(1<<63-1) {
		return from, "MAXVALUE"
	}
	if day <= dayOf(-1<<63) {
		from = "MINVALUE"
	}
	return from, fmt.Sprint((day + 1) * dayNS)
}

// partitions caches which day partitions exist so a write checks a map, not
// the catalog. The cache can be stale when another process drops partitions;
// writes that hit "no partition" reload it (see WriteSpans).
type partitions struct {
	mu   sync.Mutex
	days map[int64]bool
}

func newPartitions() *partitions { return &partitions{days: map[int64]bool{}} }

// missing returns the days of ds that have no known partition.
func (p *partitions) missing(ds []int64) []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int64
	for _, d := range ds {
		if !p.days[d] && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

func (p *partitions) set(days []int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.days = make(map[int64]bool, len(days))
	for _, d := range days {
		p.days[d] = true
	}
}

func (p *partitions) add(d int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.days[d] = true
}

// partitionLockKey is the advisory lock taken while creating or dropping
// partitions, so tailscope processes sharing a database do not race on DDL.
const partitionLockKey = 0x7a11_5c09e // "tailscope" partitions

// loadPartitions reads the existing day partitions from the catalog.
func (db *DB) loadPartitions(ctx context.Context) ([]int64, error) {
	rows, err := db.pool.Query(ctx, `SELECT c.relname FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'spans'::regclass`)
	if err != nil {
		return nil, mapErr(ctx, "list partitions", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, mapErr(ctx, "list partitions", err)
	}
	days := make([]int64, 0, len(names))
	for _, n := range names {
		t, err := time.Parse("spans_p20060102", n)
		if err != nil {
			continue // not one of ours: leave it alone
		}
		days = append(days, dayOf(t.UnixNano()))
	}
	db.parts.set(days)
	return days, nil
}

// partitionStorage has autovacuum visit a day partition every 100,000
// inserted rows rather than after 20% growth (PostgreSQL's default, which
// for a day of spans means hours). Spans are only ever inserted, so such a
// vacuum only sets the new pages all-visible — and that is what lets the
// samples query of outlier analysis run as an index-only scan of the
// covering index instead of fetching 100,000 rows from the heap: measured
// 2.1 s for a 1M-span window before the first vacuum, 0.6 s after
// (docs/PERFORMANCE.md).
const partitionStorage = "autovacuum_vacuum_insert_threshold = 100000, autovacuum_vacuum_insert_scale_factor = 0"

// PrepareSpans creates the day partitions spans need, if missing. The
// ingest pipeline calls it for each request before queueing it, so the DDL
// of a request that starts a new day is paid by that request alone, not by
// the batch it joins (ingest.SpanPreparer). WriteSpans still creates what
// is missing, for other callers and for partitions dropped meanwhile.
func (db *DB) PrepareSpans(ctx context.Context, spans []store.Span) error {
	var days []int64
	for i := range spans {
		if d := dayOf(spans[i].StartUnixNano); !slices.Contains(days, d) {
			days = append(days, d)
		}
	}
	return db.ensurePartitions(ctx, days)
}

// ensurePartitions creates the partitions for days that have none.
func (db *DB) ensurePartitions(ctx context.Context, days []int64) error {
	missing := db.parts.missing(days)
	if len(missing) == 0 {
		return nil
	}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return mapErr(ctx, "create partitions", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(partitionLockKey)); err != nil {
		return mapErr(ctx, "create partitions: lock", err)
	}
	for _, d := range missing {
		from, to := dayBounds(d)
		// DDL takes no placeholders; the name and bounds are computed
		// from an integer day, never from input text.
		ddl := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s PARTITION OF spans FOR VALUES FROM (%s) TO (%s) WITH (%s)",
			pgx.Identifier{partitionName(d)}.Sanitize(), from, to, partitionStorage)
		if _, err := tx.Exec(ctx, ddl); err != nil {
			return mapErr(ctx, "create partition "+partitionName(d), err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return mapErr(ctx, "create partitions", err)
	}
	for _, d := range missing {
		db.parts.add(d)
	}
	return nil
}

// maintainPartitions refreshes the cache and creates yesterday's through
// three days ahead's partitions, so writes rarely pay for DDL.
func (db *DB) maintainPartitions(ctx context.Context) error {
	if _, err := db.loadPartitions(ctx); err != nil {
		return err
	}
	today := dayOf(db.now().UnixNano())
	days := make([]int64, 0, 5)
	for d := today - 1; d <= today+3; d++ {
		days = append(days, d)
	}
	return db.ensurePartitions(ctx, days)
}

// DeleteBefore drops every day partition that ends at or before t. Spans of
// the day containing t stay until a later call; a span that started at or
// after t is never removed.
func (db *DB) DeleteBefore(ctx context.Context, t time.Time) error {
	cut := sqlcommon.NS(t)
	// Held trace index rows first, so the rows retention prunes and
	// recomputes count every span it deletes (traceindex_hold.go).
	if err := db.FlushTraceIndex(ctx); err != nil {
		return err
	}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return mapErr(ctx, "delete before", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(partitionLockKey)); err != nil {
		return mapErr(ctx, "delete before: lock", err)
	}
	days, err := db.loadPartitions(ctx)
	if err != nil {
		return err
	}
	var dropped []int64
	for _, d := range days {
		if d >= dayOf(1<<63-1) || (d+1)*dayNS > cut {
			continue
		}
		if _, err := tx.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{partitionName(d)}.Sanitize()); err != nil {
			return mapErr(ctx, "drop partition "+partitionName(d), err)
		}
		dropped = append(dropped, d)
	}
	// Every span that started before the cut's day is gone, and a
	// resource's last_ns is within resourceTouchSlack of its newest span's
	// start (resources.go), so older resources have no spans left.
	if cut > math.MinInt64+dayNS+resourceTouchSlack { // no overflow below
		floor := dayOf(cut) * dayNS
		if _, err := tx.Exec(ctx, "DELETE FROM resources WHERE last_ns < $1", floor-resourceTouchSlack); err != nil {
			return mapErr(ctx, "delete before: resources", err)
		}
		// Minute rollups go with the spans they count (hours stay for
		// the rollup retention, DeleteRollupsBefore).
		if _, err := tx.Exec(ctx, "DELETE FROM rollups WHERE step_s = 60 AND bucket_ns < $1", floor); err != nil {
			return mapErr(ctx, "delete before: rollups", err)
		}
		if err := pruneTraceIndex(ctx, tx, floor); err != nil {
			return mapErr(ctx, "delete before", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return mapErr(ctx, "delete before", err)
	}
	db.resources.clear()
	kept := slices.DeleteFunc(days, func(d int64) bool { return slices.Contains(dropped, d) })
	db.parts.set(kept)
	return nil
}
