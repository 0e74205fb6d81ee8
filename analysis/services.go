package analysis

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tailscope/tailscope/store"
)

const defaultSparklinePoints = 30

// ServicesQuery is the window of the services overview.
type ServicesQuery struct {
	From, To time.Time
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
}

// EndpointSummary is one endpoint (entry span name) of a service.
type EndpointSummary struct {
	Name string `json:"name"`
	RequestStats
}

// RequestStats are the RED numbers of a set of requests over a window.
type RequestStats struct {
	Count int `json:"count"`
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
// for every service and endpoint with entry spans in [From, To).
func ServiceStats(ctx context.Context, src EndpointSource, q ServicesQuery) (ServicesReport, error) {
	if q.From.IsZero() || q.To.IsZero() || !q.To.After(q.From) {
		return ServicesReport{}, invalidf("a non-empty time range is required")
	}
	if q.SparklinePoints < 0 || q.SparklinePoints > 1000 {
		return ServicesReport{}, invalidf("sparkline points %d: want 0 to 1000", q.SparklinePoints)
	}
	eps, err := src.Endpoints(ctx, q.From, q.To)
	if err != nil {
		return ServicesReport{}, fmt.Errorf("analysis: services: list endpoints: %w", err)
	}
	var services []string
	for _, e := range eps {
		if len(services) == 0 || services[len(services)-1] != e.Service {
			services = append(services, e.Service)
		}
	}
	slices.Sort(services)
	services = slices.Compact(services)

	rep := ServicesReport{From: q.From.UTC(), To: q.To.UTC(), Services: []ServiceSummary{}}
	end := dataEnd(q.To, q.Now)
	for _, svc := range services {
		samples, err := src.Samples(ctx, store.SampleQuery{Service: svc, From: q.From, To: q.To})
		if err != nil {
			return ServicesReport{}, fmt.Errorf("analysis: services: read samples of %s: %w", svc, err)
		}
		starts, err := endpointStarts(ctx, src, svc, "", samples, q.From, q.To)
		if err != nil {
			return ServicesReport{}, fmt.Errorf("analysis: services: %w", err)
		}
		rep.Services = append(rep.Services, summarizeService(svc, samples, statsWindow{q.From, q.To, end, q.SparklinePoints}, starts))
	}
	return rep, nil
}

// statsWindow is the window of a services overview: [from, to), the end
// of its data and the number of sparkline points.
type statsWindow struct {
	from, to, end time.Time
	points        int
}

// summarizeService computes a service's overview row from its entry-span
// samples in [from, to), with one EndpointSummary per span name; starts is
// where each endpoint's data begins (rates.go).
func summarizeService(name string, samples []store.Sample, w statsWindow, starts map[string]int64) ServiceSummary {
	if w.points <= 0 {
		w.points = defaultSparklinePoints
	}
	byName := map[string][]sampleView{}
	all := viewsIn(samples, w.from, w.to)
	f, t := w.from.UnixNano(), w.to.UnixNano()
	for i := range samples {
		s := &samples[i]
		if s.StartUnixNano < f || s.StartUnixNano >= t {
			continue
		}
		byName[s.Name] = append(byName[s.Name], sampleView{start: s.StartUnixNano, dur: max(s.DurationNano, 0), err: s.Error})
	}
	start := func(n string) int64 {
		if st, ok := starts[n]; ok {
			return st
		}
		return f
	}
	sum := ServiceSummary{
		Name:         name,
		RequestStats: requestStats(all, w, earliest(starts, f)),
		Endpoints:    []EndpointSummary{},
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	slices.SortFunc(names, strings.Compare)
	for _, n := range names {
		sum.Endpoints = append(sum.Endpoints, EndpointSummary{
			Name:         n,
			RequestStats: requestStats(byName[n], w, start(n)),
		})
	}
	return sum
}

// requestStats computes RequestStats over views in [from, to), whose data
// starts at start (Unix ns).
func requestStats(views []sampleView, w statsWindow, start int64) RequestStats {
	points := w.points
	st := RequestStats{Count: len(views), P99SparklineMs: make([]*float64, points)}
	end := w.end.UnixNano()
	st.RatePerS = ratePerS(len(views), start, end)
	st.DataSpan = dataSpan(len(views), start, end)
	if len(views) == 0 {
		return st
	}
	durs := make([]int64, len(views))
	errs := 0
	for i, v := range views {
		durs[i] = v.dur
		if v.err {
			errs++
		}
	}
	st.ErrorRate = round4(float64(errs) / float64(len(views)))
	sorted := slices.Clone(durs)
	slices.Sort(sorted)
	st.P50Ms = round3(nsToMs(Quantile(sorted, 0.50)))
	st.P95Ms = round3(nsToMs(Quantile(sorted, 0.95)))
	st.P99Ms = round3(nsToMs(Quantile(sorted, 0.99)))

	// The sparkline splits the window into equal slices (not the
	// epoch-aligned grid): it is a shape, not a chart with an axis.
	slice := float64(w.to.Sub(w.from)) / float64(points)
	parts := make([][]int64, points)
	f := w.from.UnixNano()
	for _, v := range views {
		i := min(int(float64(v.start-f)/slice), points-1)
		if i >= 0 {
			parts[i] = append(parts[i], v.dur)
		}
	}
	for i, p := range parts {
		if len(p) == 0 {
			continue
		}
		slices.Sort(p)
		st.P99SparklineMs[i] = msPtr(Quantile(p, 0.99))
	}
	return st
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
