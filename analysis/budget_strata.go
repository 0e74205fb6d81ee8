package analysis

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/tailscope/tailscope/store"
)

// The hop sample read from rollups: stratified by time, so it follows the
// traffic without reading every request.
//
// The window's rollup buckets (countCell, with their exact request
// counts) are grouped, in time order, into at most hopStrata strata of
// about equal count; a bucket holding more than a stratum's share is cut
// into equal stretches of time first, its count shared evenly among them.
// Each stratum is given its share of hopSampleSize by count (largest
// remainders), so a busy hour holds as much of the sample as it holds of
// the traffic, as bottomK's sample does. In each stratum the sampler
// draws an instant at random that follows the requests (a uniform rank
// placed by its cells' counts: timeStratum.instant) and reads the
// stratum's requests just before it, as many as its share, wrapping round to the stratum's
// end when the instant is too early: one indexed range read, newest
// first, that stops at its limit (store.SampleQuery.Limit). A stratum
// whose share is all its requests is read whole.
//
// So the sample is uniform between strata (up to rounding, and to the
// even split of cut buckets) and a random run of consecutive requests
// within each: a request's chance within its stratum follows the time
// between it and the requests before it, against the rate of its cell,
// which is even when arrivals are steady within each cell (a minute or
// an hour, or a stretch of one). The
// overrun rates' intervals (wilson) treat the sample as simple random;
// stratifying by time with proportional allocation does not widen them,
// and runs of about twenty requests correlate only as much as requests
// a few seconds apart do. The slow sample is drawn the same way from the
// strata of requests over the threshold (weights: a bucket's bad and
// uncertain counts), reading only those (SampleQuery.MinDurationNano).
//
// The instants come from a generator seeded by the budget's endpoint and
// the stratum, so the same window gives the same sample on every page and
// API call, and tests are reproducible.

const (
	// hopStrata and slowStrata are the most strata of the uniform and the
	// slow sample: each costs one or two indexed reads, and each stratum
	// gets about twenty and twelve requests.
	hopStrata  = 50
	slowStrata = 25
)

// timeStratum is a stretch of time and the requests it holds, in parts
// (cells or stretches of one) of known weight.
type timeStratum struct {
	from, to int64
	weight   int
	parts    []countCell // total is the part's weight
}

// instant is where the stratum's u-th request (0 ≤ u < weight) lies, as
// far as the cells tell: in the part holding it, as far through the part
// as u is through its weight. An instant drawn this way follows the
// requests, not the clock, however unevenly the parts are filled.
func (s *timeStratum) instant(u int64) int64 {
	for _, p := range s.parts {
		if w := int64(p.total); u < w {
			return p.from + (p.to-p.from)*u/w
		}
		u -= int64(p.total)
	}
	return s.to - 1
}

// strataSampler draws a budget's hop samples from its window's cells.
type strataSampler struct {
	src SpanSource
	b   store.Budget
}

// sample draws the uniform sample (hopSampleSize) and the slow one
// (slowSampleSize, requests over the threshold only).
func (s *strataSampler) sample(ctx context.Context, cells []countCell) (all, slow []store.Sample, err error) {
	all, err = s.draw(ctx, groupStrata(cells, func(c countCell) int { return c.total }, hopStrata), hopSampleSize, 0)
	if err != nil {
		return nil, nil, err
	}
	slow, err = s.draw(ctx, groupStrata(cells, func(c countCell) int { return c.bad + c.unc }, slowStrata), slowSampleSize, int64(s.b.Threshold)+1)
	if err != nil {
		return nil, nil, err
	}
	return all, slow, nil
}

// draw reads size requests (lasting at least minDur) spread over strata
// by weight, in at most two reads of many ranges (sampleRanges): first,
// each stratum's requests before its random instant (or the whole
// stratum when its share is all of it); then, for the strata that came
// up short, the wrap round — the newest of the rest. The second read is
// rare where strata are busy: only when the instant falls among the
// first requests of its stratum.
func (s *strataSampler) draw(ctx context.Context, strata []timeStratum, size int, minDur int64) ([]store.Sample, error) {
	alloc := allocate(strata, size)
	type plan struct {
		n        int   // requests wanted
		mid, end int64 // the instant and the stratum's end
	}
	var (
		plans  []plan
		ranges []store.SampleRange
	)
	at := func(ns int64) time.Time { return time.Unix(0, ns) }
	for i, st := range strata {
		n := alloc[i]
		if n == 0 {
			continue
		}
		if n >= st.weight {
			plans = append(plans, plan{n: n, mid: st.to, end: st.to})
			ranges = append(ranges, store.SampleRange{From: at(st.from), To: at(st.to)})
			continue
		}
		mid := st.instant(s.rng(st, minDur).Int64N(int64(st.weight)))
		plans = append(plans, plan{n: n, mid: mid, end: st.to})
		ranges = append(ranges, store.SampleRange{From: at(st.from), To: at(mid), Limit: n})
	}
	q := store.SampleQuery{Service: s.b.Service, Endpoint: s.b.Endpoint, MinDurationNano: minDur}
	got, err := sampleRanges(ctx, s.src, q, ranges)
	if err != nil {
		return nil, fmt.Errorf("analysis: compliance: read hop sample: %w", err)
	}
	var short []int // plans whose wrap round is read
	ranges = ranges[:0]
	for i, p := range plans {
		if len(got[i]) < p.n && p.mid < p.end {
			short = append(short, i)
			ranges = append(ranges, store.SampleRange{From: at(p.mid), To: at(p.end), Limit: p.n - len(got[i])})
		}
	}
	if len(short) > 0 {
		more, err := sampleRanges(ctx, s.src, q, ranges)
		if err != nil {
			return nil, fmt.Errorf("analysis: compliance: read hop sample: %w", err)
		}
		for j, i := range short {
			got[i] = append(got[i], more[j]...)
		}
	}
	var out []store.Sample
	for _, g := range got {
		out = append(out, g...)
	}
	return out, nil
}

// rng is the stratum's generator: seeded by what the sample is of, so a
// window's sample is the same on every read.
func (s *strataSampler) rng(st timeStratum, minDur int64) *rand.Rand {
	h := xxhash.New()
	_, _ = h.WriteString(s.b.Service)
	_, _ = h.Write([]byte{0})
	_, _ = h.WriteString(s.b.Endpoint)
	var b [24]byte
	binary.LittleEndian.PutUint64(b[0:], uint64(st.from))
	binary.LittleEndian.PutUint64(b[8:], uint64(st.to))
	binary.LittleEndian.PutUint64(b[16:], uint64(minDur))
	_, _ = h.Write(b[:])
	seed := h.Sum64()
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// groupStrata groups time-ordered cells into at most k strata of about
// equal weight, cutting a cell that holds more than a stratum's share
// into equal stretches of time. Cells of no weight join the stratum
// around them.
func groupStrata(cells []countCell, weight func(countCell) int, k int) []timeStratum {
	total := 0
	for _, c := range cells {
		total += weight(c)
	}
	if total == 0 || k <= 0 {
		return nil
	}
	target := (total + k - 1) / k
	var out []timeStratum
	cur := timeStratum{from: -1}
	push := func(from, to int64, w int) {
		if w == 0 {
			return
		}
		if cur.from < 0 {
			cur.from = from
		}
		cur.to, cur.weight = to, cur.weight+w
		cur.parts = append(cur.parts, countCell{from: from, to: to, total: w})
		if cur.weight >= target {
			out = append(out, cur)
			cur = timeStratum{from: -1}
		}
	}
	for _, c := range cells {
		w := weight(c)
		parts := max((w+target-1)/target, 1)
		if parts == 1 || c.to-c.from < int64(parts) {
			push(c.from, c.to, w)
			continue
		}
		span := c.to - c.from
		for j := range parts {
			a, b := c.from+span*int64(j)/int64(parts), c.from+span*int64(j+1)/int64(parts)
			push(a, b, w*(j+1)/parts-w*j/parts)
		}
	}
	if cur.from >= 0 {
		out = append(out, cur)
	}
	return out
}

// allocate shares min(size, total weight) among strata in proportion to
// their weights, by largest remainders (ties to the earlier stratum).
func allocate(strata []timeStratum, size int) []int {
	total := 0
	for _, st := range strata {
		total += st.weight
	}
	out := make([]int, len(strata))
	if total == 0 {
		return out
	}
	n := min(size, total)
	type rem struct {
		i int
		r int64
	}
	rems := make([]rem, len(strata))
	given := 0
	for i, st := range strata {
		q := int64(n) * int64(st.weight)
		out[i] = int(q / int64(total))
		given += out[i]
		rems[i] = rem{i, q % int64(total)}
	}
	slices.SortStableFunc(rems, func(a, b rem) int { return cmp.Compare(b.r, a.r) })
	for j := 0; given < n; j++ {
		out[rems[j].i]++
		given++
	}
	return out
}
