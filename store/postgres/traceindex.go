package postgres

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

// The trace index (sqlcommon/traceindex.go): WriteSpans merges each batch's
// rows in the transaction that writes its spans; retention deletes and
// recomputes rows (DeleteBefore); SearchTraces walks it.

// indexValues unnests one array per trace_index column.
var indexValues = func() string {
	cols := strings.Split(strings.Join(strings.Fields(sqlcommon.IndexColumns), ""), ",")
	types := []string{"bytea", "bigint", "bigint", "bigint", "bigint", "bigint", "bigint",
		"bigint", "bigint", "bigint", "bytea", "text", "text", "text", "text", "text"}
	params := make([]string, len(cols))
	sel := make([]string, len(cols))
	for i := range cols {
		params[i] = fmt.Sprintf("$%d::%s[]", i+1, types[i])
		sel[i] = "u." + cols[i]
	}
	sel[len(sel)-1] += "::jsonb"
	return `INSERT INTO trace_index (` + sqlcommon.IndexColumns + `)
SELECT ` + strings.Join(sel, ", ") + ` FROM unnest(` + strings.Join(params, ", ") + `) AS u(` + strings.Join(cols, ", ") + `)
ON CONFLICT (trace_id) `
}()

var (
	indexMergeSQL   = indexValues + sqlcommon.IndexMergeSet(sqlcommon.Postgres, false)
	indexReplaceSQL = indexValues + sqlcommon.IndexMergeSet(sqlcommon.Postgres, true)
	// indexFlushSQL merges held rows except into rebuilt ones, and returns
	// the traces it inserted or merged: a conflicting rebuilt row is left
	// as it is, but locked (ON CONFLICT locks the rows its WHERE skips).
	indexFlushSQL = indexMergeSQL + ` WHERE NOT trace_index.rebuilt RETURNING trace_id`
)

// writeTraceIndex merges the rows of spans (those keep selects; nil: all)
// into trace_index. Rows are sorted by trace id, so concurrent writers of
// the same traces lock them in one order.
//
// With a hold (WriteSpansHoldIndex), the rows of traces held or not in
// the table yet are not written but appended to *held, for the hold once
// the transaction commits (sqlcommon/traceindex_hold.go).
//
// Without a hold, a batch of traces new to this process is COPYed
// (traceindex_copy.go) when its spans went in by one COPY (keep is nil):
// a stored row then fails the transaction with a duplicate key, as a
// resent span does, and writeRows redoes the batch staged, where its rows
// are merged. No savepoint: its two round trips cost a small batch more
// than the COPY saves it.
func (db *DB) writeTraceIndex(ctx context.Context, tx pgx.Tx, spans []store.Span, keep func(int) bool,
	hold *sqlcommon.IndexHold, held *[]sqlcommon.IndexRow) error {
	rows := sqlcommon.IndexRows(spans, keep)
	if hold == nil {
		if keep == nil && len(rows) > 0 && db.fresh.take(rows) {
			err := copyIndexRows(ctx, tx, rows)
			if isDuplicate(err) {
				db.fresh.conflicted()
			}
			return err
		}
		return upsertIndexRows(ctx, tx, indexMergeSQL, rows)
	}
	merge, hd, err := hold.Split(rows, func(rows []sqlcommon.IndexRow) (map[store.TraceID]bool, error) {
		return db.storedOrSeen(ctx, tx, rows)
	})
	if err != nil {
		return err
	}
	*held = append(*held, hd...)
	return upsertIndexRows(ctx, tx, indexMergeSQL, merge)
}

// storedOrSeen reports which of rows' traces, none of them held, to merge
// into trace_index at once: those this process has indexed or held lately
// (freshTraces.seen), whose rows are stored — by a write, or by the flush
// that took them from the hold — and, while look-ups are on, those the
// table turns out to have. The others are held.
//
// Why not look every trace up, as this did at first: the look-up, one
// primary key probe per trace a batch, cost ~0.5 µs of CPU a span on
// whole traces (PERFORMANCE.md, "Held rows without the look-up"), and
// in one process it only ever finds traces this process wrote. What it
// guards against is holding a part of a trace another process (or this
// one before a restart, or one forgotten) has stored: a trace read bounds
// its spans by the stored row's first and last start, so it would miss
// the held part's spans until the flush. Three things keep that narrow:
// look-ups stay on for lookUpWindow after the store opens and after any
// flush that met a stored row (writers that share traces meet them every
// flush, so for them look-ups stay on); this process's own trace reads
// flush the held rows of the traces they read first (flushHeld); and the
// flush merges a held row into a stored one correctly either way.
func (db *DB) storedOrSeen(ctx context.Context, tx pgx.Tx, rows []sqlcommon.IndexRow) (map[store.TraceID]bool, error) {
	known := db.fresh.seen(rows)
	if !db.lookUps.on(db.now()) {
		return known, nil
	}
	unknown := make([]sqlcommon.IndexRow, 0, len(rows)-len(known))
	for i := range rows {
		if !known[rows[i].TraceID] {
			unknown = append(unknown, rows[i])
		}
	}
	stored, err := storedTraces(ctx, tx, unknown)
	if err != nil {
		return nil, err
	}
	for id := range stored {
		known[id] = true
	}
	return known, nil
}

// lookUpWindow is how long storedOrSeen looks up the traces it has not
// seen after the store opens and after a flush met a row stored elsewhere.
const lookUpWindow = time.Minute

// lookUps says whether storedOrSeen looks traces up.
type lookUps struct {
	mu     sync.Mutex
	window time.Duration
	until  time.Time
}

func newLookUps(now time.Time, window time.Duration) *lookUps {
	return &lookUps{window: window, until: now.Add(window)}
}

func (l *lookUps) on(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return now.Before(l.until)
}

// extend turns look-ups on for the window from now.
func (l *lookUps) extend(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.until = now.Add(l.window)
}

// flushHeld stores the held rows first when any of ids has one: a trace
// read bounds each trace's spans by its stored row, which may lack a held
// part (storedOrSeen).
func (db *DB) flushHeld(ctx context.Context, ids []store.TraceID) error {
	if !db.hold.HoldsAny(ids) {
		return nil
	}
	return db.FlushTraceIndex(ctx)
}

// storedTracesSQL selects which of the ids $1 have a trace_index row: one
// primary key look-up per id, fenced (OFFSET 0) so the planner cannot
// turn it into a scan. trace_id = ANY($1) on a table without fresh
// statistics was planned as a sequential scan testing every row against
// every id: on a fresh database it tripled the CPU a span costs, growing
// with the table (TestStoredTracesPlan).
const storedTracesSQL = `SELECT q.id FROM unnest($1::bytea[]) AS q(id)
CROSS JOIN LATERAL (SELECT 1 FROM trace_index WHERE trace_id = q.id OFFSET 0) t`

// storedTraces reports which of rows' traces have a trace_index row.
func storedTraces(ctx context.Context, tx pgx.Tx, rows []sqlcommon.IndexRow) (map[store.TraceID]bool, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	ids := make([][]byte, len(rows))
	for i := range rows {
		ids[i] = rows[i].TraceID[:]
	}
	found, err := tx.Query(ctx, storedTracesSQL, ids)
	if err != nil {
		return nil, fmt.Errorf("trace index: look up rows: %w", err)
	}
	have, err := pgx.CollectRows(found, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("trace index: look up rows: %w", err)
	}
	stored := make(map[store.TraceID]bool, len(have))
	for _, id := range have {
		stored[store.TraceID(id)] = true
	}
	return stored, nil
}

// FlushTraceIndex stores the trace index rows WriteSpansHoldIndex held
// (the ingest journal's indexHolder).
func (db *DB) FlushTraceIndex(ctx context.Context) error {
	return mapErr(ctx, "flush trace index", db.hold.Flush(ctx, db.writeHeld))
}

// FlushAgedTraceIndex stores the held rows held since before its previous
// call and reports how many rows it still holds (the ingest journal's
// indexHolder; sqlcommon.IndexHold.FlushAged).
func (db *DB) FlushAgedTraceIndex(ctx context.Context) (int, error) {
	kept, err := db.hold.FlushAged(ctx, db.writeHeld)
	return kept, mapErr(ctx, "flush trace index", err)
}

// writeHeld stores held rows in a transaction of their own (flushIndexRows)
// and opens the look-up window when they met a row stored elsewhere.
func (db *DB) writeHeld(ctx context.Context, rows []sqlcommon.IndexRow) error {
	met := false
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var err error
		met, err = flushIndexRows(ctx, tx, rows)
		return err
	})
	if met {
		db.lookUps.extend(db.now())
	}
	return err
}

// flushIndexRows merges held rows into trace_index, except into rows a
// recompute marked rebuilt (migration 00014): a rebuilt row already counts
// every stored span, held ones too — another process's rebuild after a
// crash counts the spans whose rows this process holds — so those traces
// are recomputed again instead, now with the row locked.
//
// Held rows are of traces the table did not have, as far as the writer
// knew (storedOrSeen), so they are COPYed first (traceindex_copy.go); only
// when another process or a rebuild has stored one of them are they
// merged, and met reports that they were.
func flushIndexRows(ctx context.Context, tx pgx.Tx, rows []sqlcommon.IndexRow) (met bool, err error) {
	if len(rows) == 0 {
		return false, nil
	}
	if copied, err := copyIndexRowsOnce(ctx, tx, rows); copied || err != nil {
		return false, err
	}
	found, err := tx.Query(ctx, indexFlushSQL, indexArrays(rows)...)
	if err != nil {
		return true, fmt.Errorf("trace index: %w", err)
	}
	merged, err := pgx.CollectRows(found, pgx.RowTo[[]byte])
	if err != nil {
		return true, fmt.Errorf("trace index: %w", err)
	}
	if len(merged) == len(rows) {
		return true, nil
	}
	done := make(map[store.TraceID]bool, len(merged))
	for _, id := range merged {
		done[store.TraceID(id)] = true
	}
	var rebuilt [][]byte
	for i := range rows {
		if !done[rows[i].TraceID] {
			rebuilt = append(rebuilt, rows[i].TraceID[:])
		}
	}
	return true, recomputeTraces(ctx, tx, rebuilt, math.MinInt64)
}

// HeldTraceIndexRows is how many traces' index rows WriteSpansHoldIndex
// holds (the ingest journal's indexHolder).
func (db *DB) HeldTraceIndexRows() int { return db.hold.Len() }

// RebuildTraceIndex recomputes the trace index rows of ids from their
// stored spans (the ingest journal's indexHolder): the rows of spans replayed from the
// write-ahead log, whose held rows a crash lost. The rows are locked
// before the spans are read, as pruneTraceIndex does, so a writer merging
// into them meanwhile merges after the recomputed row.
func (db *DB) RebuildTraceIndex(ctx context.Context, ids []store.TraceID) error {
	if len(ids) == 0 {
		return nil
	}
	raw := make([][]byte, len(ids))
	for i := range ids {
		raw[i] = ids[i][:]
	}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error { return recomputeTraces(ctx, tx, raw, math.MinInt64) })
	if err != nil {
		return mapErr(ctx, "rebuild trace index", err)
	}
	db.hold.Drop(ids)
	return nil
}

// recomputeTraces sets the trace index rows of ids to what their stored
// spans starting at or after floor give, and marks them rebuilt
// (flushIndexRows). The rows are locked before the spans are read, so a
// writer merging into them meanwhile merges after the recomputed row.
func recomputeTraces(ctx context.Context, tx pgx.Tx, ids [][]byte, floor int64) error {
	if _, err := tx.Exec(ctx, `SELECT 1 FROM trace_index WHERE trace_id = ANY($1::bytea[]) ORDER BY trace_id FOR UPDATE`, ids); err != nil {
		return fmt.Errorf("trace index: lock rows: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT `+sqlcommon.IndexSpanColumns+` FROM spans WHERE trace_id = ANY($1::bytea[]) AND start_ns >= $2`, ids, floor)
	if err != nil {
		return fmt.Errorf("trace index: read traces: %w", err)
	}
	spans, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Span, error) { return sqlcommon.ScanIndexSpan(r) })
	if err != nil {
		return fmt.Errorf("trace index: read traces: %w", err)
	}
	if err := upsertIndexRows(ctx, tx, indexReplaceSQL, sqlcommon.IndexRows(spans, nil)); err != nil {
		return err
	}
	return markRebuilt(ctx, tx, ids)
}

// markRebuilt marks the trace index rows of ids as recomputed from their
// spans (flushIndexRows).
func markRebuilt(ctx context.Context, tx pgx.Tx, ids [][]byte) error {
	if _, err := tx.Exec(ctx, `UPDATE trace_index SET rebuilt = true WHERE trace_id = ANY($1::bytea[]) AND NOT rebuilt`, ids); err != nil {
		return fmt.Errorf("trace index: mark rebuilt: %w", err)
	}
	return nil
}

func upsertIndexRows(ctx context.Context, tx pgx.Tx, sql string, rows []sqlcommon.IndexRow) error {
	if len(rows) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, sql, indexArrays(rows)...); err != nil {
		return fmt.Errorf("trace index: %w", err)
	}
	return nil
}

// indexArrays binds rows as one typed array per column (IndexColumns
// order): pgx encodes them without a type lookup per value.
func indexArrays(rows []sqlcommon.IndexRow) []any {
	n := len(rows)
	var (
		ids, rootIDs                             = make([][]byte, n), make([][]byte, n)
		first, last, end, maxDur, spans, errs    = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		rank, rootStart, rootDur                 = make([]int64, n), make([]int64, n), make([]int64, n)
		service, name, tenant, version, services = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	)
	for i := range rows {
		r := &rows[i]
		ids[i], rootIDs[i] = r.TraceID[:], r.RootSpanID[:]
		first[i], last[i], end[i], maxDur[i], spans[i], errs[i] = r.FirstStart, r.LastStart, r.End, r.MaxDuration, r.Spans, r.Errors
		rank[i], rootStart[i], rootDur[i] = r.RootRank, r.RootStart, r.RootDuration
		service[i], name[i], tenant[i], version[i], services[i] = r.RootService, r.RootName, r.RootTenant, r.RootVersion, r.ServicesJSON()
	}
	return []any{ids, first, last, end, maxDur, spans, errs, rank, rootStart, rootDur, rootIDs,
		service, name, tenant, version, services}
}

// pruneTraceIndex brings trace_index in line with retention: every span
// that started before floor is gone. Rows of traces wholly before it are
// deleted; rows of traces that straddle it are locked, then recomputed
// from their remaining spans by a later statement (a new snapshot, so it
// sees every committed span; a writer still adding spans to those traces
// waits for the lock and merges its spans after).
func pruneTraceIndex(ctx context.Context, tx pgx.Tx, floor int64) error {
	rows, err := tx.Query(ctx, `SELECT trace_id FROM trace_index WHERE first_start_ns < $1 AND last_start_ns >= $1
ORDER BY trace_id FOR UPDATE`, floor)
	if err != nil {
		return fmt.Errorf("trace index: lock straddling traces: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return fmt.Errorf("trace index: lock straddling traces: %w", err)
	}
	if len(ids) > 0 {
		if err := recomputeTraces(ctx, tx, ids, floor); err != nil {
			return err
		}
	}
	// Straddling traces with no span left at or after floor cannot exist:
	// last_start_ns >= floor is a stored span's start.
	if _, err := tx.Exec(ctx, `DELETE FROM trace_index WHERE last_start_ns < $1`, floor); err != nil {
		return fmt.Errorf("trace index: delete: %w", err)
	}
	return nil
}

// searchIndexed answers q through the trace index when it can (see
// sqlcommon.IndexSearch), in tx.
func searchIndexed(ctx context.Context, tx pgx.Tx, q store.TraceQuery) ([]sqlcommon.MatchRow, bool, error) {
	return sqlcommon.IndexSearch(ctx, sqlcommon.Postgres, q, func(ctx context.Context, sql string, args []any, scan func(sqlcommon.Scanner) error) error {
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	})
}

// summarise returns the summaries of ids from trace_index, and from their
// spans for any trace the index lacks.
func summarise(ctx context.Context, tx pgx.Tx, ids []store.TraceID) ([]store.TraceSummary, error) {
	scan := func(r pgx.CollectableRow) (store.TraceSummary, error) { return sqlcommon.ScanSummary(r) }
	q, args := sqlcommon.IndexSummarySQL(sqlcommon.Postgres, ids)
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	sums, err := pgx.CollectRows(rows, scan)
	if err != nil || len(sums) == len(ids) {
		return sums, err
	}
	have := make(map[store.TraceID]bool, len(sums))
	for _, s := range sums {
		have[s.TraceID] = true
	}
	var missing []store.TraceID
	for _, id := range ids {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	q, args = sqlcommon.SummarySQL(sqlcommon.Postgres, missing)
	rows, err = tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	more, err := pgx.CollectRows(rows, scan)
	return append(sums, more...), err
}
