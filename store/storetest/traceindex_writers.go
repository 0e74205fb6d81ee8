package storetest

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/tailscope/tailscope/store"
)

// TraceIndexTwoWriters: two processes on one database, a and b, write
// parts of the same traces. A writer may take a trace it has not seen for
// a new one and insert its index row without merging (PostgreSQL COPYs
// such batches): a row another process stored meanwhile must still be
// merged, never duplicated, lost or left failing the write: in a batch
// resent through the other process with more spans, in parts written by
// each in turn, and with both writing parts of shared traces at once, in
// batches that mix traces each has and has not seen, which must neither
// deadlock nor miscount.
func TraceIndexTwoWriters(t *testing.T, a, b store.Store) {
	ctx := ctxT(t)
	r := rand.New(rand.NewPCG(21, 7))
	spans := randomTraces(r, 120)
	byTrace := map[store.TraceID][]store.Span{}
	var order []store.TraceID
	for _, sp := range spans {
		if _, ok := byTrace[sp.TraceID]; !ok {
			order = append(order, sp.TraceID)
		}
		byTrace[sp.TraceID] = append(byTrace[sp.TraceID], sp)
	}
	// part returns the spans of traces ids whose index in their trace is
	// i modulo n.
	part := func(ids []store.TraceID, i, n int) []store.Span {
		var out []store.Span
		for _, id := range ids {
			for j, sp := range byTrace[id] {
				if j%n == i {
					out = append(out, sp)
				}
			}
		}
		return out
	}
	write := func(s store.Store, name string, batch []store.Span) {
		t.Helper()
		if err := s.WriteSpans(ctx, batch); err != nil {
			t.Fatalf("%s: WriteSpans of %d spans: %v", name, len(batch), err)
		}
	}
	q := store.TraceQuery{Limit: 1000}
	check := func(step string, want []store.Span) {
		t.Helper()
		for name, s := range map[string]store.Store{"a": a, "b": b} {
			if d := diffSummaries(refSearch(want, q), search(t, s, q)); d != "" {
				t.Errorf("%s, searched through %s:\n%s", step, name, d)
			}
		}
	}

	// A resend through another process: b gets a's spans of some traces
	// again with their other spans. Only the new spans went in (b's
	// COPY of the spans meets a's and the batch is staged), and their
	// traces are new to b but stored: their rows must be merged.
	resent := order[:20]
	write(a, "a", part(resent, 0, 2))
	write(b, "b", byTraceSpans(byTrace, resent))
	check("a resend, with more spans, through another process", byTraceSpans(byTrace, resent))

	// Concurrent: four writers, two through each store, each writing
	// one part of each of the last 80 traces in batches of ten traces, each
	// in its own order.
	rest := order[40:]
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for w := range 4 {
		wg.Go(func() {
			s := a
			if w%2 == 1 {
				s = b
			}
			ids := append([]store.TraceID(nil), rest...)
			rand.New(rand.NewPCG(uint64(w), 3)).Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
			for i := 0; i < len(ids); i += 10 {
				if err := s.WriteSpans(ctx, part(ids[i:min(i+10, len(ids))], w, 4)); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("concurrent writer %d: %v", w, err)
		}
	}
	stored := append(byTraceSpans(byTrace, resent), byTraceSpans(byTrace, rest)...)
	check("concurrent writers of shared traces", stored)

	// Sequential: b's batch is all traces b has never seen, but a has
	// stored them; then a writes the last part of the traces.
	first := order[20:40]
	write(a, "a", part(first, 0, 3))
	write(b, "b", part(first, 1, 3))
	check("b's part of traces that a stored", append(append(stored, part(first, 0, 3)...), part(first, 1, 3)...))
	write(a, "a", part(first, 2, 3))
	check("every part of every trace", spans)
}

func byTraceSpans(byTrace map[store.TraceID][]store.Span, ids []store.TraceID) []store.Span {
	var out []store.Span
	for _, id := range ids {
		out = append(out, byTrace[id]...)
	}
	return out
}
