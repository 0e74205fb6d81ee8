package web

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/analysis/analysistest"
)

// decode unmarshals a JSON response, failing on a bad status.
func decode(t *testing.T, code int, wantCode int, body []byte, v any) {
	t.Helper()
	if code != wantCode {
		t.Fatalf("status %d, want %d; body %s", code, wantCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
}

func TestAPIErrorsAreJSONWithA4xx(t *testing.T) {
	f := sharedFixture(t)
	tests := []struct {
		name, target string
		status       int
		want         string
	}{
		{"bad range", "/api/v1/traces?from=now&to=now-1h", 400, "must be before"},
		{"bad time", "/api/v1/traces?from=yesterday", 400, "neither RFC 3339"},
		{"bad min_ms", "/api/v1/traces?min_ms=-3", 400, "min_ms"},
		{"min above max", "/api/v1/traces?min_ms=30&max_ms=10", 400, "above max_ms"},
		{"bad status", "/api/v1/traces?status=maybe", 400, "status"},
		{"bad attr", "/api/v1/traces?attr=novalue", 400, "key=value"},
		{"bad limit", "/api/v1/traces?limit=0", 400, "limit"},
		{"bad sort", "/api/v1/traces?sort=random", 400, "sort"},
		{"bad trace id", "/api/v1/traces/xyz", 400, "trace id"},
		{"zero trace id", "/api/v1/traces/00000000000000000000000000000000", 400, "all zero"},
		{"unknown trace", "/api/v1/traces/0123456789abcdef0123456789abcdef", 404, "not found"},
		{"latency without service", "/api/v1/latency", 400, "service is required"},
		{"latency unknown service", "/api/v1/latency?service=nope", 404, "no requests"},
		{"outliers both thresholds", "/api/v1/outliers?service=feed-api&percentile=99&threshold_ms=5", 400, "not both"},
		{"outliers bad percentile", "/api/v1/outliers?service=feed-api&percentile=100", 400, "percentile"},
		{"outliers too long", "/api/v1/outliers?service=feed-api&from=now-30d", 400, "at most 7 days"},
		{"compare no mode", "/api/v1/compare?service=feed-api", 400, "exactly one"},
		{"compare bad deploy", "/api/v1/compare?deploy=abc", 400, "deploy"},
		{"compare unknown deploy", "/api/v1/compare?deploy=999", 404, "not found"},
		{"unknown api route", "/api/v1/nothing", 404, "no API route"},
		{"budget bad id", "/api/v1/budgets/x", 400, "budget id"},
		{"budget unknown", "/api/v1/budgets/42", 404, "not found"},
		{"range too long", "/api/v1/services?from=now-200d", 400, "maximum"},
		{"too many attr filters", "/api/v1/traces?attr=k=v" + strings.Repeat("&attr=k=v", 16), 400, "at most 16 filters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(t, f.handler, "GET", tt.target, "")
			var body struct{ Error string }
			decode(t, w.Code, tt.status, w.Body.Bytes(), &body)
			if !strings.Contains(body.Error, tt.want) {
				t.Errorf("error %q does not mention %q", body.Error, tt.want)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

func TestAPIServices(t *testing.T) {
	f := sharedFixture(t)
	w := serve(t, f.handler, "GET", "/api/v1/services?from=now-1h", "")
	var rep struct {
		Services []struct {
			Name      string  `json:"name"`
			Count     int     `json:"count"`
			P99Ms     float64 `json:"p99_ms"`
			Endpoints []struct {
				Name  string `json:"name"`
				Count int    `json:"count"`
			} `json:"endpoints"`
		} `json:"services"`
	}
	decode(t, w.Code, 200, w.Body.Bytes(), &rep)
	var feed bool
	for _, s := range rep.Services {
		if s.Name == analysistest.FeedAPI {
			feed = true
			if s.Count != 3000 || len(s.Endpoints) != 1 || s.Endpoints[0].Name != analysistest.Endpoint {
				t.Errorf("feed-api = %+v; want 3000 requests to GET /v1/feed", s)
			}
			if s.P99Ms < 500 {
				t.Errorf("feed-api p99 %.0f ms; the injected 800 ms delay should show", s.P99Ms)
			}
		}
	}
	if !feed {
		t.Fatalf("feed-api missing from %s", w.Body.Bytes())
	}
}

func TestAPITraceSearchAndDetail(t *testing.T) {
	f := sharedFixture(t)
	w := serve(t, f.handler, "GET", "/api/v1/traces?service=feed-api&endpoint=GET+/v1/feed&tenant=acme&min_ms=500&sort=slowest&limit=5&from=now-1h", "")
	var res struct {
		Traces []traceSummaryJSON `json:"traces"`
	}
	decode(t, w.Code, 200, w.Body.Bytes(), &res)
	if len(res.Traces) != 5 {
		t.Fatalf("got %d traces, want 5", len(res.Traces))
	}
	for i, tr := range res.Traces {
		if tr.Tenant != "acme" || tr.DurationMs < 500 || tr.RootService != "feed-api" {
			t.Errorf("trace %d = %+v; want acme feed-api ≥ 500 ms", i, tr)
		}
		if i > 0 && tr.MatchDurationMs > res.Traces[i-1].MatchDurationMs {
			t.Errorf("not sorted slowest first at %d", i)
		}
	}

	w = serve(t, f.handler, "GET", "/api/v1/traces/"+res.Traces[0].TraceID, "")
	var d struct {
		TraceID      string     `json:"trace_id"`
		Spans        []spanJSON `json:"spans"`
		CriticalPath []string   `json:"critical_path"`
		Findings     []struct {
			Kind    string   `json:"kind"`
			SpanIDs []string `json:"span_ids"`
		} `json:"findings"`
	}
	decode(t, w.Code, 200, w.Body.Bytes(), &d)
	if d.TraceID != res.Traces[0].TraceID || len(d.Spans) != res.Traces[0].SpanCount {
		t.Fatalf("detail has %d spans for trace %s, search said %d", len(d.Spans), d.TraceID, res.Traces[0].SpanCount)
	}
	ids := map[string]spanJSON{}
	for _, s := range d.Spans {
		ids[s.SpanID] = s
	}
	if len(d.CriticalPath) == 0 {
		t.Fatal("no critical path")
	}
	onPathProfile := false
	for _, id := range d.CriticalPath {
		s, ok := ids[id]
		if !ok {
			t.Fatalf("critical path names unknown span %s", id)
		}
		if s.Dependency == analysistest.ProfileSvc {
			onPathProfile = true
		}
	}
	if !onPathProfile {
		t.Error("the slow profile-svc call of an acme outlier is not on its critical path")
	}
	// v1 traces call their dependencies one after another.
	if d.Spans[0].Version == "v1" {
		found := false
		for _, fd := range d.Findings {
			if fd.Kind == "sequential_fanout" {
				found = true
			}
		}
		if !found {
			t.Errorf("v1 trace without a sequential fan-out finding: %+v", d.Findings)
		}
	}
	if d.Spans[0].StartUnixNano == "" || d.Spans[0].Attributes == nil {
		t.Errorf("span JSON missing fields: %+v", d.Spans[0])
	}
}

func TestAPIOutliersFindTheInjectedCause(t *testing.T) {
	f := sharedFixture(t)
	w := serve(t, f.handler, "GET", "/api/v1/outliers?service=feed-api&from=now-1h", "")
	var rep struct {
		ThresholdMs float64 `json:"threshold_ms"`
		Groups      []struct {
			DimensionValues     map[string]string `json:"dimension_values"`
			CounterfactualP99Ms float64           `json:"counterfactual_p99_ms"`
			ExampleTraceIDs     []string          `json:"example_trace_ids"`
		} `json:"groups"`
		P99Ms float64 `json:"p99_ms"`
	}
	decode(t, w.Code, 200, w.Body.Bytes(), &rep)
	if len(rep.Groups) == 0 {
		t.Fatalf("no groups: %s", w.Body.Bytes())
	}
	g := rep.Groups[0]
	if g.DimensionValues["dependency"] != analysistest.ProfileSvc || g.DimensionValues["tenant"] != "acme" {
		t.Errorf("top group %v, want dependency=profile-svc tenant=acme", g.DimensionValues)
	}
	if g.CounterfactualP99Ms >= rep.P99Ms {
		t.Errorf("counterfactual p99 %.0f not below p99 %.0f", g.CounterfactualP99Ms, rep.P99Ms)
	}
	for _, id := range g.ExampleTraceIDs {
		if w := serve(t, f.handler, "GET", "/api/v1/traces/"+id, ""); w.Code != 200 {
			t.Errorf("example trace %s: status %d", id, w.Code)
		}
	}
}

func TestAPICompareDeployAndVersions(t *testing.T) {
	f := sharedFixture(t)
	for _, target := range []string{
		fmt.Sprintf("/api/v1/compare?deploy=%d&window=30m", f.deploy.ID),
		"/api/v1/compare?service=feed-api&version_a=v1&version_b=v2&from=now-1h",
	} {
		w := serve(t, f.handler, "GET", target, "")
		var c struct {
			Verdict  string  `json:"verdict"`
			Summary  string  `json:"summary"`
			Endpoint string  `json:"endpoint"`
			Tail     float64 `json:"tail_percentile"`
		}
		decode(t, w.Code, 200, w.Body.Bytes(), &c)
		if c.Verdict != "improved" || c.Endpoint != analysistest.Endpoint {
			t.Errorf("%s: verdict %q on %q (%s); want improved on GET /v1/feed", target, c.Verdict, c.Endpoint, c.Summary)
		}
		// The hops' tail is past the percentile the summary leads with.
		if head := fmt.Sprintf("p%v ", c.Tail); !strings.HasPrefix(c.Summary, head) {
			t.Errorf("%s: tail past p%v, summary %q", target, c.Tail, c.Summary)
		}
	}
}

func TestAPILatency(t *testing.T) {
	f := sharedFixture(t)
	w := serve(t, f.handler, "GET", "/api/v1/latency?service=feed-api&from=now-1h&step=1m", "")
	var rep struct {
		Count       int `json:"count"`
		Percentiles struct {
			P50Ms, P99Ms float64
		} `json:"percentiles"`
		Series struct {
			StepS  float64 `json:"step_s"`
			Points []any   `json:"points"`
		} `json:"series"`
		Histogram []struct {
			Count int `json:"count"`
		} `json:"histogram"`
	}
	decode(t, w.Code, 200, w.Body.Bytes(), &rep)
	if rep.Count != 3000 || rep.Series.StepS != 60 || len(rep.Series.Points) != 60 {
		t.Errorf("count %d, step %v, %d points; want 3000 requests in 60 one-minute buckets", rep.Count, rep.Series.StepS, len(rep.Series.Points))
	}
	total := 0
	for _, b := range rep.Histogram {
		total += b.Count
	}
	if total != rep.Count {
		t.Errorf("histogram holds %d requests, want %d", total, rep.Count)
	}
	// Whole minutes are read from the rollups; exact percentiles, or a
	// step rollups cannot answer, from the spans: the same requests.
	for _, c := range []struct{ query, method string }{
		{"step=1m", "rollups"}, {"step=1m&method=exact", "exact"}, {"step=30s", "exact"},
	} {
		r := latencyAPI(t, f.handler, "/api/v1/latency?service=feed-api&from=now-1h&"+c.query)
		if r.Method != c.method || r.Count != rep.Count {
			t.Errorf("%s: method %q, %d requests; want %q, %d", c.query, r.Method, r.Count, c.method, rep.Count)
		}
	}
	// Five minutes would chart five minute points from rollups: the
	// automatic method reads their spans, at seconds, unless asked.
	for _, c := range []struct{ query, method string }{{"", "exact"}, {"&method=rollups", "rollups"}, {"&step=1m", "rollups"}} {
		r := latencyAPI(t, f.handler, "/api/v1/latency?service=feed-api&from=now-5m"+c.query)
		if r.Method != c.method || r.Count == 0 || (c.method == "exact" && len(r.Series.Points) < 30) {
			t.Errorf("last 5 minutes%s: method %q, %d requests, %d points; want %q", c.query, r.Method, r.Count, len(r.Series.Points), c.method)
		}
	}
}

// TestAPITenants: the tenants of an endpoint account for all its
// requests, acme (whose profile calls are slow in the fixture) is most of
// the tail, and a tenant's latency is read from its rollups, or from its
// spans when it has none.
func TestAPITenants(t *testing.T) {
	f := sharedFixture(t)
	w := serve(t, f.handler, "GET", "/api/v1/tenants?service=feed-api&endpoint=GET+/v1/feed&from=now-1h", "")
	var rep analysis.TenantsReport
	decode(t, w.Code, 200, w.Body.Bytes(), &rep)
	var listed int64
	for _, ts := range rep.Tenants {
		listed += ts.Count
	}
	if rep.Count == 0 || len(rep.Tenants) == 0 || listed+rep.Others+rep.Unrolled != rep.Count || rep.Tenants[0].Count < rep.Tenants[len(rep.Tenants)-1].Count {
		t.Fatalf("%d requests, %d tenants listed (%d requests), others %d, unrolled %d", rep.Count, len(rep.Tenants), listed, rep.Others, rep.Unrolled)
	}
	var acme analysis.TenantStats
	for _, ts := range rep.Tenants {
		if ts.Tenant == "acme" {
			acme = ts
		}
	}
	if acme.TailShare < 0.5 || acme.TailShare < 2*acme.Share {
		t.Errorf("acme: %.2f of the tail for %.2f of requests; want most of the tail", acme.TailShare, acme.Share)
	}
	for _, c := range []struct {
		tenant, method string
		count          int64
	}{{"acme", "rollups", acme.Count}, {"nobody", "exact", 0}} {
		r := latencyAPI(t, f.handler, "/api/v1/latency?service=feed-api&endpoint=GET+/v1/feed&from=now-1h&tenant="+c.tenant)
		if r.Method != c.method || int64(r.Count) != c.count {
			t.Errorf("latency of tenant %s: method %q, %d requests; want %q, %d", c.tenant, r.Method, r.Count, c.method, c.count)
		}
	}
	w = serve(t, f.handler, "GET", "/api/v1/tenants?service=feed-api&from=now-1h&limit=2", "")
	decode(t, w.Code, 200, w.Body.Bytes(), &rep)
	if len(rep.Tenants) != 2 || rep.Others == 0 || rep.Endpoint != "" {
		t.Errorf("limit 2 over the service: %d tenants, others %d, endpoint %q", len(rep.Tenants), rep.Others, rep.Endpoint)
	}
	for _, bad := range []string{"limit=0", "limit=x", "limit=1001"} {
		w := serve(t, f.handler, "GET", "/api/v1/tenants?service=feed-api&from=now-1h&"+bad, "")
		if w.Code != 400 || !strings.Contains(w.Body.String(), "limit") {
			t.Errorf("%s: %d %s, want 400 naming the limit", bad, w.Code, w.Body.String())
		}
	}
	if w := serve(t, f.handler, "GET", "/api/v1/tenants?from=now-1h", ""); w.Code != 400 {
		t.Errorf("no service: %d, want 400", w.Code)
	}
}

// TestAPIDeployImpact: the fixture's v2 deploy of feed-api (a parallel
// fan-out: faster) carries the hour before and after from rollups, each
// side counting the requests of its whole minutes.
func TestAPIDeployImpact(t *testing.T) {
	f := sharedFixture(t)
	w := serve(t, f.handler, "GET", "/api/v1/deploys?service=feed-api", "")
	var list struct {
		Deploys []deployJSON `json:"deploys"`
	}
	decode(t, w.Code, 200, w.Body.Bytes(), &list)
	if len(list.Deploys) == 0 || list.Deploys[0].Impact == nil {
		t.Fatalf("deploys %+v: want the v2 marker with its impact", list.Deploys)
	}
	imp := list.Deploys[0].Impact
	if imp.Pending || imp.Before.Count != 1500 || imp.After.Count != 1500 || imp.P99ChangePct == nil {
		t.Errorf("impact: pending %v, before %d, after %d requests, p99 change %s; want 1500 each side",
			imp.Pending, imp.Before.Count, imp.After.Count, ptrText(imp.P99ChangePct))
	}
	// The marker's hours hold exactly the comparison's half hours (the
	// fixture has no other traffic): the same percentiles, within the
	// sketch's error.
	w = serve(t, f.handler, "GET", fmt.Sprintf("/api/v1/compare?deploy=%d", f.deploy.ID), "")
	var c analysis.Comparison
	decode(t, w.Code, 200, w.Body.Bytes(), &c)
	// The fixture's p99 moves by more than half (its tail is a few slow
	// requests of 1,500) and the comparison's interval for it holds zero:
	// the list's tail test does not call it a change either, and the
	// page does not mark it.
	for _, p := range c.Percentiles {
		if p.Percentile == 99 && (p.Significant || imp.P99Changed || imp.P99ChangePct == nil || math.Abs(*imp.P99ChangePct) < 50) {
			t.Errorf("p99 %+.0f%% (comparison significant %v), impact %s changed %v; want a large move no test calls a change",
				p.DeltaPct, p.Significant, ptrText(imp.P99ChangePct), imp.P99Changed)
		}
	}
	near := func(got, want float64) bool { return got >= want*0.99-0.001 && got <= want*1.01+0.001 }
	for _, s := range []struct {
		name      string
		got       analysis.RequestStats
		wantP50   float64
		wantP99   float64
		wantCount int
	}{{"before", imp.Before.RequestStats, c.Before.Percentiles.P50Ms, c.Before.Percentiles.P99Ms, c.Before.Count},
		{"after", imp.After.RequestStats, c.After.Percentiles.P50Ms, c.After.Percentiles.P99Ms, c.After.Count}} {
		if s.got.Count != s.wantCount || !near(s.got.P50Ms, s.wantP50) || !near(s.got.P99Ms, s.wantP99) {
			t.Errorf("%s: %d requests, p50 %v, p99 %v; the comparison's %d, %v, %v", s.name, s.got.Count, s.got.P50Ms, s.got.P99Ms, s.wantCount, s.wantP50, s.wantP99)
		}
	}
	w = serve(t, f.handler, "GET", fmt.Sprintf("/api/v1/deploys/%d", f.deploy.ID), "")
	var one deployJSON
	decode(t, w.Code, 200, w.Body.Bytes(), &one)
	if one.Impact == nil || one.Impact.Before.Count != imp.Before.Count {
		t.Errorf("single marker: impact %+v, want the list's", one.Impact)
	}
	w = serve(t, f.handler, "GET", "/deploys", "")
	if body := w.Body.String(); w.Code != 200 || !strings.Contains(body, `data-testid="impact-p99" data-up="false"`) ||
		!strings.Contains(body, `data-testid="impact-p99-noise"`) {
		t.Errorf("deploys page: %d, lacks the impact column", w.Code)
	}
}

// latencyReply is what the latency API tests read of a report.
type latencyReply struct {
	Method string `json:"method"`
	Count  int    `json:"count"`
	Series struct {
		Points []any `json:"points"`
	} `json:"series"`
}

func latencyAPI(t *testing.T, h http.Handler, target string) latencyReply {
	t.Helper()
	w := serve(t, h, "GET", target, "")
	var r latencyReply
	decode(t, w.Code, 200, w.Body.Bytes(), &r)
	return r
}

func TestAPIDeploys(t *testing.T) {
	h, _ := newWritableServer(t)
	w := serve(t, h, "POST", "/api/v1/deploys", `{"service":"checkout","version":"2026.11.23-1","note":"canary 5%","at":"2026-11-23T14:30:00Z"}`, "Content-Type", "application/json")
	var d deployJSON
	decode(t, w.Code, http.StatusCreated, w.Body.Bytes(), &d)
	if d.ID == 0 || d.Source != "api" || d.At.Format("15:04") != "14:30" || w.Header().Get("Location") == "" {
		t.Errorf("created %+v (Location %q)", d, w.Header().Get("Location"))
	}
	w = serve(t, h, "GET", "/api/v1/deploys?service=checkout", "")
	var list struct{ Deploys []deployJSON }
	decode(t, w.Code, 200, w.Body.Bytes(), &list)
	if len(list.Deploys) != 1 || list.Deploys[0].Note != "canary 5%" {
		t.Errorf("list = %+v", list)
	}
	for _, bad := range []struct{ body, want string }{
		{`{"version":"1"}`, "service is required"},
		{`{"service":"a"}`, "version is required"},
		{`{"service":"a","version":"1","at":"soon"}`, "at:"},
		{`{"service":"a","version":"1","extra":true}`, "unknown field"},
		{`{"service":`, "not valid JSON"},
		{``, "empty"},
		{`{"service":"a","version":"1"} {}`, "after the JSON object"},
	} {
		w := serve(t, h, "POST", "/api/v1/deploys", bad.body, "Content-Type", "application/json")
		var e struct{ Error string }
		decode(t, w.Code, 400, w.Body.Bytes(), &e)
		if !strings.Contains(e.Error, bad.want) {
			t.Errorf("body %q: error %q, want it to mention %q", bad.body, e.Error, bad.want)
		}
	}
}

func TestAPIBudgetsCRUDAndCompliance(t *testing.T) {
	f := sharedFixture(t)
	// Budgets are written to the shared fixture's store through its own
	// API; the test removes what it creates.
	body := `{"name":"feed p99","service":"feed-api","endpoint":"GET /v1/feed","threshold_ms":500,"target":0.99,"period":"30d",
		"hops":[{"service":"feed-api","dependency":"profile-svc","allocation_ms":150},{"service":"candidate-svc","dependency":"postgresql","allocation_ms":100}]}`
	w := serve(t, f.handler, "POST", "/api/v1/budgets", body, "Content-Type", "application/json")
	var b struct {
		ID   int64 `json:"id"`
		Hops []any `json:"hops"`
	}
	decode(t, w.Code, 201, w.Body.Bytes(), &b)
	t.Cleanup(func() { serve(t, f.handler, "DELETE", fmt.Sprintf("/api/v1/budgets/%d", b.ID), "") })
	if len(b.Hops) != 2 {
		t.Fatalf("budget hops = %v", b.Hops)
	}
	w = serve(t, f.handler, "GET", fmt.Sprintf("/api/v1/budgets/%d/compliance?from=now-1h", b.ID), "")
	var c struct {
		Total      int     `json:"total"`
		Attainment float64 `json:"attainment"`
		Hops       []struct {
			Label    string `json:"label"`
			Overruns int    `json:"overruns"`
		} `json:"hops"`
		WorstHop  string `json:"worst_hop"`
		BurnRates []any  `json:"burn_rates"`
		// The page and API read rollups (reports read spans).
		Source          string `json:"source"`
		SampledRequests int    `json:"sampled_requests"`
		SampleComplete  bool   `json:"sample_complete"`
	}
	decode(t, w.Code, 200, w.Body.Bytes(), &c)
	if c.Total != 3000 || c.Attainment <= 0 || c.Attainment >= 1 || len(c.BurnRates) != 3 {
		t.Errorf("compliance total %d attainment %v burn rates %d", c.Total, c.Attainment, len(c.BurnRates))
	}
	if c.Source != "rollups" || c.SampledRequests < 990 || c.SampleComplete {
		t.Errorf("compliance source %q, sampled %d (complete %v): want rollups and a sample of about 1000", c.Source, c.SampledRequests, c.SampleComplete)
	}
	if !strings.Contains(c.WorstHop, "profile-svc") {
		t.Errorf("worst hop %q; the slow profile-svc calls should overrun most", c.WorstHop)
	}
	for _, bad := range []struct{ body, want, field string }{
		{strings.Replace(body, `"threshold_ms":500`, `"threshold_ms":-5`, 1), "threshold", "threshold_ms"},
		{strings.Replace(body, `"target":0.99`, `"target":1.5`, 1), "target", "target"},
		{strings.Replace(body, `"period":"30d"`, `"period":"forever"`, 1), "period", "period"},
		{strings.Replace(body, `"allocation_ms":150`, `"allocation_ms":450`, 1), "allocations add up", "hops"},
		{`{"nonsense":1}`, "unknown field", ""},
	} {
		w := serve(t, f.handler, "POST", "/api/v1/budgets", bad.body, "Content-Type", "application/json")
		var e struct {
			Error  string
			Fields []struct{ Field, Message string }
		}
		decode(t, w.Code, 400, w.Body.Bytes(), &e)
		if !strings.Contains(e.Error, bad.want) {
			t.Errorf("error %q does not mention %q", e.Error, bad.want)
		}
		if bad.field != "" && (len(e.Fields) != 1 || e.Fields[0].Field != bad.field) {
			t.Errorf("error fields %+v, want one about %s", e.Fields, bad.field)
		}
	}
	// An oversized body is a 413, as on every JSON API.
	w = serve(t, f.handler, "POST", "/api/v1/budgets", `{"name":"`+strings.Repeat("x", maxJSONBody)+`"}`, "Content-Type", "application/json")
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized budget: %d, want 413", w.Code)
	}
	w = serve(t, f.handler, "GET", "/api/v1/budgets", "")
	var list struct{ Budgets []any }
	decode(t, w.Code, 200, w.Body.Bytes(), &list)
	if len(list.Budgets) != 1 {
		t.Errorf("%d budgets stored after 1 good and 5 bad requests, want 1", len(list.Budgets))
	}
}

func TestAPIIncidents(t *testing.T) {
	f := sharedFixture(t)
	good := `{"title":"feed p99 spike","from":"2026-11-23T14:10:00Z","to":"2026-11-23T14:40:00Z","services":["feed-api"],"notes":"**acme** was slow"}`
	w := serve(t, f.handler, "POST", "/api/v1/incidents", good, "Content-Type", "application/json")
	var in incidentJSON
	decode(t, w.Code, 201, w.Body.Bytes(), &in)
	t.Cleanup(func() { serve(t, f.handler, "DELETE", fmt.Sprintf("/api/v1/incidents/%d", in.ID), "") })
	if in.Title != "feed p99 spike" || in.From.Format("15:04") != "14:10" || len(in.Services) != 1 {
		t.Errorf("created %+v", in)
	}
	upd := strings.Replace(good, "spike", "regression", 1)
	w = serve(t, f.handler, "PUT", fmt.Sprintf("/api/v1/incidents/%d", in.ID), upd, "Content-Type", "application/json")
	decode(t, w.Code, 200, w.Body.Bytes(), &in)
	if in.Title != "feed p99 regression" {
		t.Errorf("after update title %q", in.Title)
	}
	for _, bad := range []struct{ body, want string }{
		{strings.Replace(good, `"services":["feed-api"]`, `"services":["nope-svc"]`, 1), "unknown service"},
		{strings.Replace(good, `"from":"2026-11-23T14:10:00Z"`, `"from":"2026-11-23T15:10:00Z"`, 1), "before"},
		{strings.Replace(good, `"title":"feed p99 spike"`, `"title":""`, 1), "title is required"},
		{strings.Replace(good, `"**acme** was slow"`, `"`+strings.Repeat("x", 70000)+`"`, 1), "limit"},
	} {
		w := serve(t, f.handler, "POST", "/api/v1/incidents", bad.body, "Content-Type", "application/json")
		var e struct{ Error string }
		decode(t, w.Code, 400, w.Body.Bytes(), &e)
		if !strings.Contains(e.Error, bad.want) {
			t.Errorf("error %q does not mention %q", e.Error, bad.want)
		}
	}
	w = serve(t, f.handler, "GET", "/api/v1/incidents", "")
	var list struct{ Incidents []incidentJSON }
	decode(t, w.Code, 200, w.Body.Bytes(), &list)
	if len(list.Incidents) != 1 {
		t.Errorf("%d incidents stored, want 1 (bad requests store nothing)", len(list.Incidents))
	}
}

func TestCrossOriginWritesAreRefused(t *testing.T) {
	h, _ := newWritableServer(t)
	w := serve(t, h, "POST", "/api/v1/deploys", `{"service":"a","version":"1"}`,
		"Content-Type", "application/json", "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
	if w.Code != http.StatusForbidden {
		t.Fatalf("cross-site POST: status %d, want 403", w.Code)
	}
	w = serve(t, h, "POST", "/api/v1/deploys", `{"service":"a","version":"1"}`, "Content-Type", "application/json", "Sec-Fetch-Site", "same-origin")
	if w.Code != http.StatusCreated {
		t.Fatalf("same-origin POST: status %d, want 201", w.Code)
	}
}

func TestHealth(t *testing.T) {
	f := sharedFixture(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		if w := serve(t, f.handler, "GET", p, ""); w.Code != 200 {
			t.Errorf("%s: %d", p, w.Code)
		}
	}
	h, db := newWritableServer(t)
	db.Close()
	if w := serve(t, h, "GET", "/readyz", ""); w.Code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with a closed store: %d, want 503", w.Code)
	}
	if w := serve(t, h, "GET", "/healthz", ""); w.Code != 200 {
		t.Errorf("/healthz with a closed store: %d, want 200 (the process is up)", w.Code)
	}
}

func ptrText(p *float64) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprint(*p)
}
