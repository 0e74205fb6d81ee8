package analysis

import (
	"cmp"
	"math"
	"slices"
)

// Strata of the duration order.
const (
	stratRest = iota
	stratBaseline
	stratNear
	stratOutlier
	numStrata
)

// stratum is a set of positions in the duration order, of which picked
// ones are examined; each examined request stands for weight requests.
// size counts the stored requests, wsize the requests they stand for
// (the same unless the stream was sampled).
type stratum struct {
	ranges   [][2]int
	size     int
	wsize    float64
	picked   []int
	examined int
	weight   float64
	// pps is true when picked were drawn with probability proportional to
	// their sampling weights (cumWeights.pick): each then stands for the
	// same share of the stratum. Otherwise an examined request's share
	// follows its own weight (exTrace.w).
	pps bool
}

type durIdx struct {
	d int64
	i int32
}

// order sorts the window's samples by duration (ties by input order,
// which stores give by start time).
func (r *outlierRun) order() {
	f, t := r.q.From.UnixNano(), r.q.To.UnixNano()
	r.ord = make([]durIdx, 0, len(r.samples))
	for i := range r.samples {
		s := &r.samples[i]
		if s.StartUnixNano < f || s.StartUnixNano >= t {
			continue
		}
		r.ord = append(r.ord, durIdx{d: max(s.DurationNano, 0), i: int32(i)})
	}
	radixSort(r.ord)
	r.weigh()
}

// weigh records the cumulative sampling weights along the order when any
// stored request stands for more than one (weights.go).
func (r *outlierRun) weigh() {
	r.cw = newCumWeights(len(r.ord), func(j int) float64 { return r.samples[r.ord[j].i].Weight })
}

// cum returns the requests the positions [0, pos) stand for.
func (r *outlierRun) cum(pos int) float64 { return r.cw.upTo(pos) }

// total returns the requests the window's samples stand for.
func (r *outlierRun) total() float64 { return r.cum(len(r.ord)) }

// rankPos returns the position of the nearest-rank q-quantile of the
// requests the samples stand for.
func (r *outlierRun) rankPos(q float64) int { return r.cw.rankPos(len(r.ord), q) }

// radixSort sorts by duration, ties in input order, with a stable LSD
// radix sort on the duration's bytes: the order of a window's samples was
// the largest single cost of an outlier analysis (a comparison sort of
// 100,000 samples took more time than examining 3,500 traces), and a
// byte that is the same in every duration — the high ones, usually — is
// skipped. The key is read as unsigned (a duration is never negative), the
// same on both paths, so a critical path can sort span ids with it too.
func radixSort(xs []durIdx) {
	if len(xs) < 256 {
		slices.SortStableFunc(xs, func(a, b durIdx) int { return cmp.Compare(uint64(a.d), uint64(b.d)) })
		return
	}
	buf := make([]durIdx, len(xs))
	src, dst := xs, buf
	for shift := uint(0); shift < 64; shift += 8 {
		var count [256]int
		for _, x := range src {
			count[byte(uint64(x.d)>>shift)]++
		}
		if count[byte(uint64(src[0].d)>>shift)] == len(src) {
			continue // every duration has this byte
		}
		pos := 0
		for b := range count {
			c := count[b]
			count[b] = pos
			pos += c
		}
		for _, x := range src {
			b := byte(uint64(x.d) >> shift)
			dst[count[b]] = x
			count[b]++
		}
		src, dst = dst, src
	}
	if &src[0] != &xs[0] {
		copy(xs, src)
	}
}

// at returns the duration at a position of the order.
func (r *outlierRun) at(pos int) int64 { return r.ord[pos].d }

// lowerBound returns the first position with duration ≥ d.
func (r *outlierRun) lowerBound(d int64) int {
	i, _ := slices.BinarySearchFunc(r.ord, d, func(x durIdx, t int64) int { return cmp.Compare(x.d, t) })
	return i
}

func (r *outlierRun) baseReport() OutlierReport {
	rep := OutlierReport{
		Service: r.q.Service, Endpoint: r.q.Endpoint, From: r.q.From.UTC(), To: r.q.To.UTC(),
		Percentile: r.q.Percentile, ThresholdMs: r.q.ThresholdMs, RequestCount: int(math.Round(r.total())),
		Weighted: r.cw != nil, SampledCount: len(r.ord),
		Groups: []OutlierGroup{}, Dimensions: map[string][]DimensionValue{}, DependencyExcess: []DependencyExcess{},
	}
	if len(r.ord) == 0 {
		return rep
	}
	rep.P50Ms = round3(nsToMs(r.at(r.rankPos(0.50))))
	rep.P99Ms = round3(nsToMs(r.at(r.rankPos(0.99))))
	if r.q.ThresholdMs > 0 {
		r.iT = r.lowerBound(int64(math.Ceil(r.q.ThresholdMs * 1e6)))
	} else {
		thr := r.at(r.rankPos(r.q.Percentile / 100))
		r.iT = r.lowerBound(thr)
		rep.ThresholdMs = round3(nsToMs(thr))
	}
	rep.OutlierCount = int(math.Round(r.total() - r.cum(r.iT)))
	return rep
}

// stratify splits the duration order into strata and picks the requests
// to examine: outliers [iT, n), near [p90, iT), baseline [p25, p75) and
// the rest, each boundary clipped to the threshold.
func (r *outlierRun) stratify() {
	n := len(r.ord)
	clip := func(i int) int { return min(i, r.iT) }
	b25 := clip(r.lowerBound(r.at(r.rankPos(0.25))))
	b75 := clip(max(r.lowerBound(r.at(r.rankPos(0.75))), b25))
	b90 := clip(max(r.lowerBound(r.at(r.rankPos(0.90))), b75))
	if b75 == b25 {
		// Too few distinct durations for a band: use everything below.
		b25, b75 = 0, b90
	}
	r.strata[stratRest].ranges = [][2]int{{0, b25}, {b75, b90}}
	r.strata[stratBaseline].ranges = [][2]int{{b25, b75}}
	r.strata[stratNear].ranges = [][2]int{{b90, r.iT}}
	r.strata[stratOutlier].ranges = [][2]int{{r.iT, n}}
	want := [numStrata]int{defaultRestSize, r.q.BaselineSize, r.q.NearSize, r.q.MaxOutliers}
	for k := range r.strata {
		s := &r.strata[k]
		for _, rg := range s.ranges {
			s.size += max(rg[1]-rg[0], 0)
			s.wsize += r.cum(max(rg[1], rg[0])) - r.cum(rg[0])
		}
		s.picked, s.pps = r.cw.pick(s.ranges, s.size, want[k])
	}
}

// pickEvenly returns k positions at evenly spaced ranks of the union of
// ranges (all of them when k ≥ size).
func pickEvenly(ranges [][2]int, size, k int) []int {
	k = min(k, size)
	out := make([]int, 0, k)
	for j := range k {
		off := int((float64(j) + 0.5) * float64(size) / float64(k))
		for _, rg := range ranges {
			w := max(rg[1]-rg[0], 0)
			if off < w {
				out = append(out, rg[0]+off)
				break
			}
			off -= w
		}
	}
	return out
}
