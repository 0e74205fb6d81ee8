package components

import (
	"time"

	"github.com/tailscope/tailscope/components/chart"
)

// SearchView is the trace search page.
type SearchView struct {
	Form    SearchForm
	Scatter chart.Scatter
	Rows    []TraceRow
	// SortHrefs link the sortable column headers.
	SortDurationHref, SortStartHref string
	Sort                            string
	Limit                           int
	// ScatterFits says the scatter's time axis is the results' span, not
	// the whole window.
	ScatterFits bool
}

// SearchForm echoes the filters and offers the known services.
type SearchForm struct {
	Service, Endpoint, MinMs, MaxMs, Tenant, Version, Status, Attr, Sort, Limit string
	// Error is what is wrong with the filters as typed; no search ran.
	Error               string
	From, To            string
	Services, Endpoints []string
	MoreServices        int // services left out of Services: the field takes any
	// AsSent is the endpoint as typed when the search uses its template
	// (EndpointPicker.AsSent).
	AsSent string
	// Has are the further span conditions (the "has" parameter), kept by
	// the form; each links to the search without it.
	Has []HasCondition
}

// HasCondition is one "the trace also has a span with…" condition.
type HasCondition struct {
	Text, Value, RemoveHref string
}

// TraceRow is one search result.
type TraceRow struct {
	TraceID, Href               string
	RootService, RootName       string
	Start                       time.Time
	DurationMs, MatchDurationMs float64
	Spans, Errors               int
	Tenant, Version             string
}
