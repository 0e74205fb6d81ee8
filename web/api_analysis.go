package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/internal/duration"
	"github.com/tailscope/tailscope/store"
)

// maxAnalysisRange bounds windows that analysis reads whole (outliers,
// comparisons); longer latency windows use sketches day by day.
const maxAnalysisRange = 7 * 24 * time.Hour

func (s *Server) services(ctx context.Context, tr TimeRange) (analysis.ServicesReport, error) {
	q := analysis.ServicesQuery{From: tr.From, To: tr.To, Now: s.dataNow(tr.To)}
	key := queryKey("services", q)
	return cached(ctx, s, key, func(ctx context.Context) (analysis.ServicesReport, error) {
		return analysis.ServiceStats(ctx, s.store, q)
	})
}

// dataNow is the analysis clock when it cuts a window ending at to short
// (rates are averaged over the time with data, which ends at now), and
// zero otherwise, so a past window's cache key does not move with the
// clock.
func (s *Server) dataNow(to time.Time) time.Time {
	if now := s.analysisNow(); now.Before(to) {
		return now
	}
	return time.Time{}
}

// endpointQuery reads service, endpoint and the window shared by the
// latency, outliers and compare requests.
type endpointQuery struct {
	Service, Endpoint, Version string
	Range                      TimeRange
}

func (s *Server) parseEndpointQuery(ctx context.Context, q url.Values, needEndpoint bool) (endpointQuery, error) {
	eq := endpointQuery{
		Service:  strings.TrimSpace(q.Get("service")),
		Endpoint: strings.TrimSpace(q.Get("endpoint")),
		Version:  strings.TrimSpace(q.Get("version")),
	}
	tr, err := s.parseRange(q)
	if err != nil {
		return eq, err
	}
	eq.Range = tr
	if eq.Service == "" {
		return eq, badRequest("service is required")
	}
	if needEndpoint && eq.Endpoint == "" {
		ep, err := s.busiestEndpoint(ctx, eq.Service, tr)
		if err != nil {
			return eq, err
		}
		eq.Endpoint = ep
	}
	return eq, nil
}

// busiestEndpoint picks the endpoint with the most requests when the user
// named only a service — what they almost always mean.
func (s *Server) busiestEndpoint(ctx context.Context, service string, tr TimeRange) (string, error) {
	eps, err := s.endpoints(ctx, tr)
	if err != nil {
		return "", err
	}
	var best store.Endpoint
	for _, e := range eps {
		if e.Service == service && analysis.Busier(e, best) {
			best = e
		}
	}
	if best.Name == "" {
		return "", notFound("no requests to service %q between %s and %s", truncateText(service, 80), tr.From.UTC().Format(time.RFC3339), tr.To.UTC().Format(time.RFC3339))
	}
	return best.Name, nil
}

// endpointsQuery is the input of the endpoint list, as a struct so its
// cache key comes from queryKey like every other computation's.
type endpointsQuery struct{ From, To time.Time }

func (s *Server) endpoints(ctx context.Context, tr TimeRange) ([]store.Endpoint, error) {
	key := queryKey("endpoints", endpointsQuery{From: tr.From, To: tr.To})
	return cached(ctx, s, key, func(ctx context.Context) ([]store.Endpoint, error) {
		return s.store.Endpoints(ctx, tr.From, tr.To)
	})
}

func (s *Server) latency(ctx context.Context, q analysis.LatencyQuery) (analysis.LatencyReport, error) {
	q.Now = s.dataNow(q.To)
	key := queryKey("latency", q)
	return cached(ctx, s, key, func(ctx context.Context) (analysis.LatencyReport, error) {
		// The page and the API read the rollups whenever they can answer
		// (every automatic query with a step of whole minutes): their cost
		// follows the minutes shown, not the requests in them. Exact or
		// span-sketch percentiles are still there by asking for them.
		// A tenant without rollups (past the store's bound) is read from
		// its spans.
		ok, err := analysis.ReadRollups(ctx, s.store, q)
		if err != nil {
			return analysis.LatencyReport{}, err
		}
		if ok {
			return analysis.LatencyFromRollups(ctx, s.store, q)
		}
		return analysis.Latency(ctx, s.store, q)
	})
}

// spanLatency is latency read from spans alone, what an incident report
// uses: its numbers are evidence bounded by the incident's window to the
// nanosecond, where rollups round a window out to whole minutes and place
// percentiles within the sketch's error.
func (s *Server) spanLatency(ctx context.Context, q analysis.LatencyQuery) (analysis.LatencyReport, error) {
	q.Now = s.dataNow(q.To)
	return cached(ctx, s, queryKey("latency-spans", q), func(ctx context.Context) (analysis.LatencyReport, error) {
		return analysis.Latency(ctx, s.store, q)
	})
}

func (s *Server) parseLatencyQuery(ctx context.Context, v url.Values) (analysis.LatencyQuery, endpointQuery, error) {
	eq, err := s.parseEndpointQuery(ctx, v, true)
	if err != nil {
		return analysis.LatencyQuery{}, eq, err
	}
	q := analysis.LatencyQuery{Service: eq.Service, Endpoint: eq.Endpoint, Version: eq.Version, Tenant: strings.TrimSpace(v.Get("tenant")),
		From: eq.Range.From, To: eq.Range.To}
	if st := v.Get("step"); st != "" {
		d, err := time.ParseDuration(st)
		if err != nil || d < time.Second {
			return q, eq, badRequest("step %q: want a duration of at least 1s, like 30s or 5m", truncateText(st, 30))
		}
		q.Step = d
	}
	switch m := v.Get("method"); m {
	case "", "auto":
	case analysis.MethodExact, analysis.MethodSketch, analysis.MethodRollups:
		q.Method = m
	default:
		return q, eq, badRequest("method %q: want auto, exact, sketch or rollups", truncateText(m, 20))
	}
	return q, eq, nil
}

func (s *Server) handleAPILatency(w http.ResponseWriter, r *http.Request) {
	q, _, err := s.parseLatencyQuery(r.Context(), r.URL.Query())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	rep, err := s.latency(r.Context(), q)
	if err != nil {
		s.apiError(w, r, fmt.Errorf("latency: %w", err))
		return
	}
	s.writeJSON(w, http.StatusOK, rep)
}

func (s *Server) outliers(ctx context.Context, q analysis.OutlierQuery) (analysis.OutlierReport, error) {
	return s.outliersFrom(ctx, s.store, q)
}

// outliersFrom computes over src, which reads what the store holds (a
// report's memo); the key is the query's alone.
func (s *Server) outliersFrom(ctx context.Context, src analysis.SpanSource, q analysis.OutlierQuery) (analysis.OutlierReport, error) {
	key := queryKey("outliers", q)
	return cached(ctx, s, key, func(ctx context.Context) (analysis.OutlierReport, error) {
		return analysis.Outliers(ctx, src, q)
	})
}

func (s *Server) parseOutlierQuery(ctx context.Context, v url.Values) (analysis.OutlierQuery, endpointQuery, error) {
	eq, err := s.parseEndpointQuery(ctx, v, true)
	if err != nil {
		return analysis.OutlierQuery{}, eq, err
	}
	if eq.Range.To.Sub(eq.Range.From) > maxAnalysisRange {
		return analysis.OutlierQuery{}, eq, badRequest("outlier analysis covers at most %d days; narrow the time range", int(maxAnalysisRange.Hours()/24))
	}
	q := analysis.OutlierQuery{Service: eq.Service, Endpoint: eq.Endpoint, From: eq.Range.From, To: eq.Range.To}
	if p := v.Get("percentile"); p != "" {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || !(f > 0 && f < 100) { // NaN fails both
			return q, eq, badRequest("percentile %q: want a number between 0 and 100, like 99 or 99.9", truncateText(p, 20))
		}
		q.Percentile = f
	}
	if t := v.Get("threshold_ms"); t != "" {
		f, err := strconv.ParseFloat(t, 64)
		if err != nil || !(f > 0 && f <= 1e9) { // NaN, Inf fail
			return q, eq, badRequest("threshold_ms %q: want a positive number of milliseconds", truncateText(t, 20))
		}
		q.ThresholdMs = f
	}
	if q.Percentile > 0 && q.ThresholdMs > 0 {
		return q, eq, badRequest("give percentile or threshold_ms, not both")
	}
	if a, ok := v["attrs"]; ok {
		keys := []string{}
		for _, part := range a {
			for _, k := range strings.Split(part, ",") {
				if k = strings.TrimSpace(k); k != "" {
					keys = append(keys, k)
				}
			}
		}
		sort.Strings(keys)
		q.Attributes = keys
	}
	return q, eq, nil
}

func (s *Server) handleAPIOutliers(w http.ResponseWriter, r *http.Request) {
	q, _, err := s.parseOutlierQuery(r.Context(), r.URL.Query())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	rep, err := s.outliers(r.Context(), q)
	if err != nil {
		s.apiError(w, r, fmt.Errorf("outliers: %w", err))
		return
	}
	s.writeJSON(w, http.StatusOK, rep)
}

// compareRequest is a parsed compare query plus what the page shows about
// it (the deploy marker it is anchored on).
type compareRequest struct {
	Query  analysis.CompareQuery
	Deploy *store.Deploy
}

// parseCompareQuery reads one of three modes: deploy=ID (before/after a
// marker, window= its length, equal_counts=1), explicit before_*/after_*
// ranges, or version_a/version_b over from/to (a canary).
func (s *Server) parseCompareQuery(ctx context.Context, v url.Values) (compareRequest, error) {
	now := s.analysisNow()
	cr := compareRequest{}
	q := &cr.Query
	q.Service = strings.TrimSpace(v.Get("service"))
	q.Endpoint = strings.TrimSpace(v.Get("endpoint"))
	modes := 0
	if v.Get("deploy") != "" {
		modes++
	}
	if v.Get("before_from") != "" || v.Get("after_from") != "" {
		modes++
	}
	if v.Get("version_a") != "" || v.Get("version_b") != "" {
		modes++
	}
	if modes != 1 {
		return cr, badRequest("give exactly one of: deploy=ID; before_from, before_to, after_from, after_to; or version_a and version_b")
	}
	var window TimeRange // where to look for the busiest endpoint
	switch {
	case v.Get("deploy") != "":
		w, err := s.parseDeployCompare(ctx, v, &cr, now)
		if err != nil {
			return cr, err
		}
		window = w
	case v.Get("version_a") != "":
		q.VersionA, q.VersionB = strings.TrimSpace(v.Get("version_a")), strings.TrimSpace(v.Get("version_b"))
		if q.VersionA == "" || q.VersionB == "" {
			return cr, badRequest("version_a and version_b are both required")
		}
		tr, err := parseTimeRange(v.Get("from"), v.Get("to"), now)
		if err != nil {
			return cr, badRequest("%v", err)
		}
		q.From, q.To = tr.From, tr.To
		q.Now = s.dataNow(q.To)
		window = tr
	default:
		before, err := parseTimeRange(v.Get("before_from"), v.Get("before_to"), now)
		if err != nil || v.Get("before_from") == "" || v.Get("before_to") == "" {
			return cr, badRequest("before_from and before_to: want a valid range (%v)", err)
		}
		after, err := parseTimeRange(v.Get("after_from"), v.Get("after_to"), now)
		if err != nil || v.Get("after_from") == "" || v.Get("after_to") == "" {
			return cr, badRequest("after_from and after_to: want a valid range (%v)", err)
		}
		q.BeforeFrom, q.BeforeTo, q.AfterFrom, q.AfterTo = before.From, before.To, after.From, after.To
		window = TimeRange{From: minTime(before.From, after.From), To: maxTime(before.To, after.To)}
		q.Now = s.dataNow(window.To)
	}
	if q.Service == "" {
		return cr, badRequest("service is required")
	}
	if window.To.Sub(window.From) > 2*maxAnalysisRange {
		return cr, badRequest("the compared windows span more than %d days; narrow them", 2*int(maxAnalysisRange.Hours()/24))
	}
	if q.Endpoint == "" && window.To.After(window.From) {
		ep, err := s.busiestEndpoint(ctx, q.Service, window)
		if err != nil {
			return cr, err
		}
		q.Endpoint = ep
	}
	return cr, nil
}

// parseDeployCompare reads the deploy mode of a comparison (deploy=ID,
// window=, equal_counts=) into cr and returns where to look for the
// busiest endpoint.
func (s *Server) parseDeployCompare(ctx context.Context, v url.Values, cr *compareRequest, now time.Time) (TimeRange, error) {
	q := &cr.Query
	id, err := strconv.ParseInt(v.Get("deploy"), 10, 64)
	if err != nil || id < 1 {
		return TimeRange{}, badRequest("deploy %q: want a deploy marker id", truncateText(v.Get("deploy"), 20))
	}
	d, err := s.store.DeployByID(ctx, id)
	if err != nil {
		return TimeRange{}, fmt.Errorf("deploy %d: %w", id, err)
	}
	cr.Deploy = &d
	if q.Service == "" {
		q.Service = d.Service
	}
	q.DeployAt = d.At
	q.Window = time.Hour
	if ws := v.Get("window"); ws != "" {
		wd, err := duration.Parse(ws)
		if err != nil || wd < time.Minute || wd > maxAnalysisRange {
			return TimeRange{}, badRequest("window %q: want a duration from 1m to 7d, like 30m or 2h", truncateText(ws, 20))
		}
		q.Window = wd
	}
	q.EqualCounts = v.Get("equal_counts") == "1" || v.Get("equal_counts") == "true"
	q.Now = now
	return TimeRange{From: d.At.Add(-q.Window), To: minTime(d.At.Add(q.Window), now)}, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// compareWith runs a comparison over src for query parameters exactly as
// the compare API and the deploy page read them, so the numbers match
// theirs.
func (s *Server) compareWith(ctx context.Context, src analysis.SpanSource, q url.Values) (compareRequest, analysis.Comparison, error) {
	cr, err := s.parseCompareQuery(ctx, q)
	if err != nil {
		return cr, analysis.Comparison{}, err
	}
	c, err := s.compareFrom(ctx, src, cr.Query)
	if err != nil {
		return cr, c, fmt.Errorf("compare: %w", err)
	}
	return cr, c, nil
}

func (s *Server) compare(ctx context.Context, q analysis.CompareQuery) (analysis.Comparison, error) {
	return s.compareFrom(ctx, s.store, q)
}

func (s *Server) compareFrom(ctx context.Context, src analysis.SpanSource, q analysis.CompareQuery) (analysis.Comparison, error) {
	key := queryKey("compare", q)
	return cached(ctx, s, key, func(ctx context.Context) (analysis.Comparison, error) {
		return analysis.Compare(ctx, src, q)
	})
}

func (s *Server) handleAPICompare(w http.ResponseWriter, r *http.Request) {
	cr, err := s.parseCompareQuery(r.Context(), r.URL.Query())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	rep, err := s.compare(r.Context(), cr.Query)
	if err != nil {
		s.apiError(w, r, fmt.Errorf("compare: %w", err))
		return
	}
	s.writeJSON(w, http.StatusOK, rep)
}
