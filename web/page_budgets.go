package web

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/components/chart"
	"github.com/tailscope/tailscope/store"
)

// Budget form defaults: the objective most teams start from.
const (
	defaultBudgetThresholdMs = "500"
	defaultBudgetTargetPct   = "99"
	defaultBudgetPeriod      = "30d"
	// emptyHopRows are the blank rows offered for adding hops.
	emptyHopRows = 3
	// budgetExampleTraces is how many of the window's slowest requests
	// are examined for per-hop example traces, and budgetExamplesPerHop
	// how many examples each hop lists.
	budgetExampleTraces  = 50
	budgetExamplesPerHop = 3
)

// budgetFieldRules place analysis.ValidateBudget's messages on the form.
var budgetFieldRules = []fieldRule{
	{"hop", "hops"},
	{"service", "service"},
	{"endpoint", "endpoint"},
	{"name", "name"},
	{"threshold", "threshold_ms"},
	{"target", "target_pct"},
	{"period", "period"},
}

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
		// The budget's own period ending now: what its page shows first.
		rep, err := s.compliance(ctx, b, TimeRange{From: now.Add(-b.Period), To: now}, now)
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

func budgetRow(b store.Budget, rep analysis.ComplianceReport) components.BudgetRow {
	status, text := budgetStatus(rep.Status)
	row := components.BudgetRow{
		ID: b.ID, Name: budgetName(b), Service: b.Service, Endpoint: b.Endpoint, Objective: objectiveText(b),
		Href: fmt.Sprintf("/budgets/%d", b.ID), EditHref: fmt.Sprintf("/budgets/%d/edit", b.ID), DeleteHref: fmt.Sprintf("/budgets/%d/delete", b.ID),
		Status: status, StatusText: text, Attainment: "–", BudgetLeft: "–", WorstHop: rep.WorstHop,
	}
	if rep.Total > 0 {
		row.Attainment = sloPercent(rep.Attainment)
		row.BudgetLeft = chart.FormatPercent(rep.ErrorBudgetRemaining)
		row.BudgetLeftBad = rep.ErrorBudgetRemaining < 0
	}
	if row.WorstHop == "" {
		row.WorstHop = "–"
	}
	return row
}

// budgetStatus maps a compliance status to a status-dot class and words.
func budgetStatus(status string) (class, text string) {
	switch status {
	case analysis.BudgetOK:
		return "ok", "Within budget"
	case analysis.BudgetBurning:
		return "warn", "Burning too fast: a burn-rate alert is firing"
	case analysis.BudgetExhausted:
		return "bad", "Error budget exhausted"
	default:
		return "none", "No requests in this window"
	}
}

// objectiveText writes "99% under 500 ms over 30d".
func objectiveText(b store.Budget) string {
	return fmt.Sprintf("%s under %s over %s", sloPercent(b.Target), chart.FormatDuration(b.Threshold), analysis.FormatPeriod(b.Period))
}

// budgetSuggestions are the services and endpoints seen in the last week,
// offered as the form's suggestion lists.
func (s *Server) budgetSuggestions(ctx context.Context, service string) (services, endpoints []string, err error) {
	now := s.analysisNow()
	eps, err := s.endpoints(ctx, TimeRange{From: now.Add(-7 * 24 * time.Hour), To: now})
	if err != nil {
		return nil, nil, fmt.Errorf("endpoints: %w", err)
	}
	seenS, seenE := map[string]bool{}, map[string]bool{}
	for _, e := range eps {
		if !seenS[e.Service] {
			seenS[e.Service] = true
			services = append(services, e.Service)
		}
		if (service == "" || e.Service == service) && !seenE[e.Name] {
			seenE[e.Name] = true
			endpoints = append(endpoints, e.Name)
		}
	}
	slices.Sort(endpoints)
	return services, endpoints, nil
}

// newBudgetForm is the empty form, prefilled from ?service=&endpoint=.
func (s *Server) newBudgetForm(r *http.Request) (components.BudgetFormView, error) {
	q := r.URL.Query()
	f := components.BudgetFormView{
		Heading: "New budget", Action: "/budgets", Submit: "Create budget", CancelHref: "/budgets",
		Service: strings.TrimSpace(q.Get("service")), Endpoint: strings.TrimSpace(q.Get("endpoint")),
		ThresholdMs: defaultBudgetThresholdMs, TargetPct: defaultBudgetTargetPct, Period: defaultBudgetPeriod,
		Hops: make([]components.HopFormRow, emptyHopRows), Errors: components.FormErrors{},
	}
	var err error
	f.Services, f.Endpoints, err = s.budgetSuggestions(r.Context(), f.Service)
	return f, err
}

func (s *Server) handleBudgetNewPage(w http.ResponseWriter, r *http.Request) {
	f, err := s.newBudgetForm(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, s.page(r, "New budget", "budgets", nil), components.BudgetFormPage(f))
}

// budgetFormOf fills the edit form from a stored budget.
func budgetFormOf(b store.Budget) components.BudgetFormView {
	f := components.BudgetFormView{
		Heading: "Edit budget", Action: fmt.Sprintf("/budgets/%d", b.ID), Submit: "Save budget", CancelHref: fmt.Sprintf("/budgets/%d", b.ID),
		Name: b.Name, Service: b.Service, Endpoint: b.Endpoint,
		ThresholdMs: formNumber(float64(b.Threshold) / 1e6), TargetPct: formNumber(reportRound(b.Target*100, 7)),
		Period: analysis.FormatPeriod(b.Period), Errors: components.FormErrors{},
	}
	for _, h := range b.Hops {
		f.Hops = append(f.Hops, components.HopFormRow{Service: h.Service, Dependency: h.Dependency, AllocationMs: formNumber(float64(h.Allocation) / 1e6)})
	}
	f.Hops = append(f.Hops, make([]components.HopFormRow, emptyHopRows)...)
	return f
}

// formNumber writes a number the way a user would type it.
func formNumber(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func (s *Server) handleBudgetEditPage(w http.ResponseWriter, r *http.Request) {
	b, err := s.budgetParam(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	f := budgetFormOf(b)
	if f.Services, f.Endpoints, err = s.budgetSuggestions(r.Context(), b.Service); err != nil {
		s.pageError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, s.page(r, "Edit "+budgetName(b), "budgets", nil), components.BudgetFormPage(f))
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

// hopIndexRe finds ValidateBudget's hop indexes ("hops[2]: ...").
var hopIndexRe = regexp.MustCompile(`^hops\[(\d+)\]`)

// parseBudgetForm reads a posted budget form. It returns the form as sent
// (for re-rendering) and the budget; when the form has messages the budget
// must not be stored. Number syntax is the form's own business; every rule
// about the values is analysis.ValidateBudget's, as for the JSON API.
func parseBudgetForm(r *http.Request) (components.BudgetFormView, store.Budget) {
	pf := r.PostForm
	f := components.BudgetFormView{
		Name: pf.Get("name"), Service: strings.TrimSpace(pf.Get("service")), Endpoint: strings.TrimSpace(pf.Get("endpoint")),
		ThresholdMs: strings.TrimSpace(pf.Get("threshold_ms")), TargetPct: strings.TrimSpace(pf.Get("target_pct")),
		Period: strings.TrimSpace(pf.Get("period")), Errors: components.FormErrors{},
	}
	b := store.Budget{Name: strings.TrimSpace(f.Name), Service: f.Service, Endpoint: f.Endpoint}
	if ms, ok := formMs(f.ThresholdMs, "Threshold", f.Errors, "threshold_ms"); ok {
		b.Threshold = ms
	}
	switch {
	case f.TargetPct == "":
		f.Errors.Add("target_pct", "Target is required: the share of requests that must be under the threshold, e.g. 99.9")
	default:
		p, err := strconv.ParseFloat(f.TargetPct, 64)
		if err != nil || math.IsNaN(p) || math.IsInf(p, 0) {
			f.Errors.Add("target_pct", fmt.Sprintf("Target %q is not a number: give a percentage like 99.9", truncateText(f.TargetPct, 30)))
		} else {
			// Nine decimals keep 99.9 → 0.999 free of binary noise.
			b.Target = math.Round(p*1e7) / 1e9
		}
	}
	if f.Period == "" {
		f.Errors.Add("period", `Period is required: whole days like "30d" or a duration like "12h"`)
	} else if p, err := analysis.ParsePeriod(f.Period); err != nil {
		f.Errors.Add("period", upperFirst(err.Error()))
	} else {
		b.Period = p
	}
	svcs, deps, allocs := pf["hop_service"], pf["hop_dependency"], pf["hop_allocation_ms"]
	rows := max(len(svcs), len(deps), len(allocs))
	var rowOf []int               // form row (1-based) of each budget hop
	unparsed := map[string]bool{} // hops whose allocation did not parse
	for i := range rows {
		h := components.HopFormRow{Service: strings.TrimSpace(formValueAt(svcs, i)), Dependency: strings.TrimSpace(formValueAt(deps, i)), AllocationMs: strings.TrimSpace(formValueAt(allocs, i))}
		if h.Service == "" && h.Dependency == "" && h.AllocationMs == "" {
			continue
		}
		f.Hops = append(f.Hops, h)
		hop := store.HopBudget{Service: h.Service, Dependency: h.Dependency}
		if ms, ok := formMs(h.AllocationMs, fmt.Sprintf("Hop row %d: the allocation", len(f.Hops)), f.Errors, "hops"); ok {
			hop.Allocation = ms
		} else {
			unparsed[analysis.HopLabel(hop.Service, hop.Dependency)] = true
		}
		b.Hops = append(b.Hops, hop)
		rowOf = append(rowOf, len(f.Hops))
	}
	f.Hops = append(f.Hops, make([]components.HopFormRow, emptyHopRows)...)
	if err := analysis.ValidateBudget(b); err != nil {
		parsed := components.FormErrors{}
		general := placeMessages(err.Error(), budgetFieldRules, parsed, true)
		f.General = append(f.General, general...)
		for field, msgs := range parsed {
			if field != "hops" && f.Errors.Has(field) {
				continue // the value did not parse; its zero value says nothing more
			}
			for _, m := range msgs {
				if field == "hops" && unparsedAllocation(m, unparsed) {
					continue // already said: the allocation is missing or not a number
				}
				f.Errors.Add(field, budgetFormMessage(field, m, rowOf, f.TargetPct))
			}
		}
	}
	return f, b
}

// budgetFormMessage rewords a validation message for the form's units and
// rows: the API's target is a fraction, the form's a percentage.
func budgetFormMessage(field, msg string, rowOf []int, targetPct string) string {
	switch field {
	case "target_pct":
		return fmt.Sprintf("Target %s%% is outside 0–100%%: give the share of requests that must be under the threshold, e.g. 99.9", truncateText(targetPct, 30))
	case "hops":
		if m := hopIndexRe.FindStringSubmatch(strings.ToLower(msg)); m != nil {
			if i, err := strconv.Atoi(m[1]); err == nil && i < len(rowOf) {
				return fmt.Sprintf("Hop row %d", rowOf[i]) + msg[len(m[0]):]
			}
		}
	}
	return msg
}

// unparsedAllocation reports whether msg is ValidateBudget's complaint
// about the zero allocation of a hop whose allocation did not parse.
func unparsedAllocation(msg string, unparsed map[string]bool) bool {
	for label := range unparsed {
		if strings.HasPrefix(msg, "Hop "+label+": allocation must be positive") {
			return true
		}
	}
	return false
}

func formValueAt(vs []string, i int) string {
	if i < len(vs) {
		return vs[i]
	}
	return ""
}

// formMs parses a number of milliseconds typed into a form field.
func formMs(text, what string, errs components.FormErrors, field string) (time.Duration, bool) {
	if text == "" {
		errs.Add(field, what+" is required, in milliseconds")
		return 0, false
	}
	v, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > float64(math.MaxInt64)/1e6 {
		errs.Add(field, fmt.Sprintf("%s %q is not a number of milliseconds", what, truncateText(text, 30)))
		return 0, false
	}
	return time.Duration(math.Round(v * 1e6)), true
}

// renderBudgetForm re-renders a rejected form with its messages.
func (s *Server) renderBudgetForm(w http.ResponseWriter, r *http.Request, f components.BudgetFormView) {
	var err error
	if f.Services, f.Endpoints, err = s.budgetSuggestions(r.Context(), f.Service); err != nil {
		s.pageError(w, r, err)
		return
	}
	s.render(w, r, http.StatusBadRequest, s.page(r, f.Heading, "budgets", nil), components.BudgetFormPage(f))
}

func (s *Server) handleBudgetCreateForm(w http.ResponseWriter, r *http.Request) {
	if err := parsePostForm(w, r); err != nil {
		s.pageError(w, r, err)
		return
	}
	f, b := parseBudgetForm(r)
	f.Heading, f.Action, f.Submit, f.CancelHref = "New budget", "/budgets", "Create budget", "/budgets"
	if len(f.Errors) > 0 || len(f.General) > 0 {
		s.renderBudgetForm(w, r, f)
		return
	}
	b, err := s.store.CreateBudget(r.Context(), b)
	if err != nil {
		s.pageError(w, r, fmt.Errorf("create budget: %w", err))
		return
	}
	seeOther(w, r, fmt.Sprintf("/budgets/%d", b.ID))
}

func (s *Server) handleBudgetUpdateForm(w http.ResponseWriter, r *http.Request) {
	old, err := s.budgetParam(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	if err := parsePostForm(w, r); err != nil {
		s.pageError(w, r, err)
		return
	}
	f, b := parseBudgetForm(r)
	f.Heading, f.Action, f.Submit, f.CancelHref = "Edit budget", fmt.Sprintf("/budgets/%d", old.ID), "Save budget", fmt.Sprintf("/budgets/%d", old.ID)
	if len(f.Errors) > 0 || len(f.General) > 0 {
		s.renderBudgetForm(w, r, f)
		return
	}
	b.ID = old.ID
	if _, err := s.store.UpdateBudget(r.Context(), b); err != nil {
		s.pageError(w, r, fmt.Errorf("budget %d: %w", old.ID, err))
		return
	}
	seeOther(w, r, fmt.Sprintf("/budgets/%d", old.ID))
}

func (s *Server) handleBudgetDeletePage(w http.ResponseWriter, r *http.Request) {
	b, err := s.budgetParam(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	v := components.ConfirmDeleteView{
		Heading:    "Delete budget " + budgetName(b) + "?",
		Message:    fmt.Sprintf("The objective (%s for %s %s) and its hop table are removed. No spans are deleted.", objectiveText(b), b.Service, b.Endpoint),
		Action:     fmt.Sprintf("/budgets/%d/delete", b.ID),
		Button:     "Delete budget",
		CancelHref: fmt.Sprintf("/budgets/%d", b.ID),
	}
	s.render(w, r, http.StatusOK, s.page(r, "Delete "+budgetName(b), "budgets", nil), components.ConfirmDeletePage(v))
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
	examples, err := s.budgetHopExamples(ctx, b, tr)
	if err != nil {
		s.pageError(w, r, fmt.Errorf("budget %d examples: %w", b.ID, err))
		return
	}
	v := budgetView(b, rep, tr, deploys, examples, r.URL.Query().Get("from") != "" || r.URL.Query().Get("to") != "")
	s.render(w, r, http.StatusOK, s.page(r, budgetName(b)+" budget", "budgets", &tr), components.BudgetPage(v))
}

// budgetBurnKind names a burn-rate window's alert: the hour and six hours
// page (fast burn), the day opens a ticket (slow burn).
func budgetBurnKind(window string) string {
	if window == "24h" {
		return "slow burn"
	}
	return "fast burn"
}

func burnRows(brs []analysis.BurnRate) []components.BurnRow {
	out := make([]components.BurnRow, 0, len(brs))
	for _, br := range brs {
		out = append(out, components.BurnRow{Window: br.Window, Kind: budgetBurnKind(br.Window), Total: br.Total, Bad: br.Bad,
			Rate: br.BurnRate, AlertThreshold: br.AlertThreshold, Alerting: br.Alerting})
	}
	return out
}

func budgetView(b store.Budget, rep analysis.ComplianceReport, tr TimeRange, deploys []store.Deploy, examples map[string][]string, explicitRange bool) components.BudgetView {
	status, text := budgetStatus(rep.Status)
	win := []string{"service", b.Service, "endpoint", b.Endpoint, "from", tr.FromText, "to", tr.ToText}
	thr := formNumber(float64(b.Threshold) / 1e6)
	outFrom, outTo := tr.FromText, tr.ToText
	if tr.To.Sub(tr.From) > maxAnalysisRange {
		// Outlier analysis reads whole windows and stops at a week.
		outFrom, outTo = timeText(tr.To.Add(-maxAnalysisRange)), timeText(tr.To)
	}
	v := components.BudgetView{
		ID: b.ID, Name: budgetName(b), Service: b.Service, Endpoint: b.Endpoint, Objective: objectiveText(b),
		Window: windowText(tr), Status: status, StatusText: text, SampledRequests: rep.SampledRequests,
		EditHref: fmt.Sprintf("/budgets/%d/edit", b.ID), DeleteHref: fmt.Sprintf("/budgets/%d/delete", b.ID),
		APIHref:        fmt.Sprintf("/api/v1/budgets/%d/compliance", b.ID),
		LatencyHref:    link("/latency", win...),
		OutliersHref:   link("/outliers", "service", b.Service, "endpoint", b.Endpoint, "from", outFrom, "to", outTo, "threshold_ms", thr),
		SlowTracesHref: link("/search", append(win, "min_ms", thr, "sort", "slowest")...),
		IncidentHref:   IncidentFromWindowLink(tr.FromText, tr.ToText, b.Service),
		BurnRates:      burnRows(rep.BurnRates),
		BurnNote: "The share of requests over the threshold divided by the share the target allows: 1× spends the error budget exactly over the period. " +
			"Measured over the hour, 6 hours and day before now, whatever the window. Alerts follow the multiwindow policy of the SRE workbook: " +
			"2% of the period's budget spent in an hour or 5% in 6 hours is a fast burn (page); 10% in a day is a slow burn (ticket).",
	}
	if explicitRange {
		v.APIHref = link(v.APIHref, "from", tr.FromText, "to", tr.ToText)
	}
	if rep.Total == 0 {
		v.Note = "No requests to this endpoint in the window: attainment and burn need traffic. Widen the time range."
	}
	v.Facts = []components.Fact{
		{Label: "attainment", Value: sloPercent(rep.Attainment), Bad: rep.Total > 0 && !rep.Met},
		{Label: "requests", Value: chart.FormatCount(float64(rep.Total))},
		{Label: "over " + chart.FormatDuration(b.Threshold), Value: chart.FormatCount(float64(rep.Bad))},
		{Label: "error budget", Value: chart.FormatCount(rep.ErrorBudget) + " slow requests"},
		{Label: "budget left", Value: chart.FormatPercent(rep.ErrorBudgetRemaining), Bad: rep.ErrorBudgetRemaining < 0},
	}
	var left []chart.Point
	for _, p := range rep.Series {
		left = append(left, chart.Point{T: p.Time, V: math.Max(p.BudgetRemaining, 0)})
	}
	v.Chart = chart.BuildTimeChart(chart.TimeChartInput{
		From: tr.From, To: tr.To, Markers: deployMarkers(deploys), YLabel: "budget left", YFormat: chart.FormatPercent,
		Series: []chart.Series{{Name: "error budget left", Class: "s-budget", Points: left}},
		Width:  640, Height: 240,
	})
	hops := slices.Clone(rep.Hops)
	slices.SortStableFunc(hops, func(a, b analysis.HopCompliance) int {
		return cmp.Or(cmp.Compare(b.OverrunRate, a.OverrunRate), cmp.Compare(b.MeanOverrunMs, a.MeanOverrunMs), cmp.Compare(a.Label, b.Label))
	})
	for _, h := range hops {
		row := hopRowView(h)
		row.Worst = h.Label == rep.WorstHop && rep.WorstHop != ""
		for _, id := range examples[h.Label] {
			row.Examples = append(row.Examples, components.SpanLink{Label: id[:min(12, len(id))], Href: "/traces/" + id})
		}
		v.Hops = append(v.Hops, row)
	}
	v.Unbudgeted = hopRowView(rep.Unbudgeted)
	return v
}

func hopRowView(h analysis.HopCompliance) components.BudgetHopRow {
	return components.BudgetHopRow{
		Label: h.Label, AllocationMs: h.AllocationMs, Requests: h.Requests, Overruns: h.Overruns, OverrunRate: h.OverrunRate,
		MeanOverrunMs: h.MeanOverrunMs, MaxOverrunMs: h.MaxOverrunMs, P50Ms: h.P50Ms, P95Ms: h.P95Ms,
	}
}

// budgetHopExamples finds, for each budgeted hop, requests of the window
// in which it overran its allocation by the most: the slowest requests of
// the endpoint, each measured from its own entry span as Compliance
// measures them. The result maps hop labels to trace ids.
func (s *Server) budgetHopExamples(ctx context.Context, b store.Budget, tr TimeRange) (map[string][]string, error) {
	if len(b.Hops) == 0 {
		return map[string][]string{}, nil
	}
	key := cacheKey("budget-examples", b.ID, b.UpdatedAt.UnixNano(), tr.From.UnixNano(), tr.To.UnixNano())
	return cached(ctx, s, key, func(ctx context.Context) (map[string][]string, error) {
		found, err := s.store.SearchTraces(ctx, store.TraceQuery{
			Service: b.Service, Endpoint: b.Endpoint, From: tr.From, To: tr.To, Order: store.OrderSlowest, Limit: budgetExampleTraces,
		})
		if err != nil {
			return nil, fmt.Errorf("slowest requests: %w", err)
		}
		ids := make([]store.TraceID, len(found))
		for i, t := range found {
			ids[i] = t.TraceID
		}
		traces, err := s.store.Traces(ctx, ids)
		if err != nil {
			return nil, fmt.Errorf("traces: %w", err)
		}
		alloc := map[string]time.Duration{}
		for _, h := range b.Hops {
			alloc[analysis.HopLabel(h.Service, h.Dependency)] = h.Allocation
		}
		type overrun struct {
			id string
			ns int64
		}
		per := map[string][]overrun{}
		for _, id := range ids {
			cp := analysis.CriticalPath(entrySubtree(traces[id], b.Service, b.Endpoint))
			for _, h := range cp.Hops {
				if a, ok := alloc[h.Label]; ok && h.CriticalNs > int64(a) {
					per[h.Label] = append(per[h.Label], overrun{id.String(), h.CriticalNs - int64(a)})
				}
			}
		}
		out := map[string][]string{}
		for label, os := range per {
			slices.SortFunc(os, func(a, b overrun) int { return cmp.Or(cmp.Compare(b.ns, a.ns), cmp.Compare(a.id, b.id)) })
			for _, o := range os[:min(len(os), budgetExamplesPerHop)] {
				out[label] = append(out[label], o.id)
			}
		}
		return out, nil
	})
}

// entrySubtree returns the spans under the longest entry span named
// (service, name), that span included: the request a budget measures,
// even when the endpoint is not the trace's root. Without such a span it
// returns all spans.
func entrySubtree(spans []store.Span, service, name string) []store.Span {
	top := -1
	for i := range spans {
		sp := &spans[i]
		if sp.Service == service && sp.Name == name && sp.IsEntry() && (top < 0 || sp.DurationNano > spans[top].DurationNano) {
			top = i
		}
	}
	if top < 0 || spans[top].IsRoot() {
		return spans
	}
	children := map[store.SpanID][]int{}
	for i := range spans {
		children[spans[i].ParentSpanID] = append(children[spans[i].ParentSpanID], i)
	}
	out := []store.Span{spans[top]}
	seen := map[store.SpanID]bool{spans[top].SpanID: true}
	for q := []store.SpanID{spans[top].SpanID}; len(q) > 0; q = q[1:] {
		for _, c := range children[q[0]] {
			if !seen[spans[c].SpanID] {
				seen[spans[c].SpanID] = true
				out = append(out, spans[c])
				q = append(q, spans[c].SpanID)
			}
		}
	}
	return out
}
