package analysis

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/tailscope/tailscope/store"
)

// MethodRollups computes a latency report from the rollups written at
// ingest (rollups.go) instead of the spans: percentiles from their
// DDSketch bins, within SketchRelativeAccuracy, counts exact over the
// window rounded out to whole rollup buckets.
const MethodRollups = "rollups"

// RollupsAnswer reports whether the rollups can answer q, as far as q
// alone tells: it asks for the automatic method (or rollups by name) and
// its time series step, when set, is whole minutes (a rollup bucket cannot
// be split); without a step, the automatic method reads rollups for
// windows of ten minutes or more. Service, endpoint, version and tenant are rollup dimensions,
// but tenant rollups keep no version, and only some tenants have them:
// ReadRollups asks the store. Attribute filters are not part of a
// LatencyQuery; the pages that read spans answer them (outliers, search).
func RollupsAnswer(q LatencyQuery) bool {
	if q.Tenant != "" && q.Version != "" {
		return false
	}
	switch q.Method {
	case "", MethodAuto:
		// A short window charted at the automatic step would get a
		// handful of minute points: its few spans are read instead.
		if q.Step == 0 && q.To.Sub(q.From) < minRollupWindow {
			return false
		}
		return q.Step%store.RollupMinute == 0
	case MethodRollups:
		return q.Step%store.RollupMinute == 0
	}
	return false
}

// minRollupWindow is the shortest window the automatic method reads from
// rollups without a step: ten minute points. Shorter windows hold few
// requests (16,000 at 100,000 an hour), and spans chart them at seconds.
const minRollupWindow = 10 * time.Minute

// ReadRollups reports whether LatencyFromRollups answers q: RollupsAnswer,
// the endpoint's name is rolled up (the store keeps the rollups of a
// service's first store.MaxRollupNames names) and so is the tenant's
// (store.MaxRollupTenants); the others are read from spans.
func ReadRollups(ctx context.Context, src RollupSource, q LatencyQuery) (bool, error) {
	if !RollupsAnswer(q) {
		return false, nil
	}
	if q.Endpoint != "" {
		ok, err := src.RolledUpName(ctx, q.Service, q.Endpoint)
		if err != nil || !ok {
			return false, wrapErr("analysis: latency: rollup names", err)
		}
	}
	if q.Tenant == "" {
		return true, nil
	}
	ok, err := src.RolledUpTenant(ctx, q.Tenant)
	return ok, wrapErr("analysis: latency: tenant rollups", err)
}

// wrapErr wraps err, when there is one, in what.
func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// latencyRollupStep picks the rollup step a latency query reads and the
// series step it charts: the series step (q.Step, or the one planLatency
// would choose, at least a minute) must be a whole number of rollup
// buckets, so hours are read only for windows past six hours whose step
// is whole hours, minutes otherwise.
func latencyRollupStep(q LatencyQuery) (read, series time.Duration) {
	window := q.To.Sub(q.From)
	series = q.Step
	if series == 0 {
		maxPoints := q.MaxPoints
		if maxPoints == 0 {
			maxPoints = defaultMaxPoints
		}
		series = max(chooseStep(window, maxPoints), store.RollupMinute)
	}
	read = store.RollupStep(window)
	if series%read != 0 {
		read = store.RollupMinute
	}
	return read, series
}

// LatencyFromRollups is Latency read from the rollups: the same report
// (percentiles, histogram, time series, heatmap, rate over the time with
// data) for the window rounded out to whole rollup buckets (the report's
// From and To say which), its percentiles within SketchRelativeAccuracy
// of the exact ones, and histogram and heatmap counts placed by each
// sketch bin's middle value (a request within that accuracy of a bucket
// edge may be counted in the neighbouring bucket). Its cost follows the
// buckets read, not the requests in them. q must satisfy RollupsAnswer.
func LatencyFromRollups(ctx context.Context, src RollupSource, q LatencyQuery) (LatencyReport, error) {
	if !RollupsAnswer(q) {
		return LatencyReport{}, invalidf("latency from rollups: method %q and step %s: want auto or rollups and a step of whole minutes", q.Method, q.Step)
	}
	if err := checkWindow(q.Service, q.From, q.To); err != nil {
		return LatencyReport{}, err
	}
	read, step := latencyRollupStep(q)
	from, to := roundWindow(q.From, q.To, read)
	pq := q
	pq.From, pq.To, pq.Step, pq.Method = from, to, step, MethodExact
	pl, err := planLatency(pq)
	if err != nil {
		return LatencyReport{}, err
	}
	rows, err := src.Rollups(ctx, store.RollupQuery{Step: read, From: from, To: to, Service: q.Service, Endpoint: q.Endpoint,
		Version: q.Version, Tenant: q.Tenant})
	if err != nil {
		return LatencyReport{}, fmt.Errorf("analysis: latency: read rollups: %w", err)
	}
	rep := LatencyReport{Service: q.Service, Endpoint: q.Endpoint, From: from, To: to,
		Method: MethodRollups, RelativeError: SketchRelativeAccuracy}
	acc := newLatencyAcc(pl.grid, pl.perOctave, false)
	buckets := make([]*binAgg, pl.grid.n)
	total := newBinAgg()
	first := map[string]int64{} // each endpoint's first request
	for i := range rows {
		r := &rows[i]
		c := pl.grid.index(r.BucketUnixNano)
		if c < 0 {
			continue
		}
		if buckets[c] == nil {
			buckets[c] = newBinAgg()
		}
		buckets[c].addRollup(r)
		total.addRollup(r)
		acc.addRollup(c, r)
		if f, ok := first[r.Endpoint]; !ok || r.FirstUnixNano < f {
			first[r.Endpoint] = r.FirstUnixNano
		}
	}
	end := dataEnd(to, q.Now).UnixNano()
	if rep.Series, err = rollupSeries(pl.grid, buckets, from.UnixNano(), end); err != nil {
		return LatencyReport{}, fmt.Errorf("analysis: latency: %w", err)
	}
	if total.count > 0 {
		sk, err := total.sketch()
		if err != nil {
			return LatencyReport{}, fmt.Errorf("analysis: latency: %w", err)
		}
		rep.Percentiles = sk.Percentiles()
		rep.ErrorRate = round4(float64(total.errors) / float64(total.count))
	}
	rep.Histogram, rep.Heatmap = acc.histogram(), acc.heatmap()
	rep.Count, rep.ErrorCount = int(total.count), int(total.errors)
	start := from.UnixNano()
	if len(first) > 0 {
		start = math.MaxInt64
		for name, at := range first {
			st, err := seriesStartRollups(ctx, src, seriesKey{q.Service, name, q.Version}, from.UnixNano(), at, to.Sub(from))
			if err != nil {
				return LatencyReport{}, fmt.Errorf("analysis: latency: %w", err)
			}
			start = min(start, st)
		}
	}
	rep.RatePerS = ratePerS(rep.Count, start, end)
	rep.DataSpan = dataSpan(rep.Count, start, end)
	return rep, nil
}

// addRollup counts a rollup's bins in the histogram and in heatmap column
// c, each bin at its middle value.
func (a *latencyAcc) addRollup(c int, r *store.Rollup) {
	if a.heat[c] == nil {
		a.heat[c] = map[int]int{}
	}
	add := func(b, n int) {
		a.hist[b] += n
		a.heat[c][b] += n
	}
	if r.ZeroCount > 0 {
		add(bucketIndex(0, a.perOctave), int(r.ZeroCount))
	}
	for _, b := range r.Bins {
		add(bucketIndex(binMiddleNs(b.Index), a.perOctave), int(b.Count))
	}
	a.count += int(r.Count)
	a.errCount += int(r.Errors)
	a.errs[c] += int(r.Errors)
}

// binMiddleNs is the middle (geometric) of rollup bin i, which holds the
// durations d with floor(ln(d ms)·RollupBinScale()) = i: within the
// sketch's relative accuracy of every one of them.
func binMiddleNs(i int32) int64 {
	return int64(math.Round(math.Exp((float64(i)+0.5)/store.RollupBinScale()) * 1e6))
}

// rollupSeries is the time series of per-bucket rollup aggregates.
func rollupSeries(g timeGrid, buckets []*binAgg, from, end int64) (TimeSeries, error) {
	ts := TimeSeries{StepSeconds: float64(g.step) / 1e9, Points: make([]SeriesPoint, g.n)}
	for b := range g.n {
		p := SeriesPoint{Start: g.bucketStart(b)}
		if a := buckets[b]; a != nil && a.count > 0 {
			sk, err := a.sketch()
			if err != nil {
				return ts, err
			}
			p.Count, p.Errors = int(a.count), int(a.errors)
			p.P50Ms = floatPtr(round3(sk.QuantileMs(0.50)))
			p.P95Ms = floatPtr(round3(sk.QuantileMs(0.95)))
			p.P99Ms = floatPtr(round3(sk.QuantileMs(0.99)))
		}
		p.setRate(g, b, from, end)
		ts.Points[b] = p
	}
	return ts, nil
}
