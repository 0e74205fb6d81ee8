package components

import (
	"github.com/a-h/templ"

	"github.com/tailscope/tailscope/components/chart"
)

// FormErrors maps a form field name to the messages shown next to it.
type FormErrors map[string][]string

// Add appends a message for field.
func (e FormErrors) Add(field, msg string) { e[field] = append(e[field], msg) }

// Has reports whether field has a message.
func (e FormErrors) Has(field string) bool { return len(e[field]) > 0 }

// errorID is the id of a field's message element, which the field names
// in aria-describedby so screen readers read the message with it.
func errorID(form, field string) string { return form + "-" + field + "-error" }

// fieldAttrs marks a field that has a message as invalid and links the
// message, so assistive technology announces it with the field.
func fieldAttrs(form, field string, errs FormErrors) templ.Attributes {
	if !errs.Has(field) {
		return nil
	}
	return templ.Attributes{"aria-invalid": "true", "aria-describedby": errorID(form, field)}
}

// BudgetsView is the budgets list with the form for a new budget.
type BudgetsView struct {
	Rows []BudgetRow
	Form BudgetFormView
}

// BudgetRow is one budget in the list with its status over its period.
type BudgetRow struct {
	ID                         int64
	Name, Service, Endpoint    string
	Objective                  string
	Href, EditHref, DeleteHref string
	// Status is "ok", "warn", "bad" or "none" (the status-dot classes).
	Status, StatusText string
	Attainment         string
	BudgetLeft         string
	BudgetLeftBad      bool
	WorstHop           string
}

// BudgetFormView is the create/edit form of a budget. Values are kept as
// the user typed them so a form with errors comes back as it was sent.
type BudgetFormView struct {
	Heading, Action, Submit, CancelHref string
	Name, Service, Endpoint             string
	ThresholdMs, TargetPct, Period      string
	Hops                                []HopFormRow
	Errors                              FormErrors
	// General holds problems that belong to no single field.
	General []string
	// Services and Endpoints feed the inputs' suggestion lists.
	Services, Endpoints []string
}

// HopFormRow is one row of the hop table; empty rows are for adding hops.
type HopFormRow struct {
	Service, Dependency, AllocationMs string
}

// BudgetView is a budget's compliance page.
type BudgetView struct {
	ID                      int64
	Name, Service, Endpoint string
	Objective               string
	Window                  string
	Status, StatusText      string
	Facts                   []Fact
	BurnRates               []BurnRow
	BurnNote                string
	Chart                   chart.TimeChart
	Hops                    []BudgetHopRow
	Unbudgeted              BudgetHopRow
	SampledRequests         int
	// Note explains an empty window.
	Note                                                                                   string
	EditHref, DeleteHref, APIHref, LatencyHref, OutliersHref, SlowTracesHref, IncidentHref string
}

// BurnRow is one burn-rate window.
type BurnRow struct {
	Window, Kind   string
	Total, Bad     int
	Rate           float64
	AlertThreshold float64
	Alerting       bool
}

// BudgetHopRow is one hop of the budget table: how often and by how much
// it overran its allocation, with example traces that did.
type BudgetHopRow struct {
	Label                       string
	AllocationMs                float64
	Requests, Overruns          int
	OverrunRate                 float64
	MeanOverrunMs, MaxOverrunMs float64
	P50Ms, P95Ms                float64
	Worst                       bool
	Examples                    []SpanLink
}

// ConfirmDeleteView asks before deleting a budget or an incident.
type ConfirmDeleteView struct {
	Heading, Message, Action, Button, CancelHref string
}
