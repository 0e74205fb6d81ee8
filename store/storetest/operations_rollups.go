package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// testOperationRollups: the operation rollups answer what Operations
// reads from the spans, exactly (counts, errors, min, max, sum, zero
// count and every bin), for spans of every kind written late, out of
// order, in a batch replayed whole and in a batch holding a span twice,
// before and after compaction; the window is rounded out to whole
// minutes; group-by and a foreign bin scale are refused.
func testOperationRollups(t *testing.T, s store.Store) {
	var later, earlier []store.Span
	kinds := []store.SpanKind{store.KindServer, store.KindClient, store.KindInternal, store.KindProducer}
	for i := range 120 {
		root := mkSpan(i, 10*i, store.SpanID{}, "api", "GET /x", store.KindServer, at(time.Duration(i)*time.Second),
			time.Duration(i%13+1)*time.Millisecond+311*time.Microsecond)
		if i%9 == 0 {
			root.StatusCode = store.StatusError
		}
		child := mkSpan(i, 10*i+1, root.SpanID, "api", "call", kinds[i%len(kinds)], root.StartUnixNano,
			time.Duration(i%5)*time.Millisecond) // a zero duration every fifth
		worker := mkSpan(i, 10*i+2, child.SpanID, "worker", "job", store.KindConsumer, root.StartUnixNano+1,
			time.Duration(i%7+2)*time.Millisecond+17*time.Microsecond)
		if i < 60 {
			earlier = append(earlier, root, child, worker)
		} else {
			later = append(later, root, child, worker)
		}
	}
	write(t, s, later...)
	write(t, s, earlier[:90]...) // late: older than what is stored
	if err := s.CompactRollups(ctxT(t)); err != nil {
		t.Fatalf("CompactRollups: %v", err)
	}
	write(t, s, later...)                                       // replayed whole
	write(t, s, append(earlier[60:], earlier[80], later[0])...) // partly resent, a span twice
	from, to := base, base.Add(2*time.Minute)

	ops := func(read func(store.OperationQuery) ([]store.OperationStats, error), q store.OperationQuery) []store.OperationStats {
		t.Helper()
		got, err := read(q)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		return got
	}
	spans := func(q store.OperationQuery) ([]store.OperationStats, error) { return s.Operations(ctxT(t), q) }
	rolled := func(q store.OperationQuery) ([]store.OperationStats, error) { return s.OperationRollups(ctxT(t), q) }
	scale := store.RollupBinScale()
	for name, q := range map[string]store.OperationQuery{
		"all":       {From: from, To: to, BinScale: scale},
		"a service": {From: from, To: to, Service: "api", BinScale: scale},
		"limit 2":   {From: from, To: to, BinScale: scale, Limit: 2},
	} {
		want := ops(spans, q)
		if len(want) < 2 {
			t.Fatalf("%s: only %d operations from spans", name, len(want))
		}
		for _, w := range []string{"exact", "rounded out"} {
			rq := q
			if w == "rounded out" {
				rq.From, rq.To = from.Add(17*time.Second), to.Add(-time.Second)
			}
			if got := ops(rolled, rq); !reflect.DeepEqual(got, want) {
				t.Errorf("%s (%s window): rollups\n %+v\nspans\n %+v", name, w, got, want)
			}
		}
	}
	var calls int64
	for _, o := range ops(rolled, store.OperationQuery{From: from, To: to, BinScale: scale}) {
		if o.Name == "call" {
			calls += o.Count
		}
	}
	if calls != 120 {
		t.Errorf("call spans counted %d times, want 120 (each once)", calls)
	}

	for name, q := range map[string]store.OperationQuery{
		"group by":        {From: from, To: to, BinScale: scale, GroupBy: "db.system"},
		"other bin scale": {From: from, To: to, BinScale: 2 * scale},
		"no range":        {BinScale: scale},
		"too long":        {From: from, To: from.Add(store.MaxOperationRollupRange + time.Second), BinScale: scale},
	} {
		_, err := s.OperationRollups(ctxT(t), q)
		wantErrIs(t, name, err, store.ErrInvalid)
	}
}
