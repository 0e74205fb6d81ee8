package demo

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailscope/tailscope/app"
	"github.com/tailscope/tailscope/feedsvc/scenario"
)

func testConfig(t *testing.T, scenarioName string) Config {
	t.Helper()
	cfg := app.DefaultConfig()
	cfg.HTTPAddr, cfg.Ingest.HTTPAddr, cfg.Ingest.GRPCAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.DatabaseURL = "sqlite:" + filepath.Join(t.TempDir(), "demo.db")
	cfg.CacheTTL = time.Second
	return Config{App: cfg, Scenario: scenarioName, Seed: 11, ProfileEvery: 5 * time.Second}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", u, res.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

func TestPlan(t *testing.T) {
	sc, err := Plan("", 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Name != DefaultScenario || len(sc.Steps) == 0 || sc.Steps[len(sc.Steps)-1].Version != "v2" || sc.Steps[len(sc.Steps)-1].After != 90*time.Second {
		t.Errorf("default plan = %+v; want the slow-profile scenario with a v2 deploy at 90s", sc)
	}
	if _, err := Plan("no-such-scenario", 0); err == nil {
		t.Error("an unknown scenario was accepted")
	}
	for _, name := range scenario.Names() {
		if _, err := Plan(name, 0); err != nil {
			t.Errorf("Plan(%q): %v", name, err)
		}
	}
}

// TestDemoSmoke starts the demo as `make run` does (at a low rate), and
// checks that within seconds every page has data: feedsvc's services are
// listed, and the demo's own CPU profiles arrived with span labels. The
// analysis of those profiles is checked against ground truth in package
// acceptance (large-payload), where feedsvc runs without the race detector.
func TestDemoSmoke(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, "")
	cfg.Rate = 5
	cfg.ProfileEvery = 2 * time.Second
	var banner strings.Builder
	cfg.Out = &banner
	d, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.PrintBanner(&banner)
	if !strings.Contains(banner.String(), "tailscope is running: open "+d.App.URL()) {
		t.Errorf("banner does not give the URL:\n%s", banner.String())
	}
	time.Sleep(8 * time.Second)
	res, err := d.Drain()
	if err != nil {
		t.Fatal(err)
	}
	if res == nil || res.OK == 0 {
		t.Fatalf("the load generator got no answers: %+v", res)
	}
	var rep struct {
		Services []struct {
			Name string `json:"name"`
		} `json:"services"`
	}
	getJSON(t, d.App.URL()+"/api/v1/services?from=now-5m", &rep)
	names := map[string]bool{}
	for _, s := range rep.Services {
		names[s.Name] = true
	}
	for _, want := range []string{"feed-api", "candidate-svc", "feature-svc", "profile-svc", "ranker"} {
		if !names[want] {
			t.Errorf("services %v lack %s", names, want)
		}
	}
	series, err := d.App.Store().ProfileSeries(ctx, time.Now().Add(-time.Minute), time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	cpu := false
	for _, s := range series {
		cpu = cpu || (s.Service == "feedsvc" && s.Type == "cpu")
	}
	if !cpu {
		t.Errorf("no CPU profile of the demo arrived: %+v", series)
	}
}

// TestDemoStopsInEveryPhase: Ctrl-C (the context ending) stops the demo
// while the scenario still has steps to play and after its last step (the
// v2 deploy), when the demo used to wait forever for a value Wait had
// already taken.
func TestDemoStopsInEveryPhase(t *testing.T) {
	phases := []struct {
		name  string
		ready func(d *Demo) <-chan struct{}
	}{
		{"before the deploy", func(d *Demo) <-chan struct{} { return nil }},
		{"after the deploy", func(d *Demo) <-chan struct{} { return d.scenario.done }},
	}
	for _, ph := range phases {
		t.Run(ph.name, func(t *testing.T) {
			cfg := testConfig(t, "")
			cfg.Rate = 5
			cfg.DeployAfter = 500 * time.Millisecond
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			d, err := Start(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if ready := ph.ready(d); ready != nil {
				select {
				case <-ready:
				case <-time.After(time.Minute):
					d.Close()
					t.Fatal("the scenario did not play its last step within a minute")
				}
				if d.scenario.err != nil {
					t.Fatalf("scenario: %v", d.scenario.err)
				}
			}
			served := make(chan error, 1)
			go func() { served <- d.serve(ctx) }()
			cancel()
			// A generous bound: this detects a hang, it does not time
			// the shutdown.
			select {
			case err := <-served:
				if err != nil {
					t.Fatalf("demo stopped with %v", err)
				}
			case <-time.After(time.Minute):
				t.Fatal("the demo did not stop within a minute of Ctrl-C")
			}
		})
	}
}
