package analysis

import (
	"cmp"
	"math"
	"slices"
)

// Percentiles summarises a latency distribution. Exact percentiles use the
// nearest-rank definition: the q-quantile of n values is the smallest value
// with at least q·n values at or below it, so it is always an observed
// duration and "requests at or above p99" are at least 1% of them.
type Percentiles struct {
	Count  int     `json:"count"`
	MinMs  float64 `json:"min_ms"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P95Ms  float64 `json:"p95_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// ExactPercentiles returns the exact percentiles of durations in
// nanoseconds. It sorts a copy; durations is not modified.
func ExactPercentiles(durations []int64) Percentiles {
	s := slices.Clone(durations)
	slices.Sort(s)
	return percentilesOfSorted(s)
}

// percentilesOfSorted is ExactPercentiles for values already sorted
// ascending.
func percentilesOfSorted(s []int64) Percentiles {
	if len(s) == 0 {
		return Percentiles{}
	}
	var sum float64
	for _, v := range s {
		sum += float64(v)
	}
	return Percentiles{
		Count:  len(s),
		MinMs:  round3(nsToMs(s[0])),
		MeanMs: round3(sum / float64(len(s)) / 1e6),
		P50Ms:  round3(nsToMs(Quantile(s, 0.50))),
		P90Ms:  round3(nsToMs(Quantile(s, 0.90))),
		P95Ms:  round3(nsToMs(Quantile(s, 0.95))),
		P99Ms:  round3(nsToMs(Quantile(s, 0.99))),
		P999Ms: round3(nsToMs(Quantile(s, 0.999))),
		MaxMs:  round3(nsToMs(s[len(s)-1])),
	}
}

// Quantile returns the nearest-rank q-quantile (0 ≤ q ≤ 1) of values
// sorted ascending, or 0 when there are none.
func Quantile(sorted []int64, q float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[rankIndex(len(sorted), q)]
}

// rankIndex is the 0-based index of the nearest-rank q-quantile of n
// sorted values: ceil(q·n) − 1, clamped to [0, n−1]. The small epsilon
// keeps 0.99·100 from landing on 99.00000000000001 and skipping a rank.
func rankIndex(n int, q float64) int {
	if n <= 0 {
		return 0
	}
	if math.IsNaN(q) || q <= 0 {
		return 0
	}
	k := int(math.Ceil(q*float64(n)-1e-9)) - 1
	return min(max(k, 0), n-1)
}

// weightedValue is one duration standing for weight requests; outlier
// analysis uses it when only a sample of a stratum was examined.
type weightedValue struct {
	v int64
	w float64
}

// weightedQuantile returns the nearest-rank q-quantile of a weighted
// population: the smallest value whose cumulative weight reaches q times
// the total. It sorts xs in place.
func weightedQuantile(xs []weightedValue, q float64) int64 {
	sortWeighted(xs)
	var total float64
	for _, x := range xs {
		total += x.w
	}
	return sortedWeightedQuantile(xs, total, q)
}

func sortWeighted(xs []weightedValue) {
	slices.SortFunc(xs, func(a, b weightedValue) int { return cmp.Compare(a.v, b.v) })
}

// weightedPercentiles is ExactPercentiles of sampled spans, each standing
// for its weight w (whole requests): the percentiles of the population
// with every duration repeated w times, computed without repeating them.
// Min and max are the sampled spans' own.
func weightedPercentiles(views []sampleView) Percentiles {
	if len(views) == 0 {
		return Percentiles{}
	}
	xs := make([]weightedValue, len(views))
	var total, sum float64
	for i, v := range views {
		xs[i] = weightedValue{v: v.dur, w: float64(v.w)}
		total += float64(v.w)
		sum += float64(v.dur) * float64(v.w)
	}
	sortWeighted(xs)
	q := func(p float64) float64 { return round3(nsToMs(sortedWeightedQuantile(xs, total, p))) }
	return Percentiles{
		Count:  int(total),
		MinMs:  round3(nsToMs(xs[0].v)),
		MeanMs: round3(sum / total / 1e6),
		P50Ms:  q(0.50),
		P90Ms:  q(0.90),
		P95Ms:  q(0.95),
		P99Ms:  q(0.99),
		P999Ms: q(0.999),
		MaxMs:  round3(nsToMs(xs[len(xs)-1].v)),
	}
}

// sortedWeightedQuantile is weightedQuantile of xs already sorted by
// value, whose weights sum to total.
func sortedWeightedQuantile(xs []weightedValue, total, q float64) int64 {
	if len(xs) == 0 {
		return 0
	}
	// Ranks are whole requests: ceil(q·total), with a tolerance for the
	// rounding of fractional sample weights.
	target := math.Max(math.Ceil(q*total-1e-6), math.Min(1, total))
	var cum float64
	for _, x := range xs {
		cum += x.w
		if cum >= target-1e-6 {
			return x.v
		}
	}
	return xs[len(xs)-1].v
}
