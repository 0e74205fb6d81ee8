package alert

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/sqlite"
)

// receiver is a webhook endpoint that records what it is sent and fails
// the first failures attempts with a 500.
type receiver struct {
	mu       sync.Mutex
	failures int
	attempts []http.Header
	accepted []Notification
	raw      []map[string]any
	srv      *httptest.Server
}

func newReceiver(t *testing.T, failures int) *receiver {
	r := &receiver{failures: failures}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.attempts = append(r.attempts, req.Header.Clone())
		if len(r.attempts) <= r.failures {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		var n Notification
		var raw map[string]any
		if err := json.Unmarshal(body, &n); err != nil || json.Unmarshal(body, &raw) != nil {
			t.Errorf("webhook body: %v: %s", err, body)
		}
		r.accepted = append(r.accepted, n)
		r.raw = append(r.raw, raw)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) snapshot() ([]http.Header, []Notification, []map[string]any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]http.Header(nil), r.attempts...), append([]Notification(nil), r.accepted...), append([]map[string]any(nil), r.raw...)
}

func write(t *testing.T, db store.Writer, ds analysistest.Dataset) {
	t.Helper()
	for i := 0; i < len(ds.Spans); i += 5000 {
		if err := db.WriteSpans(context.Background(), ds.Spans[i:min(i+5000, len(ds.Spans))]); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBurnAlert replays a burn: twenty healthy minutes, then twenty with
// profile-svc slow for tenant acme (a budget of 99% under 500 ms burns at
// over 14.4× in the hour and the last five minutes), then ten healthy
// minutes. A webhook gets exactly one firing naming the cause, then one
// resolve; a webhook that fails twice gets the same firing on the third
// attempt, with one idempotency key, and nothing twice.
func TestBurnAlert(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "alerts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t0 := time.Now().Add(-2 * time.Hour).Truncate(time.Minute)
	slow := analysistest.Cause{Name: "slow-profile", Dependency: analysistest.ProfileSvc, Tenant: "acme", Extra: 800 * time.Millisecond}
	// acme sends about half the requests (Zipf weights over three).
	tenants := []string{"acme", "globex", "initech"}
	write(t, db, analysistest.Generate(analysistest.Scenario{Seed: 1, Start: t0.Add(20 * time.Minute), Window: 20 * time.Minute, Traces: 1000, Tenants: tenants}))
	write(t, db, analysistest.Generate(analysistest.Scenario{Seed: 2, Start: t0.Add(40 * time.Minute), Window: 20 * time.Minute, Traces: 1000, Tenants: tenants, Causes: []analysistest.Cause{slow}}))
	b, err := db.CreateBudget(ctx, store.Budget{Name: "Feed latency", Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint,
		Threshold: 500 * time.Millisecond, Target: 0.99, Period: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}

	good, flaky := newReceiver(t, 0), newReceiver(t, 2)
	rules, err := analysis.ParseBurnRules("14.4:1h:5m")
	if err != nil {
		t.Fatal(err)
	}
	now := t0.Add(60 * time.Minute)
	cfg := Config{Rules: rules, Targets: []Target{{URL: good.srv.URL, Format: "json"}, {URL: flaky.srv.URL, Format: "json"}},
		BaseURL: "https://tailscope.example", RetryMin: 10 * time.Millisecond, RetryMax: 40 * time.Millisecond,
		Now: func() time.Time { return now }}
	e := New(db, cfg)
	if err := e.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	e.Wait()
	_, got, _ := good.snapshot()
	if len(got) != 1 {
		t.Fatalf("%d notifications after the burn, want one firing", len(got))
	}
	n := got[0]
	if n.Event != "firing" || n.Budget.ID != b.ID || n.Rule.Name != "14.4× over 1h and 5m" || n.Burn.Long < 14.4 || n.Burn.Short < 14.4 {
		t.Errorf("firing %+v", n)
	}
	if n.Cause == nil || !strings.Contains(n.Cause.Label, "profile-svc") || !strings.Contains(n.Cause.Label, "acme") || !n.Cause.Grouped ||
		n.Cause.Share < 0.5 || n.Cause.P99IfFixedMs <= 0 || n.Cause.P99IfFixedMs >= 800 {
		t.Errorf("cause %+v, want profile-svc for tenant acme with most of the tail", n.Cause)
	}
	if !strings.Contains(n.Summary, n.Cause.Label) || !strings.Contains(n.Summary, "p99 if fixed") {
		t.Errorf("summary %q does not carry the cause", n.Summary)
	}
	for name, link := range n.Links {
		u, err := url.Parse(link)
		if err != nil || !strings.HasPrefix(link, "https://tailscope.example/") {
			t.Errorf("%s link %q is not under the public URL", name, link)
			continue
		}
		for _, k := range []string{"from", "to"} {
			if v := u.Query().Get(k); v != "" {
				if _, err := time.Parse(time.RFC3339, v); err != nil {
					t.Errorf("%s link's %s = %q is not an absolute time", name, k, v)
				}
			}
		}
	}
	if !strings.Contains(n.Links["outliers"], "threshold_ms=500") || !strings.Contains(n.Links["open_incident"], "/incidents/new?") {
		t.Errorf("links %v", n.Links)
	}

	attempts, flakyGot, _ := flaky.snapshot()
	if len(attempts) != 3 || len(flakyGot) != 1 || flakyGot[0].ID != n.ID {
		t.Fatalf("failing receiver: %d attempts, %d accepted; want 3 and the same firing once", len(attempts), len(flakyGot))
	}
	for _, h := range attempts {
		if h.Get("Idempotency-Key") != n.ID {
			t.Errorf("attempt with idempotency key %q, want %q", h.Get("Idempotency-Key"), n.ID)
		}
	}
	firings, err := db.Firings(ctx, store.AlertQuery{BudgetID: b.ID})
	if err != nil || len(firings) != 1 || firings[0].FireSentAt.IsZero() || !firings[0].ResolvedAt.IsZero() {
		t.Fatalf("stored firings %+v, %v", firings, err)
	}

	// Still burning a minute later: no second firing, nothing resent.
	now = now.Add(time.Minute)
	if err := e.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	e.Wait()
	if _, got, _ := good.snapshot(); len(got) != 1 {
		t.Fatalf("%d notifications while still burning, want 1", len(got))
	}

	// Ten healthy minutes: the short window stops burning and the alert
	// resolves, though the hour still holds the burn.
	write(t, db, analysistest.Generate(analysistest.Scenario{Seed: 3, Start: t0.Add(61 * time.Minute), Window: 10 * time.Minute, Traces: 500, Tenants: tenants}))
	now = t0.Add(71 * time.Minute)
	if err := e.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	e.Wait()
	_, got, _ = good.snapshot()
	if len(got) != 2 || got[1].Event != "resolved" || got[1].FiringID != n.FiringID || got[1].ResolvedAt == nil || got[1].Burn.Short >= 14.4 {
		t.Fatalf("after recovery: %+v", got)
	}
	if _, flakyGot, _ := flaky.snapshot(); len(flakyGot) != 2 {
		t.Errorf("failing receiver accepted %d notifications, want the firing and the resolve", len(flakyGot))
	}

	// A restarted process resends nothing that was delivered.
	e2 := New(db, cfg)
	if err := e2.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	e2.Wait()
	if _, got, _ := good.snapshot(); len(got) != 2 {
		t.Errorf("a restart resent: %d notifications", len(got))
	}
}

// TestUndeliveredFiringIsResent: a firing stored but not delivered (the
// process died before its webhook answered) is sent by the next process.
func TestUndeliveredFiringIsResent(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "alerts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b, err := db.CreateBudget(ctx, store.Budget{Name: "b", Service: "svc", Endpoint: "GET /", Threshold: time.Second, Target: 0.99, Period: time.Hour * 24})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r := analysis.DefaultBurnRules()[0]
	f, _, err := db.CreateFiring(ctx, store.AlertFiring{BudgetID: b.ID, Rule: r.Name(), Severity: r.Severity, Factor: r.Factor,
		Long: r.Long, Short: r.Short, StartedAt: now.Add(-time.Minute), LongBurn: 20, ShortBurn: 30})
	if err != nil {
		t.Fatal(err)
	}
	rec := newReceiver(t, 0)
	e := New(db, Config{Targets: []Target{{URL: rec.srv.URL, Format: "slack"}}, Now: func() time.Time { return now }})
	if err := e.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	e.Wait()
	_, _, raw := rec.snapshot()
	// No requests: the rule no longer fires, so the firing is resolved
	// too; both events are sent, in Slack's format.
	if len(raw) != 2 {
		t.Fatalf("%d notifications, want the undelivered firing and its resolve", len(raw))
	}
	for _, m := range raw {
		if text, _ := m["text"].(string); !strings.Contains(text, `Budget "b"`) || m["blocks"] == nil {
			t.Errorf("slack payload %v", m)
		}
	}
	got, err := db.Firings(ctx, store.AlertQuery{BudgetID: b.ID})
	if err != nil || len(got) != 1 || got[0].ID != f.ID || got[0].FireSentAt.IsZero() || got[0].ResolveSentAt.IsZero() {
		t.Errorf("firing after resend: %+v, %v", got, err)
	}
}

func TestParseTargets(t *testing.T) {
	for in, want := range map[string]Target{
		"https://hooks.example/x":         {URL: "https://hooks.example/x", Format: "json"},
		"slack=https://hooks.slack.com/a": {URL: "https://hooks.slack.com/a", Format: "slack"},
	} {
		if got, err := ParseTarget(in); err != nil || got != want {
			t.Errorf("ParseTarget(%q) = %+v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "ftp://x", "slack=", "hooks.example"} {
		if _, err := ParseTarget(bad); err == nil {
			t.Errorf("ParseTarget(%q) accepted", bad)
		}
	}
}

// TestStopLeavesUndeliveredUnsent: stopping while a webhook keeps failing
// ends the retries at once and leaves the event for the next start.
func TestStopLeavesUndeliveredUnsent(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "alerts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b, err := db.CreateBudget(ctx, store.Budget{Name: "b", Service: "svc", Endpoint: "GET /", Threshold: time.Second, Target: 0.99, Period: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	r := analysis.DefaultBurnRules()[0]
	f, _, err := db.CreateFiring(ctx, store.AlertFiring{BudgetID: b.ID, Rule: r.Name(), Severity: r.Severity, Factor: r.Factor,
		Long: r.Long, Short: r.Short, StartedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	down := newReceiver(t, 1<<30)
	e := New(db, Config{Targets: []Target{{URL: down.srv.URL}}, RetryMin: time.Hour, Interval: time.Hour})
	stopped := make(chan struct{})
	go func() { e.Run(ctx); close(stopped) }()
	for {
		if attempts, _, _ := down.snapshot(); len(attempts) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-stopped:
	case <-time.After(30 * time.Second): // a hang detector, not a timing
		t.Fatal("Run did not return after its context ended")
	}
	got, err := db.Firings(context.Background(), store.AlertQuery{BudgetID: b.ID})
	if err != nil || len(got) != 1 || got[0].ID != f.ID || !got[0].FireSentAt.IsZero() {
		t.Errorf("after stopping: %+v, %v; want the firing still unsent", got, err)
	}
}
