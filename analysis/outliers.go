package analysis

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/tailscope/tailscope/store"
)

// Outlier analysis: what do the slowest requests of an endpoint share, and
// what would fixing it be worth? The phases live in their own files:
//
//  1. Sample (outliers_sample.go). Outliers are the requests at or above
//     the p99 (or the percentile or threshold the caller gives). Every
//     outlier is examined, with weighted samples of the rest at evenly
//     spaced ranks of the duration order: the requests around the median
//     (p25–p75, the baseline), those between p90 and the threshold, and a
//     few from the rest. Each examined request stands for its stratum's
//     weight, so the examined ones estimate the whole population.
//  2. Examine (outliers_examine.go). Each examined request's critical path
//     (asynchronous work excluded, see critpath.go) is split by dependency
//     (a span's Dependency, or its service for time in the service's own
//     code); its own time per dependency is kept too, and its dimension
//     values (tenant, payload bucket, versions, hosts, attributes).
//  3. Dimensions (outliers_dims.go). A dependency's typical time is its
//     median over the baseline; a request's excess on it is how far it is
//     above that, and its dominant dependency the one with the largest
//     excess. Each dimension value's share among outliers is compared with
//     its share among all requests below the threshold (one-sided Fisher,
//     Benjamini–Hochberg within each dimension). The dependency dimension
//     is not tested that way — outliers are chosen by duration, so they are
//     slow on something by construction — but by whether its slow calls are
//     more frequent than its typical spread predicts (a tail test).
//  4. Groups (outliers_groups.go). Outliers are clustered by dominant
//     dependency. A value qualifies a cluster only when it adds
//     explanatory power conditional on the qualifiers already chosen:
//     requests with it are affected on the dependency far more often than
//     requests without it. Each group has a test of its own; groups that
//     fail it are not causes. Every request belongs to at most one group.
//  5. Payoff (outliers_payoff.go). A group's counterfactual p99 removes its
//     own requests' excess; payoffs are Shapley values of "p99 drop when a
//     set of groups is fixed", so they add up exactly to the drop from
//     fixing every group, shown as FixAllP99Ms.

// Defaults and limits of OutlierQuery.
const (
	DefaultOutlierPercentile = 99.0
	defaultBaselineSize      = 1000
	defaultNearSize          = 1000
	defaultRestSize          = 500
	defaultMaxOutliers       = 5000
	defaultMaxExamples       = 5
	maxExamplesLimit         = 100
	maxSampleSize            = 20000
	maxDimRows               = 25
	// significance is the false discovery rate, within one dimension, at
	// which a dimension value is marked significant.
	significance = 0.05
)

// OutlierQuery selects an endpoint, a window and what counts as an outlier.
type OutlierQuery struct {
	Service  string
	Endpoint string
	From, To time.Time
	// Percentile (0 < p < 100, default 99) defines outliers as requests at
	// or above it. ThresholdMs > 0 instead defines them as requests at or
	// above that duration. Give at most one.
	Percentile  float64
	ThresholdMs float64
	// BaselineSize is how many requests around the median are examined
	// (default 1000); NearSize how many between p90 and the threshold
	// (default 1000). MaxOutliers caps the outliers examined (default
	// 5000; beyond it they are sampled).
	BaselineSize int
	NearSize     int
	MaxOutliers  int
	// MaxExamples is the number of example trace ids per group (default 5).
	MaxExamples int
	// Attributes are attribute keys to use as dimensions; nil discovers
	// low-cardinality attributes of the entry span and its resource, and
	// an empty non-nil slice uses none.
	Attributes []string
}

// OutlierReport is the body of GET /api/v1/outliers.
type OutlierReport struct {
	Service  string    `json:"service"`
	Endpoint string    `json:"endpoint"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	// Percentile is the percentile outliers were defined by, 0 when a
	// threshold was given.
	Percentile  float64 `json:"percentile"`
	ThresholdMs float64 `json:"threshold_ms"`
	// RequestCount and OutlierCount are the requests the window's stored
	// ones stand for: with sampled streams (Weighted) each stored request
	// counts its sampling weight (store.CountWeight), and the percentiles
	// and threshold are those of that population, not of the sample.
	RequestCount int     `json:"request_count"`
	P50Ms        float64 `json:"p50_ms"`
	P99Ms        float64 `json:"p99_ms"`
	OutlierCount int     `json:"outlier_count"`
	// Weighted is true when a stored request had a sampling weight above
	// one; SampledCount is then how many were stored (the evidence the
	// tests rest on), fewer than RequestCount.
	Weighted     bool `json:"weighted"`
	SampledCount int  `json:"sampled_count"`
	// AnalyzedOutlierCount is how many outliers had their trace examined
	// (fewer than OutlierCount when capped or when traces are missing).
	AnalyzedOutlierCount int `json:"analyzed_outlier_count"`
	BaselineCount        int `json:"baseline_count"`
	// Groups are the causes found, largest payoff first. Each analysed
	// outlier is in at most one group.
	Groups []OutlierGroup `json:"groups"`
	// UngroupedCount is the analysed outliers in no group.
	UngroupedCount int `json:"ungrouped_count"`
	// NoDominantCause is true when no group passed its test: the tail is
	// spread over ordinary variation, and Verdict says across what.
	NoDominantCause bool `json:"no_dominant_cause"`
	// Verdict is the one-sentence answer: the top cause and its payoff, or
	// "No dominant cause: the tail is spread across …".
	Verdict string `json:"verdict"`
	// FixAllP99Ms is the p99 with every group's excess removed, and
	// FixAllPayoffMs what that saves; the groups' payoffs add up to it.
	FixAllP99Ms    float64 `json:"fix_all_p99_ms"`
	FixAllPayoffMs float64 `json:"fix_all_payoff_ms"`
	// Dimensions maps a dimension name (dependency, tenant, payload,
	// version, host, attr:KEY) to its values, most over-represented first.
	Dimensions map[string][]DimensionValue `json:"dimensions"`
	// DependencyExcess is the mean excess critical-path time per
	// dependency over the analysed outliers, largest first.
	DependencyExcess []DependencyExcess `json:"dependency_excess"`
}

// OutlierGroup is a cause: outliers slow on one dependency, qualified by
// the values that explain which requests are affected.
type OutlierGroup struct {
	// Dimension and Value name the cause's dependency; DimensionValues
	// holds it together with its qualifiers, e.g.
	// {"dependency": "profile-svc", "tenant": "acme"}.
	Dimension       string            `json:"dimension"`
	Value           string            `json:"value"`
	DimensionValues map[string]string `json:"dimension_values"`
	Label           string            `json:"label"`
	// Count is the analysed outliers in the group; Share is Count over
	// the analysed outliers.
	Count int     `json:"count"`
	Share float64 `json:"share"`
	// ExcessMs is the mean excess critical-path time on the group's
	// dependency per outlier of the group; TotalExcessMs the sum.
	ExcessMs      float64 `json:"excess_ms"`
	TotalExcessMs float64 `json:"total_excess_ms"`
	// CounterfactualP99Ms is the p99 with the excess removed from the
	// group's own requests (outliers and, estimated from the examined
	// sample, affected requests below the threshold), every other group
	// left as it is. Removing excess is exact for a sequential call; when
	// the call ran in parallel with others, another branch may become
	// critical, so it is a lower bound on the p99.
	CounterfactualP99Ms float64 `json:"counterfactual_p99_ms"`
	// PayoffMs is the group's share of the p99 drop from fixing every
	// group (its Shapley value: the drop it adds, averaged over every
	// order of fixing the groups). Payoffs add up to
	// OutlierReport.FixAllPayoffMs, so they can be summed and ranked.
	PayoffMs float64 `json:"payoff_ms"`
	// PValue is the group's own test: for a qualified group, one-sided
	// Fisher of "affected" between requests with and without its values;
	// for a dependency alone, the tail test of its slow calls against its
	// typical spread. Evidence says it in words.
	PValue          float64         `json:"p_value"`
	Evidence        string          `json:"evidence"`
	ExampleTraceIDs []store.TraceID `json:"example_trace_ids"`
}

// DimensionValue compares one value's share among outliers and among the
// other requests. For the dependency dimension the counts are requests
// slow on it (outliers, and the requests around the median), and the test
// is the tail test (see OutlierReport's phases). For every other
// dimension "baseline" is all requests below the outlier threshold,
// estimated from the examined ones weighted by their stratum, and
// BaselineCount is that estimate scaled to the sample's effective size: a
// band around the median is skewed when tenants or payloads differ in
// latency, which would hide a tenant that is simply common.
type DimensionValue struct {
	Value         string  `json:"value"`
	OutlierCount  int     `json:"outlier_count"`
	BaselineCount int     `json:"baseline_count"`
	OutlierShare  float64 `json:"outlier_share"`
	BaselineShare float64 `json:"baseline_share"`
	// Lift is OutlierShare over BaselineShare, with half a request added
	// to each count so a value absent from the baseline has a finite lift.
	Lift float64 `json:"lift"`
	// PValue is one-sided (is the value over-represented among outliers?
	// for the dependency dimension: are its slow calls more frequent than
	// its spread predicts?); QValue the Benjamini–Hochberg adjusted value
	// within the value's dimension; Significant is QValue < 0.05.
	PValue      float64 `json:"p_value"`
	QValue      float64 `json:"q_value"`
	Significant bool    `json:"significant"`
	// MeanExcessMs is, for the dependency dimension, the mean excess on
	// that dependency over all analysed outliers.
	MeanExcessMs float64 `json:"mean_excess_ms,omitempty"`
	// notMode marks a dependency whose slow calls are not a mode of their
	// own (too few, too close to its body): never significant, whatever
	// its p-value.
	notMode bool
}

// DependencyExcess is how much of the outliers' excess one dependency
// accounts for.
type DependencyExcess struct {
	Dependency   string  `json:"dependency"`
	TypicalMs    float64 `json:"typical_ms"`
	MeanExcessMs float64 `json:"mean_excess_ms"`
	// Share is this dependency's part of all excess over the outliers.
	Share float64 `json:"share"`
}

// Stored returns how many stored requests the report rests on: SampledCount,
// or RequestCount for a report saved before SampledCount existed.
func (r OutlierReport) Stored() int {
	if r.SampledCount == 0 {
		return r.RequestCount
	}
	return r.SampledCount
}

// SampledNote says, for a report of a sampled stream, that its counts and
// percentiles are estimates and from how many stored requests; "" otherwise.
func (r OutlierReport) SampledNote() string {
	if !r.Weighted {
		return ""
	}
	return fmt.Sprintf("estimated from %d sampled requests, each counted as many times as its sampler's rate says", r.SampledCount)
}

func (q *OutlierQuery) normalize() error {
	if err := checkWindow(q.Service, q.From, q.To); err != nil {
		return err
	}
	if q.Endpoint == "" {
		return invalidf("endpoint is required: outliers compare requests of one endpoint")
	}
	switch {
	case math.IsNaN(q.Percentile) || math.IsNaN(q.ThresholdMs):
		return invalidf("percentile and threshold must be numbers")
	case q.Percentile != 0 && q.ThresholdMs != 0:
		return invalidf("give a percentile or a threshold, not both")
	case q.ThresholdMs < 0 || math.IsInf(q.ThresholdMs, 0):
		return invalidf("threshold %g ms: want a positive duration", q.ThresholdMs)
	case q.Percentile < 0 || q.Percentile >= 100:
		return invalidf("percentile %g: want a value above 0 and below 100", q.Percentile)
	}
	if q.Percentile == 0 && q.ThresholdMs == 0 {
		q.Percentile = DefaultOutlierPercentile
	}
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{
		{"baseline size", &q.BaselineSize, defaultBaselineSize},
		{"near size", &q.NearSize, defaultNearSize},
		{"max outliers", &q.MaxOutliers, defaultMaxOutliers},
	} {
		if *f.v < 0 || *f.v > maxSampleSize {
			return invalidf("%s %d: want 0 to %d", f.name, *f.v, maxSampleSize)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if q.MaxExamples < 0 || q.MaxExamples > maxExamplesLimit {
		return invalidf("max examples %d: want 0 to %d", q.MaxExamples, maxExamplesLimit)
	}
	if q.MaxExamples == 0 {
		q.MaxExamples = defaultMaxExamples
	}
	return nil
}

// outlierRun holds the state of one Outliers call; each phase's file adds
// its methods.
type outlierRun struct {
	q       OutlierQuery
	samples []store.Sample
	ord     []durIdx // samples by duration
	strata  [numStrata]stratum
	iT      int // first position at or above the threshold
	trace   []exTrace
	deps    dependencies
	dims    []*dimension
	// owner is the service a version or host value belongs to: a version
	// or host qualifies a cause only when it is its dependency's or
	// caller's.
	owner map[dimVal][]string
	nOut  int // examined outliers
	nBase int // examined baseline requests
	nComp int // examined requests below the threshold (all strata but outliers)
	// cw holds cumulative sampling weights along ord (cw[i]: the requests
	// ord[:i] stand for); nil when every weight is 1, the usual case.
	cw cumWeights
	// cut is, per dependency, the excess from which a request counts as
	// affected by a cause on it (see outliers_groups.go).
	cut []int64
	// groups are the causes found, in discovery order.
	groups []*groupDef
	// starts holds the start time at each position of ord, built by the
	// burst test's first use: its draws read random positions, and reading
	// them from samples (wide rows) missed the cache on nearly every one.
	starts []int64
}

// Outliers finds the requests of an endpoint at or above the p99 (or the
// query's percentile or threshold) and what they have in common.
func Outliers(ctx context.Context, src SpanSource, q OutlierQuery) (OutlierReport, error) {
	if err := q.normalize(); err != nil {
		return OutlierReport{}, err
	}
	samples, err := src.Samples(ctx, store.SampleQuery{Service: q.Service, Endpoint: q.Endpoint, From: q.From, To: q.To})
	if err != nil {
		return OutlierReport{}, fmt.Errorf("analysis: outliers: read samples: %w", err)
	}
	r := &outlierRun{q: q, samples: samples, owner: map[dimVal][]string{}}
	r.deps.init()
	r.order()
	rep := r.baseReport()
	if len(r.ord) == 0 {
		rep.Verdict = "No requests in the window."
		return rep, nil
	}
	r.stratify()
	if err := r.examine(ctx, src); err != nil {
		return OutlierReport{}, err
	}
	r.computeTypical()
	rep.Dimensions = r.dimensionTables()
	rep.DependencyExcess = r.dependencyExcess()
	r.findGroups()
	r.payoffs(&rep)
	rep.AnalyzedOutlierCount = r.nOut
	rep.BaselineCount = r.nBase
	rep.Verdict = verdict(rep)
	return rep, nil
}
