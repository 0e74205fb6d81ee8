package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

// Reading traces by id: one trace (the trace page), many (analyses'
// samples), whole, as shapes, or as shapes with their requests' spans.

// selectSpans reads spans with their resources resolved.
var selectSpans = `SELECT ` + sqlcommon.ResolvedSpanColumns("spans") + ` FROM spans `

// traceSQL selects the spans of trace $1 between its first and last start
// as the trace index has them, so only those days' partitions are read
// (pruned as the statement runs, from the subqueries' values; the other
// days show as never executed): an id alone names no day, and was looked
// up in every day kept. Without an index row the bounds are open, every
// day is looked in. The index row is read once (the CTE) for both
// bounds, and in the statement's snapshot, the spans' own.
var traceSQL = `WITH ti AS MATERIALIZED (SELECT first_start_ns, last_start_ns FROM trace_index WHERE trace_id = $1)
` + selectSpans + `WHERE trace_id = $1 AND start_ns BETWEEN
  coalesce((SELECT first_start_ns FROM ti), -9223372036854775808)
  AND coalesce((SELECT last_start_ns FROM ti), 9223372036854775807)
ORDER BY start_ns, span_id`

// Trace returns the spans of one trace ordered by start, then span id.
//
// The span count that sizes the result (sqlcommon.SpanCountHint) is asked
// in the same round trip (a pipelined batch): the trace page waited for two.
func (db *DB) Trace(ctx context.Context, id store.TraceID) ([]store.Span, error) {
	if err := db.flushHeld(ctx, []store.TraceID{id}); err != nil {
		return nil, err
	}
	var b pgx.Batch
	b.Queue(sqlcommon.Rebind(sqlcommon.Postgres, sqlcommon.SpanCountSQL), id[:])
	b.Queue(traceSQL, id[:])
	br := db.pool.SendBatch(ctx, &b)
	defer br.Close()
	var n int64
	if err := br.QueryRow().Scan(&n); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, mapErr(ctx, "trace", err)
	}
	rows, err := br.Query()
	if err != nil {
		return nil, mapErr(ctx, "trace", err)
	}
	spans, err := collectSpans(rows, sqlcommon.CapSpanCount(n))
	if err != nil {
		return nil, mapErr(ctx, "trace", err)
	}
	if len(spans) == 0 {
		return nil, fmt.Errorf("postgres: %w", store.NotFound("trace", id))
	}
	return spans, nil
}

// collectSpans reads rows into a slice of capacity hint.
func collectSpans(rows pgx.Rows, hint int) ([]store.Span, error) {
	return collectWith(rows, hint, sqlcommon.ScanSpan)
}

// collectWith reads rows with scan into a slice of capacity hint.
func collectWith(rows pgx.Rows, hint int, scan func(sqlcommon.Scanner) (store.Span, error)) ([]store.Span, error) {
	defer rows.Close()
	spans := make([]store.Span, 0, hint)
	for rows.Next() {
		s, err := scan(rows)
		if err != nil {
			return nil, err
		}
		spans = append(spans, s)
	}
	return spans, rows.Err()
}

// selectShapes reads spans' shape columns: no resource to resolve.
var selectShapes = `SELECT ` + sqlcommon.ShapeColumns + ` FROM spans `

// Traces returns the spans of every given trace that exists.
func (db *DB) Traces(ctx context.Context, ids []store.TraceID) (map[store.TraceID][]store.Span, error) {
	return db.traces(ctx, "traces", ids, selectSpans, sqlcommon.ScanSpan)
}

// TraceShapes returns the spans of every given trace that exists, without
// attributes, resources and events (store.Reader).
func (db *DB) TraceShapes(ctx context.Context, ids []store.TraceID) (map[store.TraceID][]store.Span, error) {
	return db.traces(ctx, "trace shapes", ids, selectShapes, sqlcommon.ScanShape)
}

// RequestShapes returns the shapes of the traces of reqs, each named span
// with its attributes and resource (store.Reader). The span ids travel
// with their trace's id, so each span's test is against its own trace's
// one or two ids, not every id asked for.
func (db *DB) RequestShapes(ctx context.Context, reqs []store.SpanRef) (map[store.TraceID][]store.Span, error) {
	tids, sids := make([][]byte, len(reqs)), make([][]byte, len(reqs))
	ids := make([]store.TraceID, len(reqs))
	for i := range reqs {
		tids[i], sids[i], ids[i] = reqs[i].TraceID[:], reqs[i].SpanID[:], reqs[i].TraceID
	}
	out, missing, err := db.tracesByIndex(ctx, "request shapes", sortedIDs(ids),
		tracesByIndexSQL(requestsSource, selectRequestShapes), []any{tids, sids}, sqlcommon.ScanSpan)
	if err != nil || len(missing) == 0 {
		return out, err
	}
	// Traces without an index row (rare: a row held back by a writer) are
	// read whole, then cut to what RequestShapes returns.
	whole := map[store.TraceID][]store.Span{}
	if err := db.tracesScanned(ctx, "request shapes", missing, selectSpans, sqlcommon.ScanSpan, whole); err != nil {
		return nil, err
	}
	keep := make(map[store.SpanRef]bool, len(reqs))
	for _, r := range reqs {
		keep[r] = true
	}
	for id, spans := range whole {
		for i := range spans {
			sp := &spans[i]
			if !keep[store.SpanRef{TraceID: sp.TraceID, SpanID: sp.SpanID}] {
				sp.Attributes, sp.Resource = nil, nil
			}
			sp.Events = nil
		}
		out[id] = spans
	}
	return out, nil
}

// selectRequestShapes reads spans' columns in SpanColumns' order with the
// attributes and resource only of the spans in q.entries, and no events.
var selectRequestShapes = func() string {
	cols := make([]string, len(sqlcommon.SpanColumnNames))
	for i, c := range sqlcommon.SpanColumnNames {
		switch c {
		case "attributes":
			cols[i] = `CASE WHEN spans.span_id = ANY(q.entries) THEN spans.attributes END AS attributes`
		case "resource":
			cols[i] = `CASE WHEN spans.span_id = ANY(q.entries) THEN ` + sqlcommon.ResourceExpr("spans") + ` END AS resource`
		case "events":
			cols[i] = `NULL::json AS events`
		default:
			cols[i] = "spans." + c
		}
	}
	return `SELECT ` + strings.Join(cols, ", ") + ` FROM spans `
}()

// traces reads the traces of ids, selecting with sel and reading rows
// with scan: through the trace index, then the old way for the ids it has
// no row for (none, when the index is written with the spans).
//
// Why through the index. Spans are partitioned by day on start_ns, and a
// list of trace ids names no day: PostgreSQL looked for every id in every
// day's partition, and, estimating thousands of rows a day for a thousand
// ids, scanned whole days instead — a thousand traces of one day among
// eight days of 125,000 spans read 57,000 pages (every span) where 7,000
// hold them. The trace index has each trace's first and last span start,
// so each trace is looked up only in the days between them: PostgreSQL
// prunes the other partitions per trace as it runs (the plan's "never
// executed"). The OFFSET 0 fences keep both lookups per id: unfenced, the
// planner may sort the whole index to merge-join it, or, on small
// partitions, hash-join every partition's rows.
func (db *DB) traces(ctx context.Context, op string, ids []store.TraceID, sel string,
	scan func(sqlcommon.Scanner) (store.Span, error)) (map[store.TraceID][]store.Span, error) {
	uniq := sortedIDs(ids)
	raw := make([][]byte, len(uniq))
	for i := range uniq {
		raw[i] = uniq[i][:]
	}
	out, missing, err := db.tracesByIndex(ctx, op, uniq, tracesByIndexSQL(traceIDsSource, sel), []any{raw}, scan)
	if err != nil || len(missing) == 0 {
		return out, err
	}
	if err := db.tracesScanned(ctx, op, missing, sel, scan, out); err != nil {
		return nil, err
	}
	return out, nil
}

// sortedIDs returns ids sorted, each once.
func sortedIDs(ids []store.TraceID) []store.TraceID {
	uniq := slices.Clone(ids)
	slices.SortFunc(uniq, func(a, b store.TraceID) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(uniq)
}

// tracesByIndex runs query (tracesByIndexSQL) and returns the traces it
// found and those of uniq it did not: ids without an index row.
func (db *DB) tracesByIndex(ctx context.Context, op string, uniq []store.TraceID, query string, args []any,
	scan func(sqlcommon.Scanner) (store.Span, error)) (out map[store.TraceID][]store.Span, missing []store.TraceID, err error) {
	out = make(map[store.TraceID][]store.Span, len(uniq))
	if len(uniq) == 0 {
		return out, nil, nil
	}
	if err := db.flushHeld(ctx, uniq); err != nil {
		return nil, nil, err
	}
	rows, err := db.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, nil, mapErr(ctx, op, err)
	}
	if err := groupTraces(rows, scan, out); err != nil {
		return nil, nil, mapErr(ctx, op, err)
	}
	for _, id := range uniq {
		if _, ok := out[id]; !ok {
			missing = append(missing, id)
		}
	}
	return out, missing, nil
}

// tracesScanned reads the traces of ids into out the old way, looking for
// them in every day.
func (db *DB) tracesScanned(ctx context.Context, op string, ids []store.TraceID, sel string,
	scan func(sqlcommon.Scanner) (store.Span, error), out map[store.TraceID][]store.Span) error {
	a := sqlcommon.NewArgs(sqlcommon.Postgres)
	rows, err := db.pool.Query(ctx, sel+`WHERE `+a.InTraceIDs("trace_id", ids), a.Vals...)
	if err != nil {
		return mapErr(ctx, op, err)
	}
	if err := groupTraces(rows, scan, out); err != nil {
		return mapErr(ctx, op, err)
	}
	return nil
}

// The sources of tracesByIndexSQL's q: trace ids ($1), or the traces of
// requests (trace ids $1, span ids $2), each trace once with its requests'
// span ids in q.entries.
const (
	traceIDsSource = `unnest($1::bytea[]) AS q(id)`
	requestsSource = `(SELECT id, array_agg(entry) AS entries FROM unnest($1::bytea[], $2::bytea[]) AS p(id, entry) GROUP BY id) q`
)

// tracesByIndexSQL selects with sel (which reads FROM spans) the spans of
// the traces q lists (q.id, from source), each between its first and last
// start.
func tracesByIndexSQL(source, sel string) string {
	return `SELECT s.* FROM ` + source + `
CROSS JOIN LATERAL (SELECT first_start_ns, last_start_ns FROM trace_index WHERE trace_id = q.id OFFSET 0) ti
CROSS JOIN LATERAL (` + sel + `WHERE spans.trace_id = q.id AND spans.start_ns BETWEEN ti.first_start_ns AND ti.last_start_ns OFFSET 0) s`
}

// groupTraces reads rows into out by trace, each trace's spans in the
// order Trace returns them: by start, then span id. The statements leave
// the order to this: PostgreSQL sorting every row of a 500-trace read
// (ORDER BY trace, start, span) made the read 1.5× as long (EXPLAIN
// ANALYZE of 500 ten-span traces: 17.5 ms against 10–12 ms without),
// where sorting each trace's few spans here costs about a microsecond.
func groupTraces(rows pgx.Rows, scan func(sqlcommon.Scanner) (store.Span, error), out map[store.TraceID][]store.Span) error {
	defer rows.Close()
	var read []store.TraceID
	for rows.Next() {
		s, err := scan(rows)
		if err != nil {
			return err
		}
		if len(out[s.TraceID]) == 0 {
			read = append(read, s.TraceID)
		}
		out[s.TraceID] = append(out[s.TraceID], s)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range read {
		slices.SortFunc(out[id], sqlcommon.SpanOrder)
	}
	return nil
}
