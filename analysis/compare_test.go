package analysis

import (
	"context"
	"errors"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/store"
)

// deployAt is when the second half of a before/after dataset starts.
var deployAt = testEpoch.Add(time.Hour)

// beforeAfter generates an hour before deployAt and an hour after it.
func beforeAfter(before, after analysistest.Scenario) *analysistest.Source {
	before.Start, before.Window = testEpoch, time.Hour
	after.Start, after.Window = deployAt, time.Hour
	spans := analysistest.Generate(before).Spans
	spans = append(spans, analysistest.Generate(after).Spans...)
	return analysistest.NewSource(spans)
}

func deployQuery() CompareQuery {
	return CompareQuery{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint, DeployAt: deployAt, Window: time.Hour, Seed: 1}
}

func runCompare(tb testing.TB, src SpanSource, q CompareQuery) Comparison {
	tb.Helper()
	c, err := Compare(context.Background(), src, q)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func p99(c Comparison) PercentileDelta {
	for _, p := range c.Percentiles {
		if p.Percentile == 99 {
			return p
		}
	}
	return PercentileDelta{}
}

// TestCompareV1ToV2: the sequential v1 against the parallel v2 is an
// improvement at p99 with an interval that excludes zero.
func TestCompareV1ToV2(t *testing.T) {
	src := beforeAfter(
		analysistest.Scenario{Seed: 41, Traces: 5000, ErrorRate: 0.02},
		analysistest.Scenario{Seed: 42, Traces: 5000, ErrorRate: 0.02, Parallel: true})
	c := runCompare(t, src, deployQuery())
	p := p99(c)
	if c.Verdict != VerdictImproved || !p.Significant || p.CIHighMs >= 0 || p.DeltaMs >= 0 {
		t.Fatalf("verdict %s, p99 %+v", c.Verdict, p)
	}
	if !(p.CILowMs <= p.DeltaMs && p.DeltaMs <= p.CIHighMs) || p.CILowPct > p.DeltaPct || p.DeltaPct > p.CIHighPct {
		t.Errorf("point estimate outside its interval: %+v", p)
	}
	if c.Before.Count != 5000 || c.After.Count != 5000 || c.Mode != CompareDeploy {
		t.Errorf("sides %d/%d mode %s", c.Before.Count, c.After.Count, c.Mode)
	}
	if c.MannWhitney.ProbBGreater >= 0.5 || c.MannWhitney.PValue > 1e-6 {
		t.Errorf("Mann–Whitney %+v: v2 is faster", c.MannWhitney)
	}
	if !strings.Contains(c.Summary, "improvement") || !strings.HasPrefix(c.Summary, "p99 ") {
		t.Errorf("summary %q", c.Summary)
	}
	// The parallel fan-out takes profile-svc off the critical path most
	// of the time: its critical time drops.
	for _, d := range c.Dependencies {
		if d.Label == "feed-api → candidate-svc" && d.DeltaMs >= 0 {
			t.Errorf("candidate call critical time should drop in v2: %+v", d)
		}
	}
	if len(c.Overlay) == 0 || c.Overlay[len(c.Overlay)-1].BeforeCDF != 1 || c.Overlay[len(c.Overlay)-1].AfterCDF != 1 {
		t.Errorf("overlay must end at CDF 1: %+v", c.Overlay[len(c.Overlay)-1])
	}
}

// TestCompareRegression: a slow query after the deploy is a regression
// and the summary says where it is.
func TestCompareRegression(t *testing.T) {
	src := beforeAfter(
		analysistest.Scenario{Seed: 43, Traces: 5000, Parallel: true},
		analysistest.Scenario{Seed: 44, Traces: 5000, Parallel: true, Causes: []analysistest.Cause{
			{Name: "slow-query", Dependency: analysistest.Postgres, Probability: 0.05, Extra: 400 * time.Millisecond}}})
	c := runCompare(t, src, deployQuery())
	if c.Verdict != VerdictRegressed || !p99(c).Significant || p99(c).CILowMs <= 0 {
		t.Fatalf("verdict %s, p99 %+v", c.Verdict, p99(c))
	}
	re := regexp.MustCompile(`^p99 [\d.]+ ms → [\d.]+ (ms|s), \+\d+% \[CI \+\d+% … \+\d+%\], regression; most of it in candidate-svc → postgresql$`)
	if !re.MatchString(c.Summary) {
		t.Errorf("summary %q", c.Summary)
	}
	if c.Dependencies[0].Label != "candidate-svc → postgresql" || c.Dependencies[0].TailDeltaMs < 200 {
		t.Errorf("largest tail delta %+v", c.Dependencies[0])
	}
	if c.TailPercentile != 99 || c.TailLabel() != "slowest 1%, past p99" {
		t.Errorf("a p99 headline: tail past p%v (%s), want the slowest 1%%", c.TailPercentile, c.TailLabel())
	}
}

// TestCompareAA: the same version in two windows is "no significant
// change" in at least 95% of seeds.
func TestCompareAA(t *testing.T) {
	seeds := 100
	if testing.Short() {
		seeds = 20
	}
	checkAA(t, "A/A", seeds, func(s uint64) (CompareQuery, SpanSource) {
		sc := analysistest.Scenario{Traces: 2000, ErrorRate: 0.02}
		b, a := sc, sc
		b.Seed, a.Seed = 1000+2*s, 1001+2*s
		return deployQuery(), beforeAfter(b, a)
	})
}

// checkAA runs an A/A comparison for each seed (query and data from mk)
// and requires "no significant change" in at least 95% of them.
func checkAA(t *testing.T, name string, seeds int, mk func(seed uint64) (CompareQuery, SpanSource)) {
	t.Helper()
	noChange := 0
	var flagged []string
	for s := range uint64(seeds) {
		q, src := mk(s)
		q.Seed = s
		q.MaxTraces = 20
		c := runCompare(t, src, q)
		if c.Verdict == VerdictNoChange {
			noChange++
		} else {
			flagged = append(flagged, c.Summary)
		}
	}
	if noChange < seeds*95/100 {
		t.Errorf("%s: no significant change in %d of %d seeds; flagged: %q", name, noChange, seeds, flagged)
	}
	t.Logf("%s: %d of %d seeds without a change", name, noChange, seeds)
}

func TestCompareVersionsAndRanges(t *testing.T) {
	// A canary: v2 takes a third of the traffic in the same hour.
	spans := analysistest.Generate(analysistest.Scenario{Seed: 45, Traces: 6000, Start: testEpoch}).Spans
	spans = append(spans, analysistest.Generate(analysistest.Scenario{Seed: 46, Traces: 3000, Start: testEpoch, Parallel: true}).Spans...)
	src := analysistest.NewSource(spans)
	c := runCompare(t, src, CompareQuery{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint,
		VersionA: "v1", VersionB: "v2", From: testEpoch, To: testEpoch.Add(time.Hour)})
	if c.Mode != CompareVersions || c.Before.Count != 6000 || c.After.Count != 3000 || c.Before.Label != "v1" || c.Verdict != VerdictImproved {
		t.Fatalf("canary: mode %s counts %d/%d verdict %s", c.Mode, c.Before.Count, c.After.Count, c.Verdict)
	}
	if d := c.Throughput.DeltaPct; d == nil || math.Abs(*d+50) > 0.01 {
		t.Errorf("throughput delta %v%%, want -50%%", d)
	}
	r := runCompare(t, src, CompareQuery{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint,
		BeforeFrom: testEpoch, BeforeTo: testEpoch.Add(30 * time.Minute), AfterFrom: testEpoch.Add(30 * time.Minute), AfterTo: testEpoch.Add(time.Hour)})
	if r.Mode != CompareRanges || r.Before.Count+r.After.Count != 9000 || r.Verdict != VerdictNoChange {
		t.Errorf("two halves of one mix: mode %s counts %d+%d verdict %s (%s)", r.Mode, r.Before.Count, r.After.Count, r.Verdict, r.Summary)
	}
}

func TestCompareEqualCountsAndNow(t *testing.T) {
	src := beforeAfter(analysistest.Scenario{Seed: 47, Traces: 4000}, analysistest.Scenario{Seed: 48, Traces: 4000})
	q := deployQuery()
	q.Now = deployAt.Add(15 * time.Minute) // only a quarter of the after hour has happened
	q.EqualCounts = true
	c := runCompare(t, src, q)
	if c.After.Count < 800 || c.After.Count > 1200 || c.Before.Count != c.After.Count {
		t.Fatalf("equal counts: %d before, %d after", c.Before.Count, c.After.Count)
	}
	if !c.After.To.Equal(q.Now) || !c.Before.From.After(testEpoch.Add(30*time.Minute)) {
		t.Errorf("windows: before from %s, after to %s", c.Before.From, c.After.To)
	}
	q.EqualCounts = false
	c = runCompare(t, src, q)
	if !c.Before.From.Equal(deployAt.Add(-15*time.Minute)) || !c.Before.To.Equal(deployAt) {
		t.Errorf("equal windows: before %s–%s", c.Before.From, c.Before.To)
	}
}

func TestCompareErrorsAndInsufficient(t *testing.T) {
	src := beforeAfter(
		analysistest.Scenario{Seed: 49, Traces: 3000, Parallel: true, ErrorRate: 0.01},
		analysistest.Scenario{Seed: 50, Traces: 3000, Parallel: true, ErrorRate: 0.6})
	c := runCompare(t, src, deployQuery())
	if !c.ErrorRate.Significant || c.ErrorRate.RateB <= c.ErrorRate.RateA || c.Verdict != VerdictRegressed {
		t.Errorf("error rate %+v verdict %s", c.ErrorRate, c.Verdict)
	}
	if !strings.Contains(c.Summary, "errors") {
		t.Errorf("summary %q should mention errors", c.Summary)
	}

	few := beforeAfter(analysistest.Scenario{Seed: 51, Traces: 8}, analysistest.Scenario{Seed: 52, Traces: 8, LatencyScale: 3})
	c = runCompare(t, few, deployQuery())
	if !c.Insufficient || c.Verdict != VerdictNoChange || !strings.Contains(c.Summary, "too few") {
		t.Errorf("8 requests a side: insufficient %v verdict %s summary %q", c.Insufficient, c.Verdict, c.Summary)
	}
	none := runCompare(t, few, CompareQuery{Service: "nobody", Endpoint: "x", DeployAt: deployAt})
	if none.Verdict != VerdictNoChange || !strings.HasPrefix(none.Summary, "No comparison") {
		t.Errorf("no data: %s %q", none.Verdict, none.Summary)
	}
}

func TestCompareDeterministic(t *testing.T) {
	src := beforeAfter(analysistest.Scenario{Seed: 53, Traces: 2000}, analysistest.Scenario{Seed: 54, Traces: 2000, LatencyScale: 1.2})
	a, b := runCompare(t, src, deployQuery()), runCompare(t, src, deployQuery())
	if a.Summary != b.Summary || a.Percentiles[2] != b.Percentiles[2] {
		t.Errorf("same seed, different results: %q vs %q", a.Summary, b.Summary)
	}
}

func TestCompareInvalid(t *testing.T) {
	src := analysistest.NewSource(nil)
	base := deployQuery()
	tests := map[string]func(q *CompareQuery){
		"no service":   func(q *CompareQuery) { q.Service = "" },
		"no endpoint":  func(q *CompareQuery) { q.Endpoint = "" },
		"two modes":    func(q *CompareQuery) { q.VersionA, q.VersionB = "a", "b" },
		"no mode":      func(q *CompareQuery) { q.DeployAt = time.Time{} },
		"half a range": func(q *CompareQuery) { q.DeployAt, q.BeforeFrom = time.Time{}, testEpoch },
		"inverted range": func(q *CompareQuery) {
			q.DeployAt, q.BeforeFrom, q.BeforeTo, q.AfterFrom, q.AfterTo = time.Time{}, deployAt, testEpoch, deployAt, deployAt.Add(time.Hour)
		},
		"one version": func(q *CompareQuery) { q.DeployAt, q.VersionA = time.Time{}, "a" },
		"same version": func(q *CompareQuery) {
			q.DeployAt, q.VersionA, q.VersionB, q.From, q.To = time.Time{}, "a", "a", testEpoch, deployAt
		},
		"versions no time": func(q *CompareQuery) { q.DeployAt, q.VersionA, q.VersionB = time.Time{}, "a", "b" },
		"confidence 1":     func(q *CompareQuery) { q.Confidence = 1 },
		"resamples":        func(q *CompareQuery) { q.Resamples = -1 },
		"negative window":  func(q *CompareQuery) { q.Window = -time.Hour },
		"deploy in future": func(q *CompareQuery) { q.Now = deployAt.Add(-time.Minute) },
	}
	for name, mut := range tests {
		q := base
		mut(&q)
		if _, err := Compare(context.Background(), src, q); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}
