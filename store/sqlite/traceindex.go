package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

// The trace index (sqlcommon/traceindex.go): WriteSpans merges each batch's
// rows in the transaction that writes its spans; retention deletes and
// recomputes rows (DeleteBefore); SearchTraces walks it.

// indexRowsPerStatement is how many trace rows one upsert binds (as
// insertRows for spans: per-statement work was a visible share).
const indexRowsPerStatement = 32

// indexUpsertSQL is the upsert of rows trace rows, merging (IndexMergeSet)
// or replacing them.
func indexUpsertSQL(rows int, replace bool) string {
	row := "(?" + strings.Repeat(", ?", 15) + ")"
	return `INSERT INTO trace_index (` + sqlcommon.IndexColumns + `) VALUES ` + row + strings.Repeat(", "+row, rows-1) +
		` ON CONFLICT (trace_id) ` + sqlcommon.IndexMergeSet(sqlcommon.SQLite, replace)
}

// indexBatch tracks which spans of a batch WriteSpans inserted. INSERT OR
// IGNORE says only how many rows a statement inserted; when that is fewer
// than it bound (a resend), the traces of that statement's spans are
// recomputed from every stored span instead of merged, which is exact and
// costs a read of those traces only when clients resend.
type indexBatch struct {
	resent map[store.TraceID]bool
	seen   map[spanKey]bool // spans of the batch bound so far (RETURNING pass)
	// hold, when set (WriteSpansHoldIndex), takes the rows of traces held
	// or not in the table yet: write leaves them in held, and committed
	// moves them to the hold (sqlcommon/traceindex_hold.go).
	hold *sqlcommon.IndexHold
	held []sqlcommon.IndexRow
}

// returned records the outcome of a statement of the RETURNING pass
// (WriteSpans redoes a batch with RETURNING when a row was skipped): a
// trace with a span the statement did not insert — a resend, or a span
// the batch holds twice — is recomputed from its stored spans instead of
// merged, so nothing counts twice. inserted holds the keys every
// statement so far returned.
func (b *indexBatch) returned(spans []store.Span, inserted map[spanKey]bool) {
	for j := range spans {
		s := &spans[j]
		k := spanKey{s.TraceID, s.SpanID, s.StartUnixNano}
		if !inserted[k] || b.seen[k] {
			if b.resent == nil {
				b.resent = map[store.TraceID]bool{}
			}
			b.resent[s.TraceID] = true
		}
		if b.seen == nil {
			b.seen = map[spanKey]bool{}
		}
		b.seen[k] = true
	}
}

// write merges the batch into trace_index; it runs after the spans and
// trace buckets are written, as recomputing reads spans through the buckets.
func (b *indexBatch) write(ctx context.Context, tx *sql.Tx, spans []store.Span) error {
	rows := sqlcommon.IndexRows(spans, func(i int) bool { return !b.resent[spans[i].TraceID] })
	if b.hold != nil {
		// Every row is held, that of a stored trace too: SQLite's trace
		// reads find a trace's spans through trace_buckets, not through
		// its row, so a stored row lacking a held part misleads no read
		// (PostgreSQL's reads are bounded by the row, and it holds only
		// traces without one). What waits is the part's place in
		// search, as for a new trace, and a look-up of which traces have
		// a row — a probe a trace — is saved.
		b.held, rows = rows, nil
	}
	if _, err := upsertIndexRows(ctx, tx, false, rows, false); err != nil {
		return err
	}
	if len(b.resent) == 0 {
		return nil
	}
	return recomputeIndexRows(ctx, tx, b.resentIDs(), nil)
}

func (b *indexBatch) resentIDs() []store.TraceID {
	ids := make([]store.TraceID, 0, len(b.resent))
	for id := range b.resent {
		ids = append(ids, id)
	}
	return ids
}

// committed hands the hold what write left for it, once the transaction
// has committed: the held rows, and the recomputed traces, whose stored
// rows now count every stored span, held ones included.
func (b *indexBatch) committed() {
	if b.hold == nil {
		return
	}
	b.hold.Drop(b.resentIDs())
	b.hold.Add(b.held)
}

// FlushTraceIndex stores the trace index rows WriteSpansHoldIndex held
// (the ingest journal's indexHolder).
func (db *DB) FlushTraceIndex(ctx context.Context) error {
	return db.hold.Flush(ctx, db.writeHeld)
}

// FlushAgedTraceIndex stores the held rows held since before its previous
// call and reports how many rows it still holds (the ingest journal's
// indexHolder; sqlcommon.IndexHold.FlushAged).
func (db *DB) FlushAgedTraceIndex(ctx context.Context) (int, error) {
	return db.hold.FlushAged(ctx, db.writeHeld)
}

// writeHeld stores held rows in a write transaction of their own.
func (db *DB) writeHeld(ctx context.Context, rows []sqlcommon.IndexRow) error {
	return db.indexTx(ctx, "flush trace index", func(tx *sql.Tx) error { return flushIndexRows(ctx, tx, rows) })
}

// flushIndexRows merges held rows into trace_index, except into rows a
// recompute marked rebuilt (migration 00016): a rebuilt row already counts
// every stored span, held ones too — another process's rebuild after a
// crash counts the spans whose rows this process holds — so those traces
// are recomputed again instead. The upsert skips them (DO UPDATE … WHERE
// NOT rebuilt); a statement that wrote fewer rows than it bound had some
// (nearly never), and those are the ones of its traces still marked
// rebuilt. The transaction holds the write lock from its start (BEGIN
// IMMEDIATE), so no other process changes them in between.
func flushIndexRows(ctx context.Context, tx *sql.Tx, rows []sqlcommon.IndexRow) error {
	short, err := upsertIndexRows(ctx, tx, false, rows, true)
	if err != nil || len(short) == 0 {
		return err
	}
	var rebuilt []store.TraceID
	for chunk := range slices.Chunk(short, idChunk) {
		a := sqlcommon.NewArgs(sqlcommon.SQLite)
		found, err := tx.QueryContext(ctx, `SELECT trace_id FROM trace_index WHERE rebuilt AND `+a.InTraceIDs("trace_id", chunk), a.Vals...)
		if err == nil {
			rebuilt, err = appendTraceIDs(rebuilt, found)
		}
		if err != nil {
			return fmt.Errorf("trace index: rebuilt rows: %w", err)
		}
	}
	return recomputeIndexRows(ctx, tx, rebuilt, nil)
}

// HeldTraceIndexRows is how many traces' index rows WriteSpansHoldIndex
// holds (the ingest journal's indexHolder).
func (db *DB) HeldTraceIndexRows() int { return db.hold.Len() }

// RebuildTraceIndex recomputes the trace index rows of ids from their
// stored spans (the ingest journal's indexHolder): the rows of spans replayed from the
// write-ahead log, whose held rows a crash lost.
func (db *DB) RebuildTraceIndex(ctx context.Context, ids []store.TraceID) error {
	if len(ids) == 0 {
		return nil
	}
	err := db.indexTx(ctx, "rebuild trace index", func(tx *sql.Tx) error {
		return recomputeIndexRows(ctx, tx, slices.Clone(ids), nil)
	})
	if err == nil {
		db.hold.Drop(ids)
	}
	return err
}

// indexTx runs f in a write transaction, serialised with span writes.
func (db *DB) indexTx(ctx context.Context, op string, f func(*sql.Tx) error) error {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return mapErr(ctx, op, err)
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return mapErr(ctx, op, err)
	}
	if err := tx.Commit(); err != nil {
		return mapErr(ctx, op, err)
	}
	return nil
}

// upsertIndexRows merges rows into trace_index (replaces them when
// replace). With guard set, rows are not merged into rebuilt ones
// (flushIndexRows), and short gets the traces of every statement that
// wrote fewer rows than it bound: those rows include the skipped ones.
func upsertIndexRows(ctx context.Context, tx *sql.Tx, replace bool, rows []sqlcommon.IndexRow, guard bool) (short []store.TraceID, _ error) {
	stmts := map[int]*sql.Stmt{} // by rows bound: indexRowsPerStatement, then 1 for the tail
	defer func() {
		for _, st := range stmts {
			st.Close()
		}
	}()
	args := make([]any, 0, 16*indexRowsPerStatement)
	for len(rows) > 0 {
		n := indexRowsPerStatement
		if len(rows) < n {
			n = 1
		}
		st, ok := stmts[n]
		if !ok {
			var err error
			q := indexUpsertSQL(n, replace)
			if guard {
				q += ` WHERE NOT trace_index.rebuilt`
			}
			if st, err = tx.PrepareContext(ctx, q); err != nil {
				return nil, fmt.Errorf("trace index: %w", err)
			}
			stmts[n] = st
		}
		args = args[:0]
		for i := range n {
			args = append(args, rows[i].IndexArgs()...)
		}
		res, err := st.ExecContext(ctx, args...)
		if err != nil {
			return nil, fmt.Errorf("trace index: %w", err)
		}
		if guard {
			// SQLite counts a row an upsert inserted or updated, not
			// one its DO UPDATE … WHERE skipped.
			if wrote, err := res.RowsAffected(); err != nil || wrote < int64(n) {
				for _, r := range rows[:n] {
					short = append(short, r.TraceID)
				}
			}
		}
		rows = rows[n:]
	}
	return short, nil
}

// appendTraceIDs appends the trace ids rows holds to ids, and closes rows.
func appendTraceIDs(ids []store.TraceID, rows *sql.Rows) ([]store.TraceID, error) {
	defer rows.Close()
	for rows.Next() {
		var id []byte
		if err := rows.Scan(&id); err != nil {
			return ids, err
		}
		ids = append(ids, store.TraceID(id))
	}
	return ids, rows.Err()
}

// recomputeIndexRows sets the rows of ids from their stored spans (those
// starting at or after *from when from is set); a trace without spans left
// keeps its row, which the caller deletes.
func recomputeIndexRows(ctx context.Context, tx *sql.Tx, ids []store.TraceID, from *int64) error {
	slices.SortFunc(ids, func(a, b store.TraceID) int { return slices.Compare(a[:], b[:]) })
	var spans []store.Span
	for chunk := range slices.Chunk(ids, idChunk) {
		a := sqlcommon.NewArgs(sqlcommon.SQLite)
		q := `SELECT ` + prefixed("s.", sqlcommon.IndexSpanColumns) + ` FROM trace_buckets tb CROSS JOIN spans s INDEXED BY spans_start_trace
    ON s.start_ns BETWEEN tb.min_ns AND tb.max_ns AND s.trace_id = tb.trace_id WHERE ` + a.InTraceIDs("tb.trace_id", chunk)
		if from != nil {
			q += " AND s.start_ns >= " + a.Add(*from)
		}
		rows, err := tx.QueryContext(ctx, q, a.Vals...)
		if err != nil {
			return fmt.Errorf("trace index: read traces: %w", err)
		}
		for rows.Next() {
			s, err := sqlcommon.ScanIndexSpan(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("trace index: read traces: %w", err)
			}
			spans = append(spans, s)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("trace index: read traces: %w", err)
		}
	}
	if _, err := upsertIndexRows(ctx, tx, true, sqlcommon.IndexRows(spans, nil), false); err != nil {
		return err
	}
	// Mark the rows recomputed (flushIndexRows).
	for chunk := range slices.Chunk(ids, idChunk) {
		a := sqlcommon.NewArgs(sqlcommon.SQLite)
		if _, err := tx.ExecContext(ctx, `UPDATE trace_index SET rebuilt = 1 WHERE NOT rebuilt AND `+a.InTraceIDs("trace_id", chunk), a.Vals...); err != nil {
			return fmt.Errorf("trace index: mark rebuilt: %w", err)
		}
	}
	return nil
}

// prefixed qualifies each column of a comma-separated list.
func prefixed(p, cols string) string {
	names := strings.Split(strings.Join(strings.Fields(cols), ""), ",")
	return p + strings.Join(names, ", "+p)
}

// pruneTraceIndex brings trace_index in line with retention once every span
// before cut is deleted: traces that straddle the cut are recomputed from
// their remaining spans, then rows wholly before it are deleted (in chunks,
// like the spans).
func (db *DB) pruneTraceIndex(ctx context.Context, cut int64) error {
	if err := db.recomputeStraddling(ctx, cut); err != nil {
		return mapErr(ctx, "delete before: trace index", err)
	}
	return db.deleteChunks(ctx, "delete before: trace index", `DELETE FROM trace_index WHERE trace_id IN
  (SELECT trace_id FROM trace_index WHERE last_start_ns < ? LIMIT ?)`, cut)
}

func (db *DB) recomputeStraddling(ctx context.Context, cut int64) error {
	// Under the write lock: no batch merges into these rows meanwhile.
	db.wmu.Lock()
	defer db.wmu.Unlock()
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT trace_id FROM trace_index WHERE first_start_ns < ? AND last_start_ns >= ?`, cut, cut)
	if err != nil {
		return err
	}
	var ids []store.TraceID
	for rows.Next() {
		var (
			raw []byte
			id  store.TraceID
		)
		if err := rows.Scan(&raw); err != nil {
			rows.Close()
			return err
		}
		copy(id[:], raw)
		ids = append(ids, id)
	}
	err = rows.Err()
	rows.Close()
	if err != nil || len(ids) == 0 {
		return err
	}
	if err := recomputeIndexRows(ctx, tx, ids, &cut); err != nil {
		return err
	}
	return tx.Commit()
}

// searchIndexed answers q through the trace index when it can (see
// sqlcommon.IndexSearch), in tx.
func searchIndexed(ctx context.Context, tx *sql.Tx, q store.TraceQuery) ([]sqlcommon.MatchRow, bool, error) {
	return sqlcommon.IndexSearch(ctx, sqlcommon.SQLite, q, func(ctx context.Context, query string, args []any, scan func(sqlcommon.Scanner) error) error {
		rows, err := tx.QueryContext(ctx, query, args...)
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
func summarise(ctx context.Context, tx *sql.Tx, ids []store.TraceID) ([]store.TraceSummary, error) {
	var sums []store.TraceSummary
	read := func(q string, args []any) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			s, err := sqlcommon.ScanSummary(rows)
			if err != nil {
				return err
			}
			sums = append(sums, s)
		}
		return rows.Err()
	}
	for chunk := range slices.Chunk(ids, idChunk) {
		q, args := sqlcommon.IndexSummarySQL(sqlcommon.SQLite, chunk)
		if err := read(q, args); err != nil {
			return nil, err
		}
	}
	if len(sums) == len(ids) {
		return sums, nil
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
	for chunk := range slices.Chunk(missing, idChunk) {
		q, args := sqlcommon.SummarySQL(sqlcommon.SQLite, chunk)
		if err := read(q, args); err != nil {
			return nil, err
		}
	}
	return sums, nil
}
