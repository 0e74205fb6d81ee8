package analysis

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tailscope/tailscope/store"
)

// Outlier analysis: what do the slowest requests of an endpoint share?
//
// 1. Outliers are the requests at or above the p99 (or the percentile or
//    threshold the caller gives); the typical requests are a sample of
//    those between p25 and p75, "around the median".
// 2. Every examined request's critical path is split by dependency (a
//    span's Dependency, or its service for time in the service's own
//    code). A dependency's typical time is its median over the typical
//    requests, and a request's excess on it is how far it is above that.
// 3. For every dimension (dependency, tenant, payload size bucket,
//    version, host, low-cardinality attributes) each value's share among
//    outliers is compared with its share among all requests below the
//    threshold (estimated from the examined ones, weighted; for the
//    dependency dimension, among the typical requests): lift, Fisher's
//    exact test, and Benjamini–Hochberg q-values across all values tested.
// 4. Outliers are grouped by their dominant cause: the dependency with the
//    largest excess, refined by the values that most of that cluster share
//    and the baseline mostly does not (tenant=acme). Each group's
//    counterfactual p99 is the p99 recomputed with that excess removed
//    from the group's requests.
//
// Requests between p90 and the threshold, and a few from the rest of the
// distribution, are examined too (sampled, with weights): when a cause
// affects more than the top 1%, fixing it also moves requests just below
// the threshold, and a counterfactual built from the outliers alone would
// say fixing it changes nothing. Samples are taken at evenly spaced ranks
// of the duration order, so they are deterministic and cover each stratum
// evenly.

// Defaults of OutlierQuery.
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
	traceBatch               = 500
	// significance is the false discovery rate at which a dimension value
	// is marked significant.
	significance = 0.05
)

// Grouping thresholds. A refinement value must be shared by most of a
// cluster (refineMinShare), be over-represented against the requests below
// the threshold (refineMinLift) and pass Fisher's test at refineMaxP. The
// lift bar is modest because a common value cannot have a large lift: a
// tenant with 46% of the traffic tops out at 2.2 even when every outlier
// is theirs; the test's level carries the evidence.
const (
	refineMinShare = 0.5
	refineMinLift  = 1.5
	refineMaxP     = 5e-3
	maxRefinements = 3
	minGroupShare  = 0.03
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
	Percentile   float64 `json:"percentile"`
	ThresholdMs  float64 `json:"threshold_ms"`
	RequestCount int     `json:"request_count"`
	P50Ms        float64 `json:"p50_ms"`
	P99Ms        float64 `json:"p99_ms"`
	OutlierCount int     `json:"outlier_count"`
	// AnalyzedOutlierCount is how many outliers had their trace examined
	// (fewer than OutlierCount when capped or when traces are missing).
	AnalyzedOutlierCount int `json:"analyzed_outlier_count"`
	BaselineCount        int `json:"baseline_count"`
	// Groups are the outliers grouped by dominant cause, largest payoff
	// first.
	Groups []OutlierGroup `json:"groups"`
	// UngroupedCount is the analysed outliers in no group (causes too rare
	// to call a pattern).
	UngroupedCount int `json:"ungrouped_count"`
	// Dimensions maps a dimension name (dependency, tenant, payload,
	// version, host, attr:KEY) to its values, most over-represented first.
	Dimensions map[string][]DimensionValue `json:"dimensions"`
	// DependencyExcess is the mean excess critical-path time per
	// dependency over the analysed outliers, largest first.
	DependencyExcess []DependencyExcess `json:"dependency_excess"`
}

// OutlierGroup is a set of outliers with the same dominant cause.
type OutlierGroup struct {
	// Dimension and Value name the cause's dependency; DimensionValues
	// holds it together with the values that refine it, e.g.
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
	// CounterfactualP99Ms is the p99 with that excess removed from every
	// request of the group (outliers and, estimated from the examined
	// sample, requests below the threshold); PayoffMs is how much p99 that
	// saves. Removing excess is exact for a sequential call; when the call
	// ran in parallel with others, another branch may become critical, so
	// the payoff is an upper bound.
	CounterfactualP99Ms float64         `json:"counterfactual_p99_ms"`
	PayoffMs            float64         `json:"payoff_ms"`
	ExampleTraceIDs     []store.TraceID `json:"example_trace_ids"`
}

// DimensionValue compares one value's share among outliers and among the
// other requests. For the dependency dimension "baseline" is the requests
// around the median (a dependency is "slow" relative to its typical time
// there). For every other dimension it is all requests below the outlier
// threshold, estimated from the examined ones weighted by their stratum,
// and BaselineCount is that estimate scaled to the examined count: a
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
	// PValue is Fisher's exact test (two-sided); QValue the
	// Benjamini–Hochberg adjusted value across every value of every
	// dimension in the report; Significant is QValue < 0.05.
	PValue      float64 `json:"p_value"`
	QValue      float64 `json:"q_value"`
	Significant bool    `json:"significant"`
	// MeanExcessMs is, for the dependency dimension, the mean excess on
	// that dependency over all analysed outliers.
	MeanExcessMs float64 `json:"mean_excess_ms,omitempty"`
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

// For the dependency dimension, a request counts as "slow on d" when its
// critical time on d exceeds both d's typical time and its p95 over the
// baseline by a tolerance, so about 5% of the baseline at most is slow on
// any dependency and noise of a few microseconds never counts.
const slowTolMinNs = int64(time.Millisecond)

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

// Strata of the duration order.
const (
	stratRest = iota
	stratBaseline
	stratNear
	stratOutlier
	numStrata
)

// stratum is a set of positions in the duration order, of which picked
// ones are examined; each examined request stands for weight requests.
type stratum struct {
	ranges   [][2]int
	size     int
	picked   []int
	examined int
	weight   float64
}

// exTrace is what the analysis knows about one examined request.
type exTrace struct {
	pos     int // position in the duration order
	sample  int32
	dur     int64
	stratum int8
	deps    []depNs // critical time per dependency, by dependency id
	vals    []dimVal
	// dominant is the dependency with the largest excess (-1 when none
	// exceeds its typical time); domEx that excess.
	dominant int32
	domEx    int64
	group    int32 // index into groups, -1 when none
}

type depNs struct {
	dep int32
	ns  int64
}

func (t *exTrace) depTime(d int32) int64 {
	for _, x := range t.deps {
		if x.dep == d {
			return x.ns
		}
	}
	return 0
}

func (t *exTrace) has(dim, val int32) bool {
	for _, v := range t.vals {
		if v.dim == dim && v.val == val {
			return true
		}
	}
	return false
}

// outlierRun holds the state of one Outliers call.
type outlierRun struct {
	q       OutlierQuery
	samples []store.Sample
	ord     []durIdx // samples by duration
	strata  [numStrata]stratum
	iT      int // first position at or above the threshold
	trace   []exTrace
	depIDs  map[string]int32
	depName []string
	verIDs  map[hopKey]int32 // downstream "service@version" values
	dims    []*dimension
	typical []int64 // per dependency: median over the baseline
	slowAt  []int64 // per dependency: "slow" cut-off
	nOut    int     // examined outliers
	nBase   int     // examined baseline requests
	nComp   int     // examined requests below the threshold (all strata but outliers)
	groups  []*groupDef
}

type durIdx struct {
	d int64
	i int32
}

// groupDef is a cause: a dependency and refining values.
type groupDef struct {
	dep     int32
	refine  []dimVal
	members []int // indexes into outlierRun.trace (outliers only)
	// excluded are refinements of earlier groups of the same dependency:
	// a residual group is "d, but not the refined causes already named".
	excluded [][]dimVal
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
	r := &outlierRun{q: q, samples: samples, depIDs: map[string]int32{}, verIDs: map[hopKey]int32{}}
	r.order()
	rep := r.baseReport()
	if len(r.ord) == 0 {
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
	rep.Groups, rep.UngroupedCount = r.groupReports()
	rep.AnalyzedOutlierCount = r.nOut
	rep.BaselineCount = r.nBase
	return rep, nil
}

// order sorts the window's samples by duration (ties by input order,
// which stores give by start time).
func (r *outlierRun) order() {
	f, t := r.q.From.UnixNano(), r.q.To.UnixNano()
	r.ord = make([]durIdx, 0, len(r.samples))
	for i := range r.samples {
		s := &r.samples[i]
		if s.StartUnixNano < f || s.StartUnixNano >= t {
			continue
		}
		r.ord = append(r.ord, durIdx{d: max(s.DurationNano, 0), i: int32(i)})
	}
	slices.SortFunc(r.ord, func(a, b durIdx) int {
		if c := cmp.Compare(a.d, b.d); c != 0 {
			return c
		}
		return cmp.Compare(a.i, b.i)
	})
}

// at returns the duration at a position of the order.
func (r *outlierRun) at(pos int) int64 { return r.ord[pos].d }

// lowerBound returns the first position with duration ≥ d.
func (r *outlierRun) lowerBound(d int64) int {
	i, _ := slices.BinarySearchFunc(r.ord, d, func(x durIdx, t int64) int { return cmp.Compare(x.d, t) })
	return i
}

func (r *outlierRun) baseReport() OutlierReport {
	rep := OutlierReport{
		Service: r.q.Service, Endpoint: r.q.Endpoint, From: r.q.From.UTC(), To: r.q.To.UTC(),
		Percentile: r.q.Percentile, ThresholdMs: r.q.ThresholdMs, RequestCount: len(r.ord),
		Groups: []OutlierGroup{}, Dimensions: map[string][]DimensionValue{}, DependencyExcess: []DependencyExcess{},
	}
	n := len(r.ord)
	if n == 0 {
		return rep
	}
	rep.P50Ms = round3(nsToMs(r.at(rankIndex(n, 0.50))))
	rep.P99Ms = round3(nsToMs(r.at(rankIndex(n, 0.99))))
	if r.q.ThresholdMs > 0 {
		r.iT = r.lowerBound(int64(math.Ceil(r.q.ThresholdMs * 1e6)))
	} else {
		thr := r.at(rankIndex(n, r.q.Percentile/100))
		r.iT = r.lowerBound(thr)
		rep.ThresholdMs = round3(nsToMs(thr))
	}
	rep.OutlierCount = n - r.iT
	return rep
}

// stratify splits the duration order into strata and picks the requests
// to examine: outliers [iT, n), near [p90, iT), baseline [p25, p75) and
// the rest, each boundary clipped to the threshold.
func (r *outlierRun) stratify() {
	n := len(r.ord)
	clip := func(i int) int { return min(i, r.iT) }
	b25 := clip(r.lowerBound(r.at(rankIndex(n, 0.25))))
	b75 := clip(max(r.lowerBound(r.at(rankIndex(n, 0.75))), b25))
	b90 := clip(max(r.lowerBound(r.at(rankIndex(n, 0.90))), b75))
	if b75 == b25 {
		// Too few distinct durations for a band: use everything below.
		b25, b75 = 0, b90
	}
	r.strata[stratRest].ranges = [][2]int{{0, b25}, {b75, b90}}
	r.strata[stratBaseline].ranges = [][2]int{{b25, b75}}
	r.strata[stratNear].ranges = [][2]int{{b90, r.iT}}
	r.strata[stratOutlier].ranges = [][2]int{{r.iT, n}}
	want := [numStrata]int{defaultRestSize, r.q.BaselineSize, r.q.NearSize, r.q.MaxOutliers}
	for k := range r.strata {
		s := &r.strata[k]
		for _, rg := range s.ranges {
			s.size += max(rg[1]-rg[0], 0)
		}
		s.picked = pickEvenly(s.ranges, s.size, want[k])
	}
}

// pickEvenly returns k positions at evenly spaced ranks of the union of
// ranges (all of them when k ≥ size).
func pickEvenly(ranges [][2]int, size, k int) []int {
	k = min(k, size)
	out := make([]int, 0, k)
	for j := range k {
		off := int((float64(j) + 0.5) * float64(size) / float64(k))
		for _, rg := range ranges {
			w := max(rg[1]-rg[0], 0)
			if off < w {
				out = append(out, rg[0]+off)
				break
			}
			off -= w
		}
	}
	return out
}

// examine fetches the picked requests' traces and computes their critical
// path by dependency and their dimension values.
func (r *outlierRun) examine(ctx context.Context, src SpanSource) error {
	var ids []store.TraceID
	for k := range r.strata {
		for _, pos := range r.strata[k].picked {
			ids = append(ids, r.samples[r.ord[pos].i].TraceID)
		}
	}
	traces := make(map[store.TraceID][]store.Span, len(ids))
	for start := 0; start < len(ids); start += traceBatch {
		got, err := src.Traces(ctx, ids[start:min(start+traceBatch, len(ids))])
		if err != nil {
			return fmt.Errorf("analysis: outliers: read traces: %w", err)
		}
		for id, sp := range got {
			traces[id] = sp
		}
	}
	r.dims = []*dimension{newDimension(DimTenant), newDimension(DimPayload), newDimension(DimVersion), newDimension(DimHost)}
	attrDim := map[string]int32{}
	explicit := r.q.Attributes != nil
	for _, k := range r.q.Attributes {
		if _, ok := attrDim[k]; !ok && k != "" {
			attrDim[k] = int32(len(r.dims))
			r.dims = append(r.dims, newDimension(attrDimPrefix+k))
		}
	}
	cache := attrCache{m: map[string][]attrKV{}}
	// Attribute values are collected first and turned into dimensions
	// once their cardinality is known.
	pending := map[int][]attrKV{}
	var e cpEngine
	for k := range r.strata {
		s := &r.strata[k]
		for _, pos := range s.picked {
			si := r.ord[pos].i
			smp := &r.samples[si]
			spans, ok := traces[smp.TraceID]
			if !ok || !e.compute(spans, smp.SpanID) {
				continue
			}
			s.examined++
			t := exTrace{pos: pos, sample: si, dur: r.ord[pos].d, stratum: int8(k), dominant: -1, group: -1}
			e.hopTimes(func(sp *store.Span, ns int64) {
				key := sp.Dependency
				if key == "" {
					key = sp.Service
				}
				id, ok := r.depIDs[key]
				if !ok {
					id = int32(len(r.depName))
					r.depIDs[key] = id
					r.depName = append(r.depName, key)
				}
				for i := range t.deps {
					if t.deps[i].dep == id {
						t.deps[i].ns += ns
						return
					}
				}
				t.deps = append(t.deps, depNs{id, ns})
			})
			r.fixedDims(&t, smp, spans, &e)
			entry := e.rootSpan()
			kv := append(slices.Clone(cache.scalars(entry.Attributes)), cache.scalars(entry.Resource)...)
			if explicit {
				for _, a := range kv {
					if d, ok := attrDim[a.key]; ok {
						t.vals = appendUnique(t.vals, dimVal{d, r.dims[d].id(a.val)})
					}
				}
			} else if len(kv) > 0 {
				pending[len(r.trace)] = kv
			}
			switch k {
			case stratOutlier:
				r.nOut++
			case stratBaseline:
				r.nBase++
			}
			if k != stratOutlier {
				r.nComp++
			}
			r.trace = append(r.trace, t)
		}
		if s.examined > 0 {
			s.weight = float64(s.size) / float64(s.examined)
		}
	}
	if !explicit {
		r.discoverAttributes(pending)
	}
	return nil
}

// fixedDims records tenant, payload bucket, versions and hosts of the
// request's subtree.
func (r *outlierRun) fixedDims(t *exTrace, smp *store.Sample, spans []store.Span, e *cpEngine) {
	tenant, payload := smp.Tenant, smp.PayloadBytes
	if smp.Version != "" {
		t.vals = appendUnique(t.vals, dimVal{dimVersionIdx, r.dims[dimVersionIdx].id(smp.Version)})
	}
	if smp.Host != "" {
		t.vals = appendUnique(t.vals, dimVal{dimHostIdx, r.dims[dimHostIdx].id(smp.Host)})
	}
	for _, ni := range e.order {
		sp := e.tree.Span(ni)
		if tenant == "" {
			tenant = sp.Tenant
		}
		payload = max(payload, sp.PayloadBytes)
		if sp.Service != smp.Service && sp.Version != "" {
			k := hopKey{sp.Service, sp.Version}
			id, ok := r.verIDs[k]
			if !ok {
				// Interned per (service, version): no string building per span.
				id = r.dims[dimVersionIdx].id(sp.Service + "@" + sp.Version)
				r.verIDs[k] = id
			}
			t.vals = appendUnique(t.vals, dimVal{dimVersionIdx, id})
		}
		if sp.Host != "" {
			t.vals = appendUnique(t.vals, dimVal{dimHostIdx, r.dims[dimHostIdx].id(sp.Host)})
		}
	}
	if tenant == "" {
		tenant = "(none)"
	}
	t.vals = append(t.vals,
		dimVal{dimTenantIdx, r.dims[dimTenantIdx].id(tenant)},
		dimVal{dimPayloadIdx, r.dims[dimPayloadIdx].id(PayloadBucket(payload))})
}

func appendUnique(vs []dimVal, v dimVal) []dimVal {
	if slices.Contains(vs, v) {
		return vs
	}
	return append(vs, v)
}

// discoverAttributes keeps attribute keys with 2 to maxAttrValues distinct
// values among outliers and baseline as dimensions.
func (r *outlierRun) discoverAttributes(pending map[int][]attrKV) {
	distinct := map[string]map[string]bool{}
	for ti, kv := range pending {
		if st := r.trace[ti].stratum; st != stratOutlier && st != stratBaseline {
			continue
		}
		for _, a := range kv {
			m := distinct[a.key]
			if m == nil {
				m = map[string]bool{}
				distinct[a.key] = m
			}
			if len(m) <= maxAttrValues {
				m[a.val] = true
			}
		}
	}
	var keys []string
	for k, m := range distinct {
		if len(m) >= 2 && len(m) <= maxAttrValues && !identifierKey(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	keys = keys[:min(len(keys), maxAttrDims)]
	attrDim := map[string]int32{}
	for _, k := range keys {
		attrDim[k] = int32(len(r.dims))
		r.dims = append(r.dims, newDimension(attrDimPrefix+k))
	}
	// Walk traces in order so value ids do not depend on map order.
	for ti := range r.trace {
		for _, a := range pending[ti] {
			if d, ok := attrDim[a.key]; ok {
				r.trace[ti].vals = appendUnique(r.trace[ti].vals, dimVal{d, r.dims[d].id(a.val)})
			}
		}
	}
}

// computeTypical sets each dependency's typical (median) time and slow
// cut-off over the baseline, and each examined request's dominant excess.
func (r *outlierRun) computeTypical() {
	nd := len(r.depName)
	r.typical = make([]int64, nd)
	r.slowAt = make([]int64, nd)
	var base []*exTrace
	for i := range r.trace {
		if r.trace[i].stratum == stratBaseline {
			base = append(base, &r.trace[i])
		}
	}
	p50 := r.at(rankIndex(len(r.ord), 0.5))
	tol := max(slowTolMinNs, p50/50)
	vals := make([]int64, len(base))
	for d := range nd {
		for i, t := range base {
			vals[i] = t.depTime(int32(d))
		}
		slices.Sort(vals)
		r.typical[d] = Quantile(vals, 0.5)
		r.slowAt[d] = max(r.typical[d], Quantile(vals, 0.95)) + tol
	}
	for i := range r.trace {
		t := &r.trace[i]
		for _, x := range t.deps {
			ex := x.ns - r.typical[x.dep]
			if ex <= 0 {
				continue
			}
			if ex > t.domEx || (ex == t.domEx && r.depName[x.dep] < r.depName[t.dominant]) {
				t.dominant, t.domEx = x.dep, ex
			}
		}
	}
}

// excess returns a request's excess on dependency d.
func (r *outlierRun) excess(t *exTrace, d int32) int64 {
	return max(t.depTime(d)-r.typical[d], 0)
}

// dimensionTables compares each value's share among outliers and baseline.
func (r *outlierRun) dimensionTables() map[string][]DimensionValue {
	type row struct {
		dim string
		v   DimensionValue
	}
	var rows []row
	nOut, nBase := r.nOut, r.nBase
	mk := func(dim, value string, oc, bc int) row {
		v := DimensionValue{Value: value, OutlierCount: oc, BaselineCount: bc}
		if nOut > 0 {
			v.OutlierShare = round4(float64(oc) / float64(nOut))
		}
		if nBase > 0 {
			v.BaselineShare = round4(float64(bc) / float64(nBase))
		}
		v.Lift = round3(lift(oc, nOut, bc, nBase))
		v.PValue = fisherExact(oc, nOut-oc, bc, nBase-bc)
		return row{dim, v}
	}
	// Dependencies: how many requests were slow on each.
	for d, name := range r.depName {
		oc, bc := 0, 0
		var exSum int64
		for i := range r.trace {
			t := &r.trace[i]
			slow := t.depTime(int32(d)) > r.slowAt[d]
			switch t.stratum {
			case stratOutlier:
				exSum += r.excess(t, int32(d))
				if slow {
					oc++
				}
			case stratBaseline:
				if slow {
					bc++
				}
			}
		}
		rw := mk(DimDependency, name, oc, bc)
		if nOut > 0 {
			rw.v.MeanExcessMs = round3(float64(exSum) / float64(nOut) / 1e6)
		}
		rows = append(rows, rw)
	}
	nBase = r.nComp
	for di, dim := range r.dims {
		oc := r.clusterCounts(nil, int32(di), len(dim.names))
		bc := r.comparisonCounts(int32(di), len(dim.names))
		for vi, name := range dim.names {
			if oc[vi]+bc[vi] > 0 {
				rows = append(rows, mk(dim.name, name, oc[vi], bc[vi]))
			}
		}
	}
	ps := make([]float64, len(rows))
	for i, rw := range rows {
		ps[i] = rw.v.PValue
	}
	qs := benjaminiHochberg(ps)
	out := map[string][]DimensionValue{}
	for i := range rows {
		rows[i].v.PValue = roundSig(rows[i].v.PValue)
		rows[i].v.QValue = roundSig(qs[i])
		rows[i].v.Significant = qs[i] < significance
		out[rows[i].dim] = append(out[rows[i].dim], rows[i].v)
	}
	// Every fixed dimension appears, even when empty.
	for _, d := range []string{DimDependency, DimTenant, DimPayload, DimVersion, DimHost} {
		if out[d] == nil {
			out[d] = []DimensionValue{}
		}
	}
	// Significantly over-represented values first, then the rest; within
	// each, by how much more common the value is among outliers.
	over := func(v DimensionValue) bool { return v.Significant && v.OutlierShare > v.BaselineShare }
	for d, vs := range out {
		slices.SortFunc(vs, func(a, b DimensionValue) int {
			if oa, ob := over(a), over(b); oa != ob {
				if oa {
					return -1
				}
				return 1
			}
			da, db := a.OutlierShare-a.BaselineShare, b.OutlierShare-b.BaselineShare
			if c := cmp.Compare(db, da); c != 0 {
				return c
			}
			if c := cmp.Compare(a.PValue, b.PValue); c != 0 {
				return c
			}
			return cmp.Compare(a.Value, b.Value)
		})
		out[d] = vs[:min(len(vs), maxDimRows)]
	}
	return out
}

// clusterCounts counts each value of dimension di among the given traces
// (nil: every examined outlier).
func (r *outlierRun) clusterCounts(cluster []int, di int32, nvals int) []int {
	c := make([]int, nvals)
	add := func(t *exTrace) {
		for _, v := range t.vals {
			if v.dim == di {
				c[v.val]++
			}
		}
	}
	if cluster == nil {
		for i := range r.trace {
			if r.trace[i].stratum == stratOutlier {
				add(&r.trace[i])
			}
		}
		return c
	}
	for _, ti := range cluster {
		add(&r.trace[ti])
	}
	return c
}

// comparisonCounts estimates how many of the requests below the threshold
// have each value of dimension di: the examined ones weighted by their
// stratum, scaled to the number examined (r.nComp), so a test sees the
// sample size it really has.
func (r *outlierRun) comparisonCounts(di int32, nvals int) []int {
	w := make([]float64, nvals)
	total := 0.0
	for i := range r.trace {
		t := &r.trace[i]
		if t.stratum == stratOutlier {
			continue
		}
		sw := r.strata[t.stratum].weight
		total += sw
		for _, v := range t.vals {
			if v.dim == di {
				w[v.val] += sw
			}
		}
	}
	c := make([]int, nvals)
	if total == 0 {
		return c
	}
	for i := range w {
		c[i] = int(math.Round(w[i] / total * float64(r.nComp)))
	}
	return c
}

// lift is the smoothed ratio of shares; see DimensionValue.Lift. A value
// seen nowhere has lift 1: no evidence either way.
func lift(oc, nOut, bc, nBase int) float64 {
	if oc+bc == 0 {
		return 1
	}
	return ((float64(oc) + 0.5) / (float64(nOut) + 1)) / ((float64(bc) + 0.5) / (float64(nBase) + 1))
}

func (r *outlierRun) dependencyExcess() []DependencyExcess {
	if r.nOut == 0 {
		return []DependencyExcess{}
	}
	sums := make([]int64, len(r.depName))
	var total int64
	for i := range r.trace {
		t := &r.trace[i]
		if t.stratum != stratOutlier {
			continue
		}
		for _, x := range t.deps {
			ex := r.excess(t, x.dep)
			sums[x.dep] += ex
			total += ex
		}
	}
	out := make([]DependencyExcess, 0, len(sums))
	for d, s := range sums {
		de := DependencyExcess{
			Dependency:   r.depName[d],
			TypicalMs:    round3(nsToMs(r.typical[d])),
			MeanExcessMs: round3(float64(s) / float64(r.nOut) / 1e6),
		}
		if total > 0 {
			de.Share = round4(float64(s) / float64(total))
		}
		out = append(out, de)
	}
	slices.SortFunc(out, func(a, b DependencyExcess) int {
		if c := cmp.Compare(b.MeanExcessMs, a.MeanExcessMs); c != 0 {
			return c
		}
		return cmp.Compare(a.Dependency, b.Dependency)
	})
	return out
}

// findGroups clusters the examined outliers by dominant dependency and
// splits each cluster by the values most of it shares.
func (r *outlierRun) findGroups() {
	minGroup := max(2, int(math.Ceil(minGroupShare*float64(r.nOut))))
	clusters := map[int32][]int{}
	for i := range r.trace {
		t := &r.trace[i]
		if t.stratum == stratOutlier && t.dominant >= 0 {
			clusters[t.dominant] = append(clusters[t.dominant], i)
		}
	}
	deps := make([]int32, 0, len(clusters))
	for d := range clusters {
		deps = append(deps, d)
	}
	slices.SortFunc(deps, func(a, b int32) int { return cmp.Compare(r.depName[a], r.depName[b]) })
	for _, d := range deps {
		remaining := clusters[d]
		var named [][]dimVal
		for len(remaining) >= minGroup {
			ref := r.refine(remaining)
			if len(ref) == 0 || len(named) >= 3 {
				r.groups = append(r.groups, &groupDef{dep: d, members: remaining, excluded: named})
				break
			}
			var in, out []int
			for _, ti := range remaining {
				if r.matchesAll(&r.trace[ti], ref) {
					in = append(in, ti)
				} else {
					out = append(out, ti)
				}
			}
			r.groups = append(r.groups, &groupDef{dep: d, refine: ref, members: in})
			named = append(named, ref)
			remaining = out
		}
	}
	for gi, g := range r.groups {
		for _, ti := range g.members {
			r.trace[ti].group = int32(gi)
		}
	}
}

// refine returns the values that describe most of a cluster and are rare
// in the baseline: at most one per dimension, strongest first, dropping
// the weakest while they leave less than half of the cluster matching.
func (r *outlierRun) refine(cluster []int) []dimVal {
	type cand struct {
		v    dimVal
		diff float64
	}
	var cands []cand
	n := len(cluster)
	nc := r.nComp
	for di, dim := range r.dims {
		cc := r.clusterCounts(cluster, int32(di), len(dim.names))
		bc := r.comparisonCounts(int32(di), len(dim.names))
		best, bestDiff := int32(-1), 0.0
		for vi := range dim.names {
			sc := float64(cc[vi]) / float64(n)
			sb := 0.0
			if nc > 0 {
				sb = float64(bc[vi]) / float64(nc)
			}
			if sc < refineMinShare || lift(cc[vi], n, bc[vi], nc) < refineMinLift {
				continue
			}
			if fisherExact(cc[vi], n-cc[vi], bc[vi], nc-bc[vi]) >= refineMaxP {
				continue
			}
			if d := sc - sb; d > bestDiff || (d == bestDiff && best >= 0 && dim.names[vi] < dim.names[best]) {
				best, bestDiff = int32(vi), d
			}
		}
		if best >= 0 {
			cands = append(cands, cand{dimVal{int32(di), best}, bestDiff})
		}
	}
	slices.SortStableFunc(cands, func(a, b cand) int { return cmp.Compare(b.diff, a.diff) })
	cands = cands[:min(len(cands), maxRefinements)]
	ref := make([]dimVal, len(cands))
	for i, c := range cands {
		ref[i] = c.v
	}
	for len(ref) > 0 {
		m := 0
		for _, ti := range cluster {
			if r.matchesAll(&r.trace[ti], ref) {
				m++
			}
		}
		if 2*m >= n {
			break
		}
		ref = ref[:len(ref)-1]
	}
	return ref
}

func (r *outlierRun) matchesAll(t *exTrace, ref []dimVal) bool {
	for _, v := range ref {
		if !t.has(v.dim, v.val) {
			return false
		}
	}
	return true
}

// inGroup reports whether any examined request (outlier or not) has the
// cause of g: its dominant excess is on g's dependency and it matches g's
// refinement (and, for a residual group, none of its siblings').
func (r *outlierRun) inGroup(t *exTrace, g *groupDef) bool {
	if t.dominant != g.dep || !r.matchesAll(t, g.refine) {
		return false
	}
	for _, ex := range g.excluded {
		if r.matchesAll(t, ex) {
			return false
		}
	}
	return true
}

// counterfactualP99 returns the p99 of the population with g's excess
// removed (g == nil: unchanged). Examined requests stand for their
// stratum with its weight; a stratum nobody was examined in keeps its
// real durations.
func (r *outlierRun) counterfactualP99(g *groupDef) int64 {
	pop := make([]weightedValue, 0, len(r.trace)+64)
	for k := range r.strata {
		s := &r.strata[k]
		if s.examined > 0 {
			continue
		}
		for _, rg := range s.ranges {
			for pos := rg[0]; pos < rg[1]; pos++ {
				pop = append(pop, weightedValue{r.at(pos), 1})
			}
		}
	}
	for i := range r.trace {
		t := &r.trace[i]
		v := t.dur
		if g != nil && r.inGroup(t, g) {
			v -= r.excess(t, g.dep)
		}
		pop = append(pop, weightedValue{v, r.strata[t.stratum].weight})
	}
	return weightedQuantile(pop, 0.99)
}

// groupReports turns the groups into report rows, largest payoff first.
func (r *outlierRun) groupReports() ([]OutlierGroup, int) {
	out := []OutlierGroup{}
	grouped := 0
	if len(r.groups) == 0 {
		return out, r.nOut
	}
	base := r.counterfactualP99(nil)
	for _, g := range r.groups {
		dep := r.depName[g.dep]
		og := OutlierGroup{
			Dimension:       DimDependency,
			Value:           dep,
			DimensionValues: map[string]string{DimDependency: dep},
			Count:           len(g.members),
			ExampleTraceIDs: []store.TraceID{},
		}
		labels := []string{dep}
		for _, v := range g.refine {
			name := r.dims[v.dim].name
			val := r.dims[v.dim].names[v.val]
			og.DimensionValues[name] = val
			labels = append(labels, name+"="+val)
		}
		og.Label = labels[0]
		if len(labels) > 1 {
			og.Label += " for " + strings.Join(labels[1:], ", ")
		} else if len(g.excluded) > 0 {
			og.Label += " (other requests)"
		}
		var total int64
		for _, ti := range g.members {
			total += r.excess(&r.trace[ti], g.dep)
		}
		grouped += len(g.members)
		if r.nOut > 0 {
			og.Share = round4(float64(len(g.members)) / float64(r.nOut))
		}
		og.TotalExcessMs = round3(nsToMs(total))
		og.ExcessMs = round3(float64(total) / float64(len(g.members)) / 1e6)
		cf := r.counterfactualP99(g)
		og.CounterfactualP99Ms = round3(nsToMs(cf))
		og.PayoffMs = round3(nsToMs(max(base-cf, 0)))
		ex := slices.Clone(g.members)
		slices.SortFunc(ex, func(a, b int) int {
			ea, eb := r.excess(&r.trace[a], g.dep), r.excess(&r.trace[b], g.dep)
			if c := cmp.Compare(eb, ea); c != 0 {
				return c
			}
			return cmp.Compare(r.trace[a].pos, r.trace[b].pos)
		})
		for _, ti := range ex[:min(len(ex), r.q.MaxExamples)] {
			og.ExampleTraceIDs = append(og.ExampleTraceIDs, r.samples[r.trace[ti].sample].TraceID)
		}
		out = append(out, og)
	}
	slices.SortStableFunc(out, func(a, b OutlierGroup) int {
		if c := cmp.Compare(b.PayoffMs, a.PayoffMs); c != 0 {
			return c
		}
		if c := cmp.Compare(b.TotalExcessMs, a.TotalExcessMs); c != 0 {
			return c
		}
		return cmp.Compare(a.Label, b.Label)
	})
	return out, r.nOut - grouped
}
