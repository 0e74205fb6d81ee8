package web

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// TestBudgetAlertHistory: a budget's page and API list its alert firings
// with their cause and links, and the rules in force.
func TestBudgetAlertHistory(t *testing.T) {
	h, db := newWritableServer(t)
	ctx := context.Background()
	b, err := db.CreateBudget(ctx, store.Budget{Name: "Feed", Service: "feed-api", Endpoint: "GET /v1/feed", Threshold: 500 * time.Millisecond, Target: 0.99, Period: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	started := time.Date(2026, 11, 23, 14, 10, 0, 0, time.UTC)
	f, _, err := db.CreateFiring(ctx, store.AlertFiring{BudgetID: b.ID, Rule: "14.4× over 1h and 5m", Severity: "page", Factor: 14.4,
		Long: time.Hour, Short: 5 * time.Minute, StartedAt: started, LongBurn: 22.5, ShortBurn: 51,
		Cause: "profile-svc for tenant=acme", CauseShare: 0.92, FixedP99Ms: 219})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.ResolveFiring(ctx, f.ID, started.Add(20*time.Minute), 16, 0.5); err != nil {
		t.Fatal(err)
	}

	w := serve(t, h, "GET", fmt.Sprintf("/budgets/%d", b.ID), "")
	body := w.Body.String()
	if w.Code != 200 || !strings.Contains(body, `data-testid="alert-row"`) || !strings.Contains(body, "92% of the tail: profile-svc for tenant=acme, p99 if fixed 219 ms") ||
		!strings.Contains(body, "2026-11-23 14:30 UTC") || !strings.Contains(body, "6× over 6h and 30m (page)") {
		t.Fatalf("budget page: %d\n%s", w.Code, body)
	}

	w = serve(t, h, "GET", fmt.Sprintf("/api/v1/budgets/%d/alerts", b.ID), "")
	var res struct {
		Rules []struct {
			Name string `json:"name"`
		} `json:"rules"`
		Firings []firingJSON `json:"firings"`
	}
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &res) != nil {
		t.Fatalf("API: %d %s", w.Code, w.Body.String())
	}
	if len(res.Rules) != 3 || len(res.Firings) != 1 {
		t.Fatalf("API: %+v", res)
	}
	got := res.Firings[0]
	if got.Cause != "profile-svc for tenant=acme" || got.ResolvedAt == nil || got.LongBurn != 16 || got.Notified ||
		!strings.HasPrefix(got.Links["outliers"], "/outliers?") || !strings.Contains(got.Links["outliers"], "from=2026-11-23T13%3A10%3A00Z") {
		t.Errorf("firing %+v", got)
	}
	if w := serve(t, h, "GET", "/api/v1/budgets/999/alerts", ""); w.Code != 404 {
		t.Errorf("unknown budget: %d", w.Code)
	}
	// A budget without firings says so.
	b2, err := db.CreateBudget(ctx, store.Budget{Name: "Other", Service: "x", Endpoint: "GET /", Threshold: time.Second, Target: 0.99, Period: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if w := serve(t, h, "GET", fmt.Sprintf("/budgets/%d", b2.ID), ""); !strings.Contains(w.Body.String(), `data-testid="no-alerts"`) {
		t.Errorf("a budget without firings: %d", w.Code)
	}
}
