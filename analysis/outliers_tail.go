package analysis

import (
	"cmp"
	"math"
	"slices"
)

// The tail test asks of a dependency on its own — no tenant, payload or
// version to point at — whether its slow calls are a phenomenon or just
// its ordinary spread: are calls at least as slow as the group's more
// frequent than a lognormal fitted to the body of its calls (their
// quartiles, where a rare slow mode cannot reach) predicts? Pure lognormal
// noise passes it only by chance; a mode — an injected delay, a retry
// storm, a cold cache, an external service's own long tail — does not.
// The own time of the calls (their self time, on the critical path or
// not) is tested, not their critical time: in a parallel fan-out a call
// off the path has no critical time at all, but its duration is still its
// own.
const (
	// tailMinCalls is the fewest examined requests with the dependency
	// that make a fit.
	tailMinCalls = 30
	// tailMinSigma floors the fitted log-spread: a body of nearly constant
	// calls would make every microsecond of jitter a "mode".
	tailMinSigma = 0.1
	// tailMinRatio: at least this many times more slow calls than the body
	// predicts, so a body that is not quite lognormal (a sum of calls, a
	// heavier tail) is not a cause. On pure lognormal traffic (sums of
	// lognormal calls, 30 seeds at p95, p99 and p99.9) the observed ratio
	// stayed below 11; the slow modes we inject are thousands of times
	// over.
	tailMinRatio = 20.0
	// tailMinSeparation: the slow calls must also lie this many robust
	// standard deviations (log scale) beyond where the outlier cut puts
	// the end of ordinary variation: a mode of their own, not the end of
	// the body's tail. Together with the ratio it is what keeps noise out:
	// on pure lognormal traffic (30 seeds at p95, p99 and p99.9, both
	// shapes) the one cluster with a ratio above 10 sat 0.8 deviations
	// beyond the cut, while a call 10× slower than a body of spread ×1.8
	// is 1.7 beyond it at p99.
	tailMinSeparation = 1.0
	// tailMinCount: at least this many (effective) slow calls.
	tailMinCount = 3
	// causeMaxP is the level every group's own test must pass. It is far
	// below 0.05 because many clusters and values are tried per analysis.
	causeMaxP = 1e-3
)

// tailFit is one dependency's own time over the examined requests that
// spent any, weighted to stand for the whole population.
type tailFit struct {
	mu, sigma float64
	vals      []int64   // own times, ascending
	above     []float64 // above[i] is the weight of vals[i:]
	sw        float64   // the requests with the dependency, estimated
}

// tailResult is the outcome of a tail test at one cut.
type tailResult struct {
	p                  float64
	observed, expected float64 // shares of the calls at or above the cut
	cut                int64
	// z is the cut in robust standard deviations above the body's median
	// (log scale); count the examined requests at or above it.
	z     float64
	count int
}

// mode reports whether a tail test found a slow mode of its own: enough
// requests, many times more than the body predicts, well separated from
// it (minZ, see outlierRun.minTailZ), and significant.
func (t tailResult) mode(minZ float64) bool {
	return t.count >= tailMinCount && t.observed >= tailMinRatio*t.expected && t.z >= minZ && t.p < causeMaxP
}

// fitTails fits every dependency's own time.
func (r *outlierRun) fitTails() {
	nd := len(r.deps.names)
	r.deps.tail = make([]tailFit, nd)
	per := make([][]weightedValue, nd)
	for i := range r.trace {
		t := &r.trace[i]
		for _, c := range t.calls {
			per[c.dep] = append(per[c.dep], weightedValue{c.ns, t.w})
		}
	}
	for d, xs := range per {
		if len(xs) < tailMinCalls {
			continue
		}
		f := &r.deps.tail[d]
		slices.SortFunc(xs, func(a, b weightedValue) int { return cmp.Compare(a.v, b.v) })
		var total float64
		for _, x := range xs {
			total += x.w
		}
		lq := func(q float64) float64 { return math.Log(float64(max(sortedWeightedQuantile(xs, total, q), 1))) }
		f.mu = lq(0.5)
		// The spread is what the quartiles say, or what the upper body
		// (median to p90) says when that is larger — a sum of calls or a
		// skewed body has a heavier right side than its quartiles — but
		// at most half as large again: a slow mode of more than 10% of
		// the calls reaches p90, and must not pass for the body.
		iqr := (lq(0.75) - lq(0.25)) / 1.349
		f.sigma = max(min((lq(0.9)-f.mu)/1.2816, 1.5*iqr), iqr, tailMinSigma)
		f.vals = make([]int64, len(xs))
		f.above = make([]float64, len(xs)+1)
		for i := len(xs) - 1; i >= 0; i-- {
			f.vals[i] = xs[i].v
			f.above[i] = f.above[i+1] + xs[i].w
		}
		f.sw = f.above[0]
	}
}

// test compares how many requests' calls reach cut with what the body
// predicts: a one-sided binomial test over the estimated population. The
// slow calls are mostly outliers, which are all examined (weight 1), so
// the estimate is nearly exact where the test looks; at least
// tailMinCount examined requests must reach the cut, so one heavily
// weighted sample cannot make a mode.
func (f *tailFit) test(cut int64) tailResult {
	res := tailResult{p: 1, cut: cut}
	if len(f.vals) == 0 || cut <= 0 {
		return res
	}
	i, _ := slices.BinarySearch(f.vals, cut)
	res.observed = f.above[i] / f.sw
	z := (math.Log(float64(cut)) - f.mu) / f.sigma
	res.expected = 0.5 * math.Erfc(z/math.Sqrt2)
	res.z = z
	res.count = len(f.vals) - i
	k := int(math.Round(f.above[i]))
	res.p = binomialAtLeast(k, int(math.Round(f.sw)), res.expected)
	return res
}

// minTailZ is how far, in robust standard deviations, a slow mode must lie
// beyond the body: tailMinSeparation beyond the normal quantile of the
// outlier cut (2.33 for p99; more for p99.9, where ordinary variation
// reaches further).
func (r *outlierRun) minTailZ() float64 {
	if len(r.ord) == 0 {
		return math.Inf(1)
	}
	frac := max(r.total()-r.cum(r.iT), 1) / r.total()
	z0 := math.Max(-math.Sqrt2*math.Erfinv(2*frac-1), 2)
	return z0 + tailMinSeparation
}

// typicalCall is the body's median and multiplicative spread (e^σ), for
// the words of a verdict.
func (f *tailFit) typicalCall() (median int64, spread float64) {
	return int64(math.Exp(f.mu)), math.Exp(f.sigma)
}
