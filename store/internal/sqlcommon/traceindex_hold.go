package sqlcommon

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/tailscope/tailscope/store"
)

// Held trace index rows (docs/DESIGN.md, "The trace index"). A trace
// reaches the store from each of its services in that service's own export
// request, so its index row used to be inserted by the first part and
// rewritten by every later one: an update whose indexed columns change
// writes a new row version and an entry in each of the table's B-trees,
// and a ten-span trace in three requests cost +52% of a span's ingest CPU
// on PostgreSQL where a whole trace cost +13–21% (PERFORMANCE.md, "When a
// trace arrives in three requests").
//
// So a writer that can replay what it wrote (the ingest journal, whose
// write-ahead log keeps each record until the trace index rows derived
// from it are stored) may hold back the rows of traces the table does not
// have yet: the parts that follow within the hold merge in memory, and the
// row is inserted once, at the next flush. On PostgreSQL a trace that
// already has a row is merged at once, as before, so that a stored row
// does not miss a part that a held one has — a trace read bounds its spans
// by the row and would miss the held part's — and a trace without a row
// is read the old way, from every day. (Which traces have a row it knows
// from what it wrote, and from a look-up only at times: a part of a trace
// it does not know may be held beside another process's row. Its own
// reads flush first; store/postgres/traceindex.go, storedOrSeen.) (SQLite's trace reads do not use the
// row, so it holds every row: store/sqlite/traceindex.go.) What waits is
// only the trace's appearance in trace search, for at most the flush
// interval, and the stores' own searches flush first, so a search in the
// process that wrote the spans sees them.
//
// Merging is associative and commutative (traceindex.go), so a held row
// merged later, by this process or into a row another process inserted
// meanwhile, gives the same row as merging each part when it arrived.
// A row recomputed from stored spans (a resend on SQLite, a replay) already
// counts every stored span, held or not: Drop removes the held part then.

// merge folds o, another part of the same trace, into r: the SQL merge
// (IndexMergeSet) done in memory.
func (r *IndexRow) merge(o *IndexRow) {
	r.FirstStart = min(r.FirstStart, o.FirstStart)
	r.LastStart = max(r.LastStart, o.LastStart)
	r.End = max(r.End, o.End)
	r.MaxDuration = max(r.MaxDuration, o.MaxDuration)
	r.Spans += o.Spans
	r.Errors += o.Errors
	if rootBefore(o.RootRank, o.RootStart, o.RootSpanID, r) {
		r.RootRank, r.RootStart, r.RootDuration, r.RootSpanID = o.RootRank, o.RootStart, o.RootDuration, o.RootSpanID
		r.RootService, r.RootName, r.RootTenant, r.RootVersion = o.RootService, o.RootName, o.RootTenant, o.RootVersion
	}
	for _, sm := range o.Services {
		r.addService(sm.Service, sm.Duration)
	}
}

// IndexHold holds the trace index rows of traces that have no row in the
// store yet, until Flush or FlushAged writes them. It is safe for
// concurrent use.
//
// The journal flushes once an interval (TraceIndexDelay) with FlushAged,
// which writes only the rows held since before its previous call: every
// row is held through at least one whole interval, so the later parts of
// a trace that arrive within one interval of its first are merged in
// memory wherever the interval's end falls. Flushing every row instead
// cut the traces whose parts straddled the flush, and their later parts
// were merged into the stored row, a row version and four B-tree entries
// each (PERFORMANCE.md, "Held rows of one whole interval").
type IndexHold struct {
	mu   sync.Mutex
	rows map[store.TraceID]*heldRow
	// gen counts FlushAged's successful calls; a row is born in the
	// generation it was first held in, and FlushAged writes the rows born
	// before the current one.
	gen uint64
	// flushing serialises flushes: a flush that returns has stored every
	// row held when it started, including rows a concurrent flush had
	// taken (it waits for that flush, which puts them back if it fails).
	flushing sync.Mutex
}

// A heldRow is a held row and the generation it was first held in.
type heldRow struct {
	IndexRow
	born uint64
}

// NewIndexHold returns an empty hold.
func NewIndexHold() *IndexHold {
	return &IndexHold{rows: map[store.TraceID]*heldRow{}}
}

// HoldsAny reports whether any of ids has a row held. A nil hold holds
// nothing.
func (h *IndexHold) HoldsAny(ids []store.TraceID) bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.rows) == 0 {
		return false
	}
	for _, id := range ids {
		if _, ok := h.rows[id]; ok {
			return true
		}
	}
	return false
}

// Len is the number of traces held. A nil hold holds nothing.
func (h *IndexHold) Len() int {
	if h == nil {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.rows)
}

// Split separates a batch's rows (IndexRows) into those to merge into the
// table now — rows of traces the table has, which stored reports of the
// rows the hold does not have — and those to hold once the batch commits:
// rows of traces held, and of traces the table does not have yet.
func (h *IndexHold) Split(rows []IndexRow, stored func([]IndexRow) (map[store.TraceID]bool, error)) (merge, held []IndexRow, err error) {
	var others []IndexRow
	h.mu.Lock()
	for _, r := range rows {
		if _, ok := h.rows[r.TraceID]; ok {
			held = append(held, r)
		} else {
			others = append(others, r)
		}
	}
	h.mu.Unlock()
	have, err := stored(others)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range others {
		if have[r.TraceID] {
			merge = append(merge, r)
		} else {
			held = append(held, r)
		}
	}
	return merge, held, nil
}

// Add merges rows into the hold. A writer calls it once the transaction
// that stored the rows' spans has committed: the rows of a rolled-back
// batch must not be held.
func (h *IndexHold) Add(rows []IndexRow) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.addLocked(rows, h.gen)
}

// addLocked merges rows into the hold as born in generation born; a row
// merged into one held already keeps the older of the two births, so
// that a part never makes a row wait longer than its oldest part may.
// h.mu must be held.
func (h *IndexHold) addLocked(rows []IndexRow, born uint64) {
	for i := range rows {
		r := &rows[i]
		if have, ok := h.rows[r.TraceID]; ok {
			have.merge(r)
			have.born = min(have.born, born)
			continue
		}
		c := &heldRow{IndexRow: *r, born: born}
		c.Services = slices.Clone(r.Services)
		c.serviceAt = nil
		if r.serviceAt != nil {
			c.serviceAt = maps.Clone(r.serviceAt)
		}
		h.rows[r.TraceID] = c
	}
}

// Drop forgets the held rows of ids: their stored rows were recomputed
// from every stored span, held parts included.
func (h *IndexHold) Drop(ids []store.TraceID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		delete(h.rows, id)
	}
}

// Flush writes every held row with write (an upsert that merges, in its
// own transaction) and forgets them; when write fails they are held again,
// merged with whatever was added meanwhile. A nil hold has nothing to flush
// (a read replica's store).
func (h *IndexHold) Flush(ctx context.Context, write func(context.Context, []IndexRow) error) error {
	_, err := h.flush(ctx, write, false)
	return err
}

// FlushAged writes, as Flush does, the rows held since before the
// previous successful FlushAged, and keeps the rows held since: each row
// is written by the second call after it was first held, so it is held
// for at least the time between two calls. It reports how many rows it
// kept. A writer that replays what it wrote (the journal) may forget what
// it had written before the previous call once this one returns without
// error: the rows of all of it are stored.
func (h *IndexHold) FlushAged(ctx context.Context, write func(context.Context, []IndexRow) error) (kept int, err error) {
	return h.flush(ctx, write, true)
}

func (h *IndexHold) flush(ctx context.Context, write func(context.Context, []IndexRow) error, aged bool) (kept int, err error) {
	if h == nil {
		return 0, nil
	}
	h.flushing.Lock()
	defer h.flushing.Unlock()
	h.mu.Lock()
	gen := h.gen
	var taken []*heldRow
	for id, r := range h.rows {
		if !aged || r.born < gen {
			taken = append(taken, r)
			delete(h.rows, id)
		}
	}
	kept = len(h.rows)
	h.mu.Unlock()
	if len(taken) > 0 {
		rows := make([]IndexRow, len(taken))
		for i, r := range taken {
			rows[i] = r.IndexRow
		}
		// One lock order for concurrent writers of the same traces.
		slices.SortFunc(rows, func(a, b IndexRow) int { return bytes.Compare(a.TraceID[:], b.TraceID[:]) })
		if err := write(ctx, rows); err != nil {
			h.mu.Lock()
			for _, r := range taken {
				if have, ok := h.rows[r.TraceID]; ok {
					have.merge(&r.IndexRow)
					have.born = min(have.born, r.born)
				} else {
					h.rows[r.TraceID] = r
				}
			}
			kept = len(h.rows)
			h.mu.Unlock()
			return kept, err
		}
	}
	if aged {
		h.mu.Lock()
		h.gen = gen + 1
		h.mu.Unlock()
	}
	return kept, nil
}
