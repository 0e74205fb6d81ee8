package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
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

// TestLargePayloadProfile is issue 7's ground truth: with the demo's span
// profiles on, the large-payload scenario makes ranker CPU-heavy for the
// heavy tenant, and the outlier group of large payloads shows feedsvc's
// scoring code at the top of its CPU diff flame graph.
func TestLargePayloadProfile(t *testing.T) {
	if testing.Short() {
		t.Skip("plays feedsvc for 40 s")
	}
	ctx := context.Background()
	cfg := testConfig(t, "large-payload")
	cfg.Rate = 30
	d, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	from := time.Now().UTC().Add(-time.Second)
	time.Sleep(40 * time.Second)
	if _, err := d.Drain(); err != nil {
		t.Fatal(err)
	}
	to := time.Now().UTC().Add(time.Second)
	base := d.App.URL()
	q := url.Values{"service": {"feed-api"}, "endpoint": {"GET /v1/feed"}, "from": {from.Format(time.RFC3339Nano)}, "to": {to.Format(time.RFC3339Nano)}}

	var rep struct {
		Groups []struct {
			DimensionValues map[string]string `json:"dimension_values"`
		} `json:"groups"`
		Dimensions map[string][]struct {
			Value       string `json:"value"`
			Significant bool   `json:"significant"`
		} `json:"dimensions"`
	}
	getJSON(t, base+"/api/v1/outliers?"+q.Encode(), &rep)
	group := 0
	for i, g := range rep.Groups {
		if g.DimensionValues["payload"] != "" || g.DimensionValues["tenant"] == "globex" || g.DimensionValues["dependency"] == "ranker" {
			group = i + 1
			break
		}
	}
	if group == 0 {
		t.Fatalf("no outlier group of large payloads / the heavy tenant: %+v", rep.Groups)
	}
	q.Set("group", fmt.Sprint(group))
	res, err := http.Get(base + "/outliers/profile?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("diff flame graph: %d", res.StatusCode)
	}
	page := string(body)
	i := strings.Index(page, `data-testid="diff-flame-top"`)
	if i < 0 {
		t.Fatalf("no diff functions table; note: %s", regexp.MustCompile(`<p class="empty">[^<]*`).FindString(page))
	}
	first := regexp.MustCompile(`<code title="([^"]*)"`).FindStringSubmatch(page[i:])
	if first == nil || !strings.Contains(first[1], "feedsvc/ranking") {
		t.Errorf("the function that grew most in the large-payload outliers is %v, want feedsvc's scoring code (feedsvc/ranking)", first)
	}
}
