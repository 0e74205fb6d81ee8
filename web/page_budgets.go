package web

import (
	"context"
	"fmt"
	"math"
	"net/http"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/components/chart"
	"github.com/tailscope/tailscope/internal/duration"
	"github.com/tailscope/tailscope/internal/href"
	"github.com/tailscope/tailscope/internal/units"
	"github.com/tailscope/tailscope/internal/wire"
	"github.com/tailscope/tailscope/report"
	"github.com/tailscope/tailscope/store"
)

func (s *Server) handleBudgetsPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	bs, err := s.store.Budgets(ctx)
	if err != nil {
		s.pageError(w, r, fmt.Errorf("list budgets: %w", err))
		return
	}
	now := s.analysisNow()
	v := components.BudgetsView{}
	for _, b := range bs {
		// The budget's own period ending now: what its page and the API
		// show first, from the same computation (Server.compliance).
		rep, err := s.compliance(ctx, b, budgetPeriodRange(b, now), now)
		if err != nil {
			s.pageError(w, r, fmt.Errorf("budget %d compliance: %w", b.ID, err))
			return
		}
		v.Rows = append(v.Rows, budgetRow(b, rep))
	}
	v.Form, err = s.newBudgetForm(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, s.page(r, "Budgets", "budgets", nil), components.BudgetsPage(v))
}

func budgetRow(b store.Budget, rep wire.Compliance) components.BudgetRow {
	row := components.BudgetRow{
		ID: b.ID, Name: report.BudgetName(b), Service: b.Service, Endpoint: b.Endpoint, Objective: objectiveText(b),
		Href: fmt.Sprintf("/budgets/%d", b.ID), EditHref: fmt.Sprintf("/budgets/%d/edit", b.ID), DeleteHref: fmt.Sprintf("/budgets/%d/delete", b.ID),
		Status: budgetStatusClass(rep.Status), StatusText: rep.StatusText, Attainment: "–", BudgetLeft: "–",
		WorstHop: rep.WorstHop, WorstHopText: report.WorstHopText(rep.ComplianceReport),
	}
	if rep.Total > 0 {
		row.Attainment = units.SLOPercent(rep.Attainment)
		row.BudgetLeft = chart.FormatPercent(rep.ErrorBudgetRemaining)
		row.BudgetLeftBad = rep.ErrorBudgetRemaining < 0
	}
	return row
}

// budgetStatusClass is a status's status-dot class; its words are the
// report's StatusText (analysis.BudgetStatus.Text), the same everywhere.
func budgetStatusClass(status analysis.BudgetStatus) string {
	switch status {
	case analysis.BudgetOK:
		return "ok"
	case analysis.BudgetBurning:
		return "warn"
	case analysis.BudgetExhausted:
		return "bad"
	default:
		return "none"
	}
}

// objectiveText writes "99% under 500 ms over 30d".
func objectiveText(b store.Budget) string {
	return fmt.Sprintf("%s under %s over %s", units.SLOPercent(b.Target), units.Duration(b.Threshold), duration.Format(b.Period))
}

// budgetParam loads the budget named by the {id} URL parameter.
func (s *Server) budgetParam(r *http.Request) (store.Budget, error) {
	id, err := parseIDParam(r, "budget")
	if err != nil {
		return store.Budget{}, err
	}
	b, err := s.store.BudgetByID(r.Context(), id)
	if err != nil {
		return b, fmt.Errorf("budget %d: %w", id, err)
	}
	return b, nil
}

func (s *Server) handleBudgetDeletePage(w http.ResponseWriter, r *http.Request) {
	b, err := s.budgetParam(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	v := components.ConfirmDeleteView{
		Heading:    "Delete budget " + report.BudgetName(b) + "?",
		Message:    fmt.Sprintf("The objective (%s for %s %s) and its hop table are removed. No spans are deleted.", objectiveText(b), b.Service, b.Endpoint),
		Action:     fmt.Sprintf("/budgets/%d/delete", b.ID),
		Button:     "Delete budget",
		CancelHref: fmt.Sprintf("/budgets/%d", b.ID),
	}
	s.render(w, r, http.StatusOK, s.page(r, "Delete "+report.BudgetName(b), "budgets", nil), components.ConfirmDeletePage(v))
}

// deleteForm handles the POST of a confirmed deletion: delete the record
// of kind named by {id}, then go back to the list.
func (s *Server) deleteForm(kind string, del func(ctx context.Context, id int64) error, list string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := parseIDParam(r, kind)
		if err != nil {
			s.pageError(w, r, err)
			return
		}
		if err := del(r.Context(), id); err != nil {
			s.pageError(w, r, fmt.Errorf("%s %d: %w", kind, id, err))
			return
		}
		seeOther(w, r, list)
	}
}

func (s *Server) handleBudgetPage(w http.ResponseWriter, r *http.Request) {
	b, err := s.budgetParam(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	tr, err := s.budgetRange(r, b)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	ctx := r.Context()
	rep, err := s.compliance(ctx, b, tr, s.analysisNow())
	if err != nil {
		s.pageError(w, r, fmt.Errorf("budget %d compliance: %w", b.ID, err))
		return
	}
	deploys, err := s.store.Deploys(ctx, store.DeployQuery{Service: b.Service, From: tr.From, To: tr.To, Limit: 50})
	if err != nil {
		s.pageError(w, r, fmt.Errorf("deploys: %w", err))
		return
	}
	v := budgetView(b, rep.ComplianceReport, tr, deploys, r.URL.Query().Get("from") != "" || r.URL.Query().Get("to") != "")
	firings, err := s.budgetFirings(ctx, b)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	v.Alerts, v.AlertRules = alertRows(b, firings), ruleTexts(s.rules())
	v.AlertsAPIHref = fmt.Sprintf("/api/v1/budgets/%d/alerts", b.ID)
	s.render(w, r, http.StatusOK, s.page(r, report.BudgetName(b)+" budget", "budgets", &tr), components.BudgetPage(v))
}

func burnRows(brs []analysis.BurnRate) []components.BurnRow {
	out := make([]components.BurnRow, 0, len(brs))
	for _, br := range brs {
		out = append(out, components.BurnRow{Window: br.Window, Kind: br.Kind, Total: br.Total, Bad: br.Bad,
			Text: br.Text, State: string(br.State), StateText: br.StateText, Alerting: br.Alerting})
	}
	return out
}

// budgetBurnNote explains the burn-rate table.
const budgetBurnNote = "The share of requests over the threshold divided by the share the target allows: 1× spends the error budget exactly over the period; above 1× (over pace) it runs out before the period ends. " +
	"Measured over each rule's long window and its short one, ending now, whatever the window shown. A rule alerts when both burn at or above its factor (the multiwindow policy of the SRE workbook): " +
	"by default 14.4× over an hour and 5 minutes or 6× over 6 hours and 30 minutes pages (fast burn), 3× over a day and 2 hours opens a ticket (slow burn)."

func budgetView(b store.Budget, rep analysis.ComplianceReport, tr TimeRange, deploys []store.Deploy, explicitRange bool) components.BudgetView {
	win := []string{"service", b.Service, "endpoint", b.Endpoint, "from", tr.FromText, "to", tr.ToText}
	thr := formNumber(float64(b.Threshold) / 1e6)
	outFrom, outTo := tr.FromText, tr.ToText
	if tr.To.Sub(tr.From) > maxAnalysisRange {
		// Outlier analysis reads whole windows and stops at a week.
		outFrom, outTo = href.Time(tr.To.Add(-maxAnalysisRange)), href.Time(tr.To)
	}
	v := components.BudgetView{
		ID: b.ID, Name: report.BudgetName(b), Service: b.Service, Endpoint: b.Endpoint, Objective: objectiveText(b),
		Window: windowText(tr), Status: budgetStatusClass(rep.Status), StatusText: rep.StatusText, StatusExplain: rep.Status.Explain(),
		EditHref: fmt.Sprintf("/budgets/%d/edit", b.ID), DeleteHref: fmt.Sprintf("/budgets/%d/delete", b.ID),
		APIHref:        fmt.Sprintf("/api/v1/budgets/%d/compliance", b.ID),
		LatencyHref:    href.With("/latency", win...),
		OutliersHref:   href.With("/outliers", "service", b.Service, "endpoint", b.Endpoint, "from", outFrom, "to", outTo, "threshold_ms", thr),
		SlowTracesHref: href.With("/search", append(win, "min_ms", thr, "sort", "slowest")...),
		IncidentHref:   IncidentFromWindowLink(tr.FromText, tr.ToText, b.Service),
		BurnRates:      burnRows(rep.BurnRates),
		BurnNote:       budgetBurnNote,
		HopMeasureText: hopMeasureText(rep.HopMeasure),
		WorstHop:       rep.WorstHop,
	}
	if explicitRange {
		v.APIHref = href.With(v.APIHref, "from", tr.FromText, "to", tr.ToText)
	}
	if rep.Total == 0 {
		v.Note = "No requests to this endpoint in the window: attainment and burn need traffic. Widen the time range."
	}
	v.Facts = []components.Fact{
		{Label: "attainment", Value: units.SLOPercent(rep.Attainment), Bad: rep.Total > 0 && !rep.Met},
		{Label: "requests", Value: chart.FormatCount(float64(rep.Total))},
		{Label: "over " + units.Duration(b.Threshold), Value: badText(rep.Bad, rep.BadUncertain)},
		{Label: "error budget", Value: chart.FormatCount(rep.ErrorBudget) + " slow requests"},
		{Label: "budget left", Value: chart.FormatPercent(rep.ErrorBudgetRemaining), Bad: rep.ErrorBudgetRemaining < 0},
	}
	v.SourceText = budgetSourceText(rep)
	var left []chart.Point
	for _, p := range rep.Series {
		left = append(left, chart.Point{T: p.Time, V: math.Max(p.BudgetRemaining, 0)})
	}
	v.Chart = chart.BuildTimeChart(chart.TimeChartInput{
		From: tr.From, To: tr.To, Markers: deployMarkers(deploys), YLabel: "budget left", YFormat: chart.FormatPercent,
		Series: []chart.Series{{Name: "error budget left", Class: "s-budget", Points: left}},
		Width:  640, Height: 240,
	})
	v.SampledRequests = rep.SampledRequests
	if len(rep.Hops) > 0 {
		v.SampleText = hopSampleText(rep)
	}
	// rep.Hops is ranked already: the page shows the API's order.
	for _, h := range rep.Hops {
		v.Hops = append(v.Hops, hopRowView(h, rep))
	}
	v.Unbudgeted = hopRowView(rep.Unbudgeted, rep)
	return v
}

// badText is the count over the threshold, with the requests the rollups
// could not place: "252 ±100".
func badText(bad, uncertain int) string {
	if uncertain == 0 {
		return chart.FormatCount(float64(bad))
	}
	return chart.FormatCount(float64(bad)) + " ±" + chart.FormatCount(float64(uncertain))
}

// budgetSourceText says where a report's counts came from.
func budgetSourceText(rep analysis.ComplianceReport) string {
	if rep.Source != analysis.ComplianceRollups {
		return "Counted from every request's span."
	}
	s := "Counted from the per-minute and per-hour rollups written at ingest; partial minutes at the window's ends and the burn windows' ends from the spans."
	if rep.BadUncertain > 0 {
		s += fmt.Sprintf(" %d requests lasted within %s of the threshold, too near to place from the rollups: they are split by where the threshold lies among them, so the count over it is ±%d.",
			rep.BadUncertain, chart.FormatPercent(2*store.RollupRelativeAccuracy), rep.BadUncertain)
	}
	return s
}

// hopMeasureText says what the table's call hops measure.
func hopMeasureText(m store.HopMeasure) string {
	if m == store.HopOwnTime {
		return "Each request's critical path is split over the hops; a call hop counts only the client span's own time (network and queueing around the call, not the server's work)."
	}
	return "Each request's critical path is split over the hops; a call hop counts the whole call as the caller waits for it (the server's work included, less any budgeted hop inside it)."
}

// hopSampleText says what the hop table was measured on.
func hopSampleText(rep analysis.ComplianceReport) string {
	if rep.Total == 0 {
		return "No requests to measure."
	}
	// Exact counts: a sample's size is a number to quote, not to round.
	var s string
	if rep.SampleComplete {
		s = fmt.Sprintf("Overrun rates are over all %d requests of the window (exact).", rep.Total)
	} else {
		how := "sampled at random across it (a busy hour weighs as much as its traffic)"
		if rep.Source == analysis.ComplianceRollups {
			how = "sampled across it in proportion to its traffic (short runs of requests at random instants, the busiest stretches sampled most)"
		}
		s = fmt.Sprintf("Overrun rates are over %d of the window's %d requests, %s, with %s Wilson intervals.",
			rep.SampledRequests, rep.Total, how, chart.FormatPercent(rep.ConfidenceLevel))
	}
	if rep.Bad == 0 {
		return s + " No request was over the threshold, so no hop cost the budget anything."
	}
	return s + fmt.Sprintf(" Hops rank by their share of the time that %d of the %d requests over the threshold spent over it.",
		rep.SampledSlowRequests, rep.Bad)
}

func hopRowView(h analysis.HopCompliance, rep analysis.ComplianceReport) components.BudgetHopRow {
	row := components.BudgetHopRow{
		Label: h.Label, AllocationMs: h.AllocationMs, Contribution: h.Contribution, ContributionMs: h.ContributionMs,
		Requests: h.Requests, Overruns: h.Overruns, OverrunRate: h.OverrunRate, RateLow: h.OverrunRateLow, RateHigh: h.OverrunRateHigh,
		Exact: rep.SampleComplete, MeanOverrunMs: h.MeanOverrunMs, MaxOverrunMs: h.MaxOverrunMs, P50Ms: h.P50Ms, P95Ms: h.P95Ms,
		Worst: rep.WorstHop != "" && h.Label == rep.WorstHop,
	}
	for _, id := range h.ExampleTraceIDs {
		s := id.String()
		row.Examples = append(row.Examples, components.SpanLink{Label: s[:12], Href: "/traces/" + s})
	}
	return row
}
