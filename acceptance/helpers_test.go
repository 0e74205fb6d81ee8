package acceptance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/app"
	"github.com/tailscope/tailscope/feedsvc"
	"github.com/tailscope/tailscope/feedsvc/scenario"
	"github.com/tailscope/tailscope/internal/demodata"
	"github.com/tailscope/tailscope/internal/testenv"
)

// skipShort skips the minutes-long scenario tests under -short.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("plays feedsvc scenarios in real time (minutes); skipped with -short")
	}
}

// tailscope is a running server and a client of its JSON API.
type tailscope struct {
	app    *app.App
	client *http.Client
}

// startTailscope starts tailscope in process on free ports with an empty
// store: a fresh PostgreSQL database when one is configured (always in
// CI, where testenv requires it), else SQLite in a temporary directory. It
// is closed when t ends.
func startTailscope(t *testing.T) *tailscope {
	t.Helper()
	cfg := app.DefaultConfig()
	cfg.HTTPAddr, cfg.Ingest.HTTPAddr, cfg.Ingest.GRPCAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.DatabaseURL = storeURL(t)
	cfg.Retention = 0
	cfg.CacheTTL = time.Second
	cfg.Version = "acceptance"
	cfg.Log = testenv.Logger(t)
	a := app.New(cfg)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatalf("start tailscope: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("close tailscope: %v", err)
		}
	})
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	t.Cleanup(tr.CloseIdleConnections)
	return &tailscope{app: a, client: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}
}

// storeURL picks tailscope's store. PostgreSQL keeps the test process
// light under -race (the inserts run in the database server); SQLite lets
// the tests run on a laptop with nothing installed.
func storeURL(t *testing.T) string {
	t.Helper()
	if os.Getenv(testenv.EnvPostgres) != "" || testenv.Required() {
		return testenv.FreshPostgres(t)
	}
	t.Logf("tailscope store: SQLite (%s is not set)", testenv.EnvPostgres)
	return "sqlite:" + filepath.Join(t.TempDir(), "tailscope.db")
}

// lookup returns the named scenario compressed to run for d at rate
// requests/s: every step keeps its place relative to the run (a deploy
// halfway through stays halfway), the version, faults, tenants and causes
// are the scenario's own.
func lookup(t *testing.T, name string, rate float64, d time.Duration) scenario.Scenario {
	t.Helper()
	sc, err := scenario.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	scale := float64(d) / float64(sc.Duration)
	sc.Steps = slices.Clone(sc.Steps)
	for i := range sc.Steps {
		sc.Steps[i].After = time.Duration(float64(sc.Steps[i].After) * scale)
	}
	sc.Rate, sc.Duration = rate, d
	if err := sc.Validate(tenantsOf(sc)); err != nil {
		t.Fatal(err)
	}
	return sc
}

func tenantsOf(sc scenario.Scenario) []feedsvc.Tenant {
	if sc.Tenants != nil {
		return sc.Tenants
	}
	return feedsvc.DefaultTenants()
}

// realData is where feedsvc's real mode keeps its data.
type realData struct {
	PostgresURL, RedisURL, Schema string
}

// play runs sc in a feedplay process exporting to ts and returns when
// every span has been exported and loaded into the store, so the
// analysis sees them all. real selects feedsvc's real mode. The run
// must have kept up with its schedule: a load generator that dropped
// requests, or saw many fail, measured an overloaded machine rather than
// the scenario. A few failures are tolerated: v2's 500 ms budget turns a
// moment of CPU starvation into a 504, and those traces are still whole.
func (ts *tailscope) play(t *testing.T, sc scenario.Scenario, seed uint64, real *realData) demodata.Played {
	t.Helper()
	cfg := demodata.Config{
		OTLPEndpoint: "http://" + ts.app.OTLPHTTPAddr(),
		Scenario:     sc,
		Rate:         sc.Rate,
		Duration:     sc.Duration,
		Seed:         seed,
		Profile:      true,
	}
	if real != nil {
		cfg.PostgresURL, cfg.RedisURL, cfg.Schema = real.PostgresURL, real.RedisURL, real.Schema
	}
	// Seeding a real catalogue for the first time takes a while on a busy
	// machine; the bound only keeps a hung child from hanging the tests.
	ctx, cancel := context.WithTimeout(t.Context(), sc.Duration+5*time.Minute)
	defer cancel()
	start := time.Now()
	p, err := demodata.PlayProcess(ctx, feedplayBinary(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Acknowledged means durable; the analysis reads what is loaded.
	if err := ts.app.WaitLoaded(ctx); err != nil {
		t.Fatal(err)
	}
	mode := feedsvc.ModeSimulated
	if real != nil {
		mode = feedsvc.ModeReal
	}
	t.Logf("%s (%.0f req/s for %v, %s mode) played in %v:\n%s", sc.Name, sc.Rate, sc.Duration, mode,
		time.Since(start).Round(time.Second), p.Summary)
	if p.Dropped > 0 || float64(p.Failed) > 0.05*float64(p.Sent) {
		t.Fatalf("%s: %d of %d requests dropped and %d failed: the machine could not keep up with %.0f req/s, so the latency is not the scenario's",
			sc.Name, p.Dropped, p.Sent+p.Dropped, p.Failed, sc.Rate)
	}
	return p
}

// endpoint splits scenario.Endpoint into tailscope's service and endpoint.
func endpoint(t *testing.T) (service, name string) {
	t.Helper()
	service, name, ok := strings.Cut(scenario.Endpoint, " ")
	if !ok {
		t.Fatalf("scenario.Endpoint %q: want \"service endpoint\"", scenario.Endpoint)
	}
	return service, name
}

func apiTime(tm time.Time) string { return tm.UTC().Format(time.RFC3339Nano) }

// get fetches an API path into v, failing t on anything but 200.
func (ts *tailscope) get(t *testing.T, path string, q url.Values, v any) {
	t.Helper()
	u := ts.app.URL() + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read: %v", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", u, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: decode: %v", u, err)
	}
}

// outliers asks GET /api/v1/outliers about the scenario endpoint over
// [from, to) at the given percentile.
func (ts *tailscope) outliers(t *testing.T, from, to time.Time, percentile float64) analysis.OutlierReport {
	t.Helper()
	service, name := endpoint(t)
	var rep analysis.OutlierReport
	ts.get(t, "/api/v1/outliers", url.Values{
		"service": {service}, "endpoint": {name}, "from": {apiTime(from)}, "to": {apiTime(to)},
		"percentile": {fmt.Sprint(percentile)},
	}, &rep)
	return rep
}

// compare asks GET /api/v1/compare about the scenario endpoint; q holds
// the mode's parameters.
func (ts *tailscope) compare(t *testing.T, q url.Values) analysis.Comparison {
	t.Helper()
	service, name := endpoint(t)
	q.Set("service", service)
	q.Set("endpoint", name)
	var c analysis.Comparison
	ts.get(t, "/api/v1/compare", q, &c)
	return c
}

// deployMarker is a marker of GET /api/v1/deploys.
type deployMarker struct {
	ID      int64     `json:"id"`
	Service string    `json:"service"`
	Version string    `json:"version"`
	At      time.Time `json:"at"`
	Source  string    `json:"source"`
}

// deployOf returns the marker tailscope recorded when it first saw
// service running version, failing t when there is none.
func (ts *tailscope) deployOf(t *testing.T, service, version string) deployMarker {
	t.Helper()
	var body struct {
		Deploys []deployMarker `json:"deploys"`
	}
	ts.get(t, "/api/v1/deploys", url.Values{"service": {service}}, &body)
	for _, d := range body.Deploys {
		if d.Version == version {
			return d
		}
	}
	t.Fatalf("no deploy marker for %s %s among %+v", service, version, body.Deploys)
	return deployMarker{}
}

// waitAnalysisClock waits until the API's clock, which it quantises to
// 5 s so that cache keys repeat, has passed to: a deploy comparison ends
// its "after" side at that clock, and must see the whole run.
func waitAnalysisClock(t *testing.T, to time.Time) {
	t.Helper()
	const quantum = 5 * time.Second
	select {
	case <-time.After(time.Until(to.Add(quantum))):
	case <-t.Context().Done():
		t.Fatal(t.Context().Err())
	}
}

// apiTrace is the body of GET /api/v1/traces/{id}.
type apiTrace struct {
	TraceID string    `json:"trace_id"`
	Spans   []apiSpan `json:"spans"`
}

type apiSpan struct {
	SpanID       string          `json:"span_id"`
	ParentSpanID string          `json:"parent_span_id"`
	Service      string          `json:"service"`
	Name         string          `json:"name"`
	Kind         string          `json:"kind"`
	StatusCode   string          `json:"status_code"`
	Tenant       string          `json:"tenant"`
	Version      string          `json:"version"`
	Dependency   string          `json:"dependency"`
	PayloadBytes int64           `json:"payload_bytes"`
	Attributes   json.RawMessage `json:"attributes"`
	Resource     json.RawMessage `json:"resource"`
}

// traceIDs lists up to limit answered (status ok) traces of the scenario
// endpoint started in [from, to) through GET /api/v1/traces. A request
// that ran out of its overall budget is answered 504 before feed-api has
// called feature-svc and ranker: a shape of its own, not the one the
// shape test checks.
func (ts *tailscope) traceIDs(t *testing.T, from, to time.Time, limit int) []string {
	t.Helper()
	service, name := endpoint(t)
	var body struct {
		Traces []struct {
			TraceID string `json:"trace_id"`
		} `json:"traces"`
	}
	ts.get(t, "/api/v1/traces", url.Values{
		"service": {service}, "endpoint": {name}, "from": {apiTime(from)}, "to": {apiTime(to)}, "limit": {fmt.Sprint(limit)},
		"status": {"ok"},
	}, &body)
	ids := make([]string, len(body.Traces))
	for i, tr := range body.Traces {
		ids[i] = tr.TraceID
	}
	return ids
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
