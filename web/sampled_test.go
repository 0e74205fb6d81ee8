package web

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/store"
)

// TestSampledStreamPages: spans stored with sampling weights (one in ten
// of the fast requests kept, weight 10; every slow one, weight 1). The
// outliers API counts the requests they stand for and says how many were
// stored, the page says its numbers are estimates, a deploy comparison
// gives the same reason, and the shape and service map say they were
// drawn by weight.
func TestSampledStreamPages(t *testing.T) {
	h, db := newWritableServer(t)
	ctx := context.Background()
	before := analysistest.Generate(analysistest.Scenario{Seed: 71, Start: fixtureStart, Window: 30 * time.Minute, Traces: 4000})
	after := analysistest.Generate(analysistest.Scenario{Seed: 72, Start: fixtureStart.Add(30 * time.Minute), Window: 30 * time.Minute, Traces: 4000})
	all := append(before.Spans, after.Spans...)
	kept := analysistest.TailSample(all, (300 * time.Millisecond).Nanoseconds(), 10)
	if err := db.WriteSpans(ctx, kept); err != nil {
		t.Fatal(err)
	}
	dep, err := db.RecordDeploy(ctx, store.Deploy{Service: analysistest.FeedAPI, Version: "v2", At: fixtureStart.Add(30 * time.Minute), Source: store.DeploySourceAuto})
	if err != nil {
		t.Fatal(err)
	}

	w := serve(t, h, "GET", "/api/v1/outliers?service=feed-api&endpoint="+url.QueryEscape(analysistest.Endpoint)+"&from=now-1h", "")
	var rep analysis.OutlierReport
	if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil || w.Code != 200 {
		t.Fatalf("outliers API: %d %v: %s", w.Code, err, w.Body.String())
	}
	if !rep.Weighted || rep.SampledCount >= rep.RequestCount || rep.RequestCount < 6000 {
		t.Errorf("outliers API: weighted %v, %d stored, %d requests; want weighted, about 8,000 requests", rep.Weighted, rep.SampledCount, rep.RequestCount)
	}
	page := serve(t, h, "GET", "/outliers?service=feed-api&from=now-1h", "").Body.String()
	if !strings.Contains(page, "The traces were sampled") || !strings.Contains(page, strconv.Itoa(rep.SampledCount)+" sampled requests") {
		t.Errorf("the outliers page does not say its numbers are estimated from %d sampled requests", rep.SampledCount)
	}

	w = serve(t, h, "GET", "/api/v1/compare?service=feed-api&endpoint="+url.QueryEscape(analysistest.Endpoint)+"&deploy="+strconv.FormatInt(dep.ID, 10)+"&window=30m", "")
	var c analysis.Comparison
	if err := json.Unmarshal(w.Body.Bytes(), &c); err != nil || w.Code != 200 {
		t.Fatalf("compare API: %d %v: %s", w.Code, err, w.Body.String())
	}
	if !c.Before.Weighted || !c.After.Weighted || !strings.Contains(strings.Join(c.Reasons, "; "), "sampled traces") {
		t.Errorf("comparison: weighted %v/%v, reasons %q", c.Before.Weighted, c.After.Weighted, c.Reasons)
	}

	w = serve(t, h, "GET", "/api/v1/shape?service=feed-api&endpoint="+url.QueryEscape(analysistest.Endpoint)+"&from=now-1h", "")
	var sh analysis.ShapeReport
	if err := json.Unmarshal(w.Body.Bytes(), &sh); err != nil || w.Code != 200 {
		t.Fatalf("shape API: %d %v: %s", w.Code, err, w.Body.String())
	}
	if !sh.Weighted || sh.SampledCount >= sh.Requests || sh.Requests < 6000 {
		t.Errorf("shape API: weighted %v, %d stored, %d requests; want weighted, about 8,000 requests", sh.Weighted, sh.SampledCount, sh.Requests)
	}
	if page := serve(t, h, "GET", "/shape?service=feed-api&endpoint="+url.QueryEscape(analysistest.Endpoint)+"&from=now-1h", "").Body.String(); !strings.Contains(page, "estimated from "+strconv.Itoa(sh.SampledCount)+" sampled requests") {
		t.Errorf("the shape page does not say its requests are estimated from %d sampled ones", sh.SampledCount)
	}

	w = serve(t, h, "GET", "/api/v1/servicemap?from=now-1h", "")
	var m analysis.ServiceMap
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil || w.Code != 200 {
		t.Fatalf("service map API: %d %v: %s", w.Code, err, w.Body.String())
	}
	var calls float64
	for _, e := range m.Edges {
		calls = max(calls, e.Calls)
	}
	if !m.Weighted || calls < 6000 {
		t.Errorf("service map API: weighted %v, busiest edge %v calls; want weighted, about 8,000 calls", m.Weighted, calls)
	}
	if page := serve(t, h, "GET", "/servicemap?from=now-1h", "").Body.String(); !strings.Contains(page, "of a sampled stream") {
		t.Error("the service map page does not say it was drawn from a sampled stream")
	}
}
