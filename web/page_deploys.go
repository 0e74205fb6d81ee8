package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/components/chart"
	"github.com/tailscope/tailscope/internal/duration"
	"github.com/tailscope/tailscope/internal/href"
	"github.com/tailscope/tailscope/internal/units"
	"github.com/tailscope/tailscope/report"
	"github.com/tailscope/tailscope/store"
)

// Deploys page defaults.
const (
	defaultDeploysFrom  = "now-30d"
	defaultDeploysLimit = 100
	maxCompareDeps      = 12
)

// shellSafe matches service names that can be pasted into the curl line
// as they are; anything else gets a placeholder, so a crafted link can
// never put shell syntax into a command someone copies.
var shellSafe = regexp.MustCompile(`^[A-Za-z0-9._:/@+-]{1,100}$`)

// hostSafe matches Host headers fit to build absolute links from.
var hostSafe = regexp.MustCompile(`^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$`)

// requestBase is the scheme and host the request came in on, for
// absolute links in exports and the curl line.
func requestBase(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	host := r.Host
	if !hostSafe.MatchString(host) {
		host = "127.0.0.1:8080"
	}
	return scheme + "://" + host
}

// deployCurl is the one-line command a CI pipeline runs after a deploy.
func deployCurl(base, service string) string {
	if !shellSafe.MatchString(service) {
		service = "checkout"
	}
	return fmt.Sprintf(`curl -sf -X POST %s/api/v1/deploys -H 'Content-Type: application/json' -d '{"service":"%s","version":"'"$GIT_SHA"'","note":"pipeline '"$CI_PIPELINE_ID"'"}'`, base, service)
}

// deployKinds says which markers are a service's first sighting rather
// than a deploy (analysis.DeployKinds), keyed by marker id.
func (s *Server) deployKinds(ctx context.Context, ds []store.Deploy) (map[int64]string, error) {
	c := s.markers
	if c == nil { // a Server not made by New: nothing remembered
		c = &analysis.DeployClassifier{Spans: s.store, Deploys: s.store}
	}
	kinds, err := c.Kinds(ctx, ds, s.now())
	if err != nil {
		return nil, fmt.Errorf("classify deploy markers: %w", err)
	}
	return kinds, nil
}

func (s *Server) handleDeploysPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fromText, toText := q.Get("from"), q.Get("to")
	if fromText == "" && toText == "" {
		fromText, toText = defaultDeploysFrom, "now"
	}
	now := s.analysisNow()
	tr, err := parseTimeRange(fromText, toText, now)
	if err != nil {
		s.pageError(w, r, badRequest("%v", err))
		return
	}
	v := components.DeploysView{Service: strings.TrimSpace(q.Get("service")), From: tr.FromText, To: tr.ToText, Limit: strconv.Itoa(defaultDeploysLimit)}
	limit := defaultDeploysLimit
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			s.pageError(w, r, badRequest("limit %q: want a whole number from 1 to 1000", truncateText(l, 20)))
			return
		}
		limit, v.Limit = n, l
	}
	dq := store.DeployQuery{Service: v.Service, From: tr.From, To: tr.To, Limit: limit}
	if q.Get("from") == "" && q.Get("to") == "" {
		// The default list ends at no time at all, so a marker a
		// pipeline posted a moment ago is there on reload.
		dq.To = time.Time{}
	}
	ctx := r.Context()
	ds, err := s.store.Deploys(ctx, dq)
	if err != nil {
		s.pageError(w, r, fmt.Errorf("list deploys: %w", err))
		return
	}
	eps, err := s.endpoints(ctx, tr)
	if err != nil {
		s.pageError(w, r, fmt.Errorf("endpoints: %w", err))
		return
	}
	kinds, err := s.deployKinds(ctx, ds)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	var versions []string
	for i, d := range ds {
		row := components.DeployRow{
			ID: d.ID, Service: d.Service, Version: d.Version, At: d.At, Ago: ago(d.At, now),
			Source: d.Source, Note: d.Note, Href: fmt.Sprintf("/deploys/%d", d.ID), FirstSeen: kinds[d.ID] == analysis.KindFirstSeen,
			LatencyHref: href.With("/latency", "service", d.Service, "from", href.Time(d.At.Add(-time.Hour)), "to", href.Time(minTime(d.At.Add(time.Hour), now))),
		}
		if i < maxListImpacts {
			imp, err := s.deployImpact(ctx, d)
			if err != nil {
				s.pageError(w, r, fmt.Errorf("deploy %d impact: %w", d.ID, err))
				return
			}
			row.Impact = impactView(imp, row.FirstSeen)
		}
		v.Rows = append(v.Rows, row)
		if !slices.Contains(versions, d.Version) {
			versions = append(versions, d.Version)
		}
	}
	v.Services, v.MoreServices = serviceChoices(eps)
	if v.Service != "" && v.MoreServices == 0 && !slices.Contains(v.Services, v.Service) {
		v.Services = append(v.Services, v.Service) // a choice list must offer it
	}
	v.Curl = deployCurl(requestBase(r), v.Service)
	v.Compare = components.CompareFormView{Service: v.Service, From: "now-1h", To: "now", Services: v.Services, Versions: versions}
	s.render(w, r, http.StatusOK, s.page(r, "Deploys", "deploys", &tr), components.DeploysPage(v))
}

// compareParams copies the comparison parameters of a page's query.
func compareParams(q url.Values, keys ...string) url.Values {
	out := url.Values{}
	for _, k := range keys {
		if v := strings.TrimSpace(q.Get(k)); v != "" {
			out.Set(k, v)
		}
	}
	return out
}

// pageCompareError splits comparison errors: a malformed parameter is the
// request's fault (an error page), "no requests yet" is a state of the data
// that the page explains in place.
func pageCompareError(err error) (note string, status int, isNote bool) {
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusBadRequest {
		return e.Message, e.Status, false
	}
	if msg, ok := report.UnavailableReason(asUnavailable(err)); ok {
		st, _ := errorStatus(err)
		return upperFirst(msg), st, true
	}
	return "", 0, false
}

func (s *Server) handleDeployComparePage(w http.ResponseWriter, r *http.Request) {
	id, err := parseIDParam(r, "deploy")
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	ctx := r.Context()
	d, err := s.store.DeployByID(ctx, id)
	if err != nil {
		s.pageError(w, r, fmt.Errorf("deploy %d: %w", id, err))
		return
	}
	q := compareParams(r.URL.Query(), "endpoint", "window", "equal_counts")
	q.Set("deploy", strconv.FormatInt(id, 10))
	now := s.analysisNow()
	kinds, err := s.deployKinds(ctx, []store.Deploy{d})
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	v := components.DeployCompareView{
		Service: d.Service, Version: d.Version, At: d.At, Source: report.SourceWord(d.Source),
		DeployNote: d.Note, Endpoint: q.Get("endpoint"), Window: cmp.Or(q.Get("window"), "1h"),
		EqualCounts: q.Get("equal_counts") == "1" || q.Get("equal_counts") == "true", Action: fmt.Sprintf("/deploys/%d", id),
		FirstSeen: kinds[d.ID] == analysis.KindFirstSeen,
	}
	window := time.Hour
	if wd, err := duration.Parse(v.Window); err == nil && wd > 0 {
		window = wd
	}
	eps, err := s.endpoints(ctx, TimeRange{From: d.At.Add(-window), To: maxTime(minTime(d.At.Add(window), now), d.At.Add(time.Second))})
	if err != nil {
		s.pageError(w, r, fmt.Errorf("endpoints: %w", err))
		return
	}
	v.Endpoints, v.MoreEndpoints = endpointChoices(eps, d.Service, choiceEndpoints)
	cr, c, err := s.compareWith(r.Context(), s.store, q)
	if err != nil {
		// A marker without traffic after it (yet) is a state of the
		// data, not a bad request: the page explains it.
		note, _, ok := pageCompareError(err)
		if !ok {
			s.pageError(w, r, err)
			return
		}
		v.Note = note
	} else {
		v.Endpoint = cr.Query.Endpoint
		q.Set("endpoint", v.Endpoint)
		cv := comparisonView(c, "before", "after")
		cv.APIHref = "/api/v1/compare?" + q.Encode()
		cv.LatencyHref = href.With("/latency", "service", c.Service, "endpoint", c.Endpoint, "from", href.Time(c.Before.From), "to", href.Time(c.After.To))
		cv.BeforeTracesHref = sideTracesHref(c, c.Before)
		cv.AfterTracesHref = sideTracesHref(c, c.After)
		cv.IncidentHref = IncidentFromWindowLink(href.Time(c.After.From), href.Time(c.After.To), c.Service)
		v.Comparison = &cv
	}
	if v.MoreEndpoints == 0 && v.Endpoint != "" && !slices.Contains(v.Endpoints, v.Endpoint) {
		v.Endpoints = append(v.Endpoints, v.Endpoint)
	}
	slices.Sort(v.Endpoints)
	s.render(w, r, http.StatusOK, s.page(r, d.Service+" "+d.Version+" before and after", "deploys", nil), components.DeployComparePage(v))
}

// sideTracesHref lists the slowest traces of one side of a comparison.
func sideTracesHref(c analysis.Comparison, side analysis.CompareSide) string {
	return href.With("/search", "service", c.Service, "endpoint", c.Endpoint, "version", side.Version,
		"from", href.Time(side.From), "to", href.Time(side.To), "sort", "slowest")
}

func (s *Server) handleComparePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	v := components.CompareView{Form: components.CompareFormView{
		Service: strings.TrimSpace(q.Get("service")), Endpoint: strings.TrimSpace(q.Get("endpoint")),
		VersionA: strings.TrimSpace(q.Get("version_a")), VersionB: strings.TrimSpace(q.Get("version_b")),
		From: cmp.Or(q.Get("from"), "now-1h"), To: cmp.Or(q.Get("to"), "now"),
	}}
	ctx := r.Context()
	now := s.analysisNow()
	eps, err := s.endpoints(ctx, TimeRange{From: now.Add(-7 * 24 * time.Hour), To: now})
	if err != nil {
		s.pageError(w, r, fmt.Errorf("endpoints: %w", err))
		return
	}
	v.Form.Services, _ = serviceChoices(eps)
	if v.Form.Service != "" {
		ds, err := s.store.Deploys(ctx, store.DeployQuery{Service: v.Form.Service, Limit: 50})
		if err != nil {
			s.pageError(w, r, fmt.Errorf("deploys: %w", err))
			return
		}
		for _, d := range ds {
			if !slices.Contains(v.Form.Versions, d.Version) {
				v.Form.Versions = append(v.Form.Versions, d.Version)
			}
		}
	}
	status := http.StatusOK
	modes := compareParams(q, "deploy", "version_a", "version_b", "before_from", "after_from")
	if len(modes) == 0 {
		v.Note = "Choose a service and two versions running at the same time (a canary), and the window to compare them over."
	} else {
		params := compareParams(q, "service", "endpoint", "version_a", "version_b", "from", "to", "deploy", "window", "equal_counts",
			"before_from", "before_to", "after_from", "after_to")
		_, c, err := s.compareWith(r.Context(), s.store, params)
		if err != nil {
			note, st, ok := pageCompareError(err)
			if !ok {
				s.pageError(w, r, err)
				return
			}
			v.Note, status = note, st
		} else {
			params.Set("endpoint", c.Endpoint)
			cv := comparisonView(c, c.Before.Label, c.After.Label)
			cv.APIHref = "/api/v1/compare?" + params.Encode()
			cv.LatencyHref = href.With("/latency", "service", c.Service, "endpoint", c.Endpoint, "from", href.Time(minTime(c.Before.From, c.After.From)), "to", href.Time(maxTime(c.Before.To, c.After.To)))
			cv.BeforeTracesHref = sideTracesHref(c, c.Before)
			cv.AfterTracesHref = sideTracesHref(c, c.After)
			cv.IncidentHref = IncidentFromWindowLink(href.Time(minTime(c.Before.From, c.After.From)), href.Time(maxTime(c.Before.To, c.After.To)), c.Service)
			v.Form.Endpoint = c.Endpoint
			v.Comparison = &cv
		}
	}
	s.render(w, r, status, s.page(r, "Compare versions", "deploys", nil), components.ComparePage(v))
}

// comparisonView lays out a comparison; the labels name its two sides
// ("before"/"after", two versions, "before"/"during").
func comparisonView(c analysis.Comparison, before, after string) components.ComparisonView {
	v := components.ComparisonView{
		Service: c.Service, Endpoint: c.Endpoint, BeforeLabel: before, AfterLabel: after, TailLabel: c.TailLabel(),
		Verdict: c.Verdict, VerdictClass: verdictClass(c.Verdict), Summary: c.Summary, Reasons: c.Reasons,
		Insufficient: c.Insufficient, CILevel: units.SLOPercent(c.CILevel), NoBaseline: c.Baseline == analysis.BaselineNone,
		RateBefore: c.Throughput.BeforePerS, RateAfter: c.Throughput.AfterPerS,
	}
	if d := c.Throughput.DeltaPct; d != nil {
		v.RateDelta = units.SignedPercent(*d)
	}
	if e := c.ErrorRate; e != nil {
		v.ErrorBefore, v.ErrorAfter, v.ErrorP, v.ErrorSignificant = e.RateA, e.RateB, e.PValue, e.Significant
		if e.Significant {
			v.ErrorText = fmt.Sprintf("significant change (p = %.2g)", e.PValue)
		} else {
			v.ErrorText = fmt.Sprintf("no significant change (p = %.2g)", e.PValue)
		}
	} else {
		v.ErrorAfter = c.After.ErrorRate
	}
	if mw := c.MannWhitney; mw != nil {
		v.RankTest = true
		v.MannWhitneyP, v.ProbAfterSlower = mw.PValue, mw.ProbBGreater
	}
	for i, side := range []analysis.CompareSide{c.Before, c.After} {
		label := []string{before, after}[i]
		sv := components.CompareSideView{
			Label: label, From: side.From, To: side.To, Count: side.Count, Errors: side.Errors,
			ErrorRate: side.ErrorRate, RatePerS: side.RatePerS,
			P50Ms: side.Percentiles.P50Ms, P95Ms: side.Percentiles.P95Ms, P99Ms: side.Percentiles.P99Ms,
		}
		if side.Count > 0 && side.DataFrom.After(side.From) {
			sv.DataNote = "data from " + side.DataFrom.UTC().Format("15:04:05") + ", when the endpoint's requests began"
		}
		v.Sides = append(v.Sides, sv)
	}
	for _, p := range c.Percentiles {
		row := components.PercentileRow{
			Name: "p" + strconv.FormatFloat(p.Percentile, 'f', -1, 64), BeforeMs: p.BeforeMs, AfterMs: p.AfterMs,
			DeltaMs: p.DeltaMs, DeltaPct: p.DeltaPct, Tested: p.Tested, Significant: p.Significant, Slower: p.DeltaMs > 0, CI: "–",
		}
		if p.Tested {
			row.CI = fmt.Sprintf("%s … %s (%s … %s)", units.SignedMs(p.CILowMs), units.SignedMs(p.CIHighMs), units.SignedPercent(p.CILowPct), units.SignedPercent(p.CIHighPct))
		}
		v.Percentiles = append(v.Percentiles, row)
	}
	largest := 0.0
	for _, d := range c.Dependencies {
		largest = math.Max(largest, math.Abs(d.TailDeltaMs))
	}
	for i, d := range c.Dependencies {
		if i == maxCompareDeps {
			break
		}
		row := components.DependencyRow{
			Label: d.Label, BeforeMs: d.BeforeMs, AfterMs: d.AfterMs, DeltaMs: d.DeltaMs,
			BeforeTailMs: d.BeforeTailMs, AfterTailMs: d.AfterTailMs, TailDeltaMs: d.TailDeltaMs,
		}
		if largest > 0 {
			row.TailShare = math.Abs(d.TailDeltaMs) / largest
		}
		v.Dependencies = append(v.Dependencies, row)
	}
	v.CDF = chart.BuildCDF(chart.CDFInput{Series: overlayCDF(c, before, after), Width: 640, Height: 260})
	return v
}

// overlayCDF turns the comparison's shared-bucket overlay into two CDF
// lines: each side's share of requests at or below each bucket's upper
// bound, starting from zero at the first bucket's lower bound.
func overlayCDF(c analysis.Comparison, before, after string) []chart.CDFSeries {
	var out []chart.CDFSeries
	for _, side := range []struct {
		name, class string
		count       int
		frac        func(analysis.OverlayBucket) float64
	}{
		{before, "s-a", c.Before.Count, func(b analysis.OverlayBucket) float64 { return b.BeforeCDF }},
		{after, "s-b", c.After.Count, func(b analysis.OverlayBucket) float64 { return b.AfterCDF }},
	} {
		if side.count == 0 || len(c.Overlay) == 0 {
			continue
		}
		s := chart.CDFSeries{Name: side.name, Class: side.class, Ms: []float64{c.Overlay[0].LowerMs}, Frac: []float64{0}}
		for _, b := range c.Overlay {
			s.Ms = append(s.Ms, b.UpperMs)
			s.Frac = append(s.Frac, side.frac(b))
		}
		out = append(out, s)
	}
	return out
}

func verdictClass(v string) string {
	switch v {
	case analysis.VerdictRegressed:
		return "regressed"
	case analysis.VerdictImproved:
		return "improved"
	case analysis.VerdictNew:
		return "new"
	default:
		return "nochange"
	}
}
