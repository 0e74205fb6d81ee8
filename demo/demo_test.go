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
	"github.com/tailscope/tailscope/feedsvc"
	"github.com/tailscope/tailscope/feedsvc/scenario"
	"github.com/tailscope/tailscope/store"
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
	// Poll, rather than sleep, until the five services and a CPU profile
	// of the demo are in the store; the deadline only bounds a broken run.
	want := []string{"feed-api", "candidate-svc", "feature-svc", "profile-svc", "ranker"}
	var services map[string]bool
	cpu := false
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		services = serviceNames(t, d.App.URL())
		cpu = hasCPUProfile(t, d, "feedsvc") && hasCPUProfile(t, d, "tailscope")
		if cpu && hasAll(services, want) {
			break
		}
	}
	// One process runs both programs: tailscope's own code is filed under
	// tailscope, not in feedsvc's flame graph.
	for _, app := range []string{"feedsvc", "tailscope"} {
		stacks, err := d.App.Store().Stacks(ctx, store.StackQuery{Service: app, Type: store.ProfileCPU})
		if err != nil {
			t.Fatal(err)
		}
		server := 0
		for _, st := range stacks {
			for _, f := range st.Frames {
				if strings.HasPrefix(f, "github.com/tailscope/tailscope/web.") || strings.HasPrefix(f, "github.com/tailscope/tailscope/ingest.") {
					server++
					break
				}
			}
		}
		if app == "feedsvc" && server > 0 {
			t.Errorf("%d of feedsvc's %d CPU stacks run tailscope's server code", server, len(stacks))
		}
		if app == "tailscope" && len(stacks) == 0 {
			t.Error("no CPU stacks filed under tailscope")
		}
	}
	res, err := d.Drain()
	if err != nil {
		t.Fatal(err)
	}
	if res == nil || res.OK == 0 {
		t.Fatalf("the load generator got no answers: %+v", res)
	}
	for _, w := range want {
		if !services[w] {
			t.Errorf("services %v lack %s", services, w)
		}
	}
	if !cpu {
		t.Error("no CPU profile of feedsvc and of tailscope arrived")
	}
}

func serviceNames(t *testing.T, base string) map[string]bool {
	t.Helper()
	var rep struct {
		Services []struct {
			Name string `json:"name"`
		} `json:"services"`
	}
	getJSON(t, base+"/api/v1/services?from=now-5m", &rep)
	names := map[string]bool{}
	for _, s := range rep.Services {
		names[s.Name] = true
	}
	return names
}

func hasAll(have map[string]bool, want []string) bool {
	for _, w := range want {
		if !have[w] {
			return false
		}
	}
	return true
}

func hasCPUProfile(t *testing.T, d *Demo, app string) bool {
	t.Helper()
	series, err := d.App.Store().ProfileSeries(context.Background(), time.Now().Add(-time.Minute), time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range series {
		if s.Service == app && s.Type == "cpu" {
			return true
		}
	}
	return false
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
		{"after the deploy", func(d *Demo) <-chan struct{} {
			deployed := make(chan struct{})
			go func() {
				defer close(deployed)
				for d.Cluster.Version() != feedsvc.V2 {
					time.Sleep(50 * time.Millisecond)
				}
			}()
			return deployed
		}},
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
				// Let the scenario's goroutine return after its last step.
				time.Sleep(200 * time.Millisecond)
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
