package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tailscope/tailscope/cache"
	"github.com/tailscope/tailscope/internal/admission"
	"github.com/tailscope/tailscope/static"
	"github.com/tailscope/tailscope/store"
)

// poolServer is a handler over the shared fixture with the given pool and
// an optional cache.
func poolServer(t *testing.T, st Store, pool *admission.Pool, withCache bool) http.Handler {
	t.Helper()
	assets, err := static.Load()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Store: st, Now: fixtureNow, Assets: assets, Version: "test", Analysis: pool}
	if withCache {
		m, err := cache.NewMemory(64)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Cache = cache.NewAside(m, time.Minute, 0, nil)
	}
	return New(cfg).Handler()
}

// TestAnalysisTooLong: an analysis past the pool's time limit answers 422
// saying to narrow the range, as JSON and as a page — not an empty reply.
func TestAnalysisTooLong(t *testing.T) {
	f := sharedFixture(t)
	h := poolServer(t, f.db, admission.New(admission.Limits{Concurrency: 1, Timeout: time.Nanosecond}), false)
	for _, target := range []string{"/api/v1/services", "/"} {
		w := serve(t, h, http.MethodGet, target, "")
		if w.Code != http.StatusUnprocessableEntity || !strings.Contains(w.Body.String(), "too large") || !strings.Contains(w.Body.String(), "Narrow the time range") {
			t.Errorf("GET %s: %d %s, want 422 saying too large, narrow the range", target, w.Code, truncateText(w.Body.String(), 300))
		}
	}
}

// TestAnalysisBusy: with every slot taken past the queue wait, the answer
// is 503 with Retry-After.
func TestAnalysisBusy(t *testing.T) {
	f := sharedFixture(t)
	pool := admission.New(admission.Limits{Concurrency: 1, QueueWait: time.Millisecond})
	hold, held := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		done <- pool.Run(context.Background(), func(context.Context) error { close(held); <-hold; return nil })
	}()
	<-held
	defer func() { close(hold); <-done }()
	h := poolServer(t, f.db, pool, false)
	for _, target := range []string{"/api/v1/services", "/"} {
		w := serve(t, h, http.MethodGet, target, "")
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "busy") {
			t.Errorf("GET %s: %d Retry-After=%q %s, want 503 busy with Retry-After", target, w.Code, w.Header().Get("Retry-After"), truncateText(w.Body.String(), 300))
		}
	}
}

// blockingReads is a store whose Rollups (what the services overview
// reads) waits for its context to end and reports that it did: the proof
// that a client's disconnect reaches the store read.
type blockingReads struct {
	Store
	entered   chan struct{}
	cancelled chan error
}

func (b *blockingReads) Rollups(ctx context.Context, q store.RollupQuery) ([]store.Rollup, error) {
	b.entered <- struct{}{}
	<-ctx.Done()
	b.cancelled <- ctx.Err()
	return nil, ctx.Err()
}

// TestAnalysisCancelledWithClient: when every client waiting for an
// analysis has gone, its store reads are cancelled, through the cache's
// coalescing and without a cache alike.
func TestAnalysisCancelledWithClient(t *testing.T) {
	for _, withCache := range []bool{false, true} {
		name := "no cache"
		if withCache {
			name = "cache"
		}
		t.Run(name, func(t *testing.T) {
			st := &blockingReads{Store: sharedFixture(t).db, entered: make(chan struct{}, 64), cancelled: make(chan error, 64)}
			h := poolServer(t, st, admission.New(admission.Limits{Concurrency: 4, Timeout: time.Hour}), withCache)
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan int)
			go func() {
				r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/api/v1/services", nil)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				served <- w.Code
			}()
			<-st.entered // the analysis is reading
			cancel()     // the client goes away
			if err := <-st.cancelled; err == nil {
				t.Fatal("the store read was not cancelled")
			}
			<-served
		})
	}
}
