// Package report builds the postmortem report of an incident: the domain
// model (Report, the body of report.json), its assembly from the analyses
// (Build), and its Markdown rendering (Markdown, one function per section).
// It depends on the small Analyses interface, which web implements with the
// same cached computations its pages and API use, so a report's numbers are
// the pages' numbers; report.html is the incident page's own markup (web).
package report

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/internal/wire"
	"github.com/tailscope/tailscope/store"
)

// Report is the postmortem report of one incident. It is the body
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
type Report struct {
	// ReportVersion changes when a field is renamed or removed.
	ReportVersion int       `json:"report_version"`
	GeneratedAt   time.Time `json:"generated_at"`
	// Revision is the snapshot this report was rendered from (1, 2, …)
	// and FinalizedAt when it was stored; 0 and null for a report
	// computed at GeneratedAt from the spans stored then.
	Revision    int        `json:"revision"`
	FinalizedAt *time.Time `json:"finalized_at"`
	// TracesKept says the exemplar traces were kept with the incident
	// when this revision was finalized, so their links open after
	// retention removes the spans.
	TracesKept bool `json:"traces_kept"`
	// TailscopeVersion computed the numbers, with Parameters.
	TailscopeVersion string     `json:"tailscope_version"`
	Parameters       Parameters `json:"parameters"`
	Incident         Incident   `json:"incident"`
	Links            Links      `json:"links"`
	// Summary is the report's opening paragraph in plain words.
	Summary string `json:"summary"`
	// Endpoints are the endpoints examined: each listed service's
	// busiest endpoint, or the system's busiest entry point.
	Endpoints []Endpoint `json:"endpoints"`
	// Timeline is the incident's events in time order.
	Timeline []Event `json:"timeline"`
	// Deploys are markers of the incident's services from two hours
	// before the range to its end, with their before/after comparison.
	Deploys []Deploy `json:"deploys"`
	// Budgets are the latency budgets of the incident's services.
	Budgets []Budget `json:"budgets"`
	// Exemplars are the pinned traces, then the worst of each outlier
	// group.
	Exemplars []Exemplar `json:"exemplars"`
	// Warnings say what could not be analysed and why.
	Warnings []string `json:"warnings"`
}

// Parameters are the analysis settings a report was computed with, kept
// in a snapshot so a reader can tell why a later revision differs.
type Parameters struct {
	MaxEndpoints      int    `json:"max_endpoints"`
	MaxDeploys        int    `json:"max_deploys"`
	MaxBudgets        int    `json:"max_budgets"`
	MaxGroupExemplars int    `json:"max_group_exemplars"`
	DeployLookback    string `json:"deploy_lookback"`
	DeployWindow      string `json:"deploy_window"`
	TimelineBefore    string `json:"timeline_before"`
	MaxRange          string `json:"max_range"`
}

// Version is Report.ReportVersion.
const Version = 1

// Incident is the incident as the reviewer recorded it.
type Incident struct {
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

// Links point at the incident page and its exports.
type Links struct {
	Incident       string `json:"incident"`
	ReportMarkdown string `json:"report_md"`
	ReportHTML     string `json:"report_html"`
	ReportJSON     string `json:"report_json"`
	API            string `json:"api"`
}

// Endpoint is one examined endpoint.
type Endpoint struct {
	Service  string         `json:"service"`
	Endpoint string         `json:"endpoint"`
	Links    EndpointLinks  `json:"links"`
	During   WindowStats    `json:"during"`
	Timeline EndpointSeries `json:"timeline"`
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

// EndpointLinks lead to the pages behind an endpoint's numbers.
type EndpointLinks struct {
	Latency    string `json:"latency"`
	Outliers   string `json:"outliers"`
	SlowTraces string `json:"slow_traces"`
	Impact     string `json:"impact_api"`
}

// WindowStats are an endpoint's numbers over the incident's range.
type WindowStats struct {
	From        time.Time            `json:"from"`
	To          time.Time            `json:"to"`
	Requests    int                  `json:"requests"`
	Errors      int                  `json:"errors"`
	ErrorRate   float64              `json:"error_rate"`
	RatePerS    float64              `json:"rate_per_s"`
	Method      string               `json:"method"`
	Percentiles analysis.Percentiles `json:"percentiles"`
}

// EndpointSeries is an endpoint's latency, traffic and errors over
// the time before the incident and the incident itself, as the timeline
// charts draw it.
type EndpointSeries struct {
	From        time.Time              `json:"from"`
	To          time.Time              `json:"to"`
	StepSeconds float64                `json:"step_s"`
	Points      []analysis.SeriesPoint `json:"points"`
}

// Event is one event of the incident timeline. Kind is one of
// incident_start, incident_end, deploy, first_seen, p99_peak, error_peak.
type Event struct {
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

// Deploy is a deploy marker with its before/after comparison.
type Deploy struct {
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
	// Before and After are the compared ranges: After runs from the
	// marker to an hour later or the analysis end (AnalyzedTo), whichever
	// is first; Before is as long, ending at the marker.
	Before Range `json:"before"`
	After  Range `json:"after"`
	// Comparison compares the service's busiest endpoint over Before and
	// After (the body of ComparisonLink); null with Unavailable saying why
	// when there is none.
	Comparison     *analysis.Comparison `json:"comparison"`
	ComparisonLink string               `json:"comparison_api"`
	Unavailable    string               `json:"unavailable"`
}

// Range is a half-open time range [From, To).
type Range struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Budget is a budget's burn during the incident.
type Budget struct {
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

// Exemplar is a compact summary of one exemplar trace.
type Exemplar struct {
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
	maxEndpoints      = 4
	maxDeploys        = 5
	maxBudgets        = 10
	maxGroupExemplars = 10
	exemplarHops      = 5
	// deployLookback is how long before the range a deploy is still a
	// suspect.
	deployLookback = 2 * time.Hour
	// deployWindow is the longest side of a deploy's comparison.
	deployWindow = time.Hour
)

// timelinePad is how much time the timeline charts show before
// the incident: half its length, at least 15 minutes, at most 6 hours.
func timelinePad(d time.Duration) time.Duration {
	return min(max(d/2, 15*time.Minute), 6*time.Hour)
}

// Analyses are the computations a report is made of. web implements them
// with its cached computations, so the report shows the pages' numbers.
// A computation with no answer for its input (too little data, no traffic,
// a window too long) returns an *Unavailable error, or store.ErrInvalid or
// store.ErrNotFound, which the report states instead of failing.
type Analyses interface {
	// Endpoints lists the endpoints with requests in [from, to).
	Endpoints(ctx context.Context, from, to time.Time) ([]store.Endpoint, error)
	Latency(ctx context.Context, q analysis.LatencyQuery) (analysis.LatencyReport, error)
	Outliers(ctx context.Context, q analysis.OutlierQuery) (analysis.OutlierReport, error)
	// Compare answers as GET /api/v1/compare does for the same query
	// parameters, so a report's comparison matches its API link.
	Compare(ctx context.Context, q url.Values) (analysis.Comparison, error)
	// Compliance is b's compliance over [from, to) with burn rates at now.
	Compliance(ctx context.Context, b store.Budget, from, to, now time.Time) (wire.Compliance, error)
	// DeployKinds classifies deploy markers (analysis.KindDeploy or
	// analysis.KindFirstSeen) by id.
	DeployKinds(ctx context.Context, ds []store.Deploy) (map[int64]string, error)
}

// Records are the stored records a report reads; the store implements them.
type Records interface {
	Deploys(ctx context.Context, q store.DeployQuery) ([]store.Deploy, error)
	Budgets(ctx context.Context) ([]store.Budget, error)
	Traces(ctx context.Context, ids []store.TraceID) (map[store.TraceID][]store.Span, error)
}

// Unavailable is an analysis's "no answer for this input", with the reason
// a reader is shown.
type Unavailable struct{ Reason string }

func (u *Unavailable) Error() string { return u.Reason }

// UnavailableReason reports whether err means "no answer for this input" (too
// little data, no traffic), which a report states instead of failing.
func UnavailableReason(err error) (string, bool) {
	var (
		u   *Unavailable
		inv *store.InvalidError
		nf  *store.NotFoundError
	)
	switch {
	case errors.As(err, &u):
		return u.Reason, true
	case errors.As(err, &inv):
		return inv.Msg, true // the store's words, without the backend's wrapping
	case errors.As(err, &nf):
		return nf.Error(), true
	case errors.Is(err, store.ErrInvalid), errors.Is(err, store.ErrNotFound):
		return strings.TrimPrefix(err.Error(), "analysis: "), true
	}
	return "", false
}

// answer stores an analysis's result in *dst, or, when the analysis had no
// answer for its input, the reason in *note; any other error is returned.
func answer[T any](v T, err error, dst **T, note *string) error {
	if msg, ok := UnavailableReason(err); ok {
		*note = msg
		return nil
	}
	if err != nil {
		return err
	}
	*dst = &v
	return nil
}
