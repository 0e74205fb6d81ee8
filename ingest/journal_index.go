package ingest

import (
	"context"
	"errors"
	"time"

	"github.com/tailscope/tailscope/ingest/wal"
	"github.com/tailscope/tailscope/store"
)

// The journal's part in held trace index rows (docs/DESIGN.md "Held
// rows"): the loader holds new traces' rows in the store, flushes them
// once every TraceIndexDelay, and releases the log only up to the records
// whose rows are stored.

// indexHolder is a store that can hold back the trace index rows of new
// traces (sqlcommon/traceindex_hold.go) — the Journal can, as its log
// keeps each record until the rows derived from it are stored.
type indexHolder interface {
	// WriteSpansHoldIndex is WriteSpans with the index rows of traces the
	// store has no row for held in memory.
	WriteSpansHoldIndex(ctx context.Context, spans []store.Span) error
	// FlushTraceIndex stores every held row.
	FlushTraceIndex(ctx context.Context) error
	// FlushAgedTraceIndex stores the rows held since before its previous
	// call and reports how many it still holds: each row is held for at
	// least the time between two calls.
	FlushAgedTraceIndex(ctx context.Context) (kept int, err error)
	// RebuildTraceIndex recomputes the rows of ids from their stored
	// spans: what a crash lost of the held rows.
	RebuildTraceIndex(ctx context.Context, ids []store.TraceID) error
	// HeldTraceIndexRows is how many traces' rows are held.
	HeldTraceIndexRows() int
}

// loaded releases the log up to pos, everything before it applied — at
// once, or while trace index rows are held, once they are stored: at the
// flush that follows TraceIndexDelay after the last one.
func (j *Journal) loaded(pos wal.Pos) {
	if !j.hold {
		j.release(pos)
		return
	}
	j.unreleased = pos
	if time.Since(j.flushed) >= j.cfg.TraceIndexDelay {
		j.flushIndex(j.ctx)
	}
}

// next waits for the next record; while trace index rows are held, no
// longer than their flush is due, and then flushes them.
func (j *Journal) next(r *wal.Reader) (wal.Record, error) {
	for j.hold && j.pending() {
		ctx, cancel := context.WithDeadline(j.ctx, j.flushed.Add(j.cfg.TraceIndexDelay))
		rec, err := r.Next(ctx, true)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || j.ctx.Err() != nil {
			return rec, err
		}
		// Caught up: everything before the reader is applied, and it
		// may have moved past a sealed segment that loaded left kept.
		j.unreleased = r.Pos()
		j.flushIndex(j.ctx)
	}
	return r.Next(j.ctx, true)
}

// pending reports whether applied records wait for their trace index rows
// to be stored before the log can release them.
func (j *Journal) pending() bool {
	return j.unreleased != (wal.Pos{}) || j.aging != (wal.Pos{})
}

// flushIndex stores the held trace index rows of traces first held before
// the previous flush — the rest wait for the next, so that each trace's
// row is held through one whole TraceIndexDelay and the parts that follow
// within it merge in memory (sqlcommon.IndexHold.FlushAged) — and releases
// the log up to where it was applied at the previous flush, or up to where
// it is applied now when no row is left held. A failure (the store is
// down) keeps everything: the rows stay held, the records logged, and the
// next flush tries again.
func (j *Journal) flushIndex(ctx context.Context) {
	if !j.hold || !j.pending() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, j.cfg.WriteTimeout)
	defer cancel()
	j.flushed = time.Now()
	kept, err := j.index.FlushAgedTraceIndex(ctx)
	if err != nil {
		j.lg.Warn("ingest: store held trace index rows", "err", err)
		return
	}
	// Every row of a record before aging is stored now: it was held
	// before the previous flush, or stored at once.
	if j.aging != (wal.Pos{}) {
		j.release(j.aging)
		j.aging = wal.Pos{}
	}
	switch {
	case j.unreleased == (wal.Pos{}):
	case kept == 0:
		j.release(j.unreleased)
	default:
		j.aging = j.unreleased
	}
	j.unreleased = wal.Pos{}
}

// flushAllIndex stores every held row and releases the log up to where it
// was applied: the loader's last act. At exit ctx is not the loader's,
// which is cancelled by then.
func (j *Journal) flushAllIndex(ctx context.Context) {
	if !j.hold || !j.pending() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, j.cfg.WriteTimeout)
	defer cancel()
	if err := j.index.FlushTraceIndex(ctx); err != nil {
		j.lg.Warn("ingest: store held trace index rows", "err", err)
		return
	}
	if j.unreleased == (wal.Pos{}) {
		j.unreleased = j.aging
	}
	j.release(j.unreleased)
	j.unreleased, j.aging = wal.Pos{}, wal.Pos{}
}
