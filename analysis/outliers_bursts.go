package analysis

import (
	"math"
	"math/rand/v2"
	"slices"
)

// The burst test is the other test a dependency alone can pass: did its
// slow requests come in bursts? An exhausted connection pool, a lock, a
// garbage-collection storm or a noisy neighbour makes every request that
// arrives meanwhile wait, so the requests slow on the dependency sit close
// together in time, while the slow calls of a dependency's ordinary spread
// are scattered like any other requests. Such a cause need not form a
// separate mode — under a saturated pool everyone queues a little and some
// a lot — so the tail test alone misses it.
//
// The statistic is the mean log gap from each slow request to its nearest
// slow neighbour; the null draws as many requests at random from all of
// the window's requests (their real start times, so uneven traffic is
// accounted for) burstDraws times with a fixed seed: the p-value is exact
// for that Monte Carlo and the same on every run.
const (
	burstDraws = 2000
	// burstMinCount: fewer slow requests than this say nothing about
	// their spacing.
	burstMinCount = 5
	// burstMaxSample caps the requests compared, for the cost of the
	// draws; a larger cluster is subsampled with the same fixed seed.
	burstMaxSample = 200
	// burstMaxRatio: the typical gap must be at most this share of the
	// random one — bursts, not a slight unevenness.
	burstMaxRatio = 0.5
	// burstMinGapNs floors a gap: requests started in the same microsecond
	// are not more of a burst than requests a microsecond apart.
	burstMinGapNs = 1000
)

// burstResult is the outcome of a burst test.
type burstResult struct {
	p float64
	// gap and randomGap are the geometric mean nearest-neighbour gaps of
	// the slow requests and of random requests, in nanoseconds.
	gap, randomGap float64
	count          int
}

// bursty reports whether the test found bursts.
func (b burstResult) bursty() bool {
	return b.count >= burstMinCount && b.gap <= burstMaxRatio*b.randomGap && b.p < causeMaxP
}

// burstTest compares the start times of members (examined requests) with
// random requests of the window.
func (r *outlierRun) burstTest(members []int) burstResult {
	res := burstResult{p: 1, count: len(members)}
	n := len(r.ord)
	if len(members) < burstMinCount || n <= len(members) {
		return res
	}
	rng := rand.New(rand.NewPCG(0x6275727374, uint64(len(members))))
	starts := make([]int64, 0, min(len(members), burstMaxSample))
	for _, ti := range members {
		starts = append(starts, r.samples[r.trace[ti].sample].StartUnixNano)
	}
	if len(starts) > burstMaxSample {
		rng.Shuffle(len(starts), func(i, j int) { starts[i], starts[j] = starts[j], starts[i] })
		starts = starts[:burstMaxSample]
	}
	k := len(starts)
	obs := meanLogGap(starts)
	if r.starts == nil {
		r.starts = make([]int64, n)
		for i, o := range r.ord {
			r.starts[i] = r.samples[o.i].StartUnixNano
		}
	}
	draw := make([]int64, k)
	// picked[x] == round: position x is in this round's draw (Floyd's
	// set, emptied by the next round's number rather than cleared).
	var picked []uint32
	if r.cw == nil {
		picked = make([]uint32, n)
	}
	var sum float64
	atMost := 0
	for round := range uint32(burstDraws) {
		if r.cw != nil {
			// A sampled stream: random requests of the population, each
			// stored one drawn as often as it stands for requests.
			for j := range draw {
				draw[j] = r.starts[r.cw.posOf(rng.Float64()*r.total(), 0, n)]
			}
		} else {
			// Floyd's sampling: k distinct requests in O(k).
			for t, j := 0, n-k; j < n; t, j = t+1, j+1 {
				x := rng.IntN(j + 1)
				if picked[x] == round+1 {
					x = j
				}
				picked[x] = round + 1
				draw[t] = r.starts[x]
			}
		}
		s := meanLogGap(draw)
		sum += s
		if s <= obs {
			atMost++
		}
	}
	res.p = float64(atMost+1) / float64(burstDraws+1)
	res.gap = math.Exp(obs)
	res.randomGap = math.Exp(sum / burstDraws)
	return res
}

// meanLogGap is the mean log distance from each time to its nearest
// neighbour. It sorts ts.
func meanLogGap(ts []int64) float64 {
	slices.Sort(ts)
	var sum float64
	for i := range ts {
		g := int64(math.MaxInt64)
		if i > 0 {
			g = ts[i] - ts[i-1]
		}
		if i+1 < len(ts) {
			g = min(g, ts[i+1]-ts[i])
		}
		sum += math.Log(float64(max(g, burstMinGapNs)))
	}
	return sum / float64(len(ts))
}
