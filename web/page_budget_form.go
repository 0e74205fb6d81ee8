package web

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/internal/duration"
	"github.com/tailscope/tailscope/internal/units"
	"github.com/tailscope/tailscope/internal/validate"
	"github.com/tailscope/tailscope/report"
	"github.com/tailscope/tailscope/store"
)

// Budget form defaults: the objective most teams start from.
const (
	defaultBudgetThresholdMs = "500"
	defaultBudgetTargetPct   = "99"
	defaultBudgetPeriod      = "30d"
	// emptyHopRows are the blank rows offered for adding hops.
	emptyHopRows = 3
)

// budgetFormFields places analysis.ValidateBudget's problems on the form:
// its field names to the form's inputs; every hop problem goes to the hop
// table, worded with its row (postedBudget.say).
var budgetFormFields = map[string]string{
	analysis.FieldName:          "name",
	analysis.FieldService:       "service",
	analysis.FieldEndpoint:      "endpoint",
	analysis.FieldThreshold:     "threshold_ms",
	analysis.FieldTarget:        "target_pct",
	analysis.FieldPeriod:        "period",
	analysis.FieldHopMeasure:    "hop_measure",
	analysis.FieldHops:          "hops",
	analysis.FieldHopService:    "hops",
	analysis.FieldHopAllocation: "hops",
}

// budgetSuggestions are the services and the busiest endpoints seen in
// the last week, offered as the form's suggestion lists (its endpoint
// field takes any name).
func (s *Server) budgetSuggestions(ctx context.Context, service string) (services, endpoints []string, err error) {
	now := s.analysisNow()
	eps, err := s.endpoints(ctx, TimeRange{From: now.Add(-7 * duration.Day), To: now})
	if err != nil {
		return nil, nil, fmt.Errorf("endpoints: %w", err)
	}
	services, _ = serviceChoices(eps)
	endpoints, _ = endpointChoices(eps, service, choiceEndpoints)
	return services, endpoints, nil
}

// newBudgetForm is the empty form, prefilled from ?service=&endpoint=.
func (s *Server) newBudgetForm(r *http.Request) (components.BudgetFormView, error) {
	q := r.URL.Query()
	f := components.BudgetFormView{
		Heading: "New budget", Action: "/budgets", Submit: "Create budget", CancelHref: "/budgets",
		Service: strings.TrimSpace(q.Get("service")), Endpoint: strings.TrimSpace(q.Get("endpoint")),
		ThresholdMs: defaultBudgetThresholdMs, TargetPct: defaultBudgetTargetPct, Period: defaultBudgetPeriod,
		HopMeasure: string(store.HopWholeCall), Hops: make([]components.HopFormRow, emptyHopRows), Errors: components.FormErrors{},
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
		ThresholdMs: formNumber(float64(b.Threshold) / 1e6), TargetPct: formNumber(units.Round(b.Target*100, 7)),
		Period: duration.Format(b.Period), HopMeasure: string(analysis.HopMeasureOf(b)), Errors: components.FormErrors{},
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
	s.render(w, r, http.StatusOK, s.page(r, "Edit "+report.BudgetName(b), "budgets", nil), components.BudgetFormPage(f))
}

// postedBudget is a posted budget form being read: the form as sent (to
// re-render), the budget, and what the form itself could not read.
type postedBudget struct {
	view   components.BudgetFormView
	budget store.Budget
	// rowOf is the form row (1-based) of each budget hop; unparsed marks
	// the hops whose allocation did not parse (the form already said so).
	rowOf    []int
	unparsed map[int]bool
}

// parseBudgetForm reads a posted budget form. When the view has messages
// the budget must not be stored. Number syntax is the form's own business;
// every rule about the values is analysis.ValidateBudget's, as for the
// JSON API.
func parseBudgetForm(r *http.Request) (components.BudgetFormView, store.Budget) {
	pf := r.PostForm
	bf := postedBudget{unparsed: map[int]bool{}}
	f := &bf.view
	*f = components.BudgetFormView{
		Name: pf.Get("name"), Service: strings.TrimSpace(pf.Get("service")), Endpoint: strings.TrimSpace(pf.Get("endpoint")),
		ThresholdMs: strings.TrimSpace(pf.Get("threshold_ms")), TargetPct: strings.TrimSpace(pf.Get("target_pct")),
		Period: strings.TrimSpace(pf.Get("period")), HopMeasure: strings.TrimSpace(pf.Get("hop_measure")), Errors: components.FormErrors{},
	}
	b := &bf.budget
	*b = store.Budget{Name: strings.TrimSpace(f.Name), Service: f.Service, Endpoint: f.Endpoint, HopMeasure: store.HopMeasure(f.HopMeasure)}
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
	} else if p, err := duration.Parse(f.Period); err != nil {
		f.Errors.Add("period", fmt.Sprintf("Period %q: %v", truncateText(f.Period, 30), duration.ErrSyntax))
	} else {
		b.Period = p
	}
	bf.readHops(pf["hop_service"], pf["hop_dependency"], pf["hop_allocation_ms"])
	var verr validate.ValidationError
	if err := analysis.ValidateBudget(*b); errors.As(err, &verr) {
		f.General = append(f.General, placeFieldErrors(verr, budgetFormFields, f.Errors, bf.say)...)
	}
	return *f, *b
}

// readHops reads the hop table's rows, skipping empty ones.
func (bf *postedBudget) readHops(svcs, deps, allocs []string) {
	f := &bf.view
	for i := range max(len(svcs), len(deps), len(allocs)) {
		h := components.HopFormRow{Service: strings.TrimSpace(formValueAt(svcs, i)), Dependency: strings.TrimSpace(formValueAt(deps, i)), AllocationMs: strings.TrimSpace(formValueAt(allocs, i))}
		if h.Service == "" && h.Dependency == "" && h.AllocationMs == "" {
			continue
		}
		f.Hops = append(f.Hops, h)
		hop := store.HopBudget{Service: h.Service, Dependency: h.Dependency}
		if ms, ok := formMs(h.AllocationMs, fmt.Sprintf("Hop row %d: the allocation", len(f.Hops)), f.Errors, "hops"); ok {
			hop.Allocation = ms
		} else {
			bf.unparsed[len(bf.budget.Hops)] = true
		}
		bf.budget.Hops = append(bf.budget.Hops, hop)
		bf.rowOf = append(bf.rowOf, len(f.Hops))
	}
	f.Hops = append(f.Hops, make([]components.HopFormRow, emptyHopRows)...)
}

// say words one of ValidateBudget's problems for the form, or drops it
// ("") when the form has already reported the value as unreadable: what
// the validator says of its zero stand-in is noise.
func (bf *postedBudget) say(e validate.FieldError) string {
	f := &bf.view
	switch e.Field {
	case analysis.FieldThreshold, analysis.FieldTarget, analysis.FieldPeriod:
		if f.Errors.Has(budgetFormFields[e.Field]) {
			return ""
		}
	case analysis.FieldHopAllocation:
		if bf.unparsed[e.Index] {
			return ""
		}
	}
	switch {
	case e.Field == analysis.FieldTarget:
		// The API's target is a fraction, the form's a percentage.
		return fmt.Sprintf("Target %s%% is outside 0–100%%: give the share of requests that must be under the threshold, e.g. 99.9", truncateText(f.TargetPct, 30))
	case e.Index >= 0 && e.Index < len(bf.rowOf):
		return fmt.Sprintf("Hop row %d: %s", bf.rowOf[e.Index], e.Msg)
	}
	return e.Msg
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
	if err == nil {
		var d time.Duration
		if d, err = msToDuration(v); err == nil {
			return d, true
		}
	}
	errs.Add(field, fmt.Sprintf("%s %q is not a number of milliseconds", what, truncateText(text, 30)))
	return 0, false
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
