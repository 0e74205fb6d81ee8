package components

import "github.com/tailscope/tailscope/components/chart"

// EndpointPicker chooses the service and endpoint of a page.
type EndpointPicker struct {
	Action            string
	Service, Endpoint string
	From, To          string
	Services          []string
	Endpoints         []string
	// Extra are further form fields kept when the endpoint changes.
	Extra []KV
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
