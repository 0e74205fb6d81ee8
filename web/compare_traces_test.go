package web

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/analysis/analysistest"
)

// slowestAcme returns the slowest acme request's trace id in the fixture:
// one the slow profile-svc made slow.
func slowestAcme(t *testing.T, f *fixture) string {
	t.Helper()
	w := serve(t, f.handler, "GET", "/api/v1/traces?service=feed-api&endpoint=GET+/v1/feed&tenant=acme&sort=slowest&limit=1&from=now-1h", "")
	var res struct {
		Traces []traceSummaryJSON `json:"traces"`
	}
	decode(t, w.Code, 200, w.Body.Bytes(), &res)
	if len(res.Traces) != 1 {
		t.Fatalf("no acme trace")
	}
	return res.Traces[0].TraceID
}

func TestAPITraceCompareWithTypical(t *testing.T) {
	f := sharedFixture(t)
	slow := slowestAcme(t, f)
	w := serve(t, f.handler, "GET", "/api/v1/traces/compare?a="+slow, "")
	var d analysis.TraceDiff
	decode(t, w.Code, 200, w.Body.Bytes(), &d)
	if d.A.TraceID.String() != slow || d.B.TraceID.String() == slow || d.B.Name != "GET /v1/feed" {
		t.Fatalf("compared %s with %s %s", d.A.TraceID, d.B.TraceID, d.B.Name)
	}
	if d.DeltaMs < 500 || d.Culprit < 0 {
		t.Fatalf("delta %v, culprit %d: %s", d.DeltaMs, d.Culprit, d.Summary)
	}
	if c := d.Nodes[d.Culprit]; c.Service != analysistest.ProfileSvc && c.Dependency != analysistest.ProfileSvc {
		t.Errorf("culprit %s %s (dependency %q): %s", c.Service, c.Name, c.Dependency, d.Summary)
	}
	if !strings.HasPrefix(d.Summary, "+") {
		t.Errorf("summary %q", d.Summary)
	}
	// The page's permalink names both traces.
	w = serve(t, f.handler, "GET", "/traces/compare?a="+slow, "")
	if w.Code != 303 {
		t.Fatalf("page without b: %d", w.Code)
	}
	loc, _ := url.Parse(w.Header().Get("Location"))
	if loc.Query().Get("b") != d.B.TraceID.String() {
		t.Fatalf("redirect to %s", loc)
	}
	w = serve(t, f.handler, "GET", loc.String(), "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `data-testid="compare-culprit"`) {
		t.Fatalf("compare page: %d", w.Code)
	}
	// The waterfall offers the comparison.
	w = serve(t, f.handler, "GET", "/traces/"+slow, "")
	if !strings.Contains(w.Body.String(), `href="/traces/compare?a=`+slow+`"`) {
		t.Error("the waterfall has no compare-with-a-typical-trace link")
	}
}

func TestAPITraceCompareErrors(t *testing.T) {
	f := sharedFixture(t)
	slow := slowestAcme(t, f)
	for _, tc := range []struct {
		query string
		code  int
	}{
		{"", 400},
		{"a=xyz", 400},
		{"a=" + slow + "&b=%00", 400},
		{"a=" + slow + "&b=" + slow, 400},
		{"a=0123456789abcdef0123456789abcdef", 404},
		{"a=" + slow + "&b=0123456789abcdef0123456789abcdef", 404},
	} {
		w := serve(t, f.handler, "GET", "/api/v1/traces/compare?"+tc.query, "")
		var problem struct {
			Error string `json:"error"`
		}
		if w.Code != tc.code || json.Unmarshal(w.Body.Bytes(), &problem) != nil || problem.Error == "" {
			t.Errorf("%s: %d %s, want %d with a message", tc.query, w.Code, w.Body.String(), tc.code)
		}
	}
}

func TestAPIShape(t *testing.T) {
	f := sharedFixture(t)
	w := serve(t, f.handler, "GET", "/api/v1/shape?service=feed-api&endpoint=GET+/v1/feed&from=now-1h", "")
	var rep analysis.ShapeReport
	decode(t, w.Code, 200, w.Body.Bytes(), &rep)
	if rep.Requests != 3000 || rep.SlowCount == 0 || rep.TypicalCount == 0 || rep.Culprit < 0 {
		t.Fatalf("%d requests, %d slow, %d typical, culprit %d: %s", rep.Requests, rep.SlowCount, rep.TypicalCount, rep.Culprit, rep.Summary)
	}
	if c := rep.Nodes[rep.Culprit]; c.Service != analysistest.ProfileSvc && c.Dependency != analysistest.ProfileSvc {
		t.Errorf("culprit %s %s: %s", c.Service, c.Name, rep.Summary)
	}
	w = serve(t, f.handler, "GET", "/shape?service=feed-api&endpoint=GET+/v1/feed&from=now-1h", "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `data-testid="shape-culprit"`) {
		t.Errorf("shape page: %d", w.Code)
	}
	for _, q := range []string{"endpoint=GET+/v1/feed", "service=feed-api&endpoint=x&percentile=100"} {
		if w := serve(t, f.handler, "GET", "/api/v1/shape?"+q, ""); w.Code != 400 {
			t.Errorf("%s: %d", q, w.Code)
		}
	}
}
