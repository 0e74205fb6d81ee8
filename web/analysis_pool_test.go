package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
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

// withRecords is the shared fixture's store with one budget and one
// incident (id 1), read-only, so the routes that show them compute their
// analyses without writing to the fixture.
type withRecords struct {
	Store
	budget   store.Budget
	incident store.Incident
}

func (w withRecords) BudgetByID(_ context.Context, id int64) (store.Budget, error) {
	if id != w.budget.ID {
		return store.Budget{}, store.ErrNotFound
	}
	return w.budget, nil
}

func (w withRecords) Budgets(context.Context) ([]store.Budget, error) {
	return []store.Budget{w.budget}, nil
}

func (w withRecords) IncidentByID(_ context.Context, id int64) (store.Incident, error) {
	if id != w.incident.ID {
		return store.Incident{}, store.ErrNotFound
	}
	return w.incident, nil
}

func (w withRecords) Incidents(context.Context) ([]store.Incident, error) {
	return []store.Incident{w.incident}, nil
}

// TestAnalysesDoNotNest: every GET route answers without waiting for an
// analysis slot when it is the only request, with one slot — the default
// on machines of up to seven cores. An analysis that starts another from
// inside its run (the service map listed its endpoints that way) waits for
// a second slot held by itself: with a millisecond's queue wait it answers
// 503 at once here, where a real server stalled for the queue wait (10 s)
// and then answered 503. Each route gets a fresh server, so nothing is
// served from an earlier request's cache.
func TestAnalysesDoNotNest(t *testing.T) {
	f := sharedFixture(t)
	trace := slowestAcmeTrace(t, f)
	st := withRecords{
		Store: f.db,
		budget: store.Budget{ID: 1, Name: "feed", Service: "feed-api", Endpoint: "GET /v1/feed", Threshold: 300 * time.Millisecond,
			Target: 0.99, Period: 24 * time.Hour, CreatedAt: fixtureStart, UpdatedAt: fixtureStart},
		incident: store.Incident{ID: 1, Title: "slow feed", From: fixtureNow().Add(-time.Hour), To: fixtureNow(), Services: []string{"feed-api"},
			CreatedAt: fixtureStart, UpdatedAt: fixtureStart},
	}
	params := strings.NewReplacer("{traceID}", trace, "{spanID}", firstSpan(t, f, trace), "{id}", "1")
	ids := map[string]string{"/deploys/{id}": strconv.FormatInt(f.deploy.ID, 10)}
	for _, withCache := range []bool{false, true} {
		probe := New(Config{Store: st, Now: fixtureNow, Version: "test"})
		tested := 0
		for _, rt := range probe.routes() {
			if rt.Method != http.MethodGet || rt.Surface == surfaceAsset || rt.Surface == surfaceHealth {
				continue
			}
			path := rt.Pattern
			if id, ok := ids[path]; ok {
				path = strings.Replace(path, "{id}", id, 1)
			}
			target := params.Replace(path) + "?from=now-1h&service=feed-api"
			h := poolServer(t, st, admission.New(admission.Limits{Concurrency: 1, QueueWait: time.Millisecond, Timeout: time.Hour}), withCache)
			w := serve(t, h, http.MethodGet, target, "")
			if w.Code == http.StatusServiceUnavailable {
				t.Errorf("cache %v: GET %s: 503 %s: an analysis waited for a slot while it was the only request", withCache, target, truncateText(w.Body.String(), 200))
			}
			if w.Code == http.StatusNotFound && strings.Contains(rt.Pattern, "{") {
				t.Errorf("cache %v: GET %s: 404: the route's record is missing, so its analyses were not tried", withCache, target)
			}
			tested++
		}
		if tested < 30 {
			t.Fatalf("only %d GET routes tried", tested)
		}
	}
}
