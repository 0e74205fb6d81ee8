package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
	"unsafe"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

// WriteSpans stores spans in one transaction with a prepared INSERT OR
// IGNORE, so a span already stored under the same (trace id, span id, start)
// is skipped. Text is sanitised with sqlcommon.Clean (NUL and invalid UTF-8
// become U+FFFD) so both stores keep the same bytes.
func (db *DB) WriteSpans(ctx context.Context, spans []store.Span) (err error) {
	if len(spans) == 0 {
		return nil
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return mapErr(ctx, "write spans: begin", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	stmt := tx.StmtContext(ctx, db.insert)
	args := make([]any, 19)
	for i := range spans {
		if err := spanArgs(args, &spans[i]); err != nil {
			return fmt.Errorf("sqlite: write spans: span %s/%s: %w", spans[i].TraceID, spans[i].SpanID, err)
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return mapErr(ctx, "write spans", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return mapErr(ctx, "write spans: commit", err)
	}
	return nil
}

// spanArgs fills args in sqlcommon.SpanColumns order.
func spanArgs(args []any, s *store.Span) error {
	events, err := sqlcommon.EncodeEvents(s.Events)
	if err != nil {
		return err
	}
	links, err := sqlcommon.EncodeLinks(s.Links)
	if err != nil {
		return err
	}
	var parent any
	if !s.ParentSpanID.IsZero() {
		parent = s.ParentSpanID[:]
	}
	args[0] = s.TraceID[:]
	args[1] = s.SpanID[:]
	args[2] = parent
	args[3] = sqlcommon.Clean(s.Service)
	args[4] = sqlcommon.Clean(s.Name)
	args[5] = int64(s.Kind)
	args[6] = s.StartUnixNano
	args[7] = s.DurationNano
	args[8] = int64(s.StatusCode)
	args[9] = sqlcommon.Clean(s.StatusMessage)
	args[10] = jsonText(s.Attributes)
	args[11] = jsonText(s.Resource)
	args[12] = jsonText(events)
	args[13] = jsonText(links)
	args[14] = sqlcommon.Clean(s.Tenant)
	args[15] = sqlcommon.Clean(s.Version)
	args[16] = sqlcommon.Clean(s.Dependency)
	args[17] = s.PayloadBytes
	args[18] = sqlcommon.Clean(s.Host)
	return nil
}

// jsonText binds encoded JSON as TEXT (nil as NULL). It must be text, not a
// blob: SQLite's JSON functions read a blob as its binary JSONB format. The
// string shares b's memory because the driver copies it before Exec returns
// and nothing modifies b meanwhile.
func jsonText(b []byte) any {
	b = sqlcommon.CleanJSON(b)
	if len(b) == 0 {
		return nil
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

const selectSpans = `SELECT ` + sqlcommon.SpanColumns + ` FROM spans `

// Trace returns the spans of one trace ordered by start, then span id.
func (db *DB) Trace(ctx context.Context, id store.TraceID) ([]store.Span, error) {
	rows, err := db.r.QueryContext(ctx, selectSpans+`WHERE trace_id = ? ORDER BY start_ns, span_id`, id[:])
	if err != nil {
		return nil, mapErr(ctx, "trace", err)
	}
	defer rows.Close()
	var spans []store.Span
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
		return nil, fmt.Errorf("sqlite: trace %s: %w", id, store.ErrNotFound)
	}
	return spans, nil
}

// idChunk keeps IN lists well under SQLite's bound-variable limit.
const idChunk = 500

// Traces returns the spans of every given trace that exists.
func (db *DB) Traces(ctx context.Context, ids []store.TraceID) (map[store.TraceID][]store.Span, error) {
	out := make(map[store.TraceID][]store.Span, len(ids))
	for chunk := range slices.Chunk(ids, idChunk) {
		a := sqlcommon.NewArgs(sqlcommon.SQLite)
		q := selectSpans + `WHERE ` + a.InTraceIDs("trace_id", chunk) + ` ORDER BY trace_id, start_ns, span_id`
		rows, err := db.r.QueryContext(ctx, q, a.Vals...)
		if err != nil {
			return nil, mapErr(ctx, "traces", err)
		}
		for rows.Next() {
			s, err := sqlcommon.ScanSpan(rows)
			if err != nil {
				rows.Close()
				return nil, mapErr(ctx, "traces", err)
			}
			out[s.TraceID] = append(out[s.TraceID], s)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, mapErr(ctx, "traces", err)
		}
	}
	return out, nil
}

// SearchTraces finds traces with a span matching q and summarises them.
func (db *DB) SearchTraces(ctx context.Context, q store.TraceQuery) ([]store.TraceSummary, error) {
	ts, err := sqlcommon.BuildTraceSearch(sqlcommon.SQLite, q)
	if err != nil {
		return nil, fmt.Errorf("sqlite: search traces: %w", err)
	}
	// One read transaction: both queries see the same snapshot.
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, mapErr(ctx, "search traces", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, ts.SQL, ts.Args...)
	if err != nil {
		return nil, mapErr(ctx, "search traces", err)
	}
	var matches []sqlcommon.MatchRow
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
	if len(matches) == 0 {
		return []store.TraceSummary{}, nil
	}
	ids := make([]store.TraceID, len(matches))
	for i, m := range matches {
		ids[i] = m.TraceID
	}
	q2, args := sqlcommon.SummarySQL(sqlcommon.SQLite, ids)
	rows, err = tx.QueryContext(ctx, q2, args...)
	if err != nil {
		return nil, mapErr(ctx, "summarise traces", err)
	}
	defer rows.Close()
	sums := make([]store.TraceSummary, 0, len(ids))
	for rows.Next() {
		s, err := sqlcommon.ScanSummary(rows)
		if err != nil {
			return nil, mapErr(ctx, "summarise traces", err)
		}
		sums = append(sums, s)
	}
	if err := rows.Err(); err != nil {
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
	)
	for rows.Next() {
		if err := rows.Scan(&tid, &sid, &service, &name, &tenant, &ver, &host, &start, &dur, &status, &payload); err != nil {
			return nil, mapErr(ctx, "samples", err)
		}
		if err := b.Add(tid, sid, service, name, tenant, ver, host, start, dur, status, payload); err != nil {
			return nil, mapErr(ctx, "samples", err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(ctx, "samples", err)
	}
	return b.Samples(), nil
}

// Endpoints lists (service, entry span name, count) in [from, to).
func (db *DB) Endpoints(ctx context.Context, from, to time.Time) ([]store.Endpoint, error) {
	query, args, err := sqlcommon.EndpointsSQL(sqlcommon.SQLite, from, to)
	if err != nil {
		return nil, fmt.Errorf("sqlite: endpoints: %w", err)
	}
	rows, err := db.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, mapErr(ctx, "endpoints", err)
	}
	defer rows.Close()
	out := []store.Endpoint{}
	for rows.Next() {
		var e store.Endpoint
		if err := rows.Scan(&e.Service, &e.Name, &e.Count, &e.Roots); err != nil {
			return nil, mapErr(ctx, "endpoints", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(ctx, "endpoints", err)
	}
	sqlcommon.SortEndpoints(out)
	return out, nil
}

// deleteChunk bounds how long one retention transaction holds the write
// lock, so ingest keeps flowing while old data is removed.
const deleteChunk = 5000

// DeleteBefore removes spans that started before t, in chunks.
func (db *DB) DeleteBefore(ctx context.Context, t time.Time) error {
	cut := sqlcommon.NS(t)
	for {
		res, err := db.w.ExecContext(ctx,
			`DELETE FROM spans WHERE rowid IN (SELECT rowid FROM spans WHERE start_ns < ? LIMIT ?)`, cut, deleteChunk)
		if err != nil {
			return mapErr(ctx, "delete before", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return mapErr(ctx, "delete before", err)
		}
		if n < deleteChunk {
			return nil
		}
	}
}
