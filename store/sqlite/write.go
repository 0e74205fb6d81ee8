package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unsafe"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

// spanInsertColumns are the columns WriteSpans binds per span: the shared
// SpanColumns (resource always NULL since migration 00004) and resource_id.
const (
	spanInsertColumns = sqlcommon.SpanColumns + `, resource_id`
	spanValues        = 21
)

// insertRows is how many spans one multi-row INSERT binds (672 values, far
// below SQLite's limit of 32,766). One statement per span spent ~10% of
// write time in per-statement work: database/sql's argument checks, the
// driver's locking and the VDBE's setup and reset.
const insertRows = 32

// insertSQL is the INSERT OR IGNORE of rows spans: a span already stored
// under the same (start, trace id, span id) is skipped.
func insertSQL(rows int) string {
	row := "(?" + strings.Repeat(", ?", spanValues-1) + ")"
	return `INSERT OR IGNORE INTO spans (` + spanInsertColumns + `) VALUES ` + row + strings.Repeat(", "+row, rows-1)
}

// insertReturningSQL is insertSQL reporting the keys of the rows it took
// (a skipped row returns nothing).
func insertReturningSQL(rows int) string {
	return insertSQL(rows) + ` RETURNING trace_id, span_id, start_ns`
}

const (
	// upsertResourceSQL returns the id of a resource body, adding it if new.
	upsertResourceSQL = `INSERT INTO resources (body, last_ns) VALUES (?, ?)
ON CONFLICT (body) DO UPDATE SET last_ns = max(last_ns, excluded.last_ns) RETURNING id`
	touchResourceSQL = `UPDATE resources SET last_ns = max(last_ns, ?) WHERE id = ?`
	insertBucketSQL  = `INSERT INTO trace_buckets (trace_id, bucket, min_ns, max_ns) VALUES (?, ?, ?, ?)
ON CONFLICT (trace_id, bucket) DO UPDATE SET min_ns = min(min_ns, excluded.min_ns), max_ns = max(max_ns, excluded.max_ns)`
)

// resourceTouchSlack: a resource's last_ns is raised only when a span
// starts more than this after the value stored, so a busy resource costs
// one UPDATE a minute rather than one per batch. Retention keeps resources
// whose last_ns is within the slack of its cut (DeleteBefore).
const resourceTouchSlack = int64(time.Minute)

// maxCachedResources bounds the writer's cache of resource ids; a full
// cache is emptied and refilled by upserts (one per resource and batch).
// Processes export one resource each, so even a large fleet fits.
const maxCachedResources = 8192

// resourceRef is a stored resource: its id and last_ns as last written.
type resourceRef struct{ id, lastNS int64 }

// writeStmts are the prepared statements of the write path, on db.w.
type writeStmts struct {
	insert, insertMulti, upsertResource, touchResource, insertBucket *sql.Stmt
	insertReturning, insertMultiReturning                            *sql.Stmt
}

func prepareWrites(ctx context.Context, w *sql.DB) (writeStmts, error) {
	var s writeStmts
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&s.insert, insertSQL(1)},
		{&s.insertMulti, insertSQL(insertRows)},
		{&s.upsertResource, upsertResourceSQL},
		{&s.touchResource, touchResourceSQL},
		{&s.insertBucket, insertBucketSQL},
		{&s.insertReturning, insertReturningSQL(1)},
		{&s.insertMultiReturning, insertReturningSQL(insertRows)},
	} {
		stmt, err := w.PrepareContext(ctx, p.sql)
		if err != nil {
			s.close()
			return writeStmts{}, mapErr(ctx, "prepare writes", err)
		}
		*p.stmt = stmt
	}
	return s, nil
}

func (s writeStmts) close() error {
	var first error
	for _, st := range []*sql.Stmt{s.insert, s.insertMulti, s.upsertResource, s.touchResource, s.insertBucket,
		s.insertReturning, s.insertMultiReturning} {
		if st == nil {
			continue
		}
		if err := st.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// WriteSpans stores spans in one transaction: each span's resource once in
// resources (migration 00004), the spans themselves insertRows to a
// statement, the trace buckets (migration 00003) and the rollups of the
// spans inserted (migration 00009). Text is sanitised with
// sqlcommon.Clean (NUL and invalid UTF-8 become U+FFFD) so both stores
// keep the same bytes.
func (db *DB) WriteSpans(ctx context.Context, spans []store.Span) error {
	return db.writeSpans(ctx, spans, nil)
}

// WriteSpansHoldIndex is WriteSpans, except that the trace index rows of
// traces the table does not have yet are held in memory until
// FlushTraceIndex (the ingest journal's indexHolder; sqlcommon/traceindex_hold.go).
func (db *DB) WriteSpansHoldIndex(ctx context.Context, spans []store.Span) error {
	return db.writeSpans(ctx, spans, db.hold)
}

func (db *DB) writeSpans(ctx context.Context, spans []store.Span, hold *sqlcommon.IndexHold) (err error) {
	if len(spans) == 0 {
		return nil
	}
	// The resource cache changes with the data: one writer at a time (the
	// single connection serialises them anyway).
	db.wmu.Lock()
	defer db.wmu.Unlock()
	defer func() { db.health.observe(err) }()
	sqlcommon.CapKeys(spans)
	err = db.writeTx(ctx, spans, false, hold)
	if errors.Is(err, errSkipped) {
		// Some span was already stored (a resend) or is in the batch
		// twice: redo the batch asking which rows each INSERT took, so
		// rollups count only those. Resends are rare; the common case
		// pays no RETURNING.
		err = db.writeTx(ctx, spans, true, hold)
	}
	return err
}

// errSkipped rolls back a write whose INSERT OR IGNORE skipped a span.
var errSkipped = errors.New("a span was already stored")

// writeTx writes spans in one transaction. Without returning, it fails with
// errSkipped when any span was skipped as already stored; with returning,
// each INSERT reports the rows it took.
func (db *DB) writeTx(ctx context.Context, spans []store.Span, returning bool, hold *sqlcommon.IndexHold) (err error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return mapErr(ctx, "write spans: begin", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	rb := resourceBatch{
		cached: db.resources,
		upsert: tx.StmtContext(ctx, db.stmts.upsertResource),
	}
	multi := tx.StmtContext(ctx, db.stmts.insertMulti)
	one := tx.StmtContext(ctx, db.stmts.insert)
	if returning {
		multi = tx.StmtContext(ctx, db.stmts.insertMultiReturning)
		one = tx.StmtContext(ctx, db.stmts.insertReturning)
	}
	var inserted map[spanKey]bool
	if returning {
		inserted = make(map[spanKey]bool, len(spans))
	}
	args := make([]any, insertRows*spanValues)
	index := indexBatch{hold: hold}
	for i := 0; i < len(spans); {
		n, stmt := insertRows, multi
		if len(spans)-i < insertRows {
			n, stmt = 1, one
		}
		for j := range n {
			s := &spans[i+j]
			rid, err := rb.id(ctx, s.Resource, s.StartUnixNano)
			if err != nil {
				return mapErr(ctx, "write spans: resources", err)
			}
			if err := spanArgs(args[j*spanValues:(j+1)*spanValues], s, rid); err != nil {
				return fmt.Errorf("sqlite: write spans: span %s/%s: %w", s.TraceID, s.SpanID, err)
			}
		}
		if returning {
			if err := insertReturning(ctx, stmt, args[:n*spanValues], inserted); err != nil {
				return mapErr(ctx, "write spans", err)
			}
			index.returned(spans[i:i+n], inserted)
		} else {
			res, err := stmt.ExecContext(ctx, args[:n*spanValues]...)
			if err != nil {
				return mapErr(ctx, "write spans", err)
			}
			if took, err := res.RowsAffected(); err != nil || took < int64(n) {
				return errSkipped
			}
		}
		i += n
	}
	touch := tx.StmtContext(ctx, db.stmts.touchResource)
	for id, at := range rb.touched {
		if _, err := touch.ExecContext(ctx, at, id); err != nil {
			return mapErr(ctx, "write spans: resources", err)
		}
	}
	bucket := tx.StmtContext(ctx, db.stmts.insertBucket)
	for k, r := range traceBuckets(spans) {
		if _, err := bucket.ExecContext(ctx, k.trace[:], k.bucket, r.min, r.max); err != nil {
			return mapErr(ctx, "write spans: trace buckets", err)
		}
	}
	if !db.skipTraceIndex {
		if err := index.write(ctx, tx, spans); err != nil {
			return mapErr(ctx, "write spans: trace index", err)
		}
	}
	keys, err := db.writeRollups(ctx, tx, spans, inserted)
	if err != nil {
		return mapErr(ctx, "write spans: rollups", err)
	}
	if err := tx.Commit(); err != nil {
		return mapErr(ctx, "write spans: commit", err)
	}
	db.remember(keys)
	index.committed()
	// Only now are the new ids and times true of the database.
	if len(db.resources)+len(rb.pending) > maxCachedResources {
		clear(db.resources)
	}
	for k, ref := range rb.pending {
		db.resources[k] = ref
	}
	return nil
}

// resourceBatch resolves resource ids within one write transaction. Its
// changes reach the cache only when the transaction commits: after a
// rollback the ids it saw assigned do not exist.
type resourceBatch struct {
	cached  map[string]resourceRef // committed; read only here
	pending map[string]resourceRef // added or refreshed in this transaction
	touched map[int64]int64        // id → last_ns to store
	upsert  *sql.Stmt
}

// id returns the id of the resource body (nil for none) of a span starting
// at startNS, adding the body or raising its last_ns as needed.
func (b *resourceBatch) id(ctx context.Context, body store.Attributes, startNS int64) (any, error) {
	if len(body) == 0 {
		return nil, nil
	}
	// Keyed by the bytes as received: the same bytes clean to the same
	// text, so only a new resource pays for CleanJSON.
	ref, ok := b.pending[string(body)]
	if !ok {
		ref, ok = b.cached[string(body)]
	}
	if !ok {
		text := jsonText(body)
		if text == nil {
			return nil, nil
		}
		if err := b.upsert.QueryRowContext(ctx, text, startNS).Scan(&ref.id); err != nil {
			return nil, err
		}
		// The stored last_ns may be later (an upsert keeps the max); an
		// earlier value here only costs an early touch.
		ref.lastNS = startNS
		b.remember(string(body), ref)
		return ref.id, nil
	}
	if startNS > satAdd(ref.lastNS, resourceTouchSlack) {
		ref.lastNS = startNS
		if b.touched == nil {
			b.touched = map[int64]int64{}
		}
		b.touched[ref.id] = startNS
		b.remember(string(body), ref)
	}
	return ref.id, nil
}

func (b *resourceBatch) remember(key string, ref resourceRef) {
	if b.pending == nil {
		b.pending = map[string]resourceRef{}
	}
	b.pending[key] = ref
}

// satAdd is a+d for d ≥ 0, saturating at math.MaxInt64.
func satAdd(a, d int64) int64 {
	if a > math.MaxInt64-d {
		return math.MaxInt64
	}
	return a + d
}

type traceBucket struct {
	trace  store.TraceID
	bucket int64
}

type startRange struct{ min, max int64 }

// traceBuckets returns the (trace, bucket) pairs of spans, each once with
// the range of its spans' start times: a trace's spans mostly share one or
// two buckets.
func traceBuckets(spans []store.Span) map[traceBucket]startRange {
	out := make(map[traceBucket]startRange, len(spans)/4+1)
	for i := range spans {
		at := spans[i].StartUnixNano
		k := traceBucket{spans[i].TraceID, at >> sqlcommon.SQLiteTraceBucketShift}
		if r, ok := out[k]; ok {
			out[k] = startRange{min(r.min, at), max(r.max, at)}
		} else {
			out[k] = startRange{at, at}
		}
	}
	return out
}

// spanArgs fills args in spanInsertColumns order; resourceID is the span's
// row in resources (nil for none).
func spanArgs(args []any, s *store.Span, resourceID any) error {
	events, links, err := sqlcommon.EncodeEventsLinks(s)
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
	args[11] = nil // the resource is in resources
	args[12] = jsonText(events)
	args[13] = jsonText(links)
	args[14] = sqlcommon.Clean(s.Tenant)
	args[15] = sqlcommon.Clean(s.Version)
	args[16] = sqlcommon.Clean(s.Dependency)
	args[17] = s.PayloadBytes
	args[18] = sqlcommon.Clean(s.Host)
	args[19] = store.NormWeight(s.Weight)
	args[20] = resourceID
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
