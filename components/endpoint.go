package components

import (
	"github.com/a-h/templ"

	"github.com/tailscope/tailscope/components/chart"
)

// EndpointPicker chooses the service and endpoint of a page.
type EndpointPicker struct {
	Action            string
	Service, Endpoint string
	From, To          string
	// Services are the busiest services; MoreServices counts those left
	// out (then the field takes any name).
	Services     []string
	MoreServices int
	// Endpoints are the service's busiest endpoints; MoreEndpoints counts
	// those left out (then the field takes any name).
	Endpoints     []string
	MoreEndpoints int
	// AsSent is the endpoint as asked for when the page shows its
	// template instead (a name pasted from a log: "GET /users/12345").
	AsSent string
	// Extra are further form fields kept when the endpoint changes.
	Extra []KV
	// TenantFilter shows a tenant field (Tenant, suggesting Tenants).
	TenantFilter bool
	Tenant       string
	Tenants      []string
}

// LatencyView is the endpoint latency page.
type LatencyView struct {
	Picker     EndpointPicker
	Facts      []Fact
	MethodNote string
	Series     chart.TimeChart
	Traffic    chart.TimeChart
	Histogram  chart.Histogram
	Heatmap    chart.Heatmap
	// Selection is where a drag across the histogram or heatmap leads.
	Selection                                ChartSelection
	OutliersHref, TracesHref, SlowTracesHref string
	// Tenants is the endpoint's tenants table (from tenant rollups).
	Tenants TenantsTable
}

// TenantsTable lists an endpoint's busiest tenants with their share of
// its requests and of its slowest 1%.
type TenantsTable struct {
	Rows []TenantRow
	// Note says what the table leaves out (other tenants, tenants
	// without rollups); Empty explains a table with no rows.
	Note, Empty string
	P99Ms       float64
	TailCount   int64
}

// TenantRow is one tenant of a TenantsTable.
type TenantRow struct {
	Tenant, Label    string
	Href, TracesHref string
	Count            int64
	Share, ErrorRate float64
	P50Ms, P99Ms     float64
	TailCount        int64
	TailShare        float64
	// Hot marks a tenant whose share of the tail is well above its share
	// of requests; Current the tenant the page is filtered by.
	Hot, Current bool
}

// OutliersView is the outliers page.
type OutliersView struct {
	Picker      EndpointPicker
	Percentile  string
	ThresholdMs string
	Facts       []Fact
	Groups      []GroupView
	Ungrouped   int
	// Verdict is the analysis' one-sentence answer; NoDominantCause says
	// it is "no cause stands out".
	Verdict         string
	NoDominantCause bool
	// FixAll is the p99 with every group fixed, and what that saves.
	P99Ms, FixAllP99Ms, FixAllPayoffMs float64
	Dimensions                         []DimensionView
	DependencyExcess                   []HopView
	// Note explains an empty or thin result.
	Note                    string
	LatencyHref, TracesHref string
	APIHref                 string
	// ShapeHref compares the merged span trees of slow and typical
	// requests.
	ShapeHref string
}

// GroupView is one outlier group.
type GroupView struct {
	Rank                int
	Label               string
	Values              []KV
	Count               int
	Share               float64
	ExcessMs            float64
	CounterfactualP99Ms float64
	PayoffMs            float64
	P99Ms               float64
	// Evidence is the group's own test in words.
	Evidence   string
	Examples   []SpanLink
	TracesHref string
	// ProfileHref is the group's CPU diff flame graph, when the window has
	// CPU profiles with span labels.
	ProfileHref string
}

// DimensionView compares one dimension's values in outliers and baseline.
type DimensionView struct {
	Name, Title string
	Values      []DimValueView
	More        int
}

// DimValueView is one bar pair.
type DimValueView struct {
	Value                       string
	OutlierShare, BaselineShare float64
	OutlierCount, BaselineCount int
	Lift, QValue                float64
	Significant                 bool
	Href                        string
}

// ChartSelection holds the links a chart selection is added to: its traces
// (with min_ms, max_ms and its window) and the outliers view (with
// threshold_ms and its window). From and To are the page's window, for a
// selection of latency only.
type ChartSelection struct {
	TracesURL, OutliersURL string
	From, To               string
}

// currentRow marks the table row of the page's own filter for assistive
// technology (aria-current) and styles.
func currentRow(current bool) templ.Attributes {
	if !current {
		return templ.Attributes{}
	}
	return templ.Attributes{"aria-current": "true", "class": "current"}
}
