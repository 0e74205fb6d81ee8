package analysis

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/store"
)

// The million-span source is built once per test binary: generating it
// takes seconds and most of a gigabyte, and every benchmark only reads it.
var (
	millionOnce sync.Once
	millionSrc  *analysistest.Source
	millionN    int
)

func millionSpans(b *testing.B) *analysistest.Source {
	b.Helper()
	millionOnce.Do(func() {
		ds := analysistest.Generate(analysistest.Scenario{Seed: 99, Traces: 100_000, ErrorRate: 0.01,
			Causes:       []analysistest.Cause{{Name: "acme-profile", Dependency: analysistest.ProfileSvc, Tenant: "acme", Probability: 0.1, Extra: 500 * time.Millisecond}},
			LargePayload: &analysistest.LargePayload{Probability: 0.005}})
		millionN = len(ds.Spans)
		millionSrc = analysistest.NewSource(ds.Spans)
	})
	return millionSrc
}

// BenchmarkOutliers1M: outlier analysis of an endpoint over a window of
// 100,000 requests (about 1,000,000 spans); each iteration reads the
// samples and the examined traces from memory, so it is the analysis'
// CPU plus an in-memory "store read".
func BenchmarkOutliers1M(b *testing.B) {
	src := millionSpans(b)
	b.ReportMetric(float64(millionN), "spans")
	q := feedQuery()
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		rep, err := Outliers(ctx, src, q)
		if err != nil {
			b.Fatal(err)
		}
		if rep.RequestCount != 100_000 || len(rep.Groups) == 0 {
			b.Fatalf("unexpected report: %d requests, %d groups", rep.RequestCount, len(rep.Groups))
		}
	}
}

// BenchmarkCriticalPath10k: the critical path of one 10,000-span trace.
func BenchmarkCriticalPath10k(b *testing.B) {
	spans := randomTrace(rand.New(rand.NewPCG(5, 5)), 10_000)
	for b.Loop() {
		if res := CriticalPath(spans); res.DurationNs != spans[0].DurationNano {
			b.Fatal("wrong path")
		}
	}
}

// BenchmarkFindings10k: anti-pattern findings of a 10,000-span trace.
func BenchmarkFindings10k(b *testing.B) {
	spans := randomTrace(rand.New(rand.NewPCG(5, 5)), 10_000)
	for b.Loop() {
		Findings(spans)
	}
}

// BenchmarkCompare: 10,000 requests before and 10,000 after a deploy.
func BenchmarkCompare(b *testing.B) {
	src := beforeAfter(
		analysistest.Scenario{Seed: 61, Traces: 10_000},
		analysistest.Scenario{Seed: 62, Traces: 10_000, Parallel: true})
	q := deployQuery()
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Compare(ctx, src, q); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLatency: percentiles, histogram, series and heatmap of 100,000
// requests over an hour, exact and with sketches.
func BenchmarkLatency(b *testing.B) {
	src := millionSpans(b)
	ctx := context.Background()
	for _, method := range []string{MethodExact, MethodSketch} {
		b.Run(method, func(b *testing.B) {
			q := LatencyQuery{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint, From: testEpoch, To: testEpoch.Add(time.Hour), Method: method}
			for b.Loop() {
				rep, err := Latency(ctx, src, q)
				if err != nil || rep.Count != 100_000 {
					b.Fatal(err, rep.Count)
				}
			}
		})
	}
}

// BenchmarkSamplesRead is the in-memory source's share of the benchmarks
// above: copying 100,000 samples out, as a store read would.
func BenchmarkSamplesRead(b *testing.B) {
	src := millionSpans(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := src.Samples(ctx, store.SampleQuery{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint, From: testEpoch, To: testEpoch.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
}
