package analysis

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/tailscope/tailscope/store"
)

const defaultSparklinePoints = 30

// ServicesQuery is the window of the services overview.
type ServicesQuery struct {
	From, To time.Time
	// Service, when set, summarises that service alone (a read of its
	// rollups only).
	Service string
	// Now cuts the time with data short of To when the window reaches
	// past it (zero: no cut); rates are averaged over the time with data
	// (rates.go).
	Now time.Time
	// SparklinePoints is the number of p99 sparkline buckets (default 30).
	SparklinePoints int
}

// ServicesReport is the body of GET /api/v1/services.
type ServicesReport struct {
	From     time.Time        `json:"from"`
	To       time.Time        `json:"to"`
	Services []ServiceSummary `json:"services"`
}

// ServiceSummary is one service of the overview: all its entry spans
// together, and each endpoint on its own.
type ServiceSummary struct {
	Name string `json:"name"`
	RequestStats
	Endpoints []EndpointSummary `json:"endpoints"`
	// OtherNames are the requests of endpoints whose names the store does
	// not roll up on their own (past store.MaxRollupNames span names, a
	// sign that names carry values): counted in the service's numbers,
	// listed under no name.
	OtherNames *RequestStats `json:"other_names,omitempty"`
}

// EndpointSummary is one endpoint (entry span name) of a service.
type EndpointSummary struct {
	Name string `json:"name"`
	RequestStats
}

// RequestStats are the RED numbers of a set of requests over a window.
type RequestStats struct {
	Count  int `json:"count"`
	Errors int `json:"errors"`
	// RatePerS is Count over the time with data (DataSpan), not over the
	// whole window: a service that started ten minutes ago is as busy as
	// its last ten minutes.
	RatePerS float64 `json:"rate_per_s"`
	DataSpan
	ErrorRate float64 `json:"error_rate"`
	P50Ms     float64 `json:"p50_ms"`
	P95Ms     float64 `json:"p95_ms"`
	P99Ms     float64 `json:"p99_ms"`
	// P99SparklineMs is p99 over equal slices of the window, oldest first;
	// null where a slice had no requests.
	P99SparklineMs []*float64 `json:"p99_sparkline_ms"`
}

// ServiceStats computes rate, error rate, p50/p95/p99 and a p99 sparkline
// for every service and endpoint with entry spans in [From, To), from the
// rollups (rollups.go): the window is rounded out to whole buckets
// (minutes up to six hours, hours beyond; the report's From and To say
// which), percentiles are within SketchRelativeAccuracy of the exact
// ones, and the read costs the same at a million spans as at a billion.
func ServiceStats(ctx context.Context, src RollupSource, q ServicesQuery) (ServicesReport, error) {
	if q.From.IsZero() || q.To.IsZero() || !q.To.After(q.From) {
		return ServicesReport{}, invalidf("a non-empty time range is required")
	}
	if q.SparklinePoints < 0 || q.SparklinePoints > 1000 {
		return ServicesReport{}, invalidf("sparkline points %d: want 0 to 1000", q.SparklinePoints)
	}
	from, to, step := rollupWindow(q.From, q.To)
	rows, err := src.Rollups(ctx, store.RollupQuery{Step: step, From: from, To: to, Service: q.Service})
	if err != nil {
		return ServicesReport{}, fmt.Errorf("analysis: services: read rollups: %w", err)
	}
	points := q.SparklinePoints
	if points == 0 {
		points = defaultSparklinePoints
	}
	// A bucket is not split: no more points than buckets.
	points = max(1, min(points, int(to.Sub(from)/step)))
	w := statsWindow{from: from, to: to, end: dataEnd(to, q.Now), points: points}
	rep := ServicesReport{From: from, To: to, Services: []ServiceSummary{}}
	// Rows are ordered by service, endpoint and bucket.
	for len(rows) > 0 {
		n := 1
		for n < len(rows) && rows[n].Service == rows[0].Service {
			n++
		}
		sum, _, err := summarizeService(ctx, src, rows[:n], w)
		if err != nil {
			return ServicesReport{}, err
		}
		rep.Services = append(rep.Services, sum)
		rows = rows[n:]
	}
	return rep, nil
}

// statsWindow is the window of a services overview: [from, to) in whole
// buckets, the end of its data and the number of sparkline points.
type statsWindow struct {
	from, to, end time.Time
	points        int
}

// series is the rollups of one endpoint or service over a window: all of
// them and each sparkline slice's.
type series struct {
	all    *binAgg
	slices []*binAgg
}

func newSeries(points int) *series {
	return &series{all: newBinAgg(), slices: make([]*binAgg, points)}
}

// slice returns the accumulator of sparkline slice i.
func (s *series) slice(i int) *binAgg {
	if s.slices[i] == nil {
		s.slices[i] = newBinAgg()
	}
	return s.slices[i]
}

// summarizeService computes a service's overview row from its rollups
// (one service, ordered by endpoint and bucket), with one
// EndpointSummary per endpoint, and the aggregate of all its rollups.
func summarizeService(ctx context.Context, src RollupSource, rows []store.Rollup, w statsWindow) (ServiceSummary, *binAgg, error) {
	name := rows[0].Service
	svc := newSeries(w.points)
	sum := ServiceSummary{Name: name, Endpoints: []EndpointSummary{}}
	earliestStart := int64(math.MaxInt64)
	// The sparkline splits the window into equal slices (not the
	// epoch-aligned grid): it is a shape, not a chart with an axis. A
	// bucket counts in the slice its start falls in.
	f := w.from.UnixNano()
	slice := float64(w.to.Sub(w.from)) / float64(w.points)
	var (
		names  []string
		firsts []int64
		eps    []*series
		other  *series // the rows of names not rolled up on their own
	)
	for len(rows) > 0 {
		n := 1
		for n < len(rows) && rows[n].Endpoint == rows[0].Endpoint && rows[n].Other == rows[0].Other {
			n++
		}
		ep := newSeries(w.points)
		for i := range rows[:n] {
			r := &rows[i]
			ep.all.addRollup(r)
			ep.slice(min(int(float64(r.BucketUnixNano-f)/slice), w.points-1)).addRollup(r)
		}
		if rows[0].Other {
			other = ep
		} else {
			names, firsts, eps = append(names, rows[0].Endpoint), append(firsts, ep.all.first), append(eps, ep)
		}
		rows = rows[n:]
	}
	starts, err := endpointStartsRollups(ctx, src, name, names, firsts, f, w.to.Sub(w.from))
	if err != nil {
		return ServiceSummary{}, nil, fmt.Errorf("analysis: services: %w", err)
	}
	if other != nil {
		// No rollup says whether names kept under no name had requests
		// before the window: their data starts at their first request
		// when that is late, as a series with none before would.
		start := f
		if other.all.first-f > int64(lateStart(w.to.Sub(w.from))) {
			start = other.all.first
		}
		names, eps, starts = append(names, ""), append(eps, other), append(starts, start)
	}
	for i, ep := range eps {
		earliestStart = min(earliestStart, starts[i])
		st, err := ep.stats(w, starts[i])
		if err != nil {
			return ServiceSummary{}, nil, fmt.Errorf("analysis: services: %s %s: %w", name, names[i], err)
		}
		if other != nil && i == len(eps)-1 {
			sum.OtherNames = &st
		} else {
			sum.Endpoints = append(sum.Endpoints, EndpointSummary{Name: names[i], RequestStats: st})
		}
		svc.all.merge(ep.all)
		for i, s := range ep.slices {
			if s != nil {
				svc.slice(i).merge(s)
			}
		}
	}
	st, err := svc.stats(w, earliestStart)
	if err != nil {
		return ServiceSummary{}, nil, fmt.Errorf("analysis: services: %s: %w", name, err)
	}
	sum.RequestStats = st
	return sum, svc.all, nil
}

// stats computes RequestStats of a series whose data starts at start
// (Unix ns).
func (s *series) stats(w statsWindow, start int64) (RequestStats, error) {
	count := int(s.all.count)
	end := w.end.UnixNano()
	st := RequestStats{Count: count, P99SparklineMs: make([]*float64, w.points),
		RatePerS: ratePerS(count, start, end), DataSpan: dataSpan(count, start, end)}
	if count == 0 {
		return st, nil
	}
	st.Errors = int(s.all.errors)
	st.ErrorRate = round4(float64(s.all.errors) / float64(count))
	sk, err := s.all.sketch()
	if err != nil {
		return st, err
	}
	st.P50Ms = round3(sk.QuantileMs(0.50))
	st.P95Ms = round3(sk.QuantileMs(0.95))
	st.P99Ms = round3(sk.QuantileMs(0.99))
	for i, a := range s.slices {
		if a == nil || a.count == 0 {
			continue
		}
		sk, err := a.sketch()
		if err != nil {
			return st, err
		}
		p := round3(sk.QuantileMs(0.99))
		st.P99SparklineMs[i] = &p
	}
	return st, nil
}

// Busier orders endpoints for defaults: where requests enter the system
// (trace roots) first, then by request count. Pages, the API and incident
// reports pick "the busiest endpoint" with it, so they pick the same one.
func Busier(a, b store.Endpoint) bool {
	if a.Roots != b.Roots {
		return a.Roots > b.Roots
	}
	return a.Count > b.Count
}
