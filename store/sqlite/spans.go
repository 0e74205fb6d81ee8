package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

// Trace returns the spans of one trace ordered by start, then span id.
func (db *DB) Trace(ctx context.Context, id store.TraceID) ([]store.Span, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+sqlcommon.SpanColumns+` FROM `+sqlcommon.SQLiteTraceSpans("tb.trace_id = ?")+
		` ORDER BY start_ns, span_id`, id[:])
	if err != nil {
		return nil, mapErr(ctx, "trace", err)
	}
	defer rows.Close()
	spans := make([]store.Span, 0, sqlcommon.SpanCountHint(ctx, conn{db}, id))
	for rows.Next() {
		s, err := sqlcommon.ScanSpan(rows)
		if err != nil {
			return nil, mapErr(ctx, "trace", err)
		}
		spans = append(spans, s)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(ctx, "trace", err)
	}
	if len(spans) == 0 {
		return nil, fmt.Errorf("sqlite: %w", store.NotFound("trace", id))
	}
	return spans, nil
}

// idChunk keeps IN lists well under SQLite's bound-variable limit.
const idChunk = 500

// Traces returns the spans of every given trace that exists.
func (db *DB) Traces(ctx context.Context, ids []store.TraceID) (map[store.TraceID][]store.Span, error) {
	return db.traces(ctx, "traces", ids, tracesOf(`SELECT `+sqlcommon.SpanColumns+` FROM `, sqlcommon.SQLiteTraceSpans), sqlcommon.ScanSpan)
}

// TraceShapes returns the spans of every given trace that exists, without
// attributes, resources and events (store.Reader).
func (db *DB) TraceShapes(ctx context.Context, ids []store.TraceID) (map[store.TraceID][]store.Span, error) {
	return db.traces(ctx, "trace shapes", ids, tracesOf(`SELECT `+sqlcommon.ShapeColumns+` FROM `, sqlcommon.SQLiteTraceShapes), sqlcommon.ScanShape)
}

// RequestShapes returns the shapes of the traces of reqs, each named span
// with its attributes and resource (store.Reader). A chunk's spans test
// their span id against the chunk's requested ones; a span that shares an
// id with a request of another trace is cut back afterwards.
func (db *DB) RequestShapes(ctx context.Context, reqs []store.SpanRef) (map[store.TraceID][]store.Span, error) {
	entries := make(map[store.TraceID][]store.SpanID, len(reqs))
	ids := make([]store.TraceID, 0, len(reqs))
	for _, r := range reqs {
		if _, ok := entries[r.TraceID]; !ok {
			ids = append(ids, r.TraceID)
		}
		entries[r.TraceID] = append(entries[r.TraceID], r.SpanID)
	}
	out, err := db.traces(ctx, "request shapes", ids, func(chunk []store.TraceID) (string, []any) {
		var sids []store.SpanID
		for _, id := range chunk {
			sids = append(sids, entries[id]...)
		}
		a := sqlcommon.NewArgs(sqlcommon.SQLite)
		attrOf, resourceOf := a.InSpanIDs("s.span_id", sids), a.InSpanIDs("s.span_id", sids)
		return `SELECT ` + sqlcommon.SpanColumns + ` FROM ` +
			sqlcommon.SQLiteRequestShapes(attrOf, resourceOf, a.InTraceIDs("tb.trace_id", chunk)), a.Vals
	}, sqlcommon.ScanSpan)
	if err != nil {
		return nil, err
	}
	for id, spans := range out {
		for i := range spans {
			if sp := &spans[i]; sp.Attributes != nil || sp.Resource != nil {
				if !slices.Contains(entries[id], sp.SpanID) {
					sp.Attributes, sp.Resource = nil, nil
				}
			}
		}
	}
	return out, nil
}

// tracesOf returns traces' query for a chunk of ids: sel from the source
// from builds.
func tracesOf(sel string, from func(cond string) string) func([]store.TraceID) (string, []any) {
	return func(chunk []store.TraceID) (string, []any) {
		a := sqlcommon.NewArgs(sqlcommon.SQLite)
		return sel + from(a.InTraceIDs("tb.trace_id", chunk)), a.Vals
	}
}

// traces reads the traces of ids in chunks, each with the query chunkSQL
// builds, reading rows with scan, and orders each trace's spans
// (sqlcommon.SpanOrder; the statement has no ORDER BY, which sorted every
// row read in a temporary B-tree).
func (db *DB) traces(ctx context.Context, op string, ids []store.TraceID, chunkSQL func([]store.TraceID) (string, []any),
	scan func(sqlcommon.Scanner) (store.Span, error)) (map[store.TraceID][]store.Span, error) {
	out := make(map[store.TraceID][]store.Span, len(ids))
	for chunk := range slices.Chunk(ids, idChunk) {
		q, args := chunkSQL(chunk)
		rows, err := db.r.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, mapErr(ctx, op, err)
		}
		for rows.Next() {
			s, err := scan(rows)
			if err != nil {
				rows.Close()
				return nil, mapErr(ctx, op, err)
			}
			out[s.TraceID] = append(out[s.TraceID], s)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, mapErr(ctx, op, err)
		}
	}
	for _, spans := range out {
		slices.SortFunc(spans, sqlcommon.SpanOrder)
	}
	return out, nil
}

// SearchTraces finds traces with a span matching q, through the trace
// index when it can answer q (traceindex.go), and summarises them from it.
func (db *DB) SearchTraces(ctx context.Context, q store.TraceQuery) ([]store.TraceSummary, error) {
	ts, err := sqlcommon.BuildTraceSearch(sqlcommon.SQLite, q)
	if err != nil {
		return nil, fmt.Errorf("sqlite: search traces: %w", err)
	}
	// Rows held back by this process's writer are stored first: a search
	// sees the traces this process has written (traceindex_hold.go).
	if err := db.FlushTraceIndex(ctx); err != nil {
		return nil, err
	}
	// One read transaction: both queries see the same snapshot.
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, mapErr(ctx, "search traces", err)
	}
	defer tx.Rollback()
	matches, indexed, err := searchIndexed(ctx, tx, q)
	if err != nil {
		return nil, mapErr(ctx, "search traces", err)
	}
	if !indexed {
		rows, err := tx.QueryContext(ctx, ts.SQL, ts.Args...)
		if err != nil {
			return nil, mapErr(ctx, "search traces", err)
		}
		for rows.Next() {
			m, err := sqlcommon.ScanMatch(rows)
			if err != nil {
				rows.Close()
				return nil, mapErr(ctx, "search traces", err)
			}
			matches = append(matches, m)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, mapErr(ctx, "search traces", err)
		}
	}
	if len(matches) == 0 {
		return []store.TraceSummary{}, nil
	}
	ids := make([]store.TraceID, len(matches))
	for i, m := range matches {
		ids[i] = m.TraceID
	}
	sums, err := summarise(ctx, tx, ids)
	if err != nil {
		return nil, mapErr(ctx, "summarise traces", err)
	}
	return sqlcommon.OrderSummaries(matches, sums), nil
}

// Samples returns entry spans selected by q, ordered by start. The query is
// served from the spans_service_name_start covering index alone.
func (db *DB) Samples(ctx context.Context, q store.SampleQuery) ([]store.Sample, error) {
	query, args, err := sqlcommon.SampleSQL(sqlcommon.SQLite, q)
	if err != nil {
		return nil, fmt.Errorf("sqlite: samples: %w", err)
	}
	rows, err := db.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, mapErr(ctx, "samples", err)
	}
	defer rows.Close()
	var (
		b                                          = sqlcommon.NewSampleBuilder()
		tid, sid, service, name, tenant, ver, host sql.RawBytes
		start, dur, status, payload                int64
		weight                                     float64
	)
	for rows.Next() {
		if err := rows.Scan(&tid, &sid, &service, &name, &tenant, &ver, &host, &start, &dur, &status, &payload, &weight); err != nil {
			return nil, mapErr(ctx, "samples", err)
		}
		if err := b.Add(tid, sid, service, name, tenant, ver, host, start, dur, status, payload, weight); err != nil {
			return nil, mapErr(ctx, "samples", err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(ctx, "samples", err)
	}
	return b.Samples(), nil
}

// SampleRanges reads q over each range in turn: SQLite runs in process, so
// one statement per range costs no round trip.
func (db *DB) SampleRanges(ctx context.Context, q store.SampleQuery, ranges []store.SampleRange) ([][]store.Sample, error) {
	return store.SampleEach(ctx, q, ranges, db.Samples)
}

// Endpoints lists (service, entry span name, count) in [from, to) rounded
// out to whole rollup buckets (sqlcommon.RollupDB.Endpoints).
func (db *DB) Endpoints(ctx context.Context, from, to time.Time) ([]store.Endpoint, error) {
	return db.rollups().Endpoints(ctx, from, to)
}

// deleteChunk bounds how long one retention transaction holds the write
// lock, so ingest keeps flowing while old data is removed.
const deleteChunk = 5000

// DeleteBefore removes spans that started before t, in chunks.
func (db *DB) DeleteBefore(ctx context.Context, t time.Time) error {
	cut := sqlcommon.NS(t)
	// Held trace index rows first, so the rows retention prunes and
	// recomputes count every span it deletes (traceindex_hold.go).
	if err := db.FlushTraceIndex(ctx); err != nil {
		return err
	}
	if err := db.deleteChunks(ctx, "delete before",
		`DELETE FROM spans WHERE rowid IN (SELECT rowid FROM spans WHERE start_ns < ? LIMIT ?)`, cut); err != nil {
		return err
	}
	// Buckets wholly before the cut; the one holding it stays (a bucket
	// without spans left only costs a wasted index scan when read).
	if err := db.deleteChunks(ctx, "delete before: trace buckets", `DELETE FROM trace_buckets WHERE (trace_id, bucket) IN
  (SELECT trace_id, bucket FROM trace_buckets WHERE bucket < ? LIMIT ?)`, cut>>sqlcommon.SQLiteTraceBucketShift); err != nil {
		return err
	}
	if err := db.pruneTraceIndex(ctx, cut); err != nil {
		return err
	}
	// Minute rollups go with the spans they count (hours stay for the
	// rollup retention, DeleteRollupsBefore).
	if err := db.rollups().DeleteMinutesBefore(ctx, t); err != nil {
		return err
	}
	return db.deleteResources(ctx, cut)
}

// deleteChunks runs query, a DELETE of at most deleteChunk rows taking
// (bound, deleteChunk), until it deletes fewer: each chunk is its own
// transaction.
func (db *DB) deleteChunks(ctx context.Context, what, query string, bound int64) error {
	for {
		res, err := db.w.ExecContext(ctx, query, bound, deleteChunk)
		if err != nil {
			return mapErr(ctx, what, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return mapErr(ctx, what, err)
		}
		if n < deleteChunk {
			return nil
		}
	}
}

// deleteResources removes the resources no span from cut on refers to:
// those whose last_ns, which trails the newest referring span by at most
// resourceTouchSlack, is older than that before the cut. Rows written
// before migration 00004 keep their resource inline and need none.
func (db *DB) deleteResources(ctx context.Context, cut int64) error {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if cut < math.MinInt64+resourceTouchSlack {
		return nil
	}
	res, err := db.w.ExecContext(ctx, `DELETE FROM resources WHERE last_ns < ?`, cut-resourceTouchSlack)
	if err != nil {
		return mapErr(ctx, "delete before: resources", err)
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		// Deleted ids must not be handed out again from the cache.
		clear(db.resources)
	}
	return nil
}
