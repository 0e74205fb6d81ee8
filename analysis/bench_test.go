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

// millionScenario is 100,000 requests (about 1M spans) with a slow
// dependency for one tenant and a few large payloads.
func millionScenario() analysistest.Scenario {
	return analysistest.Scenario{Seed: 99, Traces: 100_000, ErrorRate: 0.01,
		Causes:       []analysistest.Cause{{Name: "acme-profile", Dependency: analysistest.ProfileSvc, Tenant: "acme", Probability: 0.1, Extra: 500 * time.Millisecond}},
		LargePayload: &analysistest.LargePayload{Probability: 0.005}}
}

func millionSpans(b *testing.B) *analysistest.Source {
	b.Helper()
	millionOnce.Do(func() {
		ds := analysistest.Generate(millionScenario())
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
	benchOutliers(b, src, func(rep OutlierReport) bool { return rep.RequestCount == 100_000 && len(rep.Groups) > 0 })
}

// benchOutliers times the feed endpoint's outlier analysis over src; ok
// checks each report.
func benchOutliers(b *testing.B, src SpanSource, ok func(OutlierReport) bool) {
	q := feedQuery()
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		rep, err := Outliers(ctx, src, q)
		if err != nil {
			b.Fatal(err)
		}
		if !ok(rep) {
			b.Fatalf("unexpected report: %d requests, weighted %v, %d groups", rep.RequestCount, rep.Weighted, len(rep.Groups))
		}
	}
}

// BenchmarkOutliersSampled1M: BenchmarkOutliers1M's requests stored
// through a tail sampler (analysistest.TailSample: the slowest 5% kept, one in ten of
// the rest with weight 10), about 14,500 stored requests standing for
// 100,000: what the weighted ranks, picks and per-trace weights cost.
func BenchmarkOutliersSampled1M(b *testing.B) {
	ds := analysistest.Generate(millionScenario())
	kept := analysistest.TailSample(ds.Spans, Quantile(rootDurations(ds.Spans, testEpoch, testEpoch.Add(time.Hour)), 0.95), 10)
	src := analysistest.NewSource(kept)
	b.ReportMetric(float64(len(kept)), "spans")
	benchOutliers(b, src, func(rep OutlierReport) bool { return rep.Weighted && len(rep.Groups) > 0 })
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

// BenchmarkCompareSampled: BenchmarkCompare's requests through a tail
// sampler (analysistest.TailSample, cut at the before side's p95): about 1,450 stored
// requests a side standing for 10,000, compared with weights.
func BenchmarkCompareSampled(b *testing.B) {
	before := analysistest.Generate(analysistest.Scenario{Seed: 61, Traces: 10_000, Start: testEpoch, Window: time.Hour})
	after := analysistest.Generate(analysistest.Scenario{Seed: 62, Traces: 10_000, Parallel: true, Start: deployAt, Window: time.Hour})
	spans := append(before.Spans, after.Spans...)
	src := analysistest.NewSource(analysistest.TailSample(spans, Quantile(rootDurations(spans, testEpoch, deployAt), 0.95), 10))
	q := deployQuery()
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		c, err := Compare(ctx, src, q)
		if err != nil {
			b.Fatal(err)
		}
		if !c.Before.Weighted {
			b.Fatal("not weighted")
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
