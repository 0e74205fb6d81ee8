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
	// WorstHop is the hop that costs the budget most ("" for none) and
	// WorstHopText it with its share: "feed-api → profile-svc (99%)".
	WorstHop, WorstHopText string
}

// BudgetFormView is the create/edit form of a budget. Values are kept as
// the user typed them so a form with errors comes back as it was sent.
type BudgetFormView struct {
	Heading, Action, Submit, CancelHref string
	Name, Service, Endpoint             string
	ThresholdMs, TargetPct, Period      string
	// HopMeasure is the selected HopMeasures value.
	HopMeasure string
	Hops       []HopFormRow
	Errors     FormErrors
	// General holds problems that belong to no single field.
	General []string
	// Services and Endpoints feed the inputs' suggestion lists.
	Services, Endpoints []string
}

// HopMeasureOption is one choice of what a call hop measures.
type HopMeasureOption struct {
	Value, Label string
}

// HopMeasures are the form's choices, the default first.
var HopMeasures = []HopMeasureOption{
	{"whole_call", "the whole call: the client span and everything under it, as the caller waits for it"},
	{"own_time", "own time only: the client span's network and queueing, not the server's work"},
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
	StatusExplain           string
	Facts                   []Fact
	BurnRates               []BurnRow
	BurnNote                string
	Chart                   chart.TimeChart
	// HopMeasureText says what a call hop's time is; SampleText what the
	// table was measured on; SampledRequests the sample's size.
	HopMeasureText, SampleText string
	SampledRequests            int
	Hops                       []BudgetHopRow
	Unbudgeted                 BudgetHopRow
	// WorstHop is the label of the row that costs the budget most.
	WorstHop string
	// SourceText says where the counts came from (rollups or spans) and
	// how many requests lay too near the threshold to place.
	SourceText string
	// Note explains an empty window.
	Note                                                                                   string
	EditHref, DeleteHref, APIHref, LatencyHref, OutliersHref, SlowTracesHref, IncidentHref string
	// AlertRules are the burn-rate rules in force; Alerts the budget's
	// latest firings, newest first.
	AlertRules    []string
	Alerts        []AlertRow
	AlertsAPIHref string
}

// AlertRow is one firing of a burn-rate alert.
type AlertRow struct {
	Rule, Severity             string
	Started, Resolved          string
	Open                       bool
	Burn, Cause                string
	OutliersHref, IncidentHref string
}

// BurnRow is one burn-rate window: Text is the rate with its alert level
// ("1.16× (alert at 14.4×)"), State the analysis.BurnState and StateText
// its words.
type BurnRow struct {
	Window, Kind     string
	Total, Bad       int
	Text             string
	State, StateText string
	Alerting         bool
}

// BudgetHopRow is one hop of the budget table: its share of the time
// slow requests spent over the threshold, how often it overran its
// allocation (with the interval of that rate) and by how much, with
// example traces in which it did.
type BudgetHopRow struct {
	Label                       string
	AllocationMs                float64
	Contribution                float64
	ContributionMs              float64
	Requests, Overruns          int
	OverrunRate                 float64
	RateLow, RateHigh           float64
	Exact                       bool
	MeanOverrunMs, MaxOverrunMs float64
	P50Ms, P95Ms                float64
	Worst                       bool
	Examples                    []SpanLink
}

// ConfirmDeleteView asks before deleting a budget or an incident.
type ConfirmDeleteView struct {
	Heading, Message, Action, Button, CancelHref string
}

// burnPill is the pill class of a burn state (analysis.BurnState).
func burnPill(state string) string {
	switch state {
	case "alert":
		return "bad"
	case "over_pace":
		return "warn"
	case "within_pace":
		return "ok"
	default:
		return ""
	}
}
