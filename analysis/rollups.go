package analysis

import (
	"cmp"
	"context"
	"math"
	"time"

	"github.com/tailscope/tailscope/store"
)

// Pages that summarise many requests (the services overview, the service
// list) read the rollups the store writes at ingest (store.Rollup: per
// endpoint and minute or hour, counts and the DDSketch bins of the
// durations) instead of the spans, so their cost follows the endpoints and
// buckets of the window, not the requests in it. Their percentiles carry
// the sketch's bound (SketchRelativeAccuracy); counts, errors, min and max
// are exact over the window rounded out to whole buckets.

// RollupSource reads the rollups written at ingest; store.Store
// implements it.
type RollupSource interface {
	Rollups(ctx context.Context, q store.RollupQuery) ([]store.Rollup, error)
	RequestBefore(ctx context.Context, service, endpoint, version string, since, before time.Time) (bool, error)
	EndpointsBefore(ctx context.Context, service string, endpoints []string, before time.Time) (map[string]bool, error)
	RolledUpTenant(ctx context.Context, tenant string) (bool, error)
	RolledUpName(ctx context.Context, service, name string) (bool, error)
}

var _ RollupSource = (store.RollupReader)(nil)

// rollupWindow is a window rounded out to whole steps: rollups cannot
// split a bucket.
func rollupWindow(from, to time.Time) (f, t time.Time, step time.Duration) {
	step = store.RollupStep(to.Sub(from))
	f, t = roundWindow(from, to, step)
	return f, t, step
}

// roundWindow rounds [from, to) out to whole steps.
func roundWindow(from, to time.Time, step time.Duration) (f, t time.Time) {
	s := int64(step)
	fn, tn := floorNs(from.UnixNano(), s), floorNs(to.UnixNano(), s)
	if tn < to.UnixNano() {
		tn += s
	}
	return time.Unix(0, fn).UTC(), time.Unix(0, tn).UTC()
}

// floorNs rounds t down to a multiple of step.
func floorNs(t, step int64) int64 {
	r := t % step
	if r < 0 {
		r += step
	}
	return t - r
}

// binAgg accumulates rollups: exact count, errors, first start, min, max
// and sum, and the duration bins a Sketch is rebuilt from.
type binAgg struct {
	count, errors, zero, sum int64
	min, max, first          int64
	// wsq sums the squared count weights (store.Rollup.WeightSq).
	wsq  int64
	bins map[int32]int64
}

func newBinAgg() *binAgg {
	return &binAgg{min: math.MaxInt64, max: math.MinInt64, first: math.MaxInt64, bins: map[int32]int64{}}
}

func (a *binAgg) addRollup(r *store.Rollup) {
	a.count += r.Count
	a.wsq += cmp.Or(r.WeightSq, r.Count) // a source that keeps none: unsampled
	a.errors += r.Errors
	a.zero += r.ZeroCount
	a.sum += r.SumNs
	a.min, a.max = min(a.min, r.MinNs), max(a.max, r.MaxNs)
	a.first = min(a.first, r.FirstUnixNano)
	for _, b := range r.Bins {
		a.bins[b.Index] += b.Count
	}
}

func (a *binAgg) merge(o *binAgg) {
	a.count += o.count
	a.wsq += o.wsq
	a.errors += o.errors
	a.zero += o.zero
	a.sum += o.sum
	a.min, a.max = min(a.min, o.min), max(a.max, o.max)
	a.first = min(a.first, o.first)
	for i, n := range o.bins {
		a.bins[i] += n
	}
}

// nEff is the effective number of independent requests behind the
// counts (Kish: count²/Σw²): the count itself for an unsampled stream,
// fewer when sampled spans stand for several each. Tests of the counts
// take it for their sample size.
func (a *binAgg) nEff() float64 {
	if a.wsq <= 0 {
		return float64(a.count)
	}
	c := float64(a.count)
	return c * c / float64(a.wsq)
}

// effective scales a count of a to the effective sample size: the
// share x/count of nEff, rounded.
func (a *binAgg) effective(x int64) int {
	if a.count == 0 {
		return 0
	}
	return int(math.Round(float64(x) / float64(a.count) * a.nEff()))
}

// sketch rebuilds the Sketch the durations would have filled (red.go).
func (a *binAgg) sketch() (*Sketch, error) {
	o := store.OperationStats{Count: a.count, SumNs: a.sum, MinNs: a.min, MaxNs: a.max, ZeroCount: a.zero,
		Bins: make([]store.DurationBin, 0, len(a.bins))}
	for i, n := range a.bins {
		o.Bins = append(o.Bins, store.DurationBin{Index: i, Count: n})
	}
	return sketchFromBins(o)
}
