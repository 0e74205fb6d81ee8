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
