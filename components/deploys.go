package components

import (
	"strconv"
	"time"

	"github.com/tailscope/tailscope/components/chart"
)

// DeploysView is the deploy marker list.
type DeploysView struct {
	Rows []DeployRow
	// Service filters the list; Services are the choices, MoreServices
	// how many were left out (then the field takes any name).
	Service      string
	Services     []string
	MoreServices int
	From, To     string
	Limit        string
	// Curl is the one-line command a CI pipeline runs to post a marker.
	Curl string
	// Compare is the canary form (version A vs B in one window).
	Compare CompareFormView
}

// DeployRow is one marker.
type DeployRow struct {
	ID                int64
	Service, Version  string
	At                time.Time
	Ago               string
	Source, Note      string
	Href, LatencyHref string
	// FirstSeen marks the service's first sighting (its first version
	// ever seen): not a deploy, nothing to compare with.
	FirstSeen bool
	// Impact is the service's hour before and after the marker.
	Impact ImpactView
}

// ImpactView is a deploy marker's impact in words: rate, errors and p99
// before → after, with the changes worth a look marked.
type ImpactView struct {
	Shown, Pending       bool
	Rate, Errors, P99    string
	ErrorsUp, ErrorsDown bool
	P99Up                bool
	// P99Noise: the p99 moved by 10% or more but the tail test finds no
	// change (a noisy p99 of few requests), said beside it.
	P99Noise bool
}

// CompareFormView chooses a canary comparison: two versions of one
// endpoint over the same window.
type CompareFormView struct {
	Service, Endpoint, VersionA, VersionB, From, To string
	Services, Versions                              []string
}

// DeployCompareView is a deploy marker's before/after page.
type DeployCompareView struct {
	Service, Version, Source string
	At                       time.Time
	// FirstSeen: the marker is the service's first sighting.
	FirstSeen bool
	// DeployNote is the marker's own note.
	DeployNote string
	// Endpoint picks the compared endpoint; Window and EqualCounts the
	// before/after windows.
	Endpoint  string
	Endpoints []string
	// MoreEndpoints counts the service's endpoints left out of Endpoints
	// (its busiest).
	MoreEndpoints int
	Window        string
	EqualCounts   bool
	Action        string
	// Note explains why there is no comparison (no traffic yet).
	Note       string
	Comparison *ComparisonView
}

// CompareView is the canary comparison page.
type CompareView struct {
	Form       CompareFormView
	Note       string
	Comparison *ComparisonView
}

// ComparisonView is a before/after (or A/B) comparison of an endpoint,
// shared by the deploy, canary and incident pages and the HTML report.
type ComparisonView struct {
	Service, Endpoint       string
	BeforeLabel, AfterLabel string
	// TailLabel names the requests the hops' tail columns average over
	// ("slowest 5%"): those past the summary's percentile.
	TailLabel string
	// VerdictClass is "regressed", "improved", "nochange" or "new".
	Verdict, VerdictClass, Summary string
	Reasons                        []string
	Insufficient                   bool
	// NoBaseline: the before side has no request, so there are no
	// changes to show, only the after side's numbers.
	NoBaseline       bool
	Sides            []CompareSideView
	CILevel          string
	Percentiles      []PercentileRow
	ErrorBefore      float64
	ErrorAfter       float64
	ErrorP           float64
	ErrorSignificant bool
	ErrorText        string
	RateBefore       float64
	RateAfter        float64
	// RateDelta is the throughput change ("+3%"), empty without a
	// baseline.
	RateDelta string
	// RankTest says the Mann–Whitney figures are there.
	RankTest                      bool
	MannWhitneyP, ProbAfterSlower float64
	Dependencies                  []DependencyRow
	CDF                           chart.CDF
	APIHref, LatencyHref          string
	BeforeTracesHref              string
	AfterTracesHref               string
	IncidentHref                  string
}

// CompareSideView is one side's numbers.
type CompareSideView struct {
	Label string
	// From and To are the side's window.
	From, To time.Time
	// DataNote says when the side has data over only part of its window
	// ("data from 14:50:12", the series began then).
	DataNote            string
	Count, Errors       int
	ErrorRate, RatePerS float64
	P50Ms, P95Ms, P99Ms float64
}

// PercentileRow is one percentile's change with its confidence interval.
type PercentileRow struct {
	Name                        string
	BeforeMs, AfterMs, DeltaMs  float64
	DeltaPct                    float64
	CI                          string
	Tested, Significant, Slower bool
}

// DependencyRow is one hop's critical-path change.
type DependencyRow struct {
	Label                                  string
	BeforeMs, AfterMs, DeltaMs             float64
	BeforeTailMs, AfterTailMs, TailDeltaMs float64
	// TailShare is |TailDeltaMs| over the largest |TailDeltaMs|, for the bar.
	TailShare float64
}

// verdictWord heads a comparison's summary.
func verdictWord(v string) string {
	switch v {
	case "regressed":
		return "Regression"
	case "improved":
		return "Improvement"
	case "new":
		return "New — no baseline"
	default:
		return "No significant change"
	}
}

// deployKind is a marker's kind for data attributes: "first_seen" or
// "deploy", as the API names them.
func deployKind(firstSeen bool) string {
	if firstSeen {
		return "first_seen"
	}
	return "deploy"
}

// signedMs writes a change with its sign: "+420 ms", "−3 ms".
func signedMs(v float64) string {
	if v > 0 {
		return "+" + ms(v)
	}
	return ms(v)
}

// signedPct writes a percent change: "+330%".
func signedPct(v float64) string {
	s := strconv.FormatFloat(v, 'f', 0, 64) + "%"
	if v > 0 {
		return "+" + s
	}
	return s
}

// sig writes a p-value with two significant digits.
func sig(p float64) string { return strconv.FormatFloat(p, 'g', 2, 64) }
