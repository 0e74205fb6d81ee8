package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

func TestPipelineCommitsAndWaits(t *testing.T) {
	w := newMemWriter()
	p := newTestPipeline(t, testConfig(), w, nil)
	spans := testSpans(5, 1, "svc", "")
	if err := p.Submit(context.Background(), spans); err != nil {
		t.Fatalf("Submit: %v", err)
	}
	// Submit returned: the spans must already be in the store.
	if got := len(w.stored()); got != 5 {
		t.Fatalf("stored %d spans after Submit returned, want 5", got)
	}
	if err := p.Submit(context.Background(), nil); err != nil {
		t.Errorf("Submit(nil) = %v", err)
	}
	if spans, reqs := p.queued(); spans != 0 || reqs != 0 {
		t.Errorf("queue holds %d spans in %d requests after commit", spans, reqs)
	}
}

func TestPipelineGroupCommit(t *testing.T) {
	w := newMemWriter()
	cfg := testConfig()
	cfg.BatchSpans = 1000
	p := newTestPipeline(t, cfg, w, nil)
	entered, release := w.hold()
	defer release()

	results := make(chan submitResult, 11)
	submitAsync(context.Background(), p, 0, testSpans(3, 100, "svc", ""), results)
	<-entered // the first request is being committed; the writer is busy

	const n = 10
	for i := 1; i <= n; i++ {
		submitAsync(context.Background(), p, i, testSpans(7, uint64(i), "svc", ""), results)
	}
	waitFor(t, "10 queued requests", func() bool { _, reqs := p.queued(); return reqs == n })
	release()
	for range n + 1 {
		if r := <-results; r.err != nil {
			t.Errorf("Submit %d: %v", r.id, r.err)
		}
	}
	// One call for the first request, one for the ten that queued behind it.
	if got := w.callSizes(); !slices.Equal(got, []int{3, n * 7}) {
		t.Errorf("WriteSpans calls = %v, want [3 %d]", got, n*7)
	}
	if got := len(w.stored()); got != 3+n*7 {
		t.Errorf("stored %d spans, want %d", got, 3+n*7)
	}
}

func TestPipelineBatchLimit(t *testing.T) {
	w := newMemWriter()
	cfg := testConfig()
	cfg.BatchSpans = 10
	p := newTestPipeline(t, cfg, w, nil)
	entered, release := w.hold()
	defer release()

	results := make(chan submitResult, 6)
	submitAsync(context.Background(), p, 0, testSpans(1, 100, "svc", ""), results)
	<-entered
	for i := 1; i <= 4; i++ { // 4 requests of 4 spans: two batches of 2 requests
		submitAsync(context.Background(), p, i, testSpans(4, uint64(i), "svc", ""), results)
	}
	// A request bigger than BatchSpans still goes, alone.
	waitFor(t, "4 queued requests", func() bool { _, reqs := p.queued(); return reqs == 4 })
	submitAsync(context.Background(), p, 5, testSpans(25, 50, "svc", ""), results)
	waitFor(t, "5 queued requests", func() bool { _, reqs := p.queued(); return reqs == 5 })
	release()
	for range 6 {
		if r := <-results; r.err != nil {
			t.Errorf("Submit %d: %v", r.id, r.err)
		}
	}
	if got := w.callSizes(); !slices.Equal(got, []int{1, 8, 8, 25}) {
		t.Errorf("WriteSpans calls = %v, want [1 8 8 25]", got)
	}
}

func TestPipelineStoreFailureAndRecovery(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"unavailable", errStoreDown},
		{"any other error", errors.New("disk I/O error")},
		{"timeout", context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newMemWriter()
			p := newTestPipeline(t, testConfig(), w, nil)
			w.setFail(func([]store.Span) error { return tt.err })
			for i := range 3 { // keeps failing while the store is down
				err := p.Submit(context.Background(), testSpans(2, uint64(i), "svc", ""))
				if !isUnavailable(err) || !errors.Is(err, tt.err) {
					t.Fatalf("Submit during outage = %v, want an error wrapping store.ErrUnavailable and %v", err, tt.err)
				}
			}
			if len(w.stored()) != 0 {
				t.Fatalf("spans stored during the outage")
			}
			w.setFail(nil) // the store comes back
			if err := p.Submit(context.Background(), testSpans(2, 9, "svc", "")); err != nil {
				t.Fatalf("Submit after recovery = %v", err)
			}
			if got := len(w.stored()); got != 2 {
				t.Errorf("stored %d spans after recovery, want 2", got)
			}
		})
	}
}

func TestPipelineIsolatesBadRequest(t *testing.T) {
	w := newMemWriter()
	p := newTestPipeline(t, testConfig(), w, nil)
	w.setFail(func(spans []store.Span) error {
		for _, s := range spans {
			if s.Name == "poison" {
				return errors.New("invalid byte sequence for encoding")
			}
		}
		return nil
	})
	entered, release := w.hold()
	defer release()
	results := make(chan submitResult, 4)
	submitAsync(context.Background(), p, 0, testSpans(1, 100, "svc", ""), results)
	<-entered
	bad := testSpans(2, 2, "svc", "")
	bad[1].Name = "poison"
	submitAsync(context.Background(), p, 1, testSpans(2, 1, "svc", ""), results)
	submitAsync(context.Background(), p, 2, bad, results)
	submitAsync(context.Background(), p, 3, testSpans(2, 3, "svc", ""), results)
	waitFor(t, "3 queued requests", func() bool { _, reqs := p.queued(); return reqs == 3 })
	release()
	for range 4 {
		r := <-results
		if r.id == 2 {
			if !isUnavailable(r.err) {
				t.Errorf("poison request: %v, want an unavailable error", r.err)
			}
		} else if r.err != nil {
			t.Errorf("request %d failed with the poison one: %v", r.id, r.err)
		}
	}
	if got := len(w.stored()); got != 5 {
		t.Errorf("stored %d spans, want 5 (all but the poison request)", got)
	}
}

func TestPipelineOverload(t *testing.T) {
	w := newMemWriter()
	cfg := testConfig()
	cfg.MaxSpansPerRequest = 10
	cfg.QueueSpans = 10
	p := newTestPipeline(t, cfg, w, nil)
	entered, release := w.hold()
	defer release()

	results := make(chan submitResult, 3)
	submitAsync(context.Background(), p, 0, testSpans(6, 0, "svc", ""), results)
	<-entered // 6 spans in a commit still count
	submitAsync(context.Background(), p, 1, testSpans(4, 1, "svc", ""), results)
	waitFor(t, "a queued request", func() bool { _, reqs := p.queued(); return reqs == 1 })

	// The queue is full: refused at once, nothing queued.
	if err := p.Submit(context.Background(), testSpans(1, 2, "svc", "")); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("Submit into a full queue = %v, want ErrOverloaded", err)
	}
	if spans, _ := p.queued(); spans != 10 {
		t.Errorf("queue holds %d spans, want 10", spans)
	}
	release()
	for range 2 {
		if r := <-results; r.err != nil {
			t.Errorf("Submit %d: %v", r.id, r.err)
		}
	}
	// Room again once committed.
	if err := p.Submit(context.Background(), testSpans(10, 3, "svc", "")); err != nil {
		t.Errorf("Submit after the queue drained = %v", err)
	}
}

func TestPipelineByteBound(t *testing.T) {
	w := newMemWriter()
	cfg := testConfig()
	one := spansBytes(testSpans(1, 0, "svc", ""))
	cfg.QueueBytes = 3 * one
	p := newTestPipeline(t, cfg, w, nil)
	entered, release := w.hold()
	defer release()

	results := make(chan submitResult, 2)
	// Bigger than the byte budget, but the queue is empty: admitted.
	submitAsync(context.Background(), p, 0, testSpans(5, 0, "svc", ""), results)
	<-entered
	if err := p.Submit(context.Background(), testSpans(1, 1, "svc", "")); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("Submit past the byte budget = %v, want ErrOverloaded", err)
	}
	release()
	if r := <-results; r.err != nil {
		t.Fatalf("oversized request into an empty queue: %v", r.err)
	}
}

// TestPipelineBoundedUnderLoad offers far more than the queue holds from
// many goroutines: every request is either committed or refused with
// ErrOverloaded, and the queue never exceeds its bound.
func TestPipelineBoundedUnderLoad(t *testing.T) {
	w := newMemWriter()
	cfg := testConfig()
	cfg.Writers = 2
	cfg.MaxSpansPerRequest = 50
	cfg.QueueSpans = 200
	cfg.BatchSpans = 64
	p := newTestPipeline(t, cfg, w, nil)
	var over atomic.Bool
	w.check = func() {
		if spans, _ := p.queued(); spans > cfg.QueueSpans {
			over.Store(true)
		}
		time.Sleep(100 * time.Microsecond) // a store slower than the offered load
	}
	const clients, perClient = 16, 40
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range perClient {
				err := p.Submit(context.Background(), testSpans(10+i%40, uint64(c*1000+i), "svc", ""))
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrOverloaded):
					refused.Add(1)
				default:
					t.Errorf("Submit: %v", err)
				}
				if spans, _ := p.queued(); spans > cfg.QueueSpans {
					over.Store(true)
				}
			}
		})
	}
	wg.Wait()
	if over.Load() {
		t.Errorf("queue exceeded %d spans", cfg.QueueSpans)
	}
	if ok.Load()+refused.Load() != clients*perClient || ok.Load() == 0 {
		t.Errorf("ok %d + refused %d != %d", ok.Load(), refused.Load(), clients*perClient)
	}
	t.Logf("committed %d requests, refused %d", ok.Load(), refused.Load())
}

func TestPipelineClose(t *testing.T) {
	t.Run("drains the queue", func(t *testing.T) {
		w := newMemWriter()
		p, err := NewPipeline(testConfig(), w, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		entered, release := w.hold()
		defer release()
		results := make(chan submitResult, 3)
		for i := range 3 {
			submitAsync(context.Background(), p, i, testSpans(2, uint64(i), "svc", ""), results)
		}
		<-entered
		waitFor(t, "queued requests", func() bool { spans, _ := p.queued(); return spans == 6 })
		closed := make(chan error)
		go func() { closed <- p.Close(context.Background()) }()
		waitFor(t, "closing", func() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.closed })
		if err := p.Submit(context.Background(), testSpans(1, 9, "svc", "")); !errors.Is(err, ErrClosed) {
			t.Errorf("Submit after Close = %v, want ErrClosed", err)
		}
		release()
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}
		for range 3 {
			if r := <-results; r.err != nil {
				t.Errorf("queued request %d: %v", r.id, r.err)
			}
		}
		if got := len(w.stored()); got != 6 {
			t.Errorf("stored %d spans, want the 6 queued before Close", got)
		}
	})
	t.Run("gives up when its context ends", func(t *testing.T) {
		w := newMemWriter()
		p, err := NewPipeline(testConfig(), w, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		entered, release := w.hold()
		defer release()
		results := make(chan submitResult, 1)
		submitAsync(context.Background(), p, 0, testSpans(2, 0, "svc", ""), results)
		<-entered
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := p.Close(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Close = %v, want context.Canceled", err)
		}
		// The stuck write is cancelled and its request told to retry.
		if r := <-results; !isUnavailable(r.err) {
			t.Errorf("in-flight request = %v, want unavailable", r.err)
		}
	})
}

func TestPipelineSubmitContext(t *testing.T) {
	w := newMemWriter()
	p := newTestPipeline(t, testConfig(), w, nil)
	entered, release := w.hold()
	defer release()
	results := make(chan submitResult, 1)
	submitAsync(context.Background(), p, 0, testSpans(1, 0, "svc", ""), results)
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := make(chan submitResult, 1)
	submitAsync(ctx, p, 1, testSpans(3, 1, "svc", ""), cancelled)
	waitFor(t, "a queued request", func() bool { _, reqs := p.queued(); return reqs == 1 })
	cancel()
	if r := <-cancelled; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("Submit with a cancelled context = %v", r.err)
	}
	release()
	<-results
	// Documented behaviour: once queued, the spans are still committed.
	waitFor(t, "the cancelled request's commit", func() bool { return len(w.stored()) == 4 })
}

type fakeDeploys struct {
	mu    sync.Mutex
	got   []store.Deploy
	fails int // fail this many calls first
}

func (f *fakeDeploys) RecordDeploy(_ context.Context, d store.Deploy) (store.Deploy, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 {
		f.fails--
		return store.Deploy{}, errors.New("database is locked")
	}
	f.got = append(f.got, d)
	d.ID = int64(len(f.got))
	return d, nil
}

func (f *fakeDeploys) recorded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, d := range f.got {
		out = append(out, fmt.Sprintf("%s@%s %s %d", d.Service, d.Version, d.Source, d.At.UnixNano()))
	}
	slices.Sort(out)
	return out
}

func TestPipelineDeployMarkers(t *testing.T) {
	w := newMemWriter()
	d := &fakeDeploys{}
	p := newTestPipeline(t, testConfig(), w, d)
	ctx := context.Background()

	first := testSpans(3, 5, "feed-api", "v1")
	first[0].StartUnixNano, first[1].StartUnixNano = 200, 100 // earliest is not first
	if err := p.Submit(ctx, append(first, testSpans(2, 6, "ranker", "")...)); err != nil {
		t.Fatal(err)
	}
	if err := p.Submit(ctx, testSpans(2, 7, "feed-api", "v1")); err != nil { // seen: no marker
		t.Fatal(err)
	}
	if err := p.Submit(ctx, testSpans(2, 8, "feed-api", "v2")); err != nil {
		t.Fatal(err)
	}
	v2 := testSpans(1, 8, "feed-api", "v2")[0].StartUnixNano
	want := []string{"feed-api@v1 auto 100", fmt.Sprintf("feed-api@v2 auto %d", v2)}
	waitFor(t, "two markers", func() bool { return len(d.recorded()) >= 2 })
	if got := d.recorded(); !slices.Equal(got, want) {
		t.Errorf("markers = %v, want %v", got, want)
	}

	t.Run("failure is retried on a later batch", func(t *testing.T) {
		d.mu.Lock()
		d.fails = 1
		d.mu.Unlock()
		if err := p.Submit(ctx, testSpans(1, 9, "feed-api", "v3")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the failed attempt", func() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.fails == 0 })
		if err := p.Submit(ctx, testSpans(1, 10, "feed-api", "v3")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the v3 marker", func() bool { return len(d.recorded()) == 3 })
		if got := d.recorded()[2]; !strings.HasPrefix(got, "feed-api@v3 auto") {
			t.Errorf("third marker = %q", got)
		}
	})
	t.Run("failed commits record nothing", func(t *testing.T) {
		w.setFail(func([]store.Span) error { return errStoreDown })
		if err := p.Submit(ctx, testSpans(1, 11, "feed-api", "v4")); !isUnavailable(err) {
			t.Fatalf("Submit = %v", err)
		}
		w.setFail(nil)
		if err := p.Submit(ctx, testSpans(1, 12, "other", "")); err != nil {
			t.Fatal(err)
		}
		if got := len(d.recorded()); got != 3 {
			t.Errorf("%d markers after a failed commit, want 3", got)
		}
	})
}

func TestDeployTrackerBounded(t *testing.T) {
	d := newDeployTracker(&fakeDeploys{}, 2)
	for i := range 5 {
		if got := d.observe(testSpans(1, uint64(i), "svc", fmt.Sprint("v", i))); len(got) != 1 {
			t.Fatalf("observe new pair %d: %d markers", i, len(got))
		}
		if len(d.seen) > 2 {
			t.Fatalf("seen set grew to %d, bound 2", len(d.seen))
		}
	}
}
