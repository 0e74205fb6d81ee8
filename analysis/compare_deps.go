package analysis

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/tailscope/tailscope/store"
)

// overlay builds both sides' histograms on the same log buckets.
func overlay(b, a *compareSide) []OverlayBucket {
	before, after := b.sorted, a.sorted
	const perOctave = DefaultBucketsPerOctave
	if len(before)+len(after) == 0 {
		return []OverlayBucket{}
	}
	lo, hi := math.MaxInt, -1
	for _, s := range [][]int64{before, after} {
		if len(s) > 0 {
			lo = min(lo, bucketIndex(s[0], perOctave))
			hi = max(hi, bucketIndex(s[len(s)-1], perOctave))
		}
	}
	out := make([]OverlayBucket, hi-lo+1)
	for i := range out {
		out[i].LowerMs = round3(bucketLowerMs(lo+i, perOctave))
		out[i].UpperMs = round3(bucketUpperMs(lo+i, perOctave))
	}
	for i, v := range before {
		out[bucketIndex(v, perOctave)-lo].Before += int(b.cw.of(i))
	}
	for i, v := range after {
		out[bucketIndex(v, perOctave)-lo].After += int(a.cw.of(i))
	}
	cb, ca := 0, 0
	for i := range out {
		cb += out[i].Before
		ca += out[i].After
		if len(before) > 0 {
			out[i].BeforeCDF = round4(float64(cb) / b.cw.upTo(len(before)))
		}
		if len(after) > 0 {
			out[i].AfterCDF = round4(float64(ca) / a.cw.upTo(len(after)))
		}
	}
	return out
}

// dependencyDeltas compares mean critical time per hop on an even sample
// of each side and on each side's requests past its tailPct percentile.
// The tail is the headline's (Comparison.headline): a p95 change is
// explained by the slowest 5%, not by the slowest 1% — at 450 requests a
// side that is 4 requests, where one stalled process outweighs the
// cause.
func dependencyDeltas(ctx context.Context, src SpanSource, before, after compareSide, tailPct float64, maxTraces int) ([]DependencyDelta, error) {
	type sideTimes struct {
		all, tail map[hopKey]float64
	}
	measure := func(s compareSide) (sideTimes, error) {
		st := sideTimes{all: map[hopKey]float64{}, tail: map[hopKey]float64{}}
		n := len(s.samples)
		if n == 0 {
			return st, nil
		}
		// A sampled side (weights.go): the even sample is drawn by weight
		// and the tail is the slowest share of the requests stood for.
		cw := newCumWeights(n, func(i int) float64 { return s.samples[i].Weight })
		even, pps := cw.pick([][2]int{{0, n}}, n, maxTraces)
		// The tail: the slowest (100 − tailPct)% (at least one request),
		// capped.
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int {
			return cmp.Or(cmp.Compare(s.samples[b].DurationNano, s.samples[a].DurationNano), cmp.Compare(a, b))
		})
		k, want := 0, max(math.Floor(cw.upTo(n)*(100-tailPct)/100), 1)
		for acc := 0.0; k < min(n, maxTraces) && acc < want; k++ {
			acc += cw.of(order[k])
		}
		tail := order[:k]
		// own weighs a request of the tail, or of an even sample that was
		// not drawn by weight, by the requests it stands for.
		own := func(i int) float64 { return cw.of(i) }
		one := func(int) float64 { return 1 }
		evenW := own
		if pps {
			evenW = one
		}
		ids := make([]store.TraceID, 0, len(even)+len(tail))
		for _, i := range even {
			ids = append(ids, s.samples[i].TraceID)
		}
		for _, i := range tail {
			ids = append(ids, s.samples[i].TraceID)
		}
		// Critical time per hop needs the trace's shape only.
		traces, err := readShapes(ctx, src, ids)
		if err != nil {
			return st, fmt.Errorf("analysis: compare: %s: %w", s.Label, err)
		}
		var e cpEngine
		avg := func(idx []int, weight func(int) float64, into map[hopKey]float64) {
			used := 0.0
			for _, i := range idx {
				smp := &s.samples[i]
				spans, ok := traces[smp.TraceID]
				if !ok || !e.compute(spans, smp.SpanID) {
					continue
				}
				w := weight(i)
				used += w
				e.hopTimes(func(sp *store.Span, ns int64) { into[hopKey{sp.Service, sp.Dependency}] += w * float64(ns) })
			}
			for k := range into {
				into[k] /= max(used, 1)
			}
		}
		avg(even, evenW, st.all)
		avg(tail, own, st.tail)
		return st, nil
	}
	bt, err := measure(before)
	if err != nil {
		return nil, err
	}
	at, err := measure(after)
	if err != nil {
		return nil, err
	}
	keys := map[hopKey]bool{}
	for _, m := range []map[hopKey]float64{bt.all, bt.tail, at.all, at.tail} {
		for k := range m {
			keys[k] = true
		}
	}
	out := make([]DependencyDelta, 0, len(keys))
	for k := range keys {
		out = append(out, DependencyDelta{
			Service: k.service, Dependency: k.dependency, Label: HopLabel(k.service, k.dependency),
			BeforeMs: round3(bt.all[k] / 1e6), AfterMs: round3(at.all[k] / 1e6), DeltaMs: round3((at.all[k] - bt.all[k]) / 1e6),
			BeforeTailMs: round3(bt.tail[k] / 1e6), AfterTailMs: round3(at.tail[k] / 1e6), TailDeltaMs: round3((at.tail[k] - bt.tail[k]) / 1e6),
		})
	}
	slices.SortFunc(out, func(a, b DependencyDelta) int {
		return cmp.Or(cmp.Compare(math.Abs(b.TailDeltaMs), math.Abs(a.TailDeltaMs)), cmp.Compare(a.Label, b.Label))
	})
	return out, nil
}
