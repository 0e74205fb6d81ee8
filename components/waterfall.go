package components

// WaterfallView is a trace's waterfall page.
type WaterfallView struct {
	TraceID  string
	APIHref  string
	RootName string
	Start    string
	// Facts are the summary stats above the waterfall.
	Facts    []Fact
	Ticks    []WFTick
	Rows     []WFRow
	Findings []FindingGroup
	Hops     []HopView
	Services []ServiceLegend
	// Collapsed says deep subtrees start collapsed (large traces) and are
	// loaded on demand; Find is the span search that opened matches.
	Collapsed bool
	Find      string
	// RowsHref is every row of the waterfall as JSON, which the page
	// script renders a screenful at a time; DetailHref is the URL prefix
	// of a span's detail fragment (the script appends a span id).
	RowsHref, DetailHref string
	// Scripts are the hashed URLs of static/waterfall_parts.js and
	// static/waterfall.js, in load order.
	Scripts []string
	// Truncated says a large trace's page carries only its first rows.
	Truncated bool
	// ExpandAllHref reloads the page with every span rendered.
	ExpandAllHref string
	Matches       int
	Detached      int
	// Async counts spans of async branches: work the request did not
	// wait for, never on its critical path.
	Async    int
	Selected *SpanDetail
	// OutliersHref links the root endpoint's outlier analysis.
	OutliersHref string
	// CompareHref compares the trace with a typical one of its endpoint.
	CompareHref string
	// RootSpanID is the root's id; ProfileHref its CPU flame graph when the
	// trace's spans have profile samples.
	RootSpanID  string
	ProfileHref string
}

// Fact is one labelled number.
type Fact struct {
	Label, Value string
	Bad          bool
}

// WFTick is a time-axis label at a percentage of the trace.
type WFTick struct {
	LeftPct float64
	Label   string
}

// Seg is a horizontal stretch in percent of the trace.
type Seg struct {
	LeftPct, WidthPct float64
}

// WFRow is one span of the waterfall.
type WFRow struct {
	SpanID, ParentID     string
	Depth, Indent        int
	Service, Name, Class string
	Bar                  Seg
	Label                string
	LabelLeftPct         float64
	LabelInside          bool
	DurationMs, SelfMs   float64
	OnCritical           bool
	Critical             []Seg
	Gaps                 []Seg
	Error                bool
	// Async marks a span of an async branch; AsyncTie, on the branch's
	// first span, says why the parent did not wait for it.
	Async             bool
	AsyncTie          string
	HasChildren       bool
	Expanded          bool
	Hidden            bool
	HiddenDescendants int
	Match             bool
	Findings          []string
	Search            string
	Href              string
	ProfileHref       string
	Title             string
}

// FindingGroup is the findings of one kind and pattern: one line with a
// count and the largest time at stake among them, opening onto the first one's
// detail and the spans involved.
type FindingGroup struct {
	Kind, Label, Title, Detail string
	Count                      int
	TimeMs                     float64
	// Severe groups are errors and timeouts; Folded ones sit under "more
	// findings" so the waterfall stays near the top of the page.
	Severe, Folded bool
	Spans          []SpanLink
}

// SpanLink links a span of the waterfall.
type SpanLink struct {
	Label, Href string
}

// HopView is critical-path time of one (service, dependency).
type HopView struct {
	Label      string
	CriticalMs float64
	Share      float64
}

// ServiceLegend maps a service to its colour class.
type ServiceLegend struct {
	Name, Class string
}

// SpanDetail is the selected span's detail panel, rendered on the server
// for ?span= permalinks (the page script renders later selections).
type SpanDetail struct {
	SpanID      string
	Title       string
	Facts       []KV
	Attributes  []KV
	Resource    []KV
	Events      []KV
	Links       []SpanLink
	ProfileHref string
}

// foldedFindings counts the finding groups under "more findings".
func foldedFindings(gs []FindingGroup) int {
	n := 0
	for _, g := range gs {
		if g.Folded {
			n++
		}
	}
	return n
}
