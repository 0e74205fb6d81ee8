package ingest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/store"
)

// memWriter is an in-memory store.Writer for the receiver's tests (the
// real stores are tested by store/storetest). Like the real ones it keeps
// one copy of a span per (trace id, span id, start).
type memWriter struct {
	mu    sync.Mutex
	spans map[spanKey]store.Span
	calls []int // spans per WriteSpans call
	fail  func([]store.Span) error
	// gate, when set, makes WriteSpans announce itself on entered and
	// wait for a value on gate, so tests can hold a commit open.
	gate    chan struct{}
	entered chan struct{}
	check   func() // called inside every WriteSpans
}

type spanKey struct {
	trace store.TraceID
	span  store.SpanID
	start int64
}

func newMemWriter() *memWriter { return &memWriter{spans: map[spanKey]store.Span{}} }

func (w *memWriter) WriteSpans(ctx context.Context, spans []store.Span) error {
	w.mu.Lock()
	gate, entered, fail, check := w.gate, w.entered, w.fail, w.check
	w.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return fmt.Errorf("memwriter: %w: %w", store.ErrUnavailable, ctx.Err())
		}
	}
	if check != nil {
		check()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, len(spans))
	if fail != nil {
		if err := fail(spans); err != nil {
			return err
		}
	}
	for _, s := range spans {
		w.spans[spanKey{s.TraceID, s.SpanID, s.StartUnixNano}] = s
	}
	return nil
}

func (w *memWriter) setFail(f func([]store.Span) error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fail = f
}

// hold makes later WriteSpans calls wait for release; it returns the
// channel on which each call announces itself.
func (w *memWriter) hold() (entered <-chan struct{}, release func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gate = make(chan struct{})
	w.entered = make(chan struct{}, 1024)
	gate := w.gate
	var once sync.Once
	return w.entered, func() {
		once.Do(func() {
			w.mu.Lock()
			w.gate, w.entered = nil, nil
			w.mu.Unlock()
			close(gate)
		})
	}
}

func (w *memWriter) stored() map[spanKey]store.Span {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[spanKey]store.Span, len(w.spans))
	for k, v := range w.spans {
		out[k] = v
	}
	return out
}

func (w *memWriter) callSizes() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int(nil), w.calls...)
}

var errStoreDown = fmt.Errorf("connection refused: %w", store.ErrUnavailable)

// testSpans makes n valid spans of service svc, version ver; id makes the
// span ids distinct across calls.
func testSpans(n int, id uint64, svc, ver string) []store.Span {
	out := make([]store.Span, n)
	for i := range out {
		var tid store.TraceID
		binary.BigEndian.PutUint64(tid[:8], id+1)
		binary.BigEndian.PutUint64(tid[8:], uint64(i)+1)
		var sid store.SpanID
		binary.BigEndian.PutUint64(sid[:], id<<20|uint64(i)+1)
		out[i] = store.Span{
			TraceID: tid, SpanID: sid, Service: svc, Version: ver, Name: "op",
			StartUnixNano: 1_735_689_600_000_000_000 + int64(id)*1000 + int64(i), DurationNano: 1000,
		}
	}
	return out
}

// testConfig is a small configuration for fast tests.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.HTTPAddr, cfg.GRPCAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Writers = 1
	cfg.RetryAfter = time.Second
	return cfg
}

func newTestPipeline(t *testing.T, cfg Config, w store.Writer, deploys DeployRecorder) *Pipeline {
	t.Helper()
	p, err := NewPipeline(cfg, w, deploys, prometheus.NewRegistry(), testenv.Logger(t))
	if err != nil {
		t.Fatalf("NewPipeline: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// waitFor polls cond until it holds. There is no deadline of its own: the
// test binary's timeout catches a condition that never comes, so a slow
// machine cannot fail the test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i%10000 == 9999 {
			t.Logf("still waiting for %s", what)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// queued returns the spans counted in p's queue.
func (p *Pipeline) queued() (spans, requests int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.spans, len(p.queue) - p.head
}

type submitResult struct {
	id  int
	err error
}

// submitAsync submits in a goroutine and reports on the returned channel.
func submitAsync(ctx context.Context, p *Pipeline, id int, spans []store.Span, out chan<- submitResult) {
	go func() { out <- submitResult{id, p.Submit(ctx, spans)} }()
}

func isUnavailable(err error) bool { return err != nil && errors.Is(err, store.ErrUnavailable) }
