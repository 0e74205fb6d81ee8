package web

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/report"
	"github.com/tailscope/tailscope/store"
)

// newServiceData is a store whose feed-api appeared 50 minutes before the
// test clock (ten minutes into the hour before it): v1 for 20 minutes, then v2, both at 2.5 requests/s, with
// the markers ingest records at each version's first span.
type newServiceData struct {
	h          http.Handler
	v1, v2     store.Deploy
	first, at2 time.Time
}

func newServiceFixture(t *testing.T) newServiceData {
	t.Helper()
	h, db := newWritableServer(t)
	ctx := context.Background()
	now := fixtureNow()
	v1 := analysistest.Generate(analysistest.Scenario{Seed: 81, Start: now.Add(-50 * time.Minute), Window: 20 * time.Minute, Traces: 3000})
	v2 := analysistest.Generate(analysistest.Scenario{Seed: 82, Start: now.Add(-30 * time.Minute), Window: 30 * time.Minute, Traces: 4500, Parallel: true})
	d := newServiceData{h: h}
	for i, ds := range []analysistest.Dataset{v1, v2} {
		first := int64(math.MaxInt64)
		for _, s := range ds.Spans {
			if s.Service == analysistest.FeedAPI {
				first = min(first, s.StartUnixNano)
			}
		}
		if err := db.WriteSpans(ctx, ds.Spans); err != nil {
			t.Fatal(err)
		}
		m, err := db.RecordDeploy(ctx, store.Deploy{Service: analysistest.FeedAPI, Version: []string{"v1", "v2"}[i], At: time.Unix(0, first).UTC(), Source: store.DeploySourceAuto})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			d.v1, d.first = m, m.At
		} else {
			d.v2, d.at2 = m, m.At
		}
	}
	return d
}

// TestNewService checks rates, kinds and comparisons on one store whose
// feed-api appeared ten minutes into the hour shown.
func TestNewService(t *testing.T) {
	d := newServiceFixture(t)
	t.Run("rates agree with the chart", func(t *testing.T) { checkRatesAgree(t, d) })
	t.Run("first seen and no baseline", func(t *testing.T) { checkFirstSeen(t, d) })
	t.Run("report", func(t *testing.T) { checkReportFirstSeen(t, d) })
}

// checkRatesAgree: a service that started ten minutes into the hour shown
// has the same rate on the Services page, in /api/v1/services and in the
// latency chart's full buckets: its 2.5/s, not the 2.08/s the hour would
// average.
func checkRatesAgree(t *testing.T, d newServiceData) {
	w := serve(t, d.h, "GET", "/api/v1/services?from=now-1h", "")
	var svcs struct {
		Services []struct {
			Name     string    `json:"name"`
			Count    int       `json:"count"`
			RatePerS float64   `json:"rate_per_s"`
			DataFrom time.Time `json:"data_from"`
			DataTo   time.Time `json:"data_to"`
		} `json:"services"`
	}
	decode(t, w.Code, 200, w.Body.Bytes(), &svcs)
	var rate float64
	for _, s := range svcs.Services {
		if s.Name == analysistest.FeedAPI {
			rate = s.RatePerS
			if !s.DataFrom.Equal(d.first) || !s.DataTo.Equal(fixtureNow()) || s.Count != 7500 {
				t.Errorf("feed-api: %d requests, data %s – %s; want 7500 from its first request %s to now", s.Count, s.DataFrom, s.DataTo, d.first)
			}
		}
	}
	if math.Abs(rate-2.5) > 0.03 {
		t.Fatalf("API rate %v/s, want ~2.5/s (7500 requests over the 50 minutes with data)", rate)
	}

	w = serve(t, d.h, "GET", "/api/v1/latency?service=feed-api&endpoint=GET+/v1/feed&from=now-1h&step=1m", "")
	var lat struct {
		RatePerS float64 `json:"rate_per_s"`
		Series   struct {
			Points []struct {
				Start    time.Time `json:"start"`
				Count    int       `json:"count"`
				CoveredS float64   `json:"covered_s"`
				RatePerS float64   `json:"rate_per_s"`
			} `json:"points"`
		} `json:"series"`
	}
	decode(t, w.Code, 200, w.Body.Bytes(), &lat)
	if lat.RatePerS != rate {
		t.Errorf("latency report %v/s, services %v/s", lat.RatePerS, rate)
	}
	var sum, n float64
	for _, p := range lat.Series.Points {
		if p.Start.After(d.first) && p.CoveredS == 60 {
			sum += p.RatePerS
			n++
		}
	}
	if mean := sum / n; n < 45 || math.Abs(mean-rate) > 0.02*rate {
		t.Errorf("chart's %v full buckets average %v/s; the services page says %v/s", n, mean, rate)
	}

	page := serve(t, d.h, "GET", "/?from=now-1h", "").Body.String()
	row := regexp.MustCompile(`(?s)data-service="feed-api".*?</tr>`).FindString(page)
	if !strings.Contains(row, fmt.Sprintf("%.2f/s", rate)) {
		t.Errorf("services page row for feed-api does not show %.2f/s: %s", rate, row)
	}
	if since := "since " + d.first.Format("15:04"); !strings.Contains(row, since) {
		t.Errorf("services page row for feed-api does not say the rate is %s: %s", since, row)
	}
	if !strings.Contains(row, `data-kind="first_seen"`) {
		t.Errorf("services page does not show v1 as first seen: %s", row)
	}
}

// checkFirstSeen: the first version of a new service is "first seen" in
// the API and on the pages, its comparison is "new — no baseline", and a
// deploy whose before window started before the service compares rates
// over the time with data.
func checkFirstSeen(t *testing.T, d newServiceData) {
	w := serve(t, d.h, "GET", "/api/v1/deploys", "")
	var list struct {
		Deploys []deployJSON `json:"deploys"`
	}
	decode(t, w.Code, 200, w.Body.Bytes(), &list)
	kinds := map[string]string{}
	for _, m := range list.Deploys {
		kinds[m.Version] = m.Kind
	}
	if kinds["v1"] != "first_seen" || kinds["v2"] != "deploy" {
		t.Errorf("kinds %v, want v1 first_seen and v2 deploy", kinds)
	}

	w = serve(t, d.h, "GET", fmt.Sprintf("/api/v1/compare?deploy=%d", d.v1.ID), "")
	var c struct {
		Verdict     string `json:"verdict"`
		Baseline    string `json:"baseline"`
		Summary     string `json:"summary"`
		Percentiles []any  `json:"percentiles"`
		ErrorRate   *any   `json:"error_rate"`
		Throughput  struct {
			BeforePerS float64  `json:"before_per_s"`
			AfterPerS  float64  `json:"after_per_s"`
			DeltaPct   *float64 `json:"delta_pct"`
		} `json:"throughput"`
	}
	decode(t, w.Code, 200, w.Body.Bytes(), &c)
	if c.Verdict != "new" || c.Baseline != "none" || len(c.Percentiles) != 0 || c.ErrorRate != nil || c.Throughput.DeltaPct != nil {
		t.Errorf("first seen compared: %s", w.Body.Bytes())
	}

	w = serve(t, d.h, "GET", fmt.Sprintf("/api/v1/compare?deploy=%d&window=1h", d.v2.ID), "")
	decode(t, w.Code, 200, w.Body.Bytes(), &c)
	if c.Baseline != "partial" || c.Throughput.DeltaPct == nil || math.Abs(*c.Throughput.DeltaPct) > 6 || math.Abs(c.Throughput.BeforePerS-2.5) > 0.1 {
		t.Errorf("deploy 20 minutes after the service started: baseline %s, throughput %+v; want partial and about the same rate", c.Baseline, c.Throughput)
	}

	page := serve(t, d.h, "GET", "/deploys", "").Body.String()
	for v, kind := range map[string]string{"v1": "first_seen", "v2": "deploy"} {
		if !strings.Contains(page, fmt.Sprintf(`data-version="%s" data-kind="%s"`, v, kind)) {
			t.Errorf("deploys page does not list %s as %s", v, kind)
		}
	}
	page = serve(t, d.h, "GET", fmt.Sprintf("/deploys/%d", d.v1.ID), "").Body.String()
	for _, want := range []string{`data-testid="first-seen"`, `data-verdict="new"`, "New — no baseline"} {
		if !strings.Contains(page, want) {
			t.Errorf("first-seen deploy page lacks %s", want)
		}
	}
	if strings.Contains(page, `data-testid="percentile-deltas"`) {
		t.Error("first-seen deploy page shows percentile changes against nothing")
	}
	page = serve(t, d.h, "GET", "/latency?service=feed-api&endpoint=GET+/v1/feed&from=now-1h", "").Body.String()
	if !regexp.MustCompile(`<g class="marker first-seen">.*?>v1</text>`).MatchString(page) || !strings.Contains(page, "first seen</span>") {
		t.Error("latency chart does not draw v1 as a first-seen marker with a legend")
	}
}

// checkReportFirstSeen: an incident report lists a service's first
// sighting as such, with no comparison section, and compares the deploy
// after it.
func checkReportFirstSeen(t *testing.T, d newServiceData) {
	body := fmt.Sprintf(`{"title":"new feed","from":%q,"to":%q,"services":["feed-api"]}`,
		d.first.Add(-5*time.Minute).Format(time.RFC3339), fixtureNow().Format(time.RFC3339))
	w := serve(t, d.h, "POST", "/api/v1/incidents", body, "Content-Type", "application/json")
	var in struct {
		ID int64 `json:"id"`
	}
	decode(t, w.Code, http.StatusCreated, w.Body.Bytes(), &in)
	w = serve(t, d.h, "GET", fmt.Sprintf("/incidents/%d/report.json", in.ID), "")
	var rep report.Report
	decode(t, w.Code, 200, w.Body.Bytes(), &rep)
	if len(rep.Deploys) != 2 {
		t.Fatalf("report deploys %+v, want v1 and v2", rep.Deploys)
	}
	first, deploy := rep.Deploys[0], rep.Deploys[1]
	if first.Kind != "first_seen" || first.Comparison != nil || first.Unavailable != "" {
		t.Errorf("v1 in the report: %+v; want first seen without a comparison", first)
	}
	if deploy.Kind != "deploy" || deploy.Comparison == nil || deploy.Comparison.Baseline != "partial" {
		t.Errorf("v2 in the report: kind %s, comparison %+v", deploy.Kind, deploy.Comparison)
	}
	// The window before the incident precedes the service: no baseline.
	if len(rep.Endpoints) != 1 || rep.Endpoints[0].Impact == nil || rep.Endpoints[0].Impact.Verdict != "new" || strings.Contains(rep.Summary, "Against the") {
		t.Errorf("impact against the window before a new service: %+v; summary %q", rep.Endpoints, rep.Summary)
	}
	md := serve(t, d.h, "GET", fmt.Sprintf("/incidents/%d/report.md", in.ID), "").Body.String()
	if impact := md[strings.Index(md, "### Impact"):strings.Index(md, "### Deploys")]; !strings.Contains(impact, "| new — no baseline |") || strings.Contains(impact, "| 0 ms |") || strings.Contains(impact, "before vs the incident") {
		t.Errorf("markdown impact should say new — no baseline, with no comparison section:\n%s", impact)
	}
	// A first sighting is a timeline event, not a deploy section.
	section := md[strings.Index(md, "### Deploys"):strings.Index(md, "### Budgets")]
	if strings.Contains(section, "feed-api v1") || !strings.Contains(section, "#### feed-api v2") {
		t.Errorf("markdown deploy section should hold v2 only:\n%s", section)
	}
	if timeline := md[strings.Index(md, "## Timeline"):strings.Index(md, "## Evidence")]; !strings.Contains(timeline, "feed-api first seen, version v1") {
		t.Errorf("markdown timeline should list v1 as first seen:\n%s", timeline)
	}
	page := serve(t, d.h, "GET", fmt.Sprintf("/incidents/%d", in.ID), "").Body.String()
	if strings.Contains(page, `data-testid="incident-deploy" data-kind="first_seen"`) || !strings.Contains(page, `class="marker first-seen"`) {
		t.Error("incident page should mark v1 as first seen on its charts, without a deploy card")
	}
}
