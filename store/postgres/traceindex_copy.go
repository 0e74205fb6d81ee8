package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

// New traces' index rows are COPYed, not upserted. INSERT ... SELECT FROM
// unnest(...) ON CONFLICT DO UPDATE costs the server 2–4 µs a row more
// than a binary COPY of the same rows, and the client ~4 µs more to bind
// sixteen arrays (docs/PERFORMANCE.md, "New traces' index rows by COPY"):
// on ten-span traces that was about two fifths of what the index added to
// a span. But COPY cannot merge, and a row can be new only to the
// writer's knowledge: another process, a rebuild or a trace part older
// than what the writer remembers may have stored it. Then the COPY fails with a
// duplicate key, and the rows are merged instead: a write redoes its batch
// staged (writeTraceIndex), a flush rolls back to a savepoint.
//
// Lock order. Concurrent writers of one trace must not deadlock, which
// every writer's rows in one statement sorted by trace id guarantee: each
// waits only on a smaller key held by the other. A batch split into a COPY
// of its new traces and an upsert of its known ones would take its keys in
// two runs, and two writers could then each hold what the other waits
// for. So a batch is COPYed only when every trace in it is new to this
// process (freshTraces); one known trace sends the whole batch to the
// upsert. Traces that arrive whole, as from one service or through a
// Collector's tail sampler, are COPYed; a trace whose services export
// their parts separately makes mixed batches and merges as before.

// freshGeneration is how many traces one generation of freshTraces
// remembers: two generations are 2^19 ids (~10 MB), 50 s of traffic at
// 100,000 spans/s in ten-span traces. A part arriving later than that is
// found by the COPY's duplicate key instead.
const freshGeneration = 1 << 18

// conflictBackoff is how many batches upsert their rows without trying a
// COPY after one met a stored row: parts of traces that another process
// stores would otherwise cost a failed COPY every batch.
const conflictBackoff = 64

// freshTraces remembers the traces whose index rows this process has
// written lately, in two generations (the older one dropped when the
// newer fills), so a batch of traces it has never seen can be COPYed.
type freshTraces struct {
	mu        sync.Mutex
	cur, prev map[store.TraceID]struct{}
	limit     int
	backoff   int
}

func newFreshTraces(limit int) *freshTraces {
	return &freshTraces{cur: make(map[store.TraceID]struct{}), limit: limit}
}

// take reports whether every row's trace is new to f and not in a
// backoff, and remembers them all either way: a later batch with one of
// them upserts, and if this one's COPY is still uncommitted then, the
// upsert waits for it and merges (one statement each: no deadlock).
func (f *freshTraces) take(rows []sqlcommon.IndexRow) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	fresh := f.backoff == 0
	if f.backoff > 0 {
		f.backoff--
	}
	f.remember(rows, func(store.TraceID) { fresh = false })
	return fresh
}

// seen returns which of rows' traces f remembers — this process indexed
// or held them lately (storedOrSeen) — and remembers them all.
func (f *freshTraces) seen(rows []sqlcommon.IndexRow) map[store.TraceID]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[store.TraceID]bool)
	f.remember(rows, func(id store.TraceID) { out[id] = true })
	return out
}

// remember adds rows' traces to f, calling known for each one f had
// already; f.mu must be held.
func (f *freshTraces) remember(rows []sqlcommon.IndexRow, known func(store.TraceID)) {
	for i := range rows {
		id := rows[i].TraceID
		if _, ok := f.cur[id]; ok {
			known(id)
			continue
		}
		if _, ok := f.prev[id]; ok {
			known(id)
		}
		f.cur[id] = struct{}{}
	}
	if len(f.cur) >= f.limit {
		f.prev, f.cur = f.cur, make(map[store.TraceID]struct{}, len(f.cur))
	}
}

// conflicted starts a backoff: a COPY met a row stored elsewhere.
func (f *freshTraces) conflicted() {
	f.mu.Lock()
	f.backoff = conflictBackoff
	f.mu.Unlock()
}

// copyIndexSQL loads an index COPY stream (encodeIndexRows).
var copyIndexSQL = `COPY trace_index (` + strings.Join(strings.Fields(sqlcommon.IndexColumns), " ") +
	`) FROM STDIN (FORMAT binary)`

// copyIndexRows inserts rows, sorted by trace id, by COPY. A row whose
// trace is stored fails it with a duplicate key (isDuplicate).
func copyIndexRows(ctx context.Context, tx pgx.Tx, rows []sqlcommon.IndexRow) error {
	if _, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(encodeIndexRows(rows)), copyIndexSQL); err != nil {
		return fmt.Errorf("trace index: copy: %w", err)
	}
	return nil
}

// copyIndexRowsOnce is copyIndexRows in a savepoint. It reports false,
// with the savepoint rolled back, when a row's trace was stored already:
// the caller then merges the rows.
func copyIndexRowsOnce(ctx context.Context, tx pgx.Tx, rows []sqlcommon.IndexRow) (bool, error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("trace index: savepoint: %w", err)
	}
	err = copyIndexRows(ctx, tx, rows)
	if err == nil {
		if err := sp.Commit(ctx); err != nil {
			return false, fmt.Errorf("trace index: release savepoint: %w", err)
		}
		return true, nil
	}
	if !isDuplicate(err) {
		return false, err
	}
	if rerr := sp.Rollback(ctx); rerr != nil {
		return false, fmt.Errorf("trace index: roll back copy: %w", errors.Join(err, rerr))
	}
	return false, nil
}

// indexFields is the number of columns encodeIndexRows writes.
var indexFields = uint16(len(strings.Split(sqlcommon.IndexColumns, ",")))

// encodeIndexRows is the binary COPY stream of rows in IndexColumns order
// (the span stream's format, copy.go). Text is cleaned as the spans' is;
// jsonb's binary form is a version byte, 1, and the text.
func encodeIndexRows(rows []sqlcommon.IndexRow) []byte {
	c := copyStream{b: make([]byte, 0, len(copySignature)+len(rows)*256+2)}
	c.b = append(c.b, copySignature...)
	for i := range rows {
		r := &rows[i]
		c.b = binary.BigEndian.AppendUint16(c.b, indexFields)
		c.bytes(r.TraceID[:])
		for _, v := range [...]int64{r.FirstStart, r.LastStart, r.End, r.MaxDuration, r.Spans, r.Errors,
			r.RootRank, r.RootStart, r.RootDuration} {
			c.int64(v)
		}
		c.bytes(r.RootSpanID[:])
		c.text(r.RootService)
		c.text(r.RootName)
		c.text(r.RootTenant)
		c.text(r.RootVersion)
		// The length is patched in once the object is written. Its
		// service names went through Clean (IndexRows), so it needs no
		// CleanJSON.
		at := len(c.b)
		c.b = append(c.b, 0, 0, 0, 0, 1)
		c.b = r.AppendServicesJSON(c.b)
		binary.BigEndian.PutUint32(c.b[at:], uint32(len(c.b)-at-4))
	}
	c.b = binary.BigEndian.AppendUint16(c.b, 0xffff)
	return c.b
}
