package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

// writeMethod is how WriteSpans moves a batch into spans. Every method is
// idempotent; they differ in speed (see BenchmarkWriteSpans).
type writeMethod int

const (
	// writeCopyFirst COPYs straight into spans and, only when that hits a
	// duplicate key (a client resent a batch), redoes the batch through the
	// staging table. Duplicates are rare, so the common case is one COPY.
	writeCopyFirst writeMethod = iota
	// writeStaging COPYs into a per-connection temporary table, then
	// INSERT ... SELECT ... ON CONFLICT DO NOTHING. Always correct, about
	// 30% slower than a plain COPY (BenchmarkWriteSpans). A third method,
	// one INSERT ... SELECT FROM unnest($1::bytea[], ...) ON CONFLICT DO
	// NOTHING, measured slower still (about half of COPY at 5,000 spans) and
	// was removed.
	writeStaging
)

// stageTable is the per-connection temporary staging table. ON COMMIT
// DELETE ROWS empties it at the end of every write transaction.
const stageTable = "spans_stage"

// createStage runs on every new pool connection.
func createStage(ctx context.Context, c *pgx.Conn) error {
	_, err := c.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS `+stageTable+
		` (LIKE spans INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`)
	if err != nil {
		return fmt.Errorf("create staging table: %w", err)
	}
	return nil
}

// WriteSpans stores spans in one transaction. Spans already stored under
// the same (trace id, span id, start) are skipped. Day partitions the batch
// needs are created first when missing. Text is sanitised with
// sqlcommon.Clean / CleanJSON (NUL, which PostgreSQL rejects, and invalid
// UTF-8 become U+FFFD), so one bad span cannot fail the batch.
func (db *DB) WriteSpans(ctx context.Context, spans []store.Span) error {
	return db.writeSpans(ctx, spans, nil)
}

// WriteSpansHoldIndex is WriteSpans, except that the trace index rows of
// traces the table does not have yet are held in memory until
// FlushTraceIndex (the ingest journal's indexHolder; sqlcommon/traceindex_hold.go).
func (db *DB) WriteSpansHoldIndex(ctx context.Context, spans []store.Span) error {
	return db.writeSpans(ctx, spans, db.hold)
}

func (db *DB) writeSpans(ctx context.Context, spans []store.Span, hold *sqlcommon.IndexHold) error {
	if len(spans) == 0 {
		return nil
	}
	if db.readOnly {
		return ErrReadOnly
	}
	sqlcommon.CapKeys(spans)
	rows := db.stream()
	defer db.reuse(rows)
	rows.resources = slices.Grow(rows.resources[:0], len(spans))[:len(spans)]
	if err := db.resourceIDs(ctx, spans, rows.resources); err != nil {
		return mapErr(ctx, "write spans", err)
	}
	days, err := rows.encode(spans)
	if err != nil {
		return fmt.Errorf("postgres: write spans: %w", err)
	}
	if err := db.ensurePartitions(ctx, days); err != nil {
		return err
	}
	if rows.names, err = db.decideRollupKeys(ctx, spans); err != nil {
		return mapErr(ctx, "write spans: rollup tenants and names", err)
	}
	var held []sqlcommon.IndexRow
	err = db.writeRows(ctx, rows, spans, hold, &held)
	if isNoPartition(err) {
		// Another process dropped a partition we thought existed
		// (retention): reload what exists, recreate, retry once.
		if _, lerr := db.loadPartitions(ctx); lerr != nil {
			return lerr
		}
		if perr := db.ensurePartitions(ctx, days); perr != nil {
			return perr
		}
		err = db.writeRows(ctx, rows, spans, hold, &held)
	}
	if err == nil {
		db.stats.wrote(days)
		if hold != nil {
			hold.Add(held)
		}
	}
	return mapErr(ctx, "write spans", err)
}

// Streams are reused: a fresh buffer of a batch's size (~1 KB a span)
// cost more in zeroing, growing and page faults than encoding into it
// (in BenchmarkIngestE2E). A sync.Pool did not keep them: it is emptied by
// every other garbage collection, and ingest collects several times a
// second. So DB keeps up to maxIdleStreams, none over maxPooledStream, so
// a batch of unusually large spans does not pin its buffer.
const (
	maxIdleStreams  = 4
	maxPooledStream = 16 << 20
)

func (db *DB) stream() *copyStream {
	select {
	case c := <-db.streams:
		return c
	default:
		return new(copyStream)
	}
}

func (db *DB) reuse(c *copyStream) {
	if cap(c.b) > maxPooledStream {
		return
	}
	select {
	case db.streams <- c:
	default:
	}
}

// copySpansSQL and copyStageSQL load a binary COPY stream (copyStream).
var (
	copySpansSQL = `COPY spans (` + spanWriteColumns + `) FROM STDIN (FORMAT binary)`
	copyStageSQL = `COPY ` + stageTable + ` (` + spanWriteColumns + `) FROM STDIN (FORMAT binary)`
)

// writeRows commits rows (spans encoded) with the rollups and the trace
// index rows of the spans inserted, in one transaction. With a hold, *held
// gets the index rows to hold once it has committed (writeTraceIndex).
func (db *DB) writeRows(ctx context.Context, rows *copyStream, spans []store.Span,
	hold *sqlcommon.IndexHold, held *[]sqlcommon.IndexRow) error {
	if db.write == writeStaging {
		return db.writeStaged(ctx, rows, spans, hold, held)
	}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		*held = (*held)[:0]
		// Into the parent table: COPY straight into the day partitions
		// measured no faster (14.2 vs 14.5 us of server CPU per span).
		if _, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(rows.b), copySpansSQL); err != nil {
			return err
		}
		// The COPY inserted every span (a duplicate fails it).
		return db.writeDerived(ctx, tx, spans, nil, &rows.names, hold, held)
	})
	if isDuplicate(err) {
		return db.writeStaged(ctx, rows, spans, hold, held)
	}
	return err
}

func (db *DB) writeStaged(ctx context.Context, rows *copyStream, spans []store.Span,
	hold *sqlcommon.IndexHold, held *[]sqlcommon.IndexRow) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		*held = (*held)[:0]
		if _, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(rows.b), copyStageSQL); err != nil {
			return err
		}
		// RETURNING names the spans actually inserted: a resent span is
		// skipped and must not be counted in rollups or the index again.
		ins, err := tx.Query(ctx, `INSERT INTO spans (`+spanWriteColumns+`) SELECT `+spanWriteColumns+
			` FROM `+stageTable+` ON CONFLICT DO NOTHING RETURNING trace_id, span_id, start_ns`)
		if err != nil {
			return err
		}
		inserted, err := insertedKeys(ins)
		if err != nil {
			return err
		}
		return db.writeDerived(ctx, tx, spans, insertedOnce(spans, inserted), &rows.names, hold, held)
	})
}

func isDuplicate(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// isNoPartition reports PostgreSQL's "no partition of relation found for
// row" (check_violation on the partitioned table).
func isNoPartition(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23514" && pgErr.TableName == "spans"
}

// SearchTraces finds traces with a span matching q, through the trace
// index when it can answer q (traceindex.go), and summarises them from it.
func (db *DB) SearchTraces(ctx context.Context, q store.TraceQuery) ([]store.TraceSummary, error) {
	ts, err := sqlcommon.BuildTraceSearch(sqlcommon.Postgres, q)
	if err != nil {
		return nil, fmt.Errorf("postgres: search traces: %w", err)
	}
	// Rows held back by this process's writer are stored first: a search
	// sees the traces this process has written (traceindex_hold.go).
	if err := db.FlushTraceIndex(ctx); err != nil {
		return nil, err
	}
	var out []store.TraceSummary
	// REPEATABLE READ so both queries see one snapshot.
	err = pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		matches, indexed, err := searchIndexed(ctx, tx, q)
		if err != nil {
			return err
		}
		if !indexed {
			rows, err := tx.Query(ctx, ts.SQL, ts.Args...)
			if err != nil {
				return err
			}
			matches, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (sqlcommon.MatchRow, error) {
				return sqlcommon.ScanMatch(r)
			})
			if err != nil {
				return err
			}
		}
		if len(matches) == 0 {
			return nil
		}
		ids := make([]store.TraceID, len(matches))
		for i, m := range matches {
			ids[i] = m.TraceID
		}
		sums, err := summarise(ctx, tx, ids)
		if err != nil {
			return err
		}
		out = sqlcommon.OrderSummaries(matches, sums)
		return nil
	})
	if err != nil {
		return nil, mapErr(ctx, "search traces", err)
	}
	if out == nil {
		out = []store.TraceSummary{}
	}
	return out, nil
}

// Samples returns entry spans selected by q, ordered by start. The query is
// an index-only scan of spans_service_name_start once autovacuum has marked
// the pages all-visible.
func (db *DB) Samples(ctx context.Context, q store.SampleQuery) ([]store.Sample, error) {
	query, args, err := sqlcommon.SampleSQL(sqlcommon.Postgres, q)
	if err != nil {
		return nil, fmt.Errorf("postgres: samples: %w", err)
	}
	rows, err := db.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, mapErr(ctx, "samples", err)
	}
	defer rows.Close()
	var (
		b = sqlcommon.NewSampleBuilder()
		// DriverBytes point into pgx's read buffer: no copy per column.
		tid, sid, service, name, tenant, ver, host pgtype.DriverBytes
		start, dur, payload                        int64
		status                                     int16
		weight                                     float64
	)
	for rows.Next() {
		if err := rows.Scan(&tid, &sid, &service, &name, &tenant, &ver, &host, &start, &dur, &status, &payload, &weight); err != nil {
			return nil, mapErr(ctx, "samples", err)
		}
		if err := b.Add(tid, sid, service, name, tenant, ver, host, start, dur, int64(status), payload, weight); err != nil {
			return nil, mapErr(ctx, "samples", err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(ctx, "samples", err)
	}
	return b.Samples(), nil
}

// SampleRanges reads q over each range in one statement (SampleRangesSQL):
// each range is an index range scan of spans_service_name_start, run as a
// nested loop over the ranges, partitions pruned at run time.
func (db *DB) SampleRanges(ctx context.Context, q store.SampleQuery, ranges []store.SampleRange) ([][]store.Sample, error) {
	query, args, err := sqlcommon.SampleRangesSQL(q, ranges)
	if err != nil {
		return nil, fmt.Errorf("postgres: sample ranges: %w", err)
	}
	out := make([][]store.Sample, len(ranges))
	if len(ranges) == 0 {
		return out, nil
	}
	rows, err := db.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, mapErr(ctx, "sample ranges", err)
	}
	defer rows.Close()
	var (
		bs = make([]*sqlcommon.SampleBuilder, len(ranges))
		// DriverBytes point into pgx's read buffer: no copy per column.
		tid, sid, service, name, tenant, ver, host pgtype.DriverBytes
		i, start, dur, payload                     int64
		status                                     int16
		weight                                     float64
	)
	for rows.Next() {
		if err := rows.Scan(&i, &tid, &sid, &service, &name, &tenant, &ver, &host, &start, &dur, &status, &payload, &weight); err != nil {
			return nil, mapErr(ctx, "sample ranges", err)
		}
		if i < 1 || i > int64(len(ranges)) {
			return nil, fmt.Errorf("postgres: sample ranges: row of range %d of %d", i, len(ranges))
		}
		b := bs[i-1]
		if b == nil {
			b = sqlcommon.NewSampleBuilder()
			bs[i-1] = b
		}
		if err := b.Add(tid, sid, service, name, tenant, ver, host, start, dur, int64(status), payload, weight); err != nil {
			return nil, mapErr(ctx, "sample ranges", err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(ctx, "sample ranges", err)
	}
	for i, b := range bs {
		if b != nil {
			out[i] = b.Samples()
		}
	}
	return out, nil
}

// Endpoints lists (service, entry span name, count) in [from, to) rounded
// out to whole rollup buckets (sqlcommon.RollupDB.Endpoints).
func (db *DB) Endpoints(ctx context.Context, from, to time.Time) ([]store.Endpoint, error) {
	return db.rollups().Endpoints(ctx, from, to)
}

// writeDerived writes what is derived from the spans inserted (keep nil:
// all of them) in their transaction: rollups and trace index rows.
func (db *DB) writeDerived(ctx context.Context, tx pgx.Tx, spans []store.Span, keep func(int) bool, names *sqlcommon.NameSet,
	hold *sqlcommon.IndexHold, held *[]sqlcommon.IndexRow) error {
	if err := db.writeRollups(ctx, tx, spans, keep, names); err != nil {
		return err
	}
	if db.skipTraceIndex {
		return nil
	}
	return db.writeTraceIndex(ctx, tx, spans, keep, hold, held)
}

// insertedOnce is the keep function of a staged insert: a span counts when
// the insert returned it, once however often the batch repeats it.
func insertedOnce(spans []store.Span, inserted map[spanKey]bool) func(int) bool {
	keep := make([]bool, len(spans))
	for i := range spans {
		s := &spans[i]
		k := spanKey{s.TraceID, s.SpanID, s.StartUnixNano}
		if inserted[k] {
			keep[i] = true
			delete(inserted, k)
		}
	}
	return func(i int) bool { return keep[i] }
}
