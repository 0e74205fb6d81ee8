package analysis

import (
	"math"
	"slices"

	"github.com/tailscope/tailscope/store"
)

// Sampled streams. A stored request may stand for several (its sampling
// weight, store.Span.Weight, counted as store.CountWeight), and then
// counts, ranks, percentiles and the requests picked for examination must
// be those of the population the samples stand for. cumWeights carries
// that along an order of stored requests; analyses keep it nil when every
// weight is 1, so unsampled streams take the positional paths unchanged.

// cumWeights holds the cumulative weights of an ordered set of stored
// requests: c[i] is how many requests the first i stand for. nil means
// every weight is 1 (c[i] = i).
type cumWeights []float64

// newCumWeights returns the cumulative weights of n requests, or nil when
// every weight is 1.
func newCumWeights(n int, weight func(i int) float64) cumWeights {
	i := 0
	for i < n && store.CountWeight(weight(i)) == 1 {
		i++
	}
	if i == n {
		return nil
	}
	c := make(cumWeights, n+1)
	for j := range n {
		c[j+1] = c[j] + float64(store.CountWeight(weight(j)))
	}
	return c
}

// upTo returns how many requests the positions [0, pos) stand for.
func (c cumWeights) upTo(pos int) float64 {
	if c == nil {
		return float64(pos)
	}
	return c[pos]
}

// of returns how many requests the position pos stands for.
func (c cumWeights) of(pos int) float64 { return c.upTo(pos+1) - c.upTo(pos) }

// rankPos returns the position, among n, of the nearest-rank q-quantile
// of the requests they stand for (rankIndex when unweighted).
func (c cumWeights) rankPos(n int, q float64) int {
	if c == nil || n == 0 {
		return rankIndex(n, q)
	}
	return c.posOf(float64(rankIndex64(c[n], q)), 0, n)
}

// levelPos returns the position among n of the smallest value whose
// cumulative weight reaches the fraction u of the total: what a bootstrap
// draws for a quantile level u (index ⌈u·n⌉−1 when unweighted).
func (c cumWeights) levelPos(n int, u float64) int {
	if c == nil {
		return min(max(int(math.Ceil(u*float64(n)))-1, 0), n-1)
	}
	return c.posOf(math.Ceil(u*c[n])-1, 0, n)
}

// posOf returns the position in [lo, hi) whose requests hold the one of
// cumulative rank k (0-based): the first with c[pos+1] > k. c is not nil.
func (c cumWeights) posOf(k float64, lo, hi int) int {
	i, _ := slices.BinarySearchFunc(c[lo+1:hi+1], k, func(x, t float64) int {
		if x > t {
			return 1
		}
		return -1
	})
	return min(lo+i, hi-1)
}

// pick returns k positions of the union of ranges (size positions) to
// examine. Unweighted, or when all can be examined, they are evenly spaced
// positions (pickEvenly). Otherwise they are evenly spaced in the requests
// the positions stand for — systematic sampling with probability
// proportional to weight — so every pick stands for the same share of the
// whole; a sample heavier than that share may be picked more than once,
// and then counts as often, as the estimator requires. pps says which.
func (c cumWeights) pick(ranges [][2]int, size, k int) (picked []int, pps bool) {
	if c == nil || k >= size {
		return pickEvenly(ranges, size, k), false
	}
	return c.pps(ranges, k), true
}

// pps returns k positions of the union of ranges, evenly spaced in the
// requests they stand for: systematic sampling with probability
// proportional to weight, whatever k (a position whose weight exceeds the
// spacing is returned more than once). c is not nil.
func (c cumWeights) pps(ranges [][2]int, k int) []int {
	var total float64
	for _, rg := range ranges {
		if rg[1] > rg[0] {
			total += c[rg[1]] - c[rg[0]]
		}
	}
	out := make([]int, 0, k)
	for j := range k {
		off := (float64(j) + 0.5) * total / float64(k)
		for _, rg := range ranges {
			if rg[1] <= rg[0] {
				continue
			}
			w := c[rg[1]] - c[rg[0]]
			if off < w {
				out = append(out, c.posOf(c[rg[0]]+off, rg[0], rg[1]))
				break
			}
			off -= w
		}
	}
	return out
}

// uniform reports whether the positions [lo, hi) all stand for as many
// requests.
func (c cumWeights) uniform(lo, hi int) bool {
	if c == nil || hi-lo < 2 {
		return true
	}
	w := c.of(lo)
	for i := lo + 1; i < hi; i++ {
		if c.of(i) != w {
			return false
		}
	}
	return true
}

// rankIndex64 is rankIndex over a population of n (a sum of weights).
func rankIndex64(n, q float64) int64 {
	if n <= 0 || math.IsNaN(q) || q <= 0 {
		return 0
	}
	k := int64(math.Ceil(q*n-1e-9)) - 1
	return min(max(k, 0), int64(n)-1)
}

// effectiveSize is Kish's effective sample size of n requests with
// cumulative weights c, (Σw)²/Σw²: how many unweighted requests would
// carry as much information. n when unweighted.
func (c cumWeights) effectiveSize(n int) float64 {
	if c == nil {
		return float64(n)
	}
	var sum2 float64
	for i := range n {
		w := c[i+1] - c[i]
		sum2 += w * w
	}
	if sum2 == 0 {
		return 0
	}
	return c[n] * c[n] / sum2
}

// effectiveSizeAt is the effective sample size for the q-quantile, whose
// position among the n requests is pos: the n an unweighted sample would
// need for the same variance of the estimated share at or below it,
// q(1−q)·W² / Σ w²(1{i ≤ pos} − q)² (the linearised, Woodruff, variance).
// With one weight it is n; a tail kept whole (weight 1) beyond a sampled
// body makes it far larger than Kish's size, which would overstate the
// uncertainty of a tail percentile many times.
func (c cumWeights) effectiveSizeAt(n, pos int, q float64) float64 {
	if c == nil || n == 0 || q <= 0 || q >= 1 {
		return c.effectiveSize(n)
	}
	var v float64
	for i := range n {
		w := c[i+1] - c[i]
		d := -q
		if i <= pos {
			d = 1 - q
		}
		v += w * w * d * d
	}
	if v == 0 {
		return c.effectiveSize(n)
	}
	return q * (1 - q) * c[n] * c[n] / v
}
