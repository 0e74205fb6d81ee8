package analysis

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/tailscope/tailscope/store"
)

// Latency methods.
const (
	MethodAuto   = "auto"   // exact up to a day, sketch for longer windows
	MethodExact  = "exact"  // sorted durations: exact nearest-rank percentiles
	MethodSketch = "sketch" // one DDSketch per time bucket, merged for the window
)

// Auto switches to sketches for windows longer than a day; series are
// bounded in points.
const (
	sketchAboveWindow = 24 * time.Hour
	defaultMaxPoints  = 120
	maxSeriesPoints   = 5000
)

// LatencyQuery selects the entry spans of an endpoint (or of every
// endpoint of a service when Endpoint is empty) in [From, To).
type LatencyQuery struct {
	Service  string
	Endpoint string
	Version  string // optional: one service.version
	// Tenant, optional, keeps one tenant's requests. When the endpoint
	// had requests before the window, the tenant's rate is over the whole
	// window, as the endpoint's, not from the tenant's first request: a
	// tenant quiet for part of a window is not busier for it.
	Tenant   string
	From, To time.Time
	// Step is the time-series bucket width; 0 picks a round step giving at
	// most MaxPoints buckets (default 120).
	Step      time.Duration
	MaxPoints int
	// BucketsPerOctave sets the histogram resolution (0: 4).
	BucketsPerOctave int
	// Method is MethodAuto (""), MethodExact or MethodSketch.
	Method string
	// Now cuts the time with data short of To when the window reaches
	// past it (zero: no cut); see rates.go.
	Now time.Time
}

// LatencyReport is the body of GET /api/v1/latency.
type LatencyReport struct {
	Service  string    `json:"service"`
	Endpoint string    `json:"endpoint"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	// Method says how percentiles were computed; RelativeError is the
	// bound on their relative error (0 when exact).
	Method        string  `json:"method"`
	RelativeError float64 `json:"relative_error"`
	Count         int     `json:"count"`
	ErrorCount    int     `json:"error_count"`
	ErrorRate     float64 `json:"error_rate"`
	// RatePerS is Count over the time with data (DataSpan), not over the
	// whole window.
	RatePerS float64 `json:"rate_per_s"`
	DataSpan
	// Weighted is true when spans of the window were sampled (a weight
	// above 1, store.Span.Weight): counts, rates, the histogram and the
	// percentiles then estimate the unsampled traffic, each span counted
	// as its weight rounded (store.CountWeight). False from rollups,
	// which are weighted at ingest but do not record whether.
	Weighted    bool              `json:"weighted"`
	Percentiles Percentiles       `json:"percentiles"`
	Histogram   []HistogramBucket `json:"histogram"`
	Series      TimeSeries        `json:"series"`
	Heatmap     Heatmap           `json:"heatmap"`
}

// TimeSeries is latency and traffic over time in equal, epoch-aligned
// buckets.
type TimeSeries struct {
	StepSeconds float64       `json:"step_s"`
	Points      []SeriesPoint `json:"points"`
}

// SeriesPoint is one bucket of a time series. Percentiles are null for a
// bucket without requests, so a chart shows a gap rather than a drop to 0.
type SeriesPoint struct {
	Start  time.Time `json:"start"`
	Count  int       `json:"count"`
	Errors int       `json:"errors"`
	// CoveredS is how much of the bucket lies in the window and before
	// now: the first bucket may start before the window and the last one
	// may still be filling. RatePerS is Count over it.
	CoveredS float64  `json:"covered_s"`
	RatePerS float64  `json:"rate_per_s"`
	P50Ms    *float64 `json:"p50_ms"`
	P95Ms    *float64 `json:"p95_ms"`
	P99Ms    *float64 `json:"p99_ms"`
}

// sampleView is the part of a sample distribution code reads, kept small
// so hot loops over 100k samples stay in cache.
type sampleView struct {
	start int64
	dur   int64
	w     int64 // store.CountWeight of the span's weight
	err   bool
}

// viewsIn returns the samples starting in [from, to). Stores already
// select by window; filtering again keeps the counts right even for a
// source that returns a superset.
func viewsIn(samples []store.Sample, from, to time.Time) []sampleView {
	f, t := from.UnixNano(), to.UnixNano()
	out := make([]sampleView, 0, len(samples))
	for i := range samples {
		s := &samples[i]
		if s.StartUnixNano < f || s.StartUnixNano >= t {
			continue
		}
		out = append(out, sampleView{start: s.StartUnixNano, dur: max(s.DurationNano, 0), w: store.CountWeight(s.Weight), err: s.Error})
	}
	return out
}

// latencyPlan is how a latency query is computed: its time grid, the
// method (exact or sketch) and the histogram resolution.
type latencyPlan struct {
	method    string
	perOctave int
	grid      timeGrid
}

// planLatency checks q and picks its step and method.
func planLatency(q LatencyQuery) (latencyPlan, error) {
	if err := checkWindow(q.Service, q.From, q.To); err != nil {
		return latencyPlan{}, err
	}
	if q.Step < 0 {
		return latencyPlan{}, invalidf("step must not be negative")
	}
	if q.MaxPoints < 0 {
		return latencyPlan{}, invalidf("max points must not be negative")
	}
	switch q.Method {
	case "", MethodAuto, MethodExact, MethodSketch:
	default:
		return latencyPlan{}, invalidf("method %q: want auto, exact or sketch", q.Method)
	}
	window := q.To.Sub(q.From)
	maxPoints := q.MaxPoints
	if maxPoints == 0 {
		maxPoints = defaultMaxPoints
	}
	step := q.Step
	if step == 0 {
		step = chooseStep(window, maxPoints)
	}
	if int64(window/step) >= maxSeriesPoints {
		return latencyPlan{}, invalidf("step %s gives more than %d points over %s; use a larger step",
			step, maxSeriesPoints, window)
	}
	method := q.Method
	if method == "" || method == MethodAuto {
		method = MethodExact
		if window > sketchAboveWindow {
			method = MethodSketch
		}
	}
	return latencyPlan{method: method, perOctave: clampPerOctave(q.BucketsPerOctave), grid: newTimeGrid(q.From, q.To, step)}, nil
}

// Latency computes percentiles, a log-bucket histogram, a time series and a
// heatmap of an endpoint's latency over a window.
func Latency(ctx context.Context, src SampleSource, q LatencyQuery) (LatencyReport, error) {
	pl, err := planLatency(q)
	if err != nil {
		return LatencyReport{}, err
	}
	method, perOctave, grid := pl.method, pl.perOctave, pl.grid
	rep := LatencyReport{
		Service:  q.Service,
		Endpoint: q.Endpoint,
		From:     q.From.UTC(),
		To:       q.To.UTC(),
		Method:   method,
	}
	// first is each endpoint's first request: chunks are read in time
	// order, so the first seen is the earliest.
	first := map[string]int64{}
	read := func(from, to time.Time) ([]sampleView, error) {
		ss, err := src.Samples(ctx, store.SampleQuery{Service: q.Service, Endpoint: q.Endpoint, Version: q.Version, Tenant: q.Tenant, From: from, To: to})
		if err != nil {
			return nil, fmt.Errorf("analysis: latency: read samples: %w", err)
		}
		views := viewsIn(ss, from, to)
		for _, v := range views {
			if v.w > 1 {
				rep.Weighted = true
				break
			}
		}
		for i := range ss {
			if _, ok := first[ss[i].Name]; !ok && ss[i].StartUnixNano >= from.UnixNano() && ss[i].StartUnixNano < to.UnixNano() {
				first[ss[i].Name] = ss[i].StartUnixNano
			}
		}
		return views, nil
	}
	end := dataEnd(q.To, q.Now).UnixNano()
	if method == MethodSketch {
		// A long window is read a day at a time into per-bucket sketches
		// and bucket counts, so memory is bounded by a day of samples
		// whatever the window.
		acc := newLatencyAcc(grid, perOctave, true)
		acc.from, acc.end = q.From.UnixNano(), end
		for cf := q.From; cf.Before(q.To); cf = cf.Add(latencyChunk) {
			ct := cf.Add(latencyChunk)
			if ct.After(q.To) {
				ct = q.To
			}
			views, err := read(cf, ct)
			if err != nil {
				return LatencyReport{}, err
			}
			acc.add(views)
		}
		rep.RelativeError = SketchRelativeAccuracy
		rep.Series, rep.Percentiles = acc.sketchSeries()
		rep.Histogram, rep.Heatmap = acc.histogram(), acc.heatmap()
		rep.Count, rep.ErrorCount = acc.count, acc.errCount
	} else {
		views, err := read(q.From, q.To)
		if err != nil {
			return LatencyReport{}, err
		}
		acc := newLatencyAcc(grid, perOctave, false)
		acc.add(views)
		if rep.Weighted {
			rep.Percentiles = weightedPercentiles(views)
		} else {
			durs := make([]int64, len(views))
			for i, v := range views {
				durs[i] = v.dur
			}
			slices.Sort(durs)
			rep.Percentiles = percentilesOfSorted(durs)
		}
		rep.Series = exactSeries(views, grid, q.From.UnixNano(), end, rep.Weighted)
		rep.Histogram, rep.Heatmap = acc.histogram(), acc.heatmap()
		rep.Count, rep.ErrorCount = acc.count, acc.errCount
	}
	if rep.Count > 0 {
		rep.ErrorRate = round4(float64(rep.ErrorCount) / float64(rep.Count))
	}
	start, err := latencyDataStart(ctx, src, q, first)
	if err != nil {
		return LatencyReport{}, err
	}
	rep.RatePerS = ratePerS(rep.Count, start, end)
	rep.DataSpan = dataSpan(rep.Count, start, end)
	return rep, nil
}

// latencyDataStart is when the window's data starts: the earliest series
// start of the endpoints seen (first is each one's first request).
func latencyDataStart(ctx context.Context, src SampleSource, q LatencyQuery, first map[string]int64) (int64, error) {
	starts := make(map[string]int64, len(first))
	for name, at := range first {
		st, err := seriesStart(ctx, src, seriesKey{q.Service, name, q.Version}, q.From.UnixNano(), at, q.To.Sub(q.From))
		if err != nil {
			return 0, fmt.Errorf("analysis: latency: %w", err)
		}
		starts[name] = st
	}
	return earliest(starts, q.From.UnixNano()), nil
}

// latencyChunk is how much of a long window the sketch path reads at once.
const latencyChunk = 24 * time.Hour

// latencyAcc accumulates a latency report's counts chunk by chunk: log
// bucket counts for the histogram, per-column bucket counts for the
// heatmap, and (for the sketch path) one sketch per time bucket.
type latencyAcc struct {
	grid      timeGrid
	from, end int64 // the window's start and its data end, for bucket rates
	perOctave int
	hist      map[int]int
	heat      []map[int]int
	sketches  []*Sketch
	errs      []int
	count     int
	errCount  int
}

// newLatencyAcc starts an accumulator; withSketches keeps per-bucket
// sketches (the exact path computes its series from the samples instead).
func newLatencyAcc(g timeGrid, perOctave int, withSketches bool) *latencyAcc {
	a := &latencyAcc{grid: g, perOctave: perOctave, hist: map[int]int{},
		heat: make([]map[int]int, g.n), errs: make([]int, g.n)}
	if withSketches {
		a.sketches = make([]*Sketch, g.n)
	}
	return a
}

func (a *latencyAcc) add(views []sampleView) {
	for _, v := range views {
		c := a.grid.index(v.start)
		if c < 0 {
			continue
		}
		b := bucketIndex(v.dur, a.perOctave)
		w := int(v.w)
		a.count += w
		a.hist[b] += w
		if a.heat[c] == nil {
			a.heat[c] = map[int]int{}
		}
		a.heat[c][b] += w
		if a.sketches != nil {
			if a.sketches[c] == nil {
				a.sketches[c] = NewSketch()
			}
			a.sketches[c].AddN(v.dur, v.w)
		}
		if v.err {
			a.errCount += w
			a.errs[c] += w
		}
	}
}

// bucketRange returns the lowest and highest non-empty log bucket.
func (a *latencyAcc) bucketRange() (lo, hi int) {
	lo, hi = math.MaxInt, -1
	for b := range a.hist {
		lo, hi = min(lo, b), max(hi, b)
	}
	return lo, hi
}

// histogram returns every bucket from the fastest to the slowest
// non-empty one, as LogHistogram does.
func (a *latencyAcc) histogram() []HistogramBucket {
	lo, hi := a.bucketRange()
	out := []HistogramBucket{}
	for b := lo; b <= hi; b++ {
		out = append(out, HistogramBucket{
			LowerMs: round3(bucketLowerMs(b, a.perOctave)),
			UpperMs: round3(bucketUpperMs(b, a.perOctave)),
			Count:   a.hist[b],
		})
	}
	return out
}

func (a *latencyAcc) heatmap() Heatmap {
	g := a.grid
	h := Heatmap{StepSeconds: float64(g.step) / 1e9, Times: make([]time.Time, g.n), Counts: make([][]int, g.n), BoundsMs: []float64{}}
	lo, hi := a.bucketRange()
	rows := max(hi-lo+1, 0)
	for r := 0; r < rows; r++ {
		h.BoundsMs = append(h.BoundsMs, round3(bucketLowerMs(lo+r, a.perOctave)))
	}
	if rows > 0 {
		h.BoundsMs = append(h.BoundsMs, round3(bucketUpperMs(hi, a.perOctave)))
	}
	for c := range g.n {
		h.Times[c] = g.bucketStart(c)
		h.Counts[c] = make([]int, rows)
		for b, n := range a.heat[c] {
			h.Counts[c][b-lo] = n
			h.MaxCount = max(h.MaxCount, n)
		}
	}
	return h
}

// exactSeries computes per-bucket counts and exact percentiles. Durations
// are laid out bucket by bucket in one buffer (a counting sort by bucket)
// and each bucket's run is sorted on its own: O(n log n) overall. When
// weighted, counts add weights and the percentiles are weighted
// nearest-rank ones (weightedRun); otherwise every weight is 1 and the
// buffer holds bare durations.
func exactSeries(views []sampleView, g timeGrid, from, end int64, weighted bool) TimeSeries {
	counts := make([]int, g.n)
	errs := make([]int, g.n)
	spans := make([]int, g.n) // views per bucket: the buffer's layout
	idx := make([]int, len(views))
	for i, v := range views {
		b := g.index(v.start)
		idx[i] = b
		if b < 0 {
			continue
		}
		spans[b]++
		counts[b] += int(v.w)
		if v.err {
			errs[b] += int(v.w)
		}
	}
	offsets := make([]int, g.n+1)
	for b, c := range spans {
		offsets[b+1] = offsets[b] + c
	}
	var (
		buf  []int64
		wbuf []weightedValue
	)
	if weighted {
		wbuf = make([]weightedValue, offsets[g.n])
	} else {
		buf = make([]int64, offsets[g.n])
	}
	fill := slices.Clone(offsets[:g.n])
	for i, v := range views {
		if b := idx[i]; b >= 0 {
			if weighted {
				wbuf[fill[b]] = weightedValue{v: v.dur, w: float64(v.w)}
			} else {
				buf[fill[b]] = v.dur
			}
			fill[b]++
		}
	}
	ts := TimeSeries{StepSeconds: float64(g.step) / 1e9, Points: make([]SeriesPoint, g.n)}
	for b := range g.n {
		p := SeriesPoint{Start: g.bucketStart(b), Count: counts[b], Errors: errs[b]}
		p.setRate(g, b, from, end)
		switch lo, hi := offsets[b], offsets[b+1]; {
		case lo == hi:
		case weighted:
			run := wbuf[lo:hi]
			sortWeighted(run)
			total := float64(counts[b])
			p.P50Ms = msPtr(sortedWeightedQuantile(run, total, 0.50))
			p.P95Ms = msPtr(sortedWeightedQuantile(run, total, 0.95))
			p.P99Ms = msPtr(sortedWeightedQuantile(run, total, 0.99))
		default:
			run := buf[lo:hi]
			slices.Sort(run)
			p.P50Ms = msPtr(Quantile(run, 0.50))
			p.P95Ms = msPtr(Quantile(run, 0.95))
			p.P99Ms = msPtr(Quantile(run, 0.99))
		}
		ts.Points[b] = p
	}
	return ts
}

// sketchSeries reads each bucket's sketch and merges them for the
// window's percentiles, which is what lets long windows be assembled from
// per-bucket (or cached) sketches.
func (a *latencyAcc) sketchSeries() (TimeSeries, Percentiles) {
	g := a.grid
	total := NewSketch()
	ts := TimeSeries{StepSeconds: float64(g.step) / 1e9, Points: make([]SeriesPoint, g.n)}
	for b := range g.n {
		p := SeriesPoint{Start: g.bucketStart(b), Errors: a.errs[b]}
		if s := a.sketches[b]; s != nil {
			p.Count = int(s.Count())
			p.P50Ms = floatPtr(round3(s.QuantileMs(0.50)))
			p.P95Ms = floatPtr(round3(s.QuantileMs(0.95)))
			p.P99Ms = floatPtr(round3(s.QuantileMs(0.99)))
			// Both sketches come from NewSketch, so the mappings match and
			// Merge cannot fail.
			_ = total.Merge(s)
		}
		p.setRate(g, b, a.from, a.end)
		ts.Points[b] = p
	}
	return ts, total.Percentiles()
}

// setRate averages the bucket's count over its part in [from, end), at
// least a second of it (as every rate, so a sliver of a bucket at the
// window's edge cannot turn one request into a spike).
func (p *SeriesPoint) setRate(g timeGrid, b int, from, end int64) {
	start := g.start + int64(b)*g.step
	p.CoveredS = round3(coveredSeconds(start, g.step, from, end))
	if p.CoveredS > 0 {
		p.RatePerS = ratePerS(p.Count, 0, int64(p.CoveredS*1e9))
	}
}

func msPtr(ns int64) *float64 { return floatPtr(round3(nsToMs(ns))) }

func floatPtr(v float64) *float64 { return &v }
