package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/cache"
	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/static"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/postgres"
)

// TestReviewOnPostgresWithRedisCache runs the budget and incident forms
// against the production stack: PostgreSQL for spans, budgets and
// incidents, Redis for the analysis cache. A report served from the cache
// must be the report computed without it.
func TestReviewOnPostgresWithRedisCache(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, testenv.FreshPostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	redis, err := cache.OpenRedis(ctx, testenv.RedisURL(t), fmt.Sprintf("tailscope-review-test-%d:", time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { redis.Close() })

	query := analysistest.Cause{Name: "slow-query", Dependency: analysistest.Postgres, Probability: 0.2, Extra: time.Second}
	for _, ds := range []analysistest.Dataset{
		analysistest.Generate(analysistest.Scenario{Seed: 31, Start: rvStart, Window: 30 * time.Minute, Traces: 400}),
		analysistest.Generate(analysistest.Scenario{Seed: 32, Start: rvStart.Add(30 * time.Minute), Window: 30 * time.Minute, Traces: 400, Parallel: true, Causes: []analysistest.Cause{query}}),
	} {
		if err := db.WriteSpans(ctx, ds.Spans); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.RecordDeploy(ctx, store.Deploy{Service: analysistest.FeedAPI, Version: "v2", At: rvStart.Add(30 * time.Minute), Source: store.DeploySourceAuto}); err != nil {
		t.Fatal(err)
	}
	assets, err := static.Load()
	if err != nil {
		t.Fatal(err)
	}
	cached := New(Config{Store: db, Now: rvNow, Assets: assets, Version: "test", Cache: cache.NewAside(redis, time.Minute, 0, nil)}).Handler()
	direct := New(Config{Store: db, Now: rvNow, Assets: assets, Version: "test"}).Handler()

	w := rvPost(t, cached, "/budgets", budgetForm())
	if w.Code != http.StatusSeeOther {
		t.Fatalf("budget form: %d %s", w.Code, rvHead(w.Body.String(), 20))
	}
	budget := w.Header().Get("Location")
	if w := rvGet(t, cached, budget); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `data-testid="hop-table"`) {
		t.Fatalf("budget page: %d", w.Code)
	}
	bad := budgetForm()
	bad.Set("threshold_ms", "-1")
	if w := rvPost(t, cached, "/budgets", bad); w.Code != http.StatusBadRequest {
		t.Errorf("negative threshold on postgres: %d", w.Code)
	}
	if bs, _ := db.Budgets(ctx); len(bs) != 1 {
		t.Errorf("%d budgets stored, want 1", len(bs))
	}

	form := url.Values{"title": {"Feed regression"}, "from": {"2026-11-23T14:30:00Z"}, "to": {"2026-11-23T14:50:00Z"}, "services": {"feed-api"}, "notes": {"*slow*"}}
	w = rvPost(t, cached, "/incidents", form)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("incident form: %d %s", w.Code, rvHead(w.Body.String(), 20))
	}
	incident := w.Header().Get("Location")
	if w := rvGet(t, cached, incident); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `data-testid="incident-budget"`) {
		t.Fatalf("incident page: %d", w.Code)
	}
	first := rvGet(t, cached, incident+"/report.json").Body.String()
	again := rvGet(t, cached, incident+"/report.json").Body.String()
	fresh := rvGet(t, direct, incident+"/report.json").Body.String()
	if first != again || first != fresh {
		t.Errorf("report.json differs between computing (%d bytes), the cache (%d) and no cache (%d)", len(first), len(again), len(fresh))
	}
	if !strings.Contains(first, `"verdict": "regressed"`) {
		t.Error("the report on postgres does not find the regression")
	}

	for _, p := range []string{incident, budget} {
		if w := rvPost(t, cached, p+"/delete", url.Values{}); w.Code != http.StatusSeeOther {
			t.Errorf("delete %s: %d", p, w.Code)
		}
		if w := rvGet(t, cached, p); w.Code != http.StatusNotFound {
			t.Errorf("%s after delete: %d", p, w.Code)
		}
	}
}
