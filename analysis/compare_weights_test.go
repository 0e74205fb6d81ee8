package analysis

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/store"
)

// rootDurations returns the sorted root durations of spans in [from, to).
func rootDurations(spans []store.Span, from, to time.Time) []int64 {
	var out []int64
	for _, sp := range spans {
		if sp.IsRoot() && sp.StartUnixNano >= from.UnixNano() && sp.StartUnixNano < to.UnixNano() {
			out = append(out, sp.DurationNano)
		}
	}
	slices.Sort(out)
	return out
}

// TestCompareSampledStream: TestCompareRegression's deploy, stored
// through a tail sampler that keeps every request slower than the old
// version's p95 and one in ten of the rest. The comparison must describe
// the population: counts and p99s of each side estimate the unsampled
// stream's, the p99 regression is significant, and the hop that caused
// it is named. Read without weights, the same sample's p99s are far off.
func TestCompareSampledStream(t *testing.T) {
	before := analysistest.Generate(analysistest.Scenario{Seed: 43, Traces: 20000, Parallel: true, Start: testEpoch, Window: time.Hour})
	after := analysistest.Generate(analysistest.Scenario{Seed: 44, Traces: 20000, Parallel: true, Start: deployAt, Window: time.Hour,
		Causes: []analysistest.Cause{{Name: "slow-query", Dependency: analysistest.Postgres, Probability: 0.05, Extra: 400 * time.Millisecond}}})
	full := append(slices.Clone(before.Spans), after.Spans...)
	truthB, truthA := rootDurations(full, testEpoch, deployAt), rootDurations(full, deployAt, deployAt.Add(time.Hour))
	kept := analysistest.TailSample(full, Quantile(truthB, 0.95), 10)

	c := runCompare(t, analysistest.NewSource(kept), deployQuery())
	if c.Verdict != VerdictRegressed || !p99(c).Significant || p99(c).CILowMs <= 0 {
		t.Fatalf("verdict %s, p99 %+v", c.Verdict, p99(c))
	}
	if len(c.Dependencies) == 0 || c.Dependencies[0].Label != "candidate-svc → postgresql" {
		t.Errorf("largest tail delta %+v, want candidate-svc → postgresql", c.Dependencies)
	}
	var unweighted []store.Span
	for _, sp := range kept {
		sp.Weight = 1
		unweighted = append(unweighted, sp)
	}
	u := runCompare(t, analysistest.NewSource(unweighted), deployQuery())
	for _, side := range []struct {
		name  string
		got   CompareSide
		un    float64 // the unweighted p99
		truth []int64
		from  time.Time
	}{
		{"before", c.Before, p99(u).BeforeMs, truthB, testEpoch},
		{"after", c.After, p99(u).AfterMs, truthA, deployAt},
	} {
		// Horvitz–Thompson: a kept request of weight w adds w(w−1) to the
		// variance of a count it is in.
		var variance, tailVar float64
		q99 := Quantile(side.truth, 0.99)
		for _, sp := range kept {
			if sp.IsRoot() && sp.StartUnixNano >= side.from.UnixNano() && sp.StartUnixNano < side.from.Add(time.Hour).UnixNano() {
				variance += sp.Weight * (sp.Weight - 1)
				if sp.DurationNano >= q99 {
					tailVar += sp.Weight * (sp.Weight - 1)
				}
			}
		}
		n := float64(len(side.truth))
		countTol := 4*math.Sqrt(variance) + 1
		if !side.got.Weighted || math.Abs(float64(side.got.Count)-n) > countTol {
			t.Errorf("%s: weighted %v, %d requests (%d sampled), truth %v ± %.0f", side.name, side.got.Weighted, side.got.Count, side.got.SampledCount, n, countTol)
		}
		d := (4*math.Sqrt(tailVar) + 0.01*countTol + 1) / n
		lo, hi := nsToMs(Quantile(side.truth, 0.99-d)), nsToMs(Quantile(side.truth, min(0.99+d, 1)))
		if p := side.got.Percentiles.P99Ms; p < lo || p > hi {
			t.Errorf("%s: p99 %v ms, want within [%v, %v] ms (truth %v ms)", side.name, p, lo, hi, nsToMs(q99))
		}
		if side.un >= lo && side.un <= hi {
			t.Errorf("vacuous: %s: the unweighted p99 %v ms is within [%v, %v] ms", side.name, side.un, lo, hi)
		}
	}
}

// TestCompareSampledAA: the same version before and after, both
// tail-sampled, is "no significant change" in at least 95% of seeds —
// weights must not make the tests overconfident.
func TestCompareSampledAA(t *testing.T) {
	seeds := 40 // 51 s under the race detector (make test)
	if testing.Short() {
		seeds = 20
	}
	checkAA(t, "sampled A/A", seeds, func(s uint64) (CompareQuery, SpanSource) {
		sc := analysistest.Scenario{Traces: 4000, ErrorRate: 0.02}
		b, a := sc, sc
		b.Seed, a.Seed = 3000+2*s, 3001+2*s
		b.Start, b.Window = testEpoch, time.Hour
		a.Start, a.Window = deployAt, time.Hour
		spans := append(analysistest.Generate(b).Spans, analysistest.Generate(a).Spans...)
		kept := analysistest.TailSample(spans, Quantile(rootDurations(spans, testEpoch, deployAt), 0.9), 10)
		if len(kept) == len(spans) {
			t.Fatal("the sampler kept every span")
		}
		return deployQuery(), analysistest.NewSource(kept)
	})
}
