package feedsvc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

func getFeed(tb testing.TB, c *Cluster, tenant string, user int64) FeedResponse {
	tb.Helper()
	resp, body := get(tb, c.FeedURL()+"?"+url.Values{"tenant": {tenant}, "user_id": {fmt.Sprint(user)}}.Encode())
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("feed %s/%d: %d %s", tenant, user, resp.StatusCode, body)
	}
	var f FeedResponse
	if err := json.Unmarshal(body, &f); err != nil {
		tb.Fatalf("feed: %v", err)
	}
	return f
}

func get(tb testing.TB, u string) (*http.Response, []byte) {
	tb.Helper()
	resp, err := http.Get(u)
	if err != nil {
		tb.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("GET %s: %v", u, err)
	}
	return resp, b
}

func post(tb testing.TB, u, body string) (*http.Response, []byte) {
	tb.Helper()
	resp, err := http.Post(u, "application/json", strings.NewReader(body))
	if err != nil {
		tb.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("POST %s: %v", u, err)
	}
	return resp, b
}

// exercise sends a few feeds per tenant, deploys v2 in the middle of
// concurrent traffic, and sends a few more.
func exercise(t *testing.T, c *Cluster) {
	t.Helper()
	for _, tn := range c.Tenants() {
		for u := int64(1); u <= 2; u++ {
			f := getFeed(t, c, tn.Name, u)
			if f.Version != V1 || len(f.Items) != 20 || f.Tenant != tn.Name {
				t.Fatalf("v1 feed for %s: version %s, %d items", tn.Name, f.Version, len(f.Items))
			}
		}
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { getFeed(t, c, "acme", int64(100+i)) })
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.SetVersion(ctx, V2); err != nil {
		t.Fatalf("SetVersion: %v", err)
	}
	wg.Wait()
	for _, tn := range c.Tenants() {
		for u := int64(1); u <= 2; u++ { // the second is a cache hit for the items
			if f := getFeed(t, c, tn.Name, u); f.Version != V2 {
				t.Fatalf("after deploy: version %s", f.Version)
			}
		}
	}
}

// checkTraces asserts what tailscope's analysis relies on.
func checkTraces(t *testing.T, spans []span, mode Mode) {
	t.Helper()
	if len(spans) == 0 {
		t.Fatal("no spans received")
	}
	traces := map[string][]span{}
	for _, s := range spans {
		traces[s.TraceID] = append(traces[s.TraceID], s)
	}
	versions := map[string]map[string]bool{} // version → services seen
	sawRedis := false
	for id, tr := range traces {
		byID := map[string]span{}
		var roots []span
		for _, s := range tr {
			byID[s.SpanID] = s
			if s.Parent == "" {
				roots = append(roots, s)
			}
		}
		if len(roots) != 1 || roots[0].Service != FeedAPI || roots[0].Name != "GET /v1/feed" || roots[0].Kind != ptrace.SpanKindServer {
			t.Fatalf("trace %s: want one feed-api root GET /v1/feed, got %+v", id, roots)
		}
		root := roots[0]
		tenant := root.str(AttrTenant)
		if tenant == "" || root.int("http.response.body.size") <= 0 {
			t.Fatalf("trace %s: root lacks tenant or response size: %v", id, root.Attrs)
		}
		if _, ok := root.Attrs["http.request.body.size"]; !ok {
			t.Errorf("trace %s: root lacks http.request.body.size", id)
		}
		servers := map[string]bool{}
		dbServices := map[string]bool{}
		for _, s := range tr {
			if s.str(AttrTenant) != tenant {
				t.Errorf("trace %s: %s span %q has tenant %q, root has %q", id, s.Service, s.Name, s.str(AttrTenant), tenant)
			}
			for _, k := range []string{"service.version", "deployment.environment"} {
				if s.Resource[k] == nil {
					t.Errorf("%s: resource lacks %s", s.Service, k)
				}
			}
			if got := fmt.Sprint(s.Resource[AttrMode]); got != string(mode) {
				t.Errorf("%s: resource %s = %s, want %s", s.Service, AttrMode, got, mode)
			}
			if versions[s.version()] == nil {
				versions[s.version()] = map[string]bool{}
			}
			versions[s.version()][s.Service] = true
			if s.Parent != "" {
				if _, ok := byID[s.Parent]; !ok {
					t.Errorf("trace %s: %s span %q has a parent that was not exported", id, s.Service, s.Name)
				}
			}
			switch {
			case s.Kind == ptrace.SpanKindServer && s.Service != FeedAPI:
				servers[s.Service] = true
				p := byID[s.Parent]
				if p.Service != FeedAPI || p.Kind != ptrace.SpanKindClient || p.str("peer.service") != s.Service {
					t.Errorf("trace %s: %s server span's parent is %s %q (peer.service %q), want feed-api's client span to it",
						id, s.Service, p.Service, p.Name, p.str("peer.service"))
				}
			case s.Kind == ptrace.SpanKindClient && s.Service == FeedAPI:
				if s.int("http.response.body.size") <= 0 || s.str("server.address") == "" {
					t.Errorf("trace %s: client span %q lacks response size or server.address: %v", id, s.Name, s.Attrs)
				}
				if strings.HasPrefix(s.Name, "POST") && s.int("http.request.body.size") <= 0 {
					t.Errorf("trace %s: client span %q lacks request size", id, s.Name)
				}
			case s.str("db.system") == "postgresql" && s.Name == "SELECT":
				dbServices[s.Service] = true
				if s.str("db.query.text") == "" || s.str("db.namespace") == "" || s.Kind != ptrace.SpanKindClient {
					t.Errorf("trace %s: postgres span lacks attributes: %v", id, s.Attrs)
				}
			case s.str("db.system") == "redis":
				sawRedis = true
				if s.Service != FeatureSvc || s.str("db.query.text") == "" || s.version() == V1 {
					t.Errorf("trace %s: redis span %q in %s %s lacks db.query.text or should not be there", id, s.Name, s.Service, s.version())
				}
			}
		}
		for _, svc := range []string{CandidateSvc, FeatureSvc, ProfileSvc, Ranker} {
			if !servers[svc] {
				t.Errorf("trace %s: no server span from %s", id, svc)
			}
		}
		for _, svc := range []string{CandidateSvc, FeatureSvc} {
			if !dbServices[svc] && root.version() == V1 {
				t.Errorf("trace %s: no postgres span from %s in v1", id, svc)
			}
		}
	}
	for _, v := range []string{V1, V2} {
		if len(versions[v]) != len(services) {
			t.Errorf("version %s: spans from %v, want all six services", v, versions[v])
		}
	}
	if !sawRedis {
		t.Error("no redis spans in v2")
	}
}

func TestSimulatedClusterTraces(t *testing.T) {
	c, rcv := startCluster(t, Config{Seed: 1})
	if c.Mode() != ModeSimulated {
		t.Fatalf("mode %s", c.Mode())
	}
	exercise(t, c)
	closeCluster(t, c)
	spans := rcv.all()
	checkTraces(t, spans, ModeSimulated)

	// The heavy tenant's payloads are larger.
	size := map[string]int64{}
	for _, s := range spans {
		if s.Parent == "" {
			size[s.str(AttrTenant)] = max(size[s.str(AttrTenant)], s.int("http.response.body.size"))
		}
	}
	for tn, n := range size {
		if tn != HeavyTenant && n*2 >= size[HeavyTenant] {
			t.Errorf("response size: %s %d B, heavy tenant %s only %d B", tn, n, HeavyTenant, size[HeavyTenant])
		}
	}
}

func TestFeedRejectsBadInput(t *testing.T) {
	c, _ := startCluster(t, Config{})
	tests := []struct {
		name, query string
	}{
		{"no tenant", "user_id=1"},
		{"unknown tenant", "tenant=nope&user_id=1"},
		{"no user", "tenant=acme"},
		{"negative user", "tenant=acme&user_id=-3"},
		{"user not a number", "tenant=acme&user_id=1x"},
		{"limit too large", "tenant=acme&user_id=1&limit=1000"},
		{"limit not a number", "tenant=acme&user_id=1&limit=ten"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, c.FeedURL()+"?"+tt.query)
			var e struct{ Error string }
			if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || e.Error == "" {
				t.Fatalf("got %d %s, want 400 with a JSON error", resp.StatusCode, body)
			}
		})
	}
}

func TestAdminEndpoints(t *testing.T) {
	c, _ := startCluster(t, Config{})
	resp, body := post(t, c.AdminURL()+"/admin/faults", `{"slow_profile":{"tenant":"acme","delay":"300ms"},"errors":{"service":"ranker","rate":0.5}}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST faults: %d %s", resp.StatusCode, body)
	}
	f := c.Faults()
	if f.SlowProfile == nil || f.SlowProfile.Tenant != "acme" || f.SlowProfile.Delay != Duration(300*time.Millisecond) ||
		f.SlowProfile.Probability != 1 || f.Errors == nil || f.Errors.Rate != 0.5 {
		t.Fatalf("faults after POST: %+v", f)
	}
	_, body = get(t, c.AdminURL()+"/admin/faults")
	var view struct{ Active []string }
	if err := json.Unmarshal(body, &view); err != nil || !slices.Equal(view.Active, []string{FaultSlowProfile, FaultErrors}) {
		t.Fatalf("GET faults: %s (%v)", body, err)
	}
	for _, bad := range []string{
		`{"slow_profile":{"tenant":"nobody"}}`,
		`{"errors":{"service":"ranker","rate":2}}`,
		`{"errors":{"service":"feed-api","rate":0.1}}`,
		`{"stampeed":{}}`,
		`{"stampede":{"every":"soon"}}`,
		`not json`,
	} {
		if resp, body := post(t, c.AdminURL()+"/admin/faults", bad); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST %s: %d %s, want 400", bad, resp.StatusCode, body)
		}
	}
	if len(c.Faults().Active()) != 2 {
		t.Errorf("a rejected POST changed the faults: %v", c.Faults().Active())
	}
	if resp, body := post(t, c.AdminURL()+"/admin/faults", `{}`); resp.StatusCode != http.StatusOK || len(c.Faults().Active()) != 0 {
		t.Fatalf("clearing faults: %d %s", resp.StatusCode, body)
	}
	if resp, body := post(t, c.AdminURL()+"/admin/version", `{"version":"v9"}`); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("deploy v9: %d %s, want 400", resp.StatusCode, body)
	}
	if resp, body := post(t, c.AdminURL()+"/admin/version", `{"version":"v3"}`); resp.StatusCode != http.StatusOK || c.Version() != V3 {
		t.Fatalf("deploy v3: %d %s, version %s", resp.StatusCode, body, c.Version())
	}
}

func TestStartRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no endpoint", Config{}},
		{"bad endpoint", Config{OTLPEndpoint: "localhost:4318"}},
		{"only postgres", Config{OTLPEndpoint: "http://127.0.0.1:4318", PostgresURL: "postgres://x"}},
		{"bad version", Config{OTLPEndpoint: "http://127.0.0.1:4318", Version: "v0"}},
		{"bad schema", Config{OTLPEndpoint: "http://127.0.0.1:4318", Schema: "Robert'); DROP TABLE"}},
		{"fault for unknown tenant", Config{OTLPEndpoint: "http://127.0.0.1:4318", Faults: Faults{HotTenant: &HotTenant{Tenant: "x"}}}},
		{"duplicate tenant", Config{OTLPEndpoint: "http://127.0.0.1:4318", Tenants: append(DefaultTenants(), DefaultTenants()[0])}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Start(context.Background(), tt.cfg)
			if err == nil {
				closeCluster(t, c)
				t.Fatal("Start succeeded")
			}
		})
	}
}
