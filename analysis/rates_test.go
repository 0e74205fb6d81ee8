package analysis

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/store"
)

// phase is feed traffic of n requests starting uniformly in [from, from+d).
type phase struct {
	seed    uint64
	from    time.Duration // after testEpoch
	d       time.Duration
	n       int
	version string
}

// phases generates the spans of each phase.
func phases(ps ...phase) []store.Span {
	var spans []store.Span
	for _, p := range ps {
		sc := analysistest.Scenario{Seed: p.seed, Start: testEpoch.Add(p.from), Window: p.d, Traces: p.n, Version: p.version, Parallel: p.version == "v2"}
		spans = append(spans, analysistest.Generate(sc).Spans...)
	}
	return spans
}

// firstStart is the earliest start of the service's entry spans.
func firstStart(spans []store.Span, service string) time.Time {
	first := int64(math.MaxInt64)
	for i := range spans {
		if spans[i].Service == service && spans[i].IsEntry() {
			first = min(first, spans[i].StartUnixNano)
		}
	}
	return time.Unix(0, first).UTC()
}

// TestRatesOverTimeWithData: the services overview, the API behind it and
// the latency report average a rate over the time that has data for the
// series, and get the injected rate back.
func TestRatesOverTimeWithData(t *testing.T) {
	h := time.Hour
	tests := []struct {
		name     string
		traffic  []phase
		from, to time.Duration // the window, after testEpoch
		now      time.Duration // 0: no cut
		// want is the true rate; wantFromFirst says the time with data
		// starts at the service's first request, not the window's start.
		want          float64
		wantFromFirst bool
	}{
		// The case: the page said 1.2/s for a service doing 15/s.
		{"starts mid-window", []phase{{seed: 1, from: 40 * time.Minute, d: 20 * time.Minute, n: 6000}}, 0, h, 0, 5, true},
		// Quiet is data: the last half hour counts, at zero.
		{"went quiet", []phase{{seed: 2, d: 30 * time.Minute, n: 9000}}, 0, h, 0, 2.5, false},
		// A service that ran before the window and is bursty inside it
		// is averaged over the whole window.
		{"existed before, bursty", []phase{{seed: 3, from: -2 * h, d: time.Minute, n: 60}, {seed: 4, from: 30 * time.Minute, d: 10 * time.Minute, n: 3000}}, 0, h, 0, 3000.0 / 3600, false},
		// No data from the future: a window reaching past now ends at now.
		{"window past now", []phase{{seed: 5, d: h, n: 9000}}, 0, 2 * h, h, 2.5, false},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spans := phases(tt.traffic...)
			src := analysistest.NewSource(spans)
			from, to := testEpoch.Add(tt.from), testEpoch.Add(tt.to)
			var now time.Time
			if tt.now != 0 {
				now = testEpoch.Add(tt.now)
			}
			rep, err := ServiceStats(ctx, src, ServicesQuery{From: from, To: to, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			var feed *ServiceSummary
			for i := range rep.Services {
				if rep.Services[i].Name == analysistest.FeedAPI {
					feed = &rep.Services[i]
				}
			}
			if feed == nil || len(feed.Endpoints) != 1 {
				t.Fatalf("feed-api missing or with other endpoints: %+v", rep.Services)
			}
			checkRate(t, "service", feed.RequestStats.Count, feed.RatePerS, feed.DataSpan, tt.want)
			checkRate(t, "endpoint", feed.Endpoints[0].Count, feed.Endpoints[0].RatePerS, feed.Endpoints[0].DataSpan, tt.want)
			wantFrom := from
			if tt.wantFromFirst {
				wantFrom = firstStart(spans, analysistest.FeedAPI)
			}
			wantTo := dataEnd(to, now)
			if !feed.DataFrom.Equal(wantFrom) || !feed.DataTo.Equal(wantTo) {
				t.Errorf("time with data %s – %s, want %s – %s", feed.DataFrom, feed.DataTo, wantFrom, wantTo)
			}
			lat, err := Latency(ctx, src, LatencyQuery{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint, From: from, To: to, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if lat.RatePerS != feed.RatePerS || lat.DataSpan != feed.DataSpan {
				t.Errorf("latency report %v/s over %+v, services %v/s over %+v: they must agree", lat.RatePerS, lat.DataSpan, feed.RatePerS, feed.DataSpan)
			}
		})
	}
}

// checkRate asserts a rate is its count over its time with data, and
// within 1% of the injected truth.
func checkRate(t *testing.T, what string, count int, rate float64, span DataSpan, truth float64) {
	t.Helper()
	exact := float64(count) / span.DataTo.Sub(span.DataFrom).Seconds()
	if math.Abs(rate-exact) > 1e-4 {
		t.Errorf("%s rate %v/s, but %d requests over %s is %v/s", what, rate, count, span.DataTo.Sub(span.DataFrom), exact)
	}
	if math.Abs(rate-truth) > 0.01*truth {
		t.Errorf("%s rate %v/s, want %v/s (the injected rate) within 1%%", what, rate, truth)
	}
}

// TestSeriesRates: chart buckets are averaged over their part inside the
// window and before now, so the bucket still filling is not a drop; and
// full buckets agree with the window's rate.
func TestSeriesRates(t *testing.T) {
	// 5/s from minute 20 until now, 45:20 into an hour's window.
	src := analysistest.NewSource(phases(phase{seed: 6, from: 20 * time.Minute, d: 25*time.Minute + 20*time.Second, n: 7600}))
	now := testEpoch.Add(45*time.Minute + 20*time.Second)
	rep, err := Latency(context.Background(), src, LatencyQuery{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint,
		From: testEpoch, To: testEpoch.Add(time.Hour), Step: time.Minute, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var full, fullCount float64
	for _, p := range rep.Series.Points {
		switch {
		case p.Start.Equal(testEpoch.Add(45 * time.Minute)):
			if p.CoveredS != 20 || math.Abs(p.RatePerS-5) > 1.5 {
				t.Errorf("bucket at now: %d requests over %vs = %v/s; want ~5/s over 20s", p.Count, p.CoveredS, p.RatePerS)
			}
		case p.Start.After(now):
			if p.CoveredS != 0 || p.RatePerS != 0 || p.Count != 0 {
				t.Errorf("bucket after now %+v", p)
			}
		case p.Start.After(testEpoch.Add(20*time.Minute)) && p.Start.Before(now):
			if p.CoveredS != 60 {
				t.Errorf("full bucket covers %vs", p.CoveredS)
			}
			full++
			fullCount += float64(p.Count)
		}
	}
	if mean := fullCount / full / 60; math.Abs(mean-rep.RatePerS) > 0.02*rep.RatePerS || math.Abs(rep.RatePerS-5) > 0.05 {
		t.Errorf("full buckets average %v/s, the window %v/s; want both ~5/s", mean, rep.RatePerS)
	}
}
