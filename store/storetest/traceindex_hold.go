package storetest

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// IndexHolder is a store that can hold back the trace index rows of traces
// it has no row for until FlushTraceIndex (the ingest journal's mode; see
// store/internal/sqlcommon/traceindex_hold.go). Stores that are one run
// every trace index test a second time through it.
type IndexHolder interface {
	WriteSpansHoldIndex(ctx context.Context, spans []store.Span) error
	FlushTraceIndex(ctx context.Context) error
	FlushAgedTraceIndex(ctx context.Context) (kept int, err error)
	RebuildTraceIndex(ctx context.Context, ids []store.TraceID) error
}

// heldWrites writes through WriteSpansHoldIndex and flushes as the journal
// does once a second, after every third write: the rows held since the
// previous flush stay held through this one. A trace's parts are held and
// merged in memory, or merged into a row a flush stored.
type heldWrites struct {
	store.Store
	h      IndexHolder
	writes atomic.Int64
}

func (w *heldWrites) WriteSpans(ctx context.Context, spans []store.Span) error {
	if err := w.h.WriteSpansHoldIndex(ctx, spans); err != nil {
		return err
	}
	if w.writes.Add(1)%3 == 0 {
		_, err := w.h.FlushAgedTraceIndex(ctx)
		return err
	}
	return nil
}

// holder returns s as an IndexHolder, skipping the test when it is none.
func holder(t *testing.T, s store.Store) IndexHolder {
	t.Helper()
	h, ok := s.(IndexHolder)
	if !ok {
		t.Skip("the store does not hold trace index rows")
	}
	return h
}

// heldIndexTests are the trace index tests with rows held, and the
// guarantees the hold keeps while they are.
func heldIndexTests() []struct {
	name string
	fn   func(t *testing.T, s store.Store)
} {
	var tests []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}
	for _, tc := range traceIndexTests() {
		tests = append(tests, struct {
			name string
			fn   func(t *testing.T, s store.Store)
		}{"Held" + tc.name, func(t *testing.T, s store.Store) { tc.fn(t, &heldWrites{Store: s, h: holder(t, s)}) }})
	}
	return append(tests, []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"HeldTraceReads", testHeldTraceReads},
		{"HeldAged", testHeldAged},
		{"HeldRebuild", testHeldRebuild},
	}...)
}

// testHeldTraceReads: while rows are held, reads by trace id return every
// stored span. A trace with a stored row gets later parts merged into it at
// once — a read bounded by the row's first and last start would miss a
// held part's spans, here a day later (another PostgreSQL partition).
func testHeldTraceReads(t *testing.T, s store.Store) {
	h := holder(t, s)
	ctx := ctxT(t)
	root := mkSpan(1, 1, store.SpanID{}, "frontend", "GET /", store.KindServer, at(0), 26*time.Hour)
	child := mkSpan(1, 2, spanID(1), "api", "work", store.KindServer, at(time.Second), time.Second)
	late := mkSpan(1, 3, spanID(1), "worker", "job", store.KindConsumer, at(25*time.Hour), time.Minute)
	fresh := mkSpan(2, 10, store.SpanID{}, "frontend", "GET /x", store.KindServer, at(2*time.Second), time.Second)
	freshLate := mkSpan(2, 11, spanID(10), "worker", "job", store.KindConsumer, at(25*time.Hour), time.Second)

	if err := h.WriteSpansHoldIndex(ctx, []store.Span{root}); err != nil {
		t.Fatal(err)
	}
	if err := h.FlushTraceIndex(ctx); err != nil {
		t.Fatal(err)
	}
	for _, batch := range [][]store.Span{{child}, {late, fresh}, {freshLate}} {
		if err := h.WriteSpansHoldIndex(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	want := map[store.TraceID]int{traceID(1): 3, traceID(2): 2}
	for id, n := range want {
		spans, err := s.Trace(ctx, id)
		if err != nil || len(spans) != n {
			t.Errorf("Trace(%s) with rows held: %d spans, %v; want %d", id, len(spans), err, n)
		}
	}
	got, err := s.Traces(ctx, []store.TraceID{traceID(1), traceID(2)})
	if err != nil {
		t.Fatal(err)
	}
	for id, n := range want {
		if len(got[id]) != n {
			t.Errorf("Traces: %s has %d spans with rows held, want %d", id, len(got[id]), n)
		}
	}
	// The search stores the held rows first.
	sums := search(t, s, store.TraceQuery{Limit: 10})
	if len(sums) != 2 || sums[0].SpanCount+sums[1].SpanCount != 5 {
		t.Errorf("search with rows held: %+v, want both traces, 5 spans", sums)
	}
}

// testHeldAged: FlushAgedTraceIndex keeps the rows first held since its
// previous call and stores them at the next, so a trace's parts that
// arrive within one interval, wherever it ends, make one row; every trace
// is then counted once, and a flush of everything stores what an aged one
// kept.
func testHeldAged(t *testing.T, s store.Store) {
	h := holder(t, s)
	ctx := ctxT(t)
	spans := randomTraces(rand.New(rand.NewPCG(18, 7)), 70)
	// Each trace's spans in two halves: forty traces' first halves, a
	// flush, their second halves with twenty new traces' first halves, a
	// flush, the twenty's second halves, a flush; then ten more traces.
	first, second := splitHalves(tracesOf(spans, 0, 40))
	lateFirst, lateSecond := splitHalves(tracesOf(spans, 40, 60))
	more := tracesOf(spans, 60, 70)
	flush := func(step string, want int) {
		t.Helper()
		kept, err := h.FlushAgedTraceIndex(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if kept != want {
			t.Errorf("%s: %d rows kept, want %d", step, kept, want)
		}
	}
	write := func(batch []store.Span) {
		t.Helper()
		if err := h.WriteSpansHoldIndex(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	flush("an aged flush of nothing", 0)
	write(first)
	flush("the first aged flush after the first halves", traceCount(first))
	write(second)
	write(lateFirst)
	flush("the second", traceCount(lateFirst))
	write(lateSecond)
	flush("the third, nothing first held since the second", 0)
	q := store.TraceQuery{Limit: 1000}
	written := spans[:len(spans)-len(more)]
	if d := diffSummaries(refSearch(written, q), search(t, s, q)); d != "" {
		t.Errorf("after aged flushes:\n%s", d)
	}
	// A flush of everything stores what an aged one kept.
	write(more)
	if err := h.FlushTraceIndex(ctx); err != nil {
		t.Fatal(err)
	}
	flush("an aged flush after a flush of everything", 0)
	if d := diffSummaries(refSearch(spans, q), search(t, s, q)); d != "" {
		t.Errorf("after a flush of everything:\n%s", d)
	}
}

// tracesOf returns the spans of the from-th to the (to−1)-th traces of
// spans, in order of first appearance.
func tracesOf(spans []store.Span, from, to int) []store.Span {
	rank := map[store.TraceID]int{}
	var out []store.Span
	for _, sp := range spans {
		n, ok := rank[sp.TraceID]
		if !ok {
			n = len(rank)
			rank[sp.TraceID] = n
		}
		if n >= from && n < to {
			out = append(out, sp)
		}
	}
	return out
}

// splitHalves puts each trace's first spans (half, rounded up) in first
// and the rest in second.
func splitHalves(spans []store.Span) (first, second []store.Span) {
	total, seen := map[store.TraceID]int{}, map[store.TraceID]int{}
	for _, sp := range spans {
		total[sp.TraceID]++
	}
	for _, sp := range spans {
		if seen[sp.TraceID]++; seen[sp.TraceID] <= (total[sp.TraceID]+1)/2 {
			first = append(first, sp)
		} else {
			second = append(second, sp)
		}
	}
	return first, second
}

// traceCount is the number of traces spans belong to.
func traceCount(spans []store.Span) int {
	ids := map[store.TraceID]bool{}
	for _, sp := range spans {
		ids[sp.TraceID] = true
	}
	return len(ids)
}

// testHeldRebuild: rows held and then rebuilt from the stored spans (as
// the journal does for records it replays after a crash lost the hold)
// are counted once, not once by the rebuild and again by the flush.
func testHeldRebuild(t *testing.T, s store.Store) {
	h := holder(t, s)
	ctx := ctxT(t)
	r := rand.New(rand.NewPCG(18, 21))
	spans := randomTraces(r, 80)
	for chunk := range slices.Chunk(spans, 37) {
		if err := h.WriteSpansHoldIndex(ctx, chunk); err != nil {
			t.Fatal(err)
		}
	}
	var ids []store.TraceID
	for _, sp := range spans {
		if !slices.Contains(ids, sp.TraceID) {
			ids = append(ids, sp.TraceID)
		}
	}
	if err := h.RebuildTraceIndex(ctx, ids[:len(ids)/2]); err != nil {
		t.Fatal(err)
	}
	q := store.TraceQuery{Limit: 1000}
	if d := diffSummaries(refSearch(spans, q), search(t, s, q)); d != "" {
		t.Errorf("after a rebuild of held traces:\n%s", d)
	}
}

// HeldFlushAfterRebuild: two processes on one database, a and b. b holds
// the index rows of its part of some traces when a, replaying its log after
// a crash, rebuilds those traces' rows from every stored span — b's spans
// included. b's flush must not count them again: each trace's row ends
// equal to one computed from all its spans. Traces a did not rebuild merge
// b's part as before. a and b must be IndexHolders.
func HeldFlushAfterRebuild(t *testing.T, a, b store.Store) {
	ctx := ctxT(t)
	ha, hb := holder(t, a), holder(t, b)
	r := rand.New(rand.NewPCG(18, 42))
	spans := randomTraces(r, 40)
	// b writes (and holds) every trace's first half, a the rest.
	var partA, partB []store.Span
	seen := map[store.TraceID]int{}
	for _, sp := range spans {
		if seen[sp.TraceID]++; seen[sp.TraceID]%2 == 1 {
			partB = append(partB, sp)
		} else {
			partA = append(partA, sp)
		}
	}
	if err := hb.WriteSpansHoldIndex(ctx, partB); err != nil {
		t.Fatal(err)
	}
	if err := a.WriteSpans(ctx, partA); err != nil {
		t.Fatal(err)
	}
	var ids []store.TraceID
	for id := range seen {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(x, y store.TraceID) int { return slices.Compare(x[:], y[:]) })
	if err := ha.RebuildTraceIndex(ctx, ids[:len(ids)/2]); err != nil {
		t.Fatal(err)
	}
	if err := hb.FlushTraceIndex(ctx); err != nil {
		t.Fatal(err)
	}
	q := store.TraceQuery{Limit: 1000}
	if d := diffSummaries(refSearch(spans, q), search(t, a, q)); d != "" {
		t.Errorf("after a rebuild in one process and a flush of held rows in another:\n%s", d)
	}
	// Later held parts of rebuilt traces are counted once too.
	late := mkSpan(1, 999, spanID(1), "late", "job", store.KindConsumer, at(time.Minute), time.Second)
	late.TraceID = ids[0]
	if err := hb.WriteSpansHoldIndex(ctx, []store.Span{late}); err != nil {
		t.Fatal(err)
	}
	if err := hb.FlushTraceIndex(ctx); err != nil {
		t.Fatal(err)
	}
	if d := diffSummaries(refSearch(append(spans, late), q), search(t, a, q)); d != "" {
		t.Errorf("after a later part of a rebuilt trace:\n%s", d)
	}
}
