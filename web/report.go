package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/tailscope/tailscope/internal/href"
	"github.com/tailscope/tailscope/internal/units"
	"github.com/tailscope/tailscope/internal/wire"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/components/chart"
	"github.com/tailscope/tailscope/store"
)

// IncidentReport is the postmortem report of one incident. It is the body
// of GET /incidents/{id}/report.json, and what the incident page,
// report.md and report.html render, so every export shows the numbers the
// page shows. docs/REPORTS.md documents the shape field by field.
//
// Times are RFC 3339 in UTC; durations in milliseconds are *_ms floats.
// Links are absolute in the exports and relative on the page. Nested
// analysis results keep the JSON API's shapes: Impact and deploy
// comparisons are GET /api/v1/compare bodies, Outliers a GET
// /api/v1/outliers body, budget compliance a GET
// /api/v1/budgets/{id}/compliance body.
type IncidentReport struct {
	// ReportVersion changes when a field is renamed or removed.
	ReportVersion int            `json:"report_version"`
	GeneratedAt   time.Time      `json:"generated_at"`
	Incident      ReportIncident `json:"incident"`
	Links         ReportLinks    `json:"links"`
	// Summary is the report's opening paragraph in plain words.
	Summary string `json:"summary"`
	// Endpoints are the endpoints examined: each listed service's
	// busiest endpoint, or the system's busiest entry point.
	Endpoints []ReportEndpoint `json:"endpoints"`
	// Timeline is the incident's events in time order.
	Timeline []TimelineEvent `json:"timeline"`
	// Deploys are markers of the incident's services from two hours
	// before the range to its end, with their before/after comparison.
	Deploys []ReportDeploy `json:"deploys"`
	// Budgets are the latency budgets of the incident's services.
	Budgets []ReportBudget `json:"budgets"`
	// Exemplars are the pinned traces, then the worst of each outlier
	// group.
	Exemplars []ReportExemplar `json:"exemplars"`
	// Warnings say what could not be analysed and why.
	Warnings []string `json:"warnings"`
}

// reportVersion is IncidentReport.ReportVersion.
const reportVersion = 1

// ReportIncident is the incident as the reviewer recorded it.
type ReportIncident struct {
	ID        int64     `json:"id"`
	Title     string    `json:"title"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	DurationS float64   `json:"duration_s"`
	// AnalyzedTo is where the analysis stops: To, or the report time for
	// an incident whose range reaches into the future.
	AnalyzedTo     time.Time `json:"analyzed_to"`
	Services       []string  `json:"services"`
	Notes          string    `json:"notes"`
	PinnedTraceIDs []string  `json:"pinned_trace_ids"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// ReportLinks point at the incident page and its exports.
type ReportLinks struct {
	Incident       string `json:"incident"`
	ReportMarkdown string `json:"report_md"`
	ReportHTML     string `json:"report_html"`
	ReportJSON     string `json:"report_json"`
	API            string `json:"api"`
}

// ReportEndpoint is one examined endpoint.
type ReportEndpoint struct {
	Service  string               `json:"service"`
	Endpoint string               `json:"endpoint"`
	Links    ReportEndpointLinks  `json:"links"`
	During   ReportWindowStats    `json:"during"`
	Timeline ReportEndpointSeries `json:"timeline"`
	// Impact compares the incident with the window of the same length
	// just before it (before = that window, after = the incident); null
	// when it could not be computed, with ImpactUnavailable saying why.
	Impact            *analysis.Comparison `json:"impact"`
	ImpactUnavailable string               `json:"impact_unavailable"`
	// Outliers is the outlier analysis of the incident's range (requests
	// at or above its p99); null with OutliersUnavailable when it could
	// not be computed.
	Outliers            *analysis.OutlierReport `json:"outliers"`
	OutliersUnavailable string                  `json:"outliers_unavailable"`
}

// ReportEndpointLinks lead to the pages behind an endpoint's numbers.
type ReportEndpointLinks struct {
	Latency    string `json:"latency"`
	Outliers   string `json:"outliers"`
	SlowTraces string `json:"slow_traces"`
	Impact     string `json:"impact_api"`
}

// ReportWindowStats are an endpoint's numbers over the incident's range.
type ReportWindowStats struct {
	From        time.Time            `json:"from"`
	To          time.Time            `json:"to"`
	Requests    int                  `json:"requests"`
	Errors      int                  `json:"errors"`
	ErrorRate   float64              `json:"error_rate"`
	RatePerS    float64              `json:"rate_per_s"`
	Method      string               `json:"method"`
	Percentiles analysis.Percentiles `json:"percentiles"`
}

// ReportEndpointSeries is an endpoint's latency, traffic and errors over
// the incident with some time either side, as the timeline charts draw it.
type ReportEndpointSeries struct {
	From        time.Time              `json:"from"`
	To          time.Time              `json:"to"`
	StepSeconds float64                `json:"step_s"`
	Points      []analysis.SeriesPoint `json:"points"`
}

// TimelineEvent is one event of the incident timeline. Kind is one of
// incident_start, incident_end, deploy, first_seen, p99_peak, error_peak.
type TimelineEvent struct {
	Time time.Time `json:"time"`
	Kind string    `json:"kind"`
	Text string    `json:"text"`
	Link string    `json:"link"`
}

// Timeline event kinds.
const (
	eventStart     = "incident_start"
	eventEnd       = "incident_end"
	eventDeploy    = "deploy"
	eventFirstSeen = "first_seen"
	eventP99Peak   = "p99_peak"
	eventErrorPeak = "error_peak"
)

// ReportDeploy is a deploy marker with its before/after comparison.
type ReportDeploy struct {
	ID      int64     `json:"id"`
	Service string    `json:"service"`
	Version string    `json:"version"`
	At      time.Time `json:"at"`
	Source  string    `json:"source"`
	Note    string    `json:"note"`
	// Kind is "deploy", or "first_seen" for a service's first version
	// ever seen: not a deploy, and without a comparison.
	Kind string `json:"kind"`
	// InRange is false for a deploy in the two hours before the range.
	InRange bool   `json:"in_range"`
	Link    string `json:"link"`
	// Comparison is the deploy page's default comparison (one hour each
	// side of the marker, the service's busiest endpoint); null with
	// Unavailable saying why when there is none.
	Comparison  *analysis.Comparison `json:"comparison"`
	Unavailable string               `json:"unavailable"`
}

// ReportBudget is a budget's burn during the incident.
type ReportBudget struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Link string `json:"link"`
	// During is the budget's compliance over the incident's range; its
	// burn rates are over the windows ending when the incident ended.
	During wire.Compliance `json:"during"`
	// BurnRateDuring is the incident's share of slow requests over the
	// share the target allows (1 spends the budget exactly on time).
	BurnRateDuring float64 `json:"burn_rate_during"`
	// PeriodErrorBudget is how many slow requests the target allows over
	// the budget's period ending when the incident ended, and
	// PeriodBudgetSpent the share of it the incident's slow requests used.
	PeriodErrorBudget float64 `json:"period_error_budget"`
	PeriodBudgetSpent float64 `json:"period_budget_spent"`
}

// ReportExemplar is a compact summary of one exemplar trace.
type ReportExemplar struct {
	TraceID string `json:"trace_id"`
	Link    string `json:"link"`
	// Reason is "pinned by the reviewer" or which outlier group it is
	// the worst request of.
	Reason string `json:"reason"`
	Pinned bool   `json:"pinned"`
	// Stored is false when the trace is gone (retention) or never came;
	// the fields below are then empty.
	Stored      bool       `json:"stored"`
	RootService string     `json:"root_service"`
	RootName    string     `json:"root_name"`
	Start       *time.Time `json:"start"`
	DurationMs  float64    `json:"duration_ms"`
	SpanCount   int        `json:"span_count"`
	ErrorCount  int        `json:"error_count"`
	// CriticalPath is critical-path time per hop, largest first (at most
	// five hops).
	CriticalPath []analysis.HopTime `json:"critical_path"`
	Findings     []analysis.Finding `json:"findings"`
}

// Bounds on what one review examines, so a report stays a few seconds of
// analysis whatever the incident.
const (
	maxReviewEndpoints = 4
	maxReviewDeploys   = 5
	maxReviewBudgets   = 10
	maxGroupExemplars  = 10
	exemplarHops       = 5
	// deployLookback is how long before the range a deploy is still a
	// suspect.
	deployLookback = 2 * time.Hour
)

// timelinePad is how much time the timeline charts show either side of
// the incident: half its length, at least 15 minutes, at most 6 hours.
func timelinePad(d time.Duration) time.Duration {
	return min(max(d/2, 15*time.Minute), 6*time.Hour)
}

// reportUnavailable reports whether err means "no answer for this input" (too
// little data, no traffic), which a report states instead of failing.
func reportUnavailable(err error) (string, bool) {
	var e *Error
	switch {
	case errors.As(err, &e) && e.Status < 500:
		return e.Message, true
	case errors.Is(err, store.ErrInvalid), errors.Is(err, store.ErrNotFound):
		_, msg := errorStatus(err)
		return msg, true
	}
	return "", false
}

// incidentReport gathers what the incident page and its exports show.
// base prefixes every link ("" on the page, the server's URL in exports).
func (s *Server) incidentReport(r *http.Request, in store.Incident, base string) (IncidentReport, error) {
	ctx := r.Context()
	now := s.analysisNow()
	to := minTime(in.To, now)
	rep := IncidentReport{
		ReportVersion: reportVersion,
		GeneratedAt:   s.now().UTC(),
		Incident: ReportIncident{
			ID: in.ID, Title: in.Title, From: in.From.UTC(), To: in.To.UTC(), AnalyzedTo: to.UTC(),
			DurationS: in.To.Sub(in.From).Seconds(), Services: nonNilStrings(in.Services), Notes: in.Notes,
			PinnedTraceIDs: []string{}, CreatedAt: in.CreatedAt.UTC(), UpdatedAt: in.UpdatedAt.UTC(),
		},
		Links: ReportLinks{
			Incident:       base + incidentPath(in.ID),
			ReportMarkdown: base + incidentPath(in.ID) + "/report.md",
			ReportHTML:     base + incidentPath(in.ID) + "/report.html",
			ReportJSON:     base + incidentPath(in.ID) + "/report.json",
			API:            base + fmt.Sprintf("/api/v1/incidents/%d", in.ID),
		},
		Endpoints: []ReportEndpoint{}, Timeline: []TimelineEvent{}, Deploys: []ReportDeploy{},
		Budgets: []ReportBudget{}, Exemplars: []ReportExemplar{}, Warnings: []string{},
	}
	for _, id := range in.PinnedTraces {
		rep.Incident.PinnedTraceIDs = append(rep.Incident.PinnedTraceIDs, id.String())
	}
	if !to.After(in.From) {
		rep.Incident.AnalyzedTo = in.From.UTC()
		rep.Warnings = append(rep.Warnings, "The incident starts after the report was generated: there is nothing to analyse yet.")
	} else {
		// The three sections read the store independently: run them side
		// by side, each into its own part, merged in a fixed order so the
		// report does not depend on which finished first.
		var parts [3]IncidentReport
		g, gctx := errgroup.WithContext(ctx)
		rg := r.WithContext(gctx)
		g.Go(func() error { return s.reportEndpoints(rg, in, to, base, &parts[0]) })
		g.Go(func() error { return s.reportDeploys(rg, in, to, base, &parts[1]) })
		g.Go(func() error { return s.reportBudgets(gctx, in, to, base, &parts[2]) })
		if err := g.Wait(); err != nil {
			return rep, err
		}
		rep.Endpoints = append(rep.Endpoints, parts[0].Endpoints...)
		rep.Deploys = append(rep.Deploys, parts[1].Deploys...)
		rep.Budgets = append(rep.Budgets, parts[2].Budgets...)
		for _, p := range parts {
			rep.Warnings = append(rep.Warnings, p.Warnings...)
		}
	}
	if err := s.reportExemplars(ctx, in, base, &rep); err != nil {
		return rep, err
	}
	rep.Timeline = reportTimeline(rep, in, to, base)
	rep.Summary = reportSummary(rep)
	return rep, nil
}

func incidentPath(id int64) string { return fmt.Sprintf("/incidents/%d", id) }

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// reviewEndpoints picks the endpoints a review examines: each listed
// service's busiest endpoint, or the system's busiest entry point.
func (s *Server) reviewEndpoints(ctx context.Context, in store.Incident, to time.Time) ([]store.Endpoint, []string, error) {
	eps, err := s.endpoints(ctx, TimeRange{From: in.From, To: to})
	if err != nil {
		return nil, nil, fmt.Errorf("endpoints: %w", err)
	}
	var out []store.Endpoint
	var warnings []string
	if len(in.Services) == 0 {
		var best store.Endpoint
		for _, e := range eps {
			if analysis.Busier(e, best) {
				best = e
			}
		}
		if best.Name == "" {
			return nil, []string{"No requests reached any service during the incident."}, nil
		}
		return []store.Endpoint{best}, nil, nil
	}
	for i, svc := range in.Services {
		if i == maxReviewEndpoints {
			warnings = append(warnings, fmt.Sprintf("Only the first %d services are examined; %d more are listed.", maxReviewEndpoints, len(in.Services)-maxReviewEndpoints))
			break
		}
		var best store.Endpoint
		for _, e := range eps {
			if e.Service == svc && analysis.Busier(e, best) {
				best = e
			}
		}
		if best.Name == "" {
			warnings = append(warnings, fmt.Sprintf("No requests to %s during the incident.", svc))
			continue
		}
		out = append(out, best)
	}
	return out, warnings, nil
}

// reportEndpoints fills each examined endpoint's numbers: the timeline
// series, the incident's own stats, the impact against the window before,
// and the outlier groups.
func (s *Server) reportEndpoints(r *http.Request, in store.Incident, to time.Time, base string, rep *IncidentReport) error {
	ctx := r.Context()
	eps, warnings, err := s.reviewEndpoints(ctx, in, to)
	if err != nil {
		return err
	}
	rep.Warnings = append(rep.Warnings, warnings...)
	d := to.Sub(in.From)
	pad := timelinePad(d)
	tlFrom, tlTo := in.From.Add(-pad), minTime(to.Add(pad), s.analysisNow())
	for _, ep := range eps {
		e := ReportEndpoint{Service: ep.Service, Endpoint: ep.Name}
		lat, err := s.latency(ctx, analysis.LatencyQuery{Service: ep.Service, Endpoint: ep.Name, From: tlFrom, To: tlTo})
		if err != nil {
			return fmt.Errorf("incident timeline %s %s: %w", ep.Service, ep.Name, err)
		}
		e.Timeline = ReportEndpointSeries{From: lat.From, To: lat.To, StepSeconds: lat.Series.StepSeconds, Points: lat.Series.Points}
		during, err := s.latency(ctx, analysis.LatencyQuery{Service: ep.Service, Endpoint: ep.Name, From: in.From, To: to})
		if err != nil {
			return fmt.Errorf("incident latency %s %s: %w", ep.Service, ep.Name, err)
		}
		e.During = ReportWindowStats{
			From: during.From, To: during.To, Requests: during.Count, Errors: during.ErrorCount,
			ErrorRate: during.ErrorRate, RatePerS: during.RatePerS, Method: during.Method, Percentiles: during.Percentiles,
		}
		inRange := []string{"service", ep.Service, "endpoint", ep.Name, "from", href.Time(in.From), "to", href.Time(to)}
		e.Links = ReportEndpointLinks{
			Latency:    base + href.With("/latency", "service", ep.Service, "endpoint", ep.Name, "from", href.Time(tlFrom), "to", href.Time(tlTo)),
			Outliers:   base + href.With("/outliers", inRange...),
			SlowTraces: base + href.With("/search", append(inRange, "sort", "slowest")...),
		}
		if d > maxAnalysisRange {
			msg := fmt.Sprintf("The incident is longer than %d days: the before/after comparison and the outlier analysis cover at most that. Narrow the range to the worst part.", int(maxAnalysisRange.Hours()/24))
			e.ImpactUnavailable, e.OutliersUnavailable = msg, msg
			rep.Endpoints = append(rep.Endpoints, e)
			continue
		}
		q := url.Values{}
		q.Set("service", ep.Service)
		q.Set("endpoint", ep.Name)
		q.Set("before_from", href.Time(in.From.Add(-d)))
		q.Set("before_to", href.Time(in.From))
		q.Set("after_from", href.Time(in.From))
		q.Set("after_to", href.Time(to))
		e.Links.Impact = base + "/api/v1/compare?" + q.Encode()
		_, c, err := s.compareWith(r, q)
		if msg, ok := reportUnavailable(err); ok {
			e.ImpactUnavailable = msg
		} else if err != nil {
			return fmt.Errorf("incident impact %s %s: %w", ep.Service, ep.Name, err)
		} else {
			e.Impact = &c
		}
		o, err := s.outliers(ctx, analysis.OutlierQuery{Service: ep.Service, Endpoint: ep.Name, From: in.From, To: to})
		if msg, ok := reportUnavailable(err); ok {
			e.OutliersUnavailable = msg
		} else if err != nil {
			return fmt.Errorf("incident outliers %s %s: %w", ep.Service, ep.Name, err)
		} else {
			e.Outliers = &o
		}
		rep.Endpoints = append(rep.Endpoints, e)
	}
	return nil
}

// compareWith runs a comparison for query parameters exactly as the
// compare API and the deploy page read them, so the numbers match theirs.
func (s *Server) compareWith(r *http.Request, q url.Values) (compareRequest, analysis.Comparison, error) {
	r2 := r.Clone(r.Context())
	r2.URL.RawQuery = q.Encode()
	cr, err := s.parseCompareQuery(r2)
	if err != nil {
		return cr, analysis.Comparison{}, err
	}
	c, err := s.compare(r.Context(), cr.Query)
	if err != nil {
		return cr, c, fmt.Errorf("compare: %w", err)
	}
	return cr, c, nil
}

// reportDeploys lists the deploys of the incident's services in or just
// before the range, nearest to its start first when there are too many.
func (s *Server) reportDeploys(r *http.Request, in store.Incident, to time.Time, base string, rep *IncidentReport) error {
	ds, err := s.store.Deploys(r.Context(), store.DeployQuery{From: in.From.Add(-deployLookback), To: to, Limit: 200})
	if err != nil {
		return fmt.Errorf("deploys: %w", err)
	}
	var picked []store.Deploy
	for _, d := range ds {
		if len(in.Services) == 0 || slices.Contains(in.Services, d.Service) {
			picked = append(picked, d)
		}
	}
	dist := func(d store.Deploy) time.Duration {
		if d.At.Before(in.From) {
			return in.From.Sub(d.At)
		}
		return 0
	}
	slices.SortStableFunc(picked, func(a, b store.Deploy) int {
		return cmp.Or(cmp.Compare(dist(a), dist(b)), a.At.Compare(b.At), cmp.Compare(a.ID, b.ID))
	})
	if len(picked) > maxReviewDeploys {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d deploys in or before the range; the %d nearest its start are compared.", len(picked), maxReviewDeploys))
		picked = picked[:maxReviewDeploys]
	}
	slices.SortFunc(picked, func(a, b store.Deploy) int { return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.ID, b.ID)) })
	kinds, err := s.deployKinds(r.Context(), picked)
	if err != nil {
		return err
	}
	for _, d := range picked {
		rd := ReportDeploy{
			ID: d.ID, Service: d.Service, Version: d.Version, At: d.At.UTC(), Source: d.Source, Note: d.Note, Kind: kinds[d.ID],
			InRange: !d.At.Before(in.From), Link: base + fmt.Sprintf("/deploys/%d", d.ID),
		}
		if rd.Kind == analysis.KindFirstSeen {
			rep.Deploys = append(rep.Deploys, rd)
			continue
		}
		_, c, err := s.compareWith(r, url.Values{"deploy": {fmt.Sprint(d.ID)}})
		if msg, ok := reportUnavailable(err); ok {
			rd.Unavailable = msg
		} else if err != nil {
			return fmt.Errorf("deploy %d comparison: %w", d.ID, err)
		} else {
			rd.Comparison = &c
		}
		rep.Deploys = append(rep.Deploys, rd)
	}
	return nil
}

// reportBudgets computes the burn of the incident's services' budgets.
func (s *Server) reportBudgets(ctx context.Context, in store.Incident, to time.Time, base string, rep *IncidentReport) error {
	bs, err := s.store.Budgets(ctx)
	if err != nil {
		return fmt.Errorf("budgets: %w", err)
	}
	n := 0
	for _, b := range bs {
		if len(in.Services) > 0 && !slices.Contains(in.Services, b.Service) {
			continue
		}
		if n == maxReviewBudgets {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("Only %d budgets are shown.", maxReviewBudgets))
			break
		}
		n++
		during, err := s.compliance(ctx, b, TimeRange{From: in.From, To: to}, to)
		if err != nil {
			return fmt.Errorf("budget %d during the incident: %w", b.ID, err)
		}
		// Only the period's error budget is used: without its hops the
		// computation reads no traces.
		counts := b
		counts.Hops = nil
		period, err := s.compliance(ctx, counts, TimeRange{From: to.Add(-b.Period), To: to}, to)
		if err != nil {
			return fmt.Errorf("budget %d over its period: %w", b.ID, err)
		}
		rb := ReportBudget{ID: b.ID, Name: budgetName(b), Link: base + fmt.Sprintf("/budgets/%d", b.ID), During: during,
			PeriodErrorBudget: period.ErrorBudget}
		if during.Total > 0 {
			rb.BurnRateDuring = units.Round(float64(during.Bad)/float64(during.Total)/(1-b.Target), 3)
		}
		if period.ErrorBudget > 0 {
			rb.PeriodBudgetSpent = units.Round(float64(during.Bad)/period.ErrorBudget, 4)
		}
		rep.Budgets = append(rep.Budgets, rb)
	}
	return nil
}

// reportExemplars loads the pinned traces and the worst trace of each
// outlier group and summarises their critical paths.
func (s *Server) reportExemplars(ctx context.Context, in store.Incident, base string, rep *IncidentReport) error {
	type pick struct {
		id     store.TraceID
		reason string
		pinned bool
	}
	var picks []pick
	seen := map[store.TraceID]bool{}
	for _, id := range in.PinnedTraces {
		if !seen[id] {
			seen[id] = true
			picks = append(picks, pick{id, "pinned by the reviewer", true})
		}
	}
	groups := 0
	for _, e := range rep.Endpoints {
		if e.Outliers == nil {
			continue
		}
		for i, g := range e.Outliers.Groups {
			if len(g.ExampleTraceIDs) == 0 || groups == maxGroupExemplars {
				continue
			}
			id := g.ExampleTraceIDs[0]
			if seen[id] {
				continue
			}
			seen[id] = true
			groups++
			reason := fmt.Sprintf("worst of group %d: %s", i+1, g.Label)
			if len(rep.Endpoints) > 1 {
				reason = fmt.Sprintf("worst of %s group %d: %s", e.Service, i+1, g.Label)
			}
			picks = append(picks, pick{id, reason, false})
		}
	}
	if len(picks) == 0 {
		return nil
	}
	ids := make([]store.TraceID, len(picks))
	for i, p := range picks {
		ids[i] = p.id
	}
	traces, err := s.store.Traces(ctx, ids)
	if err != nil {
		return fmt.Errorf("exemplar traces: %w", err)
	}
	for _, p := range picks {
		ex := ReportExemplar{
			TraceID: p.id.String(), Link: base + "/traces/" + p.id.String(), Reason: p.reason, Pinned: p.pinned,
			CriticalPath: []analysis.HopTime{}, Findings: []analysis.Finding{},
		}
		if spans, ok := traces[p.id]; ok && len(spans) > 0 {
			cp := analysis.CriticalPath(spans)
			ex.Stored = true
			ex.SpanCount = len(spans)
			for i := range spans {
				if spans[i].StatusCode == store.StatusError {
					ex.ErrorCount++
				}
				if spans[i].SpanID == cp.RootSpanID {
					ex.RootService, ex.RootName = spans[i].Service, spans[i].Name
				}
			}
			start := time.Unix(0, int64(cp.StartUnixNano)).UTC()
			ex.Start = &start
			ex.DurationMs = cp.DurationMs
			ex.CriticalPath = cp.Hops[:min(len(cp.Hops), exemplarHops)]
			if f := analysis.Findings(spans); f != nil {
				ex.Findings = f
			}
		}
		rep.Exemplars = append(rep.Exemplars, ex)
	}
	return nil
}

// reportTimeline orders the incident's events: its start and end, the
// deploys, and each endpoint's peak p99 and error rate inside the range.
func reportTimeline(rep IncidentReport, in store.Incident, to time.Time, base string) []TimelineEvent {
	ev := []TimelineEvent{
		{Time: in.From.UTC(), Kind: eventStart, Text: "Incident window starts", Link: rep.Links.Incident},
		{Time: in.To.UTC(), Kind: eventEnd, Text: "Incident window ends", Link: rep.Links.Incident},
	}
	for _, d := range rep.Deploys {
		text, kind := fmt.Sprintf("Deploy of %s %s (%s)", d.Service, d.Version, sourceWord(d.Source)), eventDeploy
		if d.Kind == analysis.KindFirstSeen {
			text, kind = fmt.Sprintf("%s first seen, version %s (%s)", d.Service, d.Version, sourceWord(d.Source)), eventFirstSeen
		}
		if d.Comparison != nil {
			text += ": " + d.Comparison.Summary
		}
		ev = append(ev, TimelineEvent{Time: d.At, Kind: kind, Text: text, Link: d.Link})
	}
	for _, e := range rep.Endpoints {
		step := time.Duration(e.Timeline.StepSeconds * float64(time.Second))
		var peak, errPeak *analysis.SeriesPoint
		for i := range e.Timeline.Points {
			p := &e.Timeline.Points[i]
			if p.Start.Before(in.From) || !p.Start.Before(to) {
				continue
			}
			if p.P99Ms != nil && (peak == nil || *p.P99Ms > *peak.P99Ms) {
				peak = p
			}
			if p.Errors > 0 && (errPeak == nil || errShare(p) > errShare(errPeak)) {
				errPeak = p
			}
		}
		window := func(p *analysis.SeriesPoint, extra ...string) string {
			kv := append([]string{"service", e.Service, "endpoint", e.Endpoint, "from", href.Time(p.Start), "to", href.Time(p.Start.Add(step))}, extra...)
			return base + href.With("/search", kv...)
		}
		if peak != nil {
			ev = append(ev, TimelineEvent{Time: peak.Start, Kind: eventP99Peak, Link: window(peak, "sort", "slowest"),
				Text: fmt.Sprintf("p99 of %s %s peaks at %s (%d requests in the %s from %s)", e.Service, e.Endpoint,
					units.Ms(*peak.P99Ms), peak.Count, units.Duration(step), peak.Start.UTC().Format("15:04:05"))})
		}
		if errPeak != nil {
			ev = append(ev, TimelineEvent{Time: errPeak.Start, Kind: eventErrorPeak, Link: window(errPeak, "status", "error"),
				Text: fmt.Sprintf("Error rate of %s %s peaks at %s (%d of %d requests in the %s from %s)", e.Service, e.Endpoint,
					chart.FormatPercent(errShare(errPeak)), errPeak.Errors, errPeak.Count, units.Duration(step), errPeak.Start.UTC().Format("15:04:05"))})
		}
	}
	order := map[string]int{eventStart: 1, eventDeploy: 0, eventFirstSeen: 0, eventP99Peak: 2, eventErrorPeak: 3, eventEnd: 4}
	slices.SortStableFunc(ev, func(a, b TimelineEvent) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(order[a.Kind], order[b.Kind]))
	})
	return ev
}

func errShare(p *analysis.SeriesPoint) float64 {
	if p.Count == 0 {
		return 0
	}
	return float64(p.Errors) / float64(p.Count)
}

// reportSummary writes the report's opening paragraph from its numbers.
func reportSummary(rep IncidentReport) string {
	var parts []string
	in := rep.Incident
	parts = append(parts, fmt.Sprintf("%s, %s (%s).", in.Title, humanRange(in.From, in.To), humanDuration(in.To.Sub(in.From))))
	for _, e := range rep.Endpoints {
		st := e.During
		s := fmt.Sprintf("%s %s served %s requests during the incident (%s errors); p99 %s, p50 %s.",
			e.Service, e.Endpoint, chart.FormatCount(float64(st.Requests)), chart.FormatPercent(st.ErrorRate),
			units.Ms(st.Percentiles.P99Ms), units.Ms(st.Percentiles.P50Ms))
		if e.Impact != nil && e.Impact.Before.Count > 0 {
			s += fmt.Sprintf(" Against the %s before: %s.", humanDuration(e.Impact.Before.To.Sub(e.Impact.Before.From)), e.Impact.Summary)
		}
		if e.Outliers != nil && len(e.Outliers.Groups) > 0 {
			g := e.Outliers.Groups[0]
			s += fmt.Sprintf(" The slowest requests were mostly %s (%s of the tail, %s excess each); fixing it would bring p99 from %s to %s.",
				g.Label, chart.FormatPercent(g.Share), units.Ms(g.ExcessMs), units.Ms(e.Outliers.P99Ms), units.Ms(g.CounterfactualP99Ms))
		}
		parts = append(parts, s)
	}
	for _, d := range rep.Deploys {
		if d.Comparison == nil || d.Comparison.Verdict == analysis.VerdictNoChange {
			continue
		}
		when := "during"
		if !d.InRange {
			when = humanDuration(in.From.Sub(d.At)) + " before"
		}
		parts = append(parts, fmt.Sprintf("Deploy %s %s at %s UTC, %s the incident: %s.", d.Service, d.Version,
			d.At.UTC().Format("15:04"), when, d.Comparison.Summary))
	}
	for _, b := range rep.Budgets {
		if b.During.Total == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("Budget %s: %s of requests under %s during the incident (target %s); the incident used %s of the %s error budget.",
			b.Name, units.SLOPercent(b.During.Attainment), units.Ms(b.During.Budget.ThresholdMs),
			units.SLOPercent(b.During.Budget.Target), chart.FormatPercent(b.PeriodBudgetSpent), b.During.Budget.Period))
	}
	return strings.Join(parts, " ")
}

func sourceWord(source string) string {
	if source == store.DeploySourceAuto {
		return "automatic marker"
	}
	return "posted marker"
}

// humanRange writes a range for people: "2026-11-23 14:10 – 14:40 UTC".
func humanRange(from, to time.Time) string {
	from, to = from.UTC(), to.UTC()
	layout := "2006-01-02 15:04"
	if from.Second() != 0 || to.Second() != 0 {
		layout = "2006-01-02 15:04:05"
	}
	end := to.Format(layout)
	if from.Format("2006-01-02") == to.Format("2006-01-02") {
		end = to.Format(strings.TrimPrefix(layout, "2006-01-02 "))
	}
	return from.Format(layout) + " – " + end + " UTC"
}

// humanDuration writes a duration for people: "30 min", "2 h 15 min", "3 days".
func humanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		h, m := int(d.Hours()), int(d.Minutes())%60
		if m == 0 {
			return fmt.Sprintf("%d h", h)
		}
		return fmt.Sprintf("%d h %d min", h, m)
	default:
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	}
}

func budgetName(b store.Budget) string {
	if strings.TrimSpace(b.Name) != "" {
		return b.Name
	}
	return b.Service + " " + b.Endpoint
}
