package analysis_test

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/store"
)

// memoData is 200 generated traces served from memory, and an id no
// trace has.
func memoData(t *testing.T) (*analysistest.Source, []store.TraceID, store.TraceID) {
	t.Helper()
	ds := analysistest.Generate(analysistest.Scenario{Seed: 7, Start: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC), Window: 10 * time.Minute, Traces: 200})
	return analysistest.NewSource(ds.Spans), ds.Roots, store.TraceID{0xff, 0xee}
}

// wantTraces reads ids straight from the source.
func wantTraces(t *testing.T, src analysis.SpanSource, ids []store.TraceID) map[store.TraceID][]store.Span {
	t.Helper()
	want, err := src.Traces(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	return want
}

func TestSpanMemoReadsEachTraceOnce(t *testing.T) {
	src, ids, unknown := memoData(t)
	c := analysistest.CountTraces(src)
	m := analysis.NewSpanMemo(c, 1<<30)
	// Overlapping reads, as the analyses of one report make them: the
	// second and third ask again for some of the first's traces, and for
	// a trace that does not exist.
	reads := [][]store.TraceID{ids[:120], append(append([]store.TraceID{}, ids[80:200]...), unknown), append([]store.TraceID{unknown, ids[5], ids[5]}, ids[150:160]...)}
	for i, q := range reads {
		got, err := m.Traces(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if want := wantTraces(t, src, q); !reflect.DeepEqual(got, want) {
			t.Errorf("read %d: %d traces, want the source's %d", i, len(got), len(want))
		}
	}
	for id, n := range c.Reads() {
		if n != 1 {
			t.Errorf("trace %s read %d times, want once", id, n)
		}
	}
	if n := len(c.Reads()); n != len(ids)+1 {
		t.Errorf("%d traces read, want %d", n, len(ids)+1)
	}
}

// Readers of the same traces at the same time wait for one read. The
// source holds its reads until every reader has started, so a memo that
// only remembered finished reads would let them all through.
func TestSpanMemoConcurrentReadersShareOneRead(t *testing.T) {
	src, ids, _ := memoData(t)
	c := analysistest.CountTraces(src)
	c.Gate = make(chan struct{})
	m := analysis.NewSpanMemo(c, 1<<30)
	want := wantTraces(t, src, ids[:50])
	var started, done sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			started.Done()
			got, err := m.Traces(context.Background(), ids[:50])
			if err == nil && !reflect.DeepEqual(got, want) {
				err = errors.New("traces differ from the source's")
			}
			errs[i] = err
		}()
	}
	started.Wait()
	close(c.Gate)
	done.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := c.Calls(); n != 1 {
		t.Errorf("%d reads reached the source, want 1", n)
	}
}

// Past its bound the memo still answers every read, but keeps no more
// spans: the traces it could not keep are read again.
func TestSpanMemoBound(t *testing.T) {
	src, ids, _ := memoData(t)
	first := wantTraces(t, src, ids[:10])
	held := 0
	for _, spans := range first {
		held += len(spans)
	}
	c := analysistest.CountTraces(src)
	m := analysis.NewSpanMemo(c, held)
	for range 2 {
		got, err := m.Traces(context.Background(), ids[:10])
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, first) {
			t.Fatal("traces differ from the source's")
		}
		if got, err = m.Traces(context.Background(), ids[10:20]); err != nil {
			t.Fatal(err)
		}
		if want := wantTraces(t, src, ids[10:20]); !reflect.DeepEqual(got, want) {
			t.Fatal("traces past the bound differ from the source's")
		}
	}
	r := c.Reads()
	for _, id := range ids[:10] {
		if r[id] != 1 {
			t.Errorf("trace %s within the bound read %d times, want once", id, r[id])
		}
	}
	for _, id := range ids[10:20] {
		if r[id] != 2 {
			t.Errorf("trace %s past the bound read %d times, want twice (not kept)", id, r[id])
		}
	}
}

// A failed read is not remembered: the next reader reads the traces.
func TestSpanMemoFailedReadIsRetried(t *testing.T) {
	src, ids, _ := memoData(t)
	c := analysistest.CountTraces(src)
	c.Gate = make(chan struct{}) // held reads end with their context
	m := analysis.NewSpanMemo(c, 1<<30)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Traces(ctx, ids[:5]); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled read: err = %v, want context.Canceled", err)
	}
	close(c.Gate)
	got, err := m.Traces(context.Background(), ids[:5])
	if err != nil {
		t.Fatal(err)
	}
	if want := wantTraces(t, src, ids[:5]); !reflect.DeepEqual(got, want) {
		t.Error("traces after a failed read differ from the source's")
	}
}

// Identical sample queries are read once, and answered as the source
// answers them; another query is read on its own.
func TestSpanMemoSamples(t *testing.T) {
	src, _, _ := memoData(t)
	c := analysistest.CountTraces(src)
	m := analysis.NewSpanMemo(c, 1<<30)
	from := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	q := store.SampleQuery{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint, From: from, To: from.Add(5 * time.Minute)}
	later := q
	later.From = from.Add(time.Minute)
	same := q
	same.From = from.In(time.FixedZone("UTC+2", 7200)) // the same instant
	for _, q := range []store.SampleQuery{q, later, same, q} {
		got, err := m.Samples(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		want, err := src.Samples(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) == 0 || !reflect.DeepEqual(got, want) {
			t.Errorf("samples from %s: %d, want the source's %d", q.From, len(got), len(want))
		}
	}
	reads := c.SampleReads()
	if len(reads) != 2 {
		t.Errorf("%d distinct queries reached the source, want 2: %v", len(reads), reads)
	}
	for q, n := range reads {
		if n != 1 {
			t.Errorf("%s read %d times, want once", q, n)
		}
	}
}
