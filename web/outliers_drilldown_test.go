package web

import (
	"html"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tailscope/tailscope/store"
)

// TestOutliersDrillDown: every dimension value and group on the outliers
// page links to a search that lists slow requests of the endpoint having
// that value, and each listed trace has it.
func TestOutliersDrillDown(t *testing.T) {
	f := sharedFixture(t)
	page := serve(t, f.handler, "GET", "/outliers?service=feed-api&endpoint=GET+/v1/feed&from=now-1h", "")
	if page.Code != 200 {
		t.Fatalf("outliers page: %d", page.Code)
	}
	links := regexp.MustCompile(`href="(/search\?[^"]+)"`).FindAllStringSubmatch(page.Body.String(), -1)
	dims := map[string]bool{}
	checked := 0
	for _, m := range links {
		u, err := url.Parse(html.UnescapeString(m[1]))
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if q.Get("min_ms") == "" {
			continue // the page's plain "slow traces" link
		}
		for _, k := range []string{"tenant", "version", "attr"} {
			if q.Get(k) != "" {
				dims[k] = true
			}
		}
		for _, h := range q["has"] {
			dims["has:"+strings.SplitN(h, "=", 2)[0]] = true
		}
		q.Set("limit", "50")
		w := serve(t, f.handler, "GET", "/api/v1/traces?"+q.Encode(), "")
		var res struct {
			Traces []traceSummaryJSON `json:"traces"`
		}
		decode(t, w.Code, 200, w.Body.Bytes(), &res)
		if len(res.Traces) == 0 {
			t.Errorf("%s lists no trace", u)
			continue
		}
		minMs, _ := strconv.ParseFloat(q.Get("min_ms"), 64)
		has, err := parseHas(q)
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range res.Traces[:min(5, len(res.Traces))] {
			if tr.MatchDurationMs < minMs {
				t.Errorf("%s: trace %s of %v ms is under the threshold", u, tr.TraceID, tr.MatchDurationMs)
			}
			if tv := q.Get("tenant"); tv != "" && tr.Tenant != tv {
				t.Errorf("%s: trace %s of tenant %q", u, tr.TraceID, tr.Tenant)
			}
			id, _ := store.ParseTraceID(tr.TraceID)
			spans, err := f.db.Trace(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range has {
				if !traceHas(spans, m) {
					t.Errorf("%s: trace %s has no span with %+v", u, tr.TraceID, m)
				}
			}
		}
		checked++
	}
	// The fixture's outliers are acme's slow profile calls: tenant and
	// dependency at least, and the versions and hosts of the services.
	for _, want := range []string{"tenant", "has:dependency", "has:service", "has:host"} {
		if !dims[want] {
			t.Errorf("no drill-down link by %s (links by %v)", want, dims)
		}
	}
	if checked < 5 {
		t.Errorf("only %d drill-down links", checked)
	}
}

func traceHas(spans []store.Span, m store.SpanMatch) bool {
	for _, sp := range spans {
		if (m.Service == "" || sp.Service == m.Service) && (m.Version == "" || sp.Version == m.Version) &&
			(m.Host == "" || sp.Host == m.Host) && (m.Dependency == "" || sp.Dependency == m.Dependency) &&
			sp.PayloadBytes >= m.MinPayloadBytes && (m.MaxPayloadBytes == 0 || sp.PayloadBytes < m.MaxPayloadBytes) {
			return true
		}
	}
	return false
}

func TestParseHas(t *testing.T) {
	got, err := parseHas(url.Values{"has": {"service=cand;version=v1", "payload=1MiB-2MiB", ""}})
	want := []store.SpanMatch{{Service: "cand", Version: "v1"}, {MinPayloadBytes: 1 << 20, MaxPayloadBytes: 2 << 20}}
	if err != nil || len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("%+v, %v", got, err)
	}
	for _, bad := range []string{"service", "colour=red", "payload=3MiB", "service=", ";"} {
		if _, err := parseHas(url.Values{"has": {bad}}); err == nil {
			t.Errorf("has=%q accepted", bad)
		}
	}
	if _, err := parseHas(url.Values{"has": {"host=a", "host=b", "host=c", "host=d", "host=e"}}); err == nil {
		t.Error("five conditions accepted")
	}
	// The search page keeps the conditions and offers to drop each.
	f := sharedFixture(t)
	w := serve(t, f.handler, "GET", "/search?service=feed-api&has="+url.QueryEscape("service=profile-svc;version=v1")+"&from=now-1h", "")
	body := w.Body.String()
	if w.Code != 200 || !strings.Contains(body, `data-testid="search-has"`) || !strings.Contains(body, `name="has" value="service=profile-svc;version=v1"`) ||
		!strings.Contains(body, "service=profile-svc, version=v1") {
		t.Errorf("search page with has: %d", w.Code)
	}
}
