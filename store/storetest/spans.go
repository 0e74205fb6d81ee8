package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// fullSpan sets every field, with the awkward values a store must keep:
// nested arrays and maps, non-ASCII and emoji text, int64 extremes.
func fullSpan() store.Span {
	return store.Span{
		TraceID:       traceID(1),
		SpanID:        spanID(2),
		ParentSpanID:  spanID(1),
		Service:       "profile-svc",
		Name:          "GET /v1/profile/{id} — façade 🚀",
		Kind:          store.KindServer,
		StartUnixNano: at(time.Second) + 123456789,
		DurationNano:  int64(1234567891),
		StatusCode:    store.StatusError,
		StatusMessage: "upstream timed out: 日本語 ✓",
		Attributes: store.Attributes(`{"http.request.method":"GET","http.response.status_code":504,` +
			`"max":9223372036854775807,"min":-9223372036854775808,"ratio":0.125,"retry":false,` +
			`"tags":["a","b",["nested",1]],"obj":{"k":{"deep":[true,null,2.5]}},"emoji":"🔥ü","empty":""}`),
		Resource: store.Attributes(`{"service.name":"profile-svc","service.version":"v2.1.0","host.name":"node-7"}`),
		Events: []store.Event{
			{TimeUnixNano: at(time.Second) + 200, Name: "exception",
				Attributes: store.Attributes(`{"exception.type":"Timeout","exception.message":"después ⏱"}`)},
			{TimeUnixNano: at(time.Second) + 300, Name: "retry"},
		},
		Links: []store.Link{
			{TraceID: traceID(99), SpanID: spanID(98), Attributes: store.Attributes(`{"link.kind":"follows"}`)},
			{TraceID: traceID(97), SpanID: spanID(96)},
		},
		Tenant:       "acme",
		Version:      "v2.1.0",
		Dependency:   "postgresql/profiles",
		PayloadBytes: 1 << 40,
		Host:         "node-7",
		Weight:       1 / (1 - 0x0a3d70a3d70a3d/float64(1<<56)), // th:0a3d70a3d70a3d, ~1.04
	}
}

func testWriteAndReadBack(t *testing.T, s store.Store) {
	want := fullSpan()
	root := mkSpan(1, 1, store.SpanID{}, "edge", "GET /", store.KindServer, at(0), time.Minute)
	write(t, s, want, root)
	got := mustTrace(t, s, want.TraceID)
	if len(got) != 2 {
		t.Fatalf("Trace returned %d spans, want 2", len(got))
	}
	if d := diffSpan(root, got[0]); d != "" {
		t.Errorf("root span: %s", d)
	}
	if d := diffSpan(want, got[1]); d != "" {
		t.Errorf("full span: %s", d)
	}
	if !got[0].IsRoot() || got[1].IsRoot() {
		t.Errorf("IsRoot = %v, %v; want true, false", got[0].IsRoot(), got[1].IsRoot())
	}
	// int64 extremes survive exactly (not through float64).
	m, err := got[1].Attributes.Decode()
	if err != nil {
		t.Fatalf("decode attributes: %v", err)
	}
	if fmt.Sprint(m["max"]) != "9223372036854775807" || fmt.Sprint(m["min"]) != "-9223372036854775808" {
		t.Errorf("int64 extremes read back as %v, %v", m["max"], m["min"])
	}
}

func testEmptyBatch(t *testing.T, s store.Store) {
	if err := s.WriteSpans(ctxT(t), nil); err != nil {
		t.Fatalf("WriteSpans(nil): %v", err)
	}
	if err := s.WriteSpans(ctxT(t), []store.Span{}); err != nil {
		t.Fatalf("WriteSpans(empty): %v", err)
	}
}

func testTraceNotFound(t *testing.T, s store.Store) {
	write(t, s, mkSpan(1, 1, store.SpanID{}, "a", "x", store.KindServer, at(0), time.Millisecond))
	_, err := s.Trace(ctxT(t), traceID(2))
	wantErrIs(t, "Trace(unknown)", err, store.ErrNotFound)
}

func testTraceOrdering(t *testing.T, s store.Store) {
	var spans []store.Span
	for i := range 50 {
		// Groups of five share a start time, so the span id breaks ties.
		spans = append(spans, mkSpan(1, 1000-i, spanID(0), "svc", fmt.Sprint("op", i), store.KindInternal,
			at(time.Duration(i/5)*time.Millisecond), time.Millisecond))
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(spans), func(i, j int) { spans[i], spans[j] = spans[j], spans[i] })
	write(t, s, spans...)
	got := mustTrace(t, s, traceID(1))
	if len(got) != len(spans) {
		t.Fatalf("Trace returned %d spans, want %d", len(got), len(spans))
	}
	ordered := slices.IsSortedFunc(got, func(a, b store.Span) int {
		if a.StartUnixNano != b.StartUnixNano {
			return int(a.StartUnixNano - b.StartUnixNano)
		}
		return slices.Compare(a.SpanID[:], b.SpanID[:])
	})
	if !ordered {
		t.Errorf("Trace is not ordered by start, then span id")
	}
}

func testTraces(t *testing.T, s store.Store) {
	// More ids than one SQL IN list holds in some backends.
	const n = 1200
	var spans []store.Span
	for i := range n {
		// In start order: the root, a span starting with it whose id is
		// larger (the tie goes to the smaller id), then the child, whose
		// id is smaller than that span's: id order is not start order.
		spans = append(spans,
			mkSpan(i, 2*i, store.SpanID{}, "svc", "root", store.KindServer, at(time.Duration(i)*time.Millisecond), time.Millisecond),
			mkSpan(i, 2*i+1, spanID(2*i), "svc", "child", store.KindClient, at(time.Duration(i)*time.Millisecond)+1, time.Microsecond),
			mkSpan(i, 3*n+i, spanID(2*i), "svc", "same start", store.KindInternal, at(time.Duration(i)*time.Millisecond), time.Microsecond))
	}
	write(t, s, spans...)
	var query []store.TraceID
	for i := range n {
		query = append(query, traceID(i))
	}
	query = append(query, traceID(n+5), traceID(n+6)) // unknown
	got, err := s.Traces(ctxT(t), query)
	if err != nil {
		t.Fatalf("Traces: %v", err)
	}
	if len(got) != n {
		t.Fatalf("Traces returned %d traces, want %d", len(got), n)
	}
	for i := range n {
		tr := got[traceID(i)]
		if len(tr) != 3 || tr[0].SpanID != spanID(2*i) || tr[1].SpanID != spanID(3*n+i) || tr[2].SpanID != spanID(2*i+1) {
			t.Fatalf("trace %d: got %d spans (%v), want root, the span starting with it, then child", i, len(tr), tr)
		}
	}
	if _, ok := got[traceID(n+5)]; ok {
		t.Errorf("unknown trace id present in result")
	}
	empty, err := s.Traces(ctxT(t), nil)
	if err != nil || len(empty) != 0 {
		t.Errorf("Traces(nil) = %v, %v; want empty, nil", empty, err)
	}
}

func testLargeTrace(t *testing.T, s store.Store) {
	const n = 10000
	spans := make([]store.Span, 0, n)
	spans = append(spans, mkSpan(1, 0, store.SpanID{}, "batch", "POST /import", store.KindServer, at(0), time.Minute))
	for i := 1; i < n; i++ {
		sp := mkSpan(1, i, spanID(0), "batch", "INSERT rows", store.KindClient, at(time.Duration(i)*time.Millisecond), time.Millisecond)
		sp.Attributes = store.Attributes(fmt.Sprintf(`{"row":%d}`, i))
		spans = append(spans, sp)
	}
	write(t, s, spans...)
	got := mustTrace(t, s, traceID(1))
	if len(got) != n {
		t.Fatalf("Trace returned %d spans, want %d", len(got), n)
	}
	for i := range got {
		if got[i].SpanID != spanID(i) {
			t.Fatalf("span %d has id %s, want %s", i, got[i].SpanID, spanID(i))
		}
	}
	sums := search(t, s, store.TraceQuery{Service: "batch"})
	if len(sums) != 1 || sums[0].SpanCount != n {
		t.Fatalf("search summary = %+v, want one trace with %d spans", sums, n)
	}
}

func testDuplicates(t *testing.T, s store.Store) {
	a := mkSpan(1, 1, store.SpanID{}, "svc", "root", store.KindServer, at(0), time.Second)
	b := mkSpan(1, 2, spanID(1), "svc", "child", store.KindClient, at(time.Millisecond), time.Millisecond)
	// The same span twice in one batch.
	write(t, s, a, b, a)
	// And again in later batches (a client resending after a lost reply).
	write(t, s, a)
	write(t, s, b, a)
	// The same span id with another start time is another row.
	b2 := b
	b2.StartUnixNano += int64(time.Millisecond)
	write(t, s, b2)
	got := mustTrace(t, s, traceID(1))
	if len(got) != 3 {
		t.Fatalf("Trace returned %d spans, want 3 (root, child, child at another start)", len(got))
	}
	sums := search(t, s, store.TraceQuery{Service: "svc"})
	if len(sums) != 1 || sums[0].SpanCount != 3 {
		t.Fatalf("search = %+v, want one trace of 3 spans", sums)
	}
}

func testOutOfOrderBatches(t *testing.T, s store.Store) {
	root := mkSpan(1, 1, store.SpanID{}, "gw", "GET /feed", store.KindServer, at(0), 500*time.Millisecond)
	c1 := mkSpan(1, 2, spanID(1), "gw", "call ranker", store.KindClient, at(10*time.Millisecond), 200*time.Millisecond)
	c2 := mkSpan(1, 3, spanID(2), "ranker", "POST /rank", store.KindServer, at(20*time.Millisecond), 150*time.Millisecond)
	c3 := mkSpan(1, 4, spanID(3), "ranker", "score", store.KindInternal, at(30*time.Millisecond), 300*time.Millisecond)
	write(t, s, c3)
	write(t, s, c2)
	// Before the root arrives, the summary uses the earliest span and the
	// extent of what has arrived.
	sums := search(t, s, store.TraceQuery{})
	if len(sums) != 1 {
		t.Fatalf("search before root: %d traces, want 1", len(sums))
	}
	if got := sums[0]; got.RootName != "POST /rank" || got.StartUnixNano != c2.StartUnixNano ||
		got.DurationNano != c3.End()-c2.StartUnixNano || got.SpanCount != 2 {
		t.Errorf("summary before root = %+v, want earliest span POST /rank spanning %d ns", got, c3.End()-c2.StartUnixNano)
	}
	write(t, s, root)
	write(t, s, c1)
	got := mustTrace(t, s, traceID(1))
	var names []string
	for _, sp := range got {
		names = append(names, sp.Name)
	}
	if want := []string{"GET /feed", "call ranker", "POST /rank", "score"}; !slices.Equal(names, want) {
		t.Errorf("trace = %v, want %v", names, want)
	}
	sums = search(t, s, store.TraceQuery{})
	if len(sums) != 1 || sums[0].RootName != "GET /feed" || sums[0].DurationNano != root.DurationNano || sums[0].SpanCount != 4 {
		t.Errorf("summary after root = %+v, want root GET /feed of 4 spans", sums)
	}
}

func testConcurrentWriters(t *testing.T, s store.Store) {
	// Writers resend overlapping batches at the same time, as several
	// receivers would after a timeout; the store must neither fail nor
	// duplicate.
	const traces, perTrace, writers = 20, 10, 4
	var all []store.Span
	for tr := range traces {
		for i := range perTrace {
			all = append(all, mkSpan(tr, tr*perTrace+i, store.SpanID{}, "svc", "op", store.KindServer,
				at(time.Duration(tr)*time.Second+time.Duration(i)*time.Millisecond), time.Millisecond))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := slices.Clone(all)
			rand.New(rand.NewPCG(uint64(w), 7)).Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
			for chunk := range slices.Chunk(batch, 50) {
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
		t.Errorf("concurrent WriteSpans: %v", err)
	}
	got, err := s.Traces(ctxT(t), ids(seq(traces)...))
	if err != nil {
		t.Fatalf("Traces: %v", err)
	}
	n := 0
	for _, sp := range got {
		n += len(sp)
	}
	if n != traces*perTrace {
		t.Errorf("stored %d spans, want %d", n, traces*perTrace)
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func testSanitisesText(t *testing.T, s store.Store) {
	bad := mkSpan(1, 1, store.SpanID{}, "svc\x00x", "na\x00me", store.KindServer, at(0), time.Millisecond)
	bad.StatusMessage = "bad utf8 \xff here"
	bad.Attributes = store.Attributes(`{"k":"a\u0000b","esc":"\\u0000 stays"}`)
	bad.Events = []store.Event{{TimeUnixNano: at(0), Name: "ev\x00"}}
	good := mkSpan(2, 2, store.SpanID{}, "svc", "fine", store.KindServer, at(0), time.Millisecond)
	write(t, s, bad, good)
	mustTrace(t, s, traceID(2))
	got := mustTrace(t, s, traceID(1))[0]
	if got.Service != "svc\uFFFDx" || got.Name != "na\uFFFDme" || got.StatusMessage != "bad utf8 \uFFFD here" {
		t.Errorf("sanitised text = %q, %q, %q", got.Service, got.Name, got.StatusMessage)
	}
	m, err := got.Attributes.Decode()
	if err != nil {
		t.Fatalf("decode attributes: %v", err)
	}
	if m["k"] != "a\uFFFDb" || m["esc"] != `\u0000 stays` {
		t.Errorf("sanitised attributes = %q, %q", m["k"], m["esc"])
	}
	if len(got.Events) != 1 || got.Events[0].Name != "ev\uFFFD" {
		t.Errorf("sanitised events = %+v", got.Events)
	}
}

func testContextCancelled(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(ctxT(t))
	cancel()
	sp := mkSpan(1, 1, store.SpanID{}, "svc", "op", store.KindServer, at(0), time.Millisecond)
	checks := []struct {
		name string
		call func() error
	}{
		{"WriteSpans", func() error { return s.WriteSpans(ctx, []store.Span{sp}) }},
		{"Trace", func() error { _, err := s.Trace(ctx, sp.TraceID); return err }},
		{"SearchTraces", func() error { _, err := s.SearchTraces(ctx, store.TraceQuery{}); return err }},
		{"Samples", func() error { _, err := s.Samples(ctx, store.SampleQuery{Service: "svc"}); return err }},
		{"Deploys", func() error { _, err := s.Deploys(ctx, store.DeployQuery{}); return err }},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context: err = %v, want context.Canceled", c.name, err)
			}
			if errors.Is(err, store.ErrUnavailable) {
				t.Errorf("%s: a cancelled call is not 'unavailable': %v", c.name, err)
			}
		})
	}
	// Nothing was written by the cancelled call.
	if _, err := s.Trace(ctxT(t), sp.TraceID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after cancelled write, Trace err = %v, want ErrNotFound", err)
	}
}
