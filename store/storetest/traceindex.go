package storetest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// Trace search and its summaries as spans arrive: out of order, resent,
// the root last, from concurrent writers, and after retention. Backends
// may answer searches from a per-trace index maintained at ingest; these
// tests hold them to the answer computed from every stored span
// (refSearch), whatever the arrival order.
func traceIndexTests() []struct {
	name string
	fn   func(t *testing.T, s store.Store)
} {
	return []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"SearchLateRoot", testSearchLateRoot},
		{"SearchMatchesReference", testSearchMatchesReference},
		{"SearchConcurrentResends", testSearchConcurrentResends},
		{"SearchAfterRetention", testSearchAfterRetention},
		{"SearchWideTraces", testSearchWideTraces},
	}
}

// testSearchLateRoot: before its root arrives a trace is named by its
// earliest span and lasts the extent of what arrived; the root renames it.
func testSearchLateRoot(t *testing.T, s store.Store) {
	root := mkSpan(1, 1, store.SpanID{}, "frontend", "GET /", store.KindServer, at(0), 500*time.Millisecond)
	root.Tenant, root.Version = "acme", "v9"
	child := mkSpan(1, 2, spanID(1), "db", "SELECT", store.KindClient, at(10*time.Millisecond), 100*time.Millisecond)
	child.StatusCode = store.StatusError
	later := mkSpan(1, 3, spanID(1), "cache", "GET", store.KindClient, at(300*time.Millisecond), 250*time.Millisecond)
	q := store.TraceQuery{Limit: 10}

	write(t, s, later)
	write(t, s, child)
	want := store.TraceSummary{TraceID: traceID(1), RootService: "db", RootName: "SELECT", StartUnixNano: at(10 * time.Millisecond),
		DurationNano: int64(540 * time.Millisecond), SpanCount: 2, ErrorCount: 1, MatchDurationNano: int64(250 * time.Millisecond)}
	if got := search(t, s, q); len(got) != 1 || got[0] != want {
		t.Errorf("before the root:\n got %+v\nwant %+v", got, want)
	}
	write(t, s, root)
	write(t, s, child) // resent
	want = store.TraceSummary{TraceID: traceID(1), RootService: "frontend", RootName: "GET /", StartUnixNano: at(0),
		DurationNano: int64(500 * time.Millisecond), SpanCount: 3, ErrorCount: 1, Tenant: "acme", Version: "v9",
		MatchDurationNano: int64(500 * time.Millisecond)}
	if got := search(t, s, q); len(got) != 1 || got[0] != want {
		t.Errorf("after the root:\n got %+v\nwant %+v", got, want)
	}
	// The trace has a span over 300ms, but not of cache.
	if got := search(t, s, store.TraceQuery{Service: "cache", MinDuration: 300 * time.Millisecond}); len(got) != 0 {
		t.Errorf("cache span over 300ms: got %+v, want none (the 500ms span is frontend's)", got)
	}
}

// traceServices are randomTraces' services; the last one's name holds what
// a JSON path would read (a quote, a dot, a dollar), which the index's
// per-service merge must take as plain text.
func traceServices() []string { return []string{"frontend", "api", "db", "cache", `we"ird.$svc`} }

// randomTraces returns spans of n traces over an hour: 1-8 spans each on
// five services, some without a root, some failed.
func randomTraces(r *rand.Rand, n int) []store.Span {
	services := traceServices()
	var spans []store.Span
	sid := 0
	for tr := range n {
		start := at(time.Duration(r.Int64N(int64(time.Hour))))
		k := 1 + r.IntN(8)
		rootless := r.IntN(5) == 0
		for i := range k {
			parent := spanID(sid - i) // the trace's first span
			if i == 0 && !rootless {
				parent = store.SpanID{}
			}
			sp := mkSpan(tr, sid, parent, services[r.IntN(len(services))], fmt.Sprintf("op%d", r.IntN(3)),
				store.KindServer, start+r.Int64N(int64(time.Second)), time.Duration(r.Int64N(int64(2*time.Second))))
			if r.IntN(6) == 0 {
				sp.StatusCode = store.StatusError
			}
			sp.Tenant = []string{"", "acme", "globex"}[r.IntN(3)]
			sp.Version = []string{"v1", "v2"}[r.IntN(2)]
			spans = append(spans, sp)
			sid++
		}
	}
	return spans
}

// writeShuffled writes spans in random batches, resending about one in
// ten spans (within a batch or in a later one).
func writeShuffled(t *testing.T, s store.Store, r *rand.Rand, spans []store.Span) {
	t.Helper()
	all := slices.Clone(spans)
	for i := range all {
		if r.IntN(10) == 0 {
			all = append(all, all[i])
		}
	}
	r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	for len(all) > 0 {
		n := min(len(all), 1+r.IntN(200))
		write(t, s, all[:n]...)
		all = all[n:]
	}
}

func testSearchMatchesReference(t *testing.T, s store.Store) {
	r := rand.New(rand.NewPCG(18, 2))
	spans := randomTraces(r, 400)
	writeShuffled(t, s, r, spans)
	orders := []store.TraceOrder{store.OrderNewest, store.OrderOldest, store.OrderSlowest, store.OrderFastest}
	for i := range 150 {
		q := store.TraceQuery{Order: orders[r.IntN(len(orders))], Limit: []int{1, 3, 20, 100, 1000}[r.IntN(5)]}
		if r.IntN(4) > 0 {
			q.Service = append(traceServices(), "nope")[r.IntN(6)]
		}
		if r.IntN(2) == 0 {
			q.MinDuration = time.Duration(r.Int64N(int64(2 * time.Second)))
		}
		if r.IntN(5) == 0 {
			q.MaxDuration = q.MinDuration + time.Duration(r.Int64N(int64(time.Second)))
		}
		if r.IntN(5) == 0 {
			q.Endpoint = fmt.Sprintf("op%d", r.IntN(3))
		}
		if r.IntN(6) == 0 {
			q.Status = []store.StatusFilter{store.StatusFilterOK, store.StatusFilterErr}[r.IntN(2)]
		}
		if r.IntN(6) == 0 {
			q.Tenant = "acme"
		}
		if r.IntN(4) == 0 {
			q.From = base.Add(time.Duration(r.Int64N(int64(time.Hour))))
			q.To = q.From.Add(time.Duration(r.Int64N(int64(time.Hour))))
		}
		if r.IntN(6) == 0 {
			q.Has = []store.SpanMatch{{Service: []string{"db", "cache"}[r.IntN(2)]}}
		}
		got := search(t, s, q)
		want := refSearch(spans, q)
		if d := diffSummaries(want, got); d != "" {
			t.Fatalf("query %d %+v:\n%s", i, q, d)
		}
	}
}

// testSearchWideTraces: traces touching a hundred services, each arriving
// in three parts that share services with different longest spans, so
// the per-service merge of a stored row runs on objects of kilobytes (in
// PostgreSQL: compressed, past the size its cheaper patch is used for)
// as well as on small ones; searches by service and duration find what
// the spans say.
func testSearchWideTraces(t *testing.T, s store.Store) {
	r := rand.New(rand.NewPCG(18, 4))
	var spans []store.Span
	sid := 1000
	for tr := range 4 {
		tr += 500
		start := at(time.Duration(tr) * time.Second)
		spans = append(spans, mkSpan(tr, sid, store.SpanID{}, "frontend", "GET /wide", store.KindServer, start, 3*time.Second))
		root := spanID(sid)
		sid++
		for range 150 {
			svc := fmt.Sprintf("service-%03d-of-a-wide-trace", r.IntN(100))
			spans = append(spans, mkSpan(tr, sid, root, svc, "op", store.KindServer,
				start+r.Int64N(int64(time.Second)), time.Duration(1+r.Int64N(int64(2*time.Second)))))
			sid++
		}
	}
	parts := [3][]store.Span{}
	for _, sp := range spans {
		p := r.IntN(3)
		parts[p] = append(parts[p], sp)
	}
	for _, p := range []int{2, 0, 1} {
		write(t, s, parts[p]...)
	}
	for i := range 40 {
		q := store.TraceQuery{Limit: 10, Service: fmt.Sprintf("service-%03d-of-a-wide-trace", r.IntN(100)),
			MinDuration: time.Duration(r.Int64N(int64(2 * time.Second))), Order: []store.TraceOrder{store.OrderNewest, store.OrderSlowest}[i%2]}
		if d := diffSummaries(refSearch(spans, q), search(t, s, q)); d != "" {
			t.Fatalf("query %d %+v:\n%s", i, q, d)
		}
	}
}

// testSearchConcurrentResends: writers send overlapping shuffled copies of
// the same traces at once; every summary counts each span once.
func testSearchConcurrentResends(t *testing.T, s store.Store) {
	spans := randomTraces(rand.New(rand.NewPCG(18, 3)), 60)
	const writers = 4
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 9))
			batch := slices.Clone(spans)
			r.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
			batch = batch[:len(batch)*3/4] // together the writers send every span, most more than once
			if w == 0 {
				batch = spans
			}
			for chunk := range slices.Chunk(batch, 1+r.IntN(40)) {
				if err := s.WriteSpans(context.Background(), chunk); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent WriteSpans: %v", err)
	}
	q := store.TraceQuery{Limit: 1000}
	if d := diffSummaries(refSearch(spans, q), search(t, s, q)); d != "" {
		t.Errorf("after concurrent resends:\n%s", d)
	}
}

// testSearchAfterRetention: traces wholly before the cut are not found;
// those that straddle it are summarised from the spans that remain.
func testSearchAfterRetention(t *testing.T, s store.Store) {
	day := 24 * time.Hour
	midnight := base.Truncate(day)
	before := midnight.Add(-time.Hour).UnixNano()
	old := mkSpan(1, 1, store.SpanID{}, "svc", "old", store.KindServer, before, time.Second)
	sRoot := mkSpan(2, 2, store.SpanID{}, "svc", "straddle", store.KindServer, midnight.Add(-time.Second).UnixNano(), 3*time.Second)
	sChild := mkSpan(2, 3, spanID(2), "db", "q", store.KindClient, midnight.Add(time.Second).UnixNano(), time.Second)
	kept := mkSpan(3, 4, store.SpanID{}, "svc", "kept", store.KindServer, midnight.Add(time.Hour).UnixNano(), time.Second)
	write(t, s, old, sRoot, sChild, kept)
	if err := s.DeleteBefore(ctxT(t), midnight); err != nil {
		t.Fatalf("DeleteBefore: %v", err)
	}
	left, err := s.Traces(ctxT(t), ids(1, 2, 3))
	if err != nil {
		t.Fatalf("Traces: %v", err)
	}
	var remaining []store.Span
	for _, sp := range left {
		remaining = append(remaining, sp...)
	}
	for _, q := range []store.TraceQuery{{Limit: 100}, {Service: "svc", Order: store.OrderOldest}, {Service: "db"}} {
		if d := diffSummaries(refSearch(remaining, q), search(t, s, q)); d != "" {
			t.Errorf("%+v after retention:\n%s", q, d)
		}
	}
	if got := search(t, s, store.TraceQuery{Endpoint: "old"}); len(got) != 0 {
		t.Errorf("a trace wholly before the cut is still found: %+v", got)
	}
	// Writing the deleted trace again indexes it afresh.
	write(t, s, old)
	want := []store.TraceSummary{{TraceID: traceID(1), RootService: "svc", RootName: "old", StartUnixNano: before,
		DurationNano: int64(time.Second), SpanCount: 1, MatchDurationNano: int64(time.Second)}}
	if d := diffSummaries(want, search(t, s, store.TraceQuery{Endpoint: "old"})); d != "" {
		t.Errorf("rewritten trace:\n%s", d)
	}
}

// refSearch is SearchTraces by definition (store.TraceQuery's doc), over
// spans deduplicated by (trace, span, start). Attributes are not modelled.
func refSearch(spans []store.Span, q store.TraceQuery) []store.TraceSummary {
	type key struct {
		t     store.TraceID
		s     store.SpanID
		start int64
	}
	seen := map[key]bool{}
	byTrace := map[store.TraceID][]store.Span{}
	for _, sp := range spans {
		k := key{sp.TraceID, sp.SpanID, sp.StartUnixNano}
		if !seen[k] {
			seen[k] = true
			byTrace[sp.TraceID] = append(byTrace[sp.TraceID], sp)
		}
	}
	type hit struct {
		sum         store.TraceSummary
		first, last int64
	}
	var hits []hit
	for id, ts := range byTrace {
		h := hit{sum: store.TraceSummary{TraceID: id}, first: 1<<63 - 1, last: -1 << 63}
		n := 0
		for _, sp := range ts {
			if matchSpan(sp, q) {
				n++
				h.first, h.last = min(h.first, sp.StartUnixNano), max(h.last, sp.StartUnixNano)
				h.sum.MatchDurationNano = max(h.sum.MatchDurationNano, sp.DurationNano)
			}
		}
		if n == 0 || !hasAll(ts, q.Has) {
			continue
		}
		fillSummary(&h.sum, ts)
		hits = append(hits, h)
	}
	slices.SortFunc(hits, func(a, b hit) int {
		ida, idb := a.sum.TraceID[:], b.sum.TraceID[:]
		switch q.Order {
		case store.OrderOldest:
			return cmpThen(a.first, b.first, bytes.Compare(ida, idb))
		case store.OrderSlowest:
			return cmpThen(b.sum.MatchDurationNano, a.sum.MatchDurationNano, bytes.Compare(ida, idb))
		case store.OrderFastest:
			return cmpThen(a.sum.MatchDurationNano, b.sum.MatchDurationNano, bytes.Compare(ida, idb))
		}
		return cmpThen(b.last, a.last, bytes.Compare(idb, ida))
	})
	limit := q.Limit
	if limit == 0 {
		limit = 20
	}
	out := []store.TraceSummary{}
	for i := range min(limit, len(hits)) {
		out = append(out, hits[i].sum)
	}
	return out
}

func cmpThen(a, b int64, then int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return then
}

func matchSpan(sp store.Span, q store.TraceQuery) bool {
	switch {
	case q.Service != "" && sp.Service != q.Service,
		q.Endpoint != "" && sp.Name != q.Endpoint,
		q.Tenant != "" && sp.Tenant != q.Tenant,
		q.Version != "" && sp.Version != q.Version,
		q.MinDuration > 0 && sp.DurationNano < int64(q.MinDuration),
		q.MaxDuration > 0 && sp.DurationNano > int64(q.MaxDuration),
		q.Status == store.StatusFilterOK && sp.StatusCode == store.StatusError,
		q.Status == store.StatusFilterErr && sp.StatusCode != store.StatusError,
		!q.From.IsZero() && sp.StartUnixNano < q.From.UnixNano(),
		!q.To.IsZero() && sp.StartUnixNano >= q.To.UnixNano():
		return false
	}
	return true
}

func hasAll(ts []store.Span, has []store.SpanMatch) bool {
	for _, m := range has {
		if !slices.ContainsFunc(ts, func(sp store.Span) bool { return sp.Service == m.Service }) {
			return false
		}
	}
	return true
}

// fillSummary sets the root fields and counts of a trace's summary: the
// earliest root span (ties by span id), or without one the earliest span
// and the extent of the trace.
func fillSummary(sum *store.TraceSummary, ts []store.Span) {
	ts = slices.Clone(ts)
	slices.SortFunc(ts, func(a, b store.Span) int {
		if a.IsRoot() != b.IsRoot() {
			if a.IsRoot() {
				return -1
			}
			return 1
		}
		return cmpThen(a.StartUnixNano, b.StartUnixNano, bytes.Compare(a.SpanID[:], b.SpanID[:]))
	})
	r := ts[0]
	sum.RootService, sum.RootName, sum.Tenant, sum.Version = r.Service, r.Name, r.Tenant, r.Version
	sum.StartUnixNano, sum.DurationNano = r.StartUnixNano, r.DurationNano
	first, end := r.StartUnixNano, r.End()
	for _, sp := range ts {
		first, end = min(first, sp.StartUnixNano), max(end, sp.End())
		sum.SpanCount++
		if sp.StatusCode == store.StatusError {
			sum.ErrorCount++
		}
	}
	if !r.IsRoot() {
		sum.StartUnixNano, sum.DurationNano = first, end-first
	}
}

func diffSummaries(want, got []store.TraceSummary) string {
	if slices.Equal(want, got) {
		return ""
	}
	var b bytes.Buffer
	for i := range max(len(want), len(got)) {
		var w, g any = "-", "-"
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if fmt.Sprint(w) != fmt.Sprint(g) {
			fmt.Fprintf(&b, "  #%d\n    want %+v\n     got %+v\n", i, w, g)
		}
	}
	return fmt.Sprintf("%d summaries, want %d\n%s", len(got), len(want), b.String())
}
