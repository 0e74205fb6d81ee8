package components

import "github.com/tailscope/tailscope/components/chart"

// SearchView is the trace search page.
type SearchView struct {
	Form    SearchForm
	Scatter chart.Scatter
	Rows    []TraceRow
	// SortHrefs link the sortable column headers.
	SortDurationHref, SortStartHref string
	Sort                            string
	Limit                           int
}

// SearchForm echoes the filters and offers the known services.
type SearchForm struct {
	Service, Endpoint, MinMs, MaxMs, Tenant, Version, Status, Attr, Sort, Limit string
	From, To                                                                    string
	Services, Endpoints                                                         []string
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
	Start                       string
	DurationMs, MatchDurationMs float64
	Spans, Errors               int
	Tenant, Version             string
}
