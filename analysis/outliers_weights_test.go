package analysis

import (
	"encoding/binary"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/store"
)

// TestOutliersSampledStream: the same requests as
// TestOutliersSlowDependencyForTenant's, stored through a sampler. Every
// kept request carries its sampling weight (store.Span.Weight), and the
// outlier analysis must describe the population, not the sample: its
// request count, p50, p99 and threshold estimate the unsampled stream's,
// and it still names the injected cause with the counterfactual p99 of
// the full stream.
//
// Tail sampling keeps every request slower than the full stream's p95
// (weight 1) and 1 in 10 of the rest (weight 10) — what a tail-sampling
// collector does, and the case where ignoring weights is worst: slow
// requests are then 5% of the population but a third of the sample, so an
// unweighted p99 falls far below the true one. Head sampling keeps 1 in 4
// whatever the duration (weight 4).
func TestOutliersSampledStream(t *testing.T) {
	ds := analysistest.Generate(analysistest.Scenario{Seed: 11, Traces: 20000,
		Causes: []analysistest.Cause{{Name: "acme-profile", Dependency: analysistest.ProfileSvc, Tenant: "acme", Probability: 0.15, Extra: 500 * time.Millisecond}}})
	rootDur := map[store.TraceID]int64{}
	var truth []int64
	for _, sp := range ds.Spans {
		if sp.IsRoot() {
			rootDur[sp.TraceID] = sp.DurationNano
			truth = append(truth, sp.DurationNano)
		}
	}
	slices.Sort(truth)
	slowCut := Quantile(truth, 0.95)
	hash := func(id store.TraceID) uint64 { return binary.BigEndian.Uint64(id[8:]) }

	cases := []struct {
		name string
		// weight is a trace's sampling weight, 0 when it is dropped.
		weight func(id store.TraceID) float64
		// skewed: without its weights the sample's threshold is wrong
		// (a head sample keeps the shape, so its unweighted one is not).
		skewed bool
	}{
		{"tail: slow kept, the rest 1 in 10", func(id store.TraceID) float64 {
			switch {
			case rootDur[id] >= slowCut:
				return 1
			case hash(id)%10 == 0:
				return 10
			}
			return 0
		}, true},
		{"head: 1 in 4", func(id store.TraceID) float64 {
			if hash(id)%4 == 0 {
				return 4
			}
			return 0
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var kept, unweighted []store.Span
			// Horvitz–Thompson variances: a kept request of weight w adds
			// w(w−1) to the variance of any count it is part of.
			var variance, tailVar float64
			p99 := Quantile(truth, 0.99)
			for _, sp := range ds.Spans {
				w := tc.weight(sp.TraceID)
				if w == 0 {
					continue
				}
				unweighted = append(unweighted, sp)
				sp.Weight = w
				kept = append(kept, sp)
				if sp.IsRoot() {
					variance += w * (w - 1)
					if sp.DurationNano >= p99 {
						tailVar += w * (w - 1)
					}
				}
			}
			n := float64(len(truth))
			countTol := 4*math.Sqrt(variance) + 1
			// thresholdOK: an estimated p99 must lie between the truth's
			// (0.99 ∓ δ)-quantiles, δ covering four standard errors of the
			// estimated requests above the true p99 and of the estimated
			// total that the 1% is taken of (Woodruff's interval).
			d := (4*math.Sqrt(tailVar) + 0.01*countTol + 1) / n
			lo, hi := nsToMs(Quantile(truth, 0.99-d)), nsToMs(Quantile(truth, min(0.99+d, 1)))
			thresholdOK := func(ms float64) bool { return ms >= lo && ms <= hi }

			rep := runOutliers(t, analysistest.Dataset{Spans: kept}, feedQuery())
			if !rep.Weighted || rep.SampledCount >= rep.RequestCount {
				t.Errorf("weighted %v, %d sampled of %d requests: want weighted, fewer sampled", rep.Weighted, rep.SampledCount, rep.RequestCount)
			}
			if math.Abs(float64(rep.RequestCount)-n) > countTol {
				t.Errorf("%d requests, truth %v ± %.0f", rep.RequestCount, n, countTol)
			}
			if !thresholdOK(rep.ThresholdMs) || !thresholdOK(rep.P99Ms) {
				t.Errorf("threshold %v ms, p99 %v ms: want within [%v, %v] ms (truth %v ms)", rep.ThresholdMs, rep.P99Ms, lo, hi, nsToMs(Quantile(truth, 0.99)))
			}
			// The requests at or above the threshold: estimated from their
			// weights, within four standard errors of the truth (exact in
			// the tail case, where every one was kept with weight 1).
			var above, aboveVar float64
			for _, sp := range kept {
				if sp.IsRoot() && nsToMs(sp.DurationNano) >= rep.ThresholdMs {
					above++
					aboveVar += sp.Weight * (sp.Weight - 1)
				}
			}
			trueAbove := len(truth) - lowerBoundMs(truth, rep.ThresholdMs)
			if tol := 4*math.Sqrt(aboveVar) + 1; math.Abs(float64(rep.OutlierCount-trueAbove)) > tol {
				t.Errorf("%d outliers, truth %d ± %.0f at %v ms", rep.OutlierCount, trueAbove, tol, rep.ThresholdMs)
			}

			if len(rep.Groups) == 0 {
				t.Fatalf("no groups: %s", rep.Verdict)
			}
			top := rep.Groups[0]
			want := map[string]string{DimDependency: analysistest.ProfileSvc, DimTenant: "acme"}
			if !reflect.DeepEqual(top.DimensionValues, want) {
				t.Errorf("top group %v, want %v", top.DimensionValues, want)
			}
			if truthCF := trueCounterfactualP99(ds, "acme-profile"); math.Abs(top.CounterfactualP99Ms-truthCF) > 0.15*truthCF {
				t.Errorf("counterfactual p99 %.1f ms, truth (full stream) %.1f ms", top.CounterfactualP99Ms, truthCF)
			}

			// The test can fail: in the tail case the same sample read
			// without its weights puts the threshold outside the bound.
			if tc.skewed {
				un := runOutliers(t, analysistest.Dataset{Spans: unweighted}, feedQuery())
				if thresholdOK(un.ThresholdMs) {
					t.Errorf("vacuous: the unweighted threshold %v ms is within [%v, %v] ms", un.ThresholdMs, lo, hi)
				}
			}
		})
	}
}

// lowerBoundMs returns the first index of sorted (ns) at or above ms.
func lowerBoundMs(sorted []int64, ms float64) int {
	i, _ := slices.BinarySearchFunc(sorted, ms, func(v int64, t float64) int {
		if nsToMs(v) < t {
			return -1
		}
		return 1
	})
	return i
}
