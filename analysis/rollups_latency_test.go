package analysis_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/store"
)

// latencySource is what checkLatency reads: rollups and, for the exact
// answer it compares with, samples.
type latencySource interface {
	analysis.RollupSource
	analysis.SampleSource
}

// checkLatency compares latency reports read from rollups over [from, to)
// shifted by skew (so not on bucket edges) with exact answers from the
// spans over the window the report says it rounded out to: the same
// counts, errors, rate and time with data, per-bucket counts, and
// percentiles (window and every series point) within the sketch's
// relative error; every histogram bucket holds at least the requests
// clearly inside it and at most those within the error of it.
func checkLatency(t *testing.T, src latencySource, spans []store.Span, from, to time.Time) {
	t.Helper()
	const skew = 20 * time.Second
	queries := []analysis.LatencyQuery{
		{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint},
		{Service: analysistest.FeedAPI},
		{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint, Version: "v1"},
		{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint, Version: "v2"},
		{Service: analysistest.CandidateSvc, Step: time.Hour}, // hour rollups for a long window
		{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint, Tenant: "acme"},
		{Service: analysistest.FeedAPI, Tenant: "cyberdyne"}, // the quietest tenant
	}
	ctx := context.Background()
	for _, q := range queries {
		q.From, q.To, q.Now = from.Add(skew), to.Add(-skew), to.Add(-time.Minute-skew)
		if ok, err := analysis.ReadRollups(ctx, src, q); err != nil || !ok {
			t.Fatalf("%+v: rollups do not answer (%v)", q, err)
		}
		got, err := analysis.LatencyFromRollups(ctx, src, q)
		if err != nil {
			t.Fatal(err)
		}
		if got.Method != analysis.MethodRollups || got.RelativeError != analysis.SketchRelativeAccuracy {
			t.Errorf("%+v: method %q ±%v", q, got.Method, got.RelativeError)
		}
		if !got.From.Before(q.From) || !got.To.After(q.To) || got.To.Sub(got.From) > to.Sub(from) {
			t.Errorf("%+v: window %s – %s, want %s – %s rounded out to whole buckets", q, got.From, got.To, q.From, q.To)
		}
		eq := q
		eq.From, eq.To, eq.Method, eq.Step = got.From, got.To, analysis.MethodExact, time.Duration(got.Series.StepSeconds*1e9)
		want, err := analysis.Latency(ctx, src, eq)
		if err != nil {
			t.Fatal(err)
		}
		if want.Count == 0 {
			t.Fatalf("%+v: no requests: a vacuous comparison", q)
		}
		if got.Count != want.Count || got.ErrorCount != want.ErrorCount || got.ErrorRate != want.ErrorRate ||
			got.RatePerS != want.RatePerS || got.DataSpan != want.DataSpan {
			t.Errorf("%+v: %d requests, %d errors (%v), %v/s, data %v; exact %d, %d (%v), %v/s, %v", q,
				got.Count, got.ErrorCount, got.ErrorRate, got.RatePerS, got.DataSpan,
				want.Count, want.ErrorCount, want.ErrorRate, want.RatePerS, want.DataSpan)
		}
		gp, wp := got.Percentiles, want.Percentiles
		for _, c := range []struct {
			name      string
			got, want float64
		}{{"p50", gp.P50Ms, wp.P50Ms}, {"p90", gp.P90Ms, wp.P90Ms}, {"p95", gp.P95Ms, wp.P95Ms}, {"p99", gp.P99Ms, wp.P99Ms},
			{"min", gp.MinMs, wp.MinMs}, {"max", gp.MaxMs, wp.MaxMs}, {"mean", gp.MeanMs, wp.MeanMs}} {
			if !nearSketch(c.got, c.want) {
				t.Errorf("%+v: %s = %v ms, exact %v ms", q, c.name, c.got, c.want)
			}
		}
		checkLatencySeries(t, q, got.Series, want.Series)
		checkLatencyHistogram(t, q, got, spans)
	}
}

func nearSketch(got, want float64) bool {
	return math.Abs(got-want) <= analysis.SketchRelativeAccuracy*want+0.001
}

func checkLatencySeries(t *testing.T, q analysis.LatencyQuery, got, want analysis.TimeSeries) {
	t.Helper()
	if got.StepSeconds != want.StepSeconds || len(got.Points) != len(want.Points) {
		t.Fatalf("%+v: %d points of %vs, exact %d of %vs", q, len(got.Points), got.StepSeconds, len(want.Points), want.StepSeconds)
	}
	for i, g := range got.Points {
		w := want.Points[i]
		if !g.Start.Equal(w.Start) || g.Count != w.Count || g.Errors != w.Errors || g.CoveredS != w.CoveredS || g.RatePerS != w.RatePerS {
			t.Errorf("%+v: point %d = %+v, exact %+v", q, i, g, w)
			continue
		}
		for _, c := range []struct {
			name      string
			got, want *float64
		}{{"p50", g.P50Ms, w.P50Ms}, {"p95", g.P95Ms, w.P95Ms}, {"p99", g.P99Ms, w.P99Ms}} {
			if (c.got == nil) != (c.want == nil) || c.got != nil && !nearSketch(*c.got, *c.want) {
				t.Errorf("%+v: point %d %s = %v, exact %v", q, i, c.name, c.got, c.want)
			}
		}
	}
}

// checkLatencyHistogram checks the histogram and heatmap against the
// durations of the requests in the report's window.
func checkLatencyHistogram(t *testing.T, q analysis.LatencyQuery, rep analysis.LatencyReport, spans []store.Span) {
	t.Helper()
	var durs []float64
	for _, sp := range spans {
		if sp.IsEntry() && sp.Service == q.Service && (q.Endpoint == "" || sp.Name == q.Endpoint) &&
			(q.Version == "" || sp.Version == q.Version) && (q.Tenant == "" || sp.Tenant == q.Tenant) &&
			sp.StartUnixNano >= rep.From.UnixNano() && sp.StartUnixNano < rep.To.UnixNano() {
			for range store.CountWeight(sp.Weight) {
				durs = append(durs, float64(sp.DurationNano)/1e6)
			}
		}
	}
	within := func(lo, hi float64) int {
		n := 0
		for _, d := range durs {
			if d >= lo && d < hi {
				n++
			}
		}
		return n
	}
	a := 1 + analysis.SketchRelativeAccuracy
	total := 0
	for _, b := range rep.Histogram {
		total += b.Count
		// Bounds are rounded to µs in the report.
		inner, outer := within(b.LowerMs*a+0.001, b.UpperMs/a-0.001), within(b.LowerMs/a-0.001, b.UpperMs*a+0.001)
		if b.Count < inner || b.Count > outer {
			t.Errorf("%+v: histogram [%v, %v) ms holds %d, want %d to %d", q, b.LowerMs, b.UpperMs, b.Count, inner, outer)
		}
	}
	heat := 0
	for _, col := range rep.Heatmap.Counts {
		for _, n := range col {
			heat += n
		}
	}
	if total != len(durs) || heat != len(durs) {
		t.Errorf("%+v: histogram holds %d, heatmap %d, want %d", q, total, heat, len(durs))
	}
}
