package analysis

import "math"

// Comparisons of sampled streams. A side whose stored requests carry
// sampling weights (cumWeights) is compared as the population they stand
// for: weighted counts, error rate and percentiles; the tests use each
// side's effective sample size (Kish's (Σw)²/Σw²), so a thousand requests
// stored with very unequal weights are not taken for a thousand
// independent observations. A side with every weight 1 takes the exact
// unweighted paths.

// quantile returns the side's nearest-rank q-quantile, 0 when empty.
func (s *compareSide) quantile(q float64) int64 {
	if len(s.sorted) == 0 {
		return 0
	}
	return s.sorted[s.cw.rankPos(len(s.sorted), q)]
}

// effectiveSizeAt is the side's effective sample size for its q-quantile
// (cumWeights.effectiveSizeAt): what the bootstrap of that percentile uses.
func (s *compareSide) effectiveSizeAt(q float64) float64 {
	n := len(s.sorted)
	return s.cw.effectiveSizeAt(n, s.cw.rankPos(n, q), q)
}

// percentiles returns the side's percentiles (weighted when sampled).
func (s *compareSide) percentiles() Percentiles {
	if s.cw == nil {
		return percentilesOfSorted(s.sorted)
	}
	views := make([]sampleView, len(s.sorted))
	for i, v := range s.sorted {
		views[i] = sampleView{dur: v, w: int64(s.cw.of(i))}
	}
	return weightedPercentiles(views)
}

// compareDistributions is Mann–Whitney's test of the two sides, on the
// weighted distributions when either was sampled.
func compareDistributions(before, after *compareSide) MannWhitney {
	if before.cw == nil && after.cw == nil {
		return mannWhitney(before.sorted, after.sorted)
	}
	return mannWhitneyWeighted(before, after)
}

// mannWhitneyWeighted estimates P(after > before) (ties half) over the
// requests both sides stand for, and tests it against ½ with the normal
// approximation of U at the effective sample sizes (no tie or continuity
// correction: the weighted U is not an integer count).
func mannWhitneyWeighted(a, b *compareSide) MannWhitney {
	n1, n2 := len(a.sorted), len(b.sorted)
	if n1 == 0 || n2 == 0 {
		return MannWhitney{PValue: 1, ProbBGreater: 0.5}
	}
	var greater, below float64 // Σ w_b·(weight of a below, plus half the ties)
	i, j := 0, 0
	for i < n1 || j < n2 {
		var v int64
		switch {
		case i >= n1:
			v = b.sorted[j]
		case j >= n2:
			v = a.sorted[i]
		default:
			v = min(a.sorted[i], b.sorted[j])
		}
		var wa, wb float64
		for ; i < n1 && a.sorted[i] == v; i++ {
			wa += a.cw.of(i)
		}
		for ; j < n2 && b.sorted[j] == v; j++ {
			wb += b.cw.of(j)
		}
		greater += wb * (below + wa/2)
		below += wa
	}
	prob := greater / (a.cw.upTo(n1) * b.cw.upTo(n2))
	m1, m2 := a.nEff, b.nEff
	u := prob * m1 * m2
	res := MannWhitney{U: u, ProbBGreater: round4(prob), PValue: 1}
	variance := m1 * m2 * (m1 + m2 + 1) / 12
	if variance <= 0 {
		return res
	}
	res.Z = (u - m1*m2/2) / math.Sqrt(variance)
	res.PValue = normalTwoSided(res.Z)
	return res
}

// compareErrorRates tests the sides' error rates; a sampled side counts
// as its effective sample size with its weighted error rate.
func compareErrorRates(before, after *compareSide) ProportionTest {
	if before.cw == nil && after.cw == nil {
		return twoProportion(before.Errors, before.Count, after.Errors, after.Count)
	}
	eff := func(s *compareSide) (errs, n int) {
		n = int(math.Round(s.nEff))
		if s.Count == 0 {
			return 0, n
		}
		return int(math.Round(float64(s.Errors) / float64(s.Count) * float64(n))), n
	}
	x1, n1 := eff(before)
	x2, n2 := eff(after)
	t := twoProportion(x1, n1, x2, n2)
	// The rates shown are the weighted ones, not their rounded stand-ins.
	if before.Count > 0 {
		t.RateA = float64(before.Errors) / float64(before.Count)
	}
	if after.Count > 0 {
		t.RateB = float64(after.Errors) / float64(after.Count)
	}
	return t
}
