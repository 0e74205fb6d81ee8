package analysis

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/tailscope/tailscope/store"
)

// Comparison modes.
const (
	CompareDeploy   = "deploy"   // before vs after a deploy marker
	CompareRanges   = "ranges"   // two explicit windows
	CompareVersions = "versions" // version A vs B in the same window (canary)
)

// Verdicts.
const (
	VerdictRegressed = "regressed"
	VerdictImproved  = "improved"
	VerdictNoChange  = "no significant change"
	// VerdictNew: the before side has no request, so there is nothing to
	// compare the after side with ("new — no baseline").
	VerdictNew = "new"
)

// Baselines say how much of the before side's window has data.
const (
	BaselineFull = "full"
	// BaselinePartial: the series began inside the before window (its
	// rate and percentiles come from the part with data).
	BaselinePartial = "partial"
	// BaselineNone: no request before; the comparison has no deltas.
	BaselineNone = "none"
)

// Defaults and guards of a comparison.
const (
	defaultCompareWindow = time.Hour
	defaultConfidence    = 0.95
	defaultResamples     = 2000
	maxResamples         = 20000
	defaultCompareTraces = 200
	// A percentile is only tested when each side has at least
	// minTailCount requests at or above it: a bootstrap of the p99 of 300
	// requests rests on 3 values and says nothing reliable.
	minTailCount = 10
	// Practical significance: a latency change smaller than this share of
	// the before value (or than minDeltaNs) is never called a change,
	// however large the sample; neither is an error-rate change under
	// minErrorDelta (absolute). 10%, not 5%: a live system's p50 drifts
	// by a few percent between any two windows (load, caches, neighbours),
	// and the A/A acceptance test saw one version's two halves differ by
	// +5.4% with an interval excluding zero — a true shift, but not a
	// change anyone deployed.
	minRelDelta   = 0.10
	minDeltaNs    = int64(500 * time.Microsecond)
	minErrorDelta = 0.001
)

// The verdict rests on these tests; the confidence level of each is
// corrected for their number (Bonferroni), so the chance that noise in
// any of them produces a verdict stays below 1 − Confidence.
var comparePercentiles = []float64{50, 95, 99}

// CompareQuery selects the two sides of a comparison; give exactly one of
// DeployAt, the four Before/After times, or VersionA and VersionB.
type CompareQuery struct {
	Service  string
	Endpoint string

	// Deploy: after is [DeployAt, DeployAt+Window) (cut at Now when set),
	// before is a window of the same length ending at DeployAt — or, with
	// EqualCounts, the same number of requests as after, the last ones
	// before DeployAt. In every mode Now also ends each side's time with
	// data, which its rate is averaged over (rates.go).
	DeployAt    time.Time
	Window      time.Duration
	EqualCounts bool
	Now         time.Time

	// Ranges.
	BeforeFrom, BeforeTo, AfterFrom, AfterTo time.Time

	// Versions: both in [From, To).
	VersionA, VersionB string
	From, To           time.Time

	// Confidence is the family-wise confidence of the verdict (default
	// 0.95). Resamples is the bootstrap size (default 2000), Seed its
	// random seed, so a comparison is reproducible.
	Confidence float64
	Resamples  int
	Seed       uint64
	// MaxTraces is how many traces per side are examined for critical
	// path deltas (default 200, plus up to as many of the slowest).
	MaxTraces int
}

// Comparison is the body of GET /api/v1/compare.
type Comparison struct {
	Service  string      `json:"service"`
	Endpoint string      `json:"endpoint"`
	Mode     string      `json:"mode"`
	Before   CompareSide `json:"before"`
	After    CompareSide `json:"after"`
	// Baseline is "full", "partial" (the series began inside the before
	// window) or "none" (no request before: verdict "new", and the
	// percentiles, error-rate and rank tests and dependency deltas are
	// empty or null, since there is nothing to subtract).
	Baseline string `json:"baseline"`
	// CILevel is the level of every confidence interval below: the
	// requested confidence corrected for the number of tests.
	CILevel      float64           `json:"ci_level"`
	Percentiles  []PercentileDelta `json:"percentiles"`
	MannWhitney  *MannWhitney      `json:"mann_whitney"`
	ErrorRate    *ErrorRateDelta   `json:"error_rate"`
	Throughput   ThroughputDelta   `json:"throughput"`
	Dependencies []DependencyDelta `json:"dependencies"`
	// TailPercentile is the percentile past which the dependencies' tail
	// columns are measured: the summary's headline (0 with no baseline).
	TailPercentile float64 `json:"tail_percentile"`
	// Verdict rests on the percentile intervals and the error-rate test,
	// each at CILevel and with a minimum practical effect (10% and 0.5 ms
	// for latency, 0.1 point for errors); Mann–Whitney is reported as
	// supporting evidence but a shift it alone detects is not a verdict.
	Verdict      string             `json:"verdict"`
	Reasons      []string           `json:"reasons"`
	Summary      string             `json:"summary"`
	Insufficient bool               `json:"insufficient_data"`
	Overlay      []OverlayBucket    `json:"overlay"`
	Bootstrap    BootstrapParameter `json:"bootstrap"`
}

// BootstrapParameter records how the intervals were computed.
type BootstrapParameter struct {
	Resamples int    `json:"resamples"`
	Seed      uint64 `json:"seed"`
}

// CompareSide describes one side.
type CompareSide struct {
	Label     string    `json:"label"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Version   string    `json:"version,omitempty"`
	Count     int       `json:"count"`
	Errors    int       `json:"errors"`
	ErrorRate float64   `json:"error_rate"`
	// RatePerS is Count over the side's time with data (DataSpan).
	RatePerS float64 `json:"rate_per_s"`
	DataSpan
	Percentiles Percentiles `json:"percentiles"`
	// Weighted is true when the side's requests were sampled (a weight
	// above one): Count, Errors, the rate and the percentiles are then
	// estimates of the requests the SampledCount stored ones stand for.
	Weighted     bool `json:"weighted"`
	SampledCount int  `json:"sampled_count"`
}

// PercentileDelta is the change of one percentile with a bootstrap
// confidence interval of the change.
type PercentileDelta struct {
	Percentile float64 `json:"percentile"`
	BeforeMs   float64 `json:"before_ms"`
	AfterMs    float64 `json:"after_ms"`
	DeltaMs    float64 `json:"delta_ms"`
	DeltaPct   float64 `json:"delta_pct"`
	CILowMs    float64 `json:"ci_low_ms"`
	CIHighMs   float64 `json:"ci_high_ms"`
	CILowPct   float64 `json:"ci_low_pct"`
	CIHighPct  float64 `json:"ci_high_pct"`
	// Tested is false when a side has too few requests in the tail for
	// this percentile; Significant means the interval excludes zero and
	// the change is large enough to matter.
	Tested      bool `json:"tested"`
	Significant bool `json:"significant"`
}

// ErrorRateDelta is the error-rate change with a two-proportion test.
type ErrorRateDelta struct {
	ProportionTest
	Significant bool `json:"significant"`
}

// ThroughputDelta compares request rates, each over its side's time with
// data; DeltaPct is null without a baseline.
type ThroughputDelta struct {
	BeforePerS float64  `json:"before_per_s"`
	AfterPerS  float64  `json:"after_per_s"`
	DeltaPct   *float64 `json:"delta_pct"`
}

// DependencyDelta is the change of critical-path time on one hop: mean
// per request over a sample of each side, and mean over each side's
// slowest requests (its tail: those past the comparison's
// TailPercentile, where the headline change lives).
type DependencyDelta struct {
	Service      string  `json:"service"`
	Dependency   string  `json:"dependency"`
	Label        string  `json:"label"`
	BeforeMs     float64 `json:"before_ms"`
	AfterMs      float64 `json:"after_ms"`
	DeltaMs      float64 `json:"delta_ms"`
	BeforeTailMs float64 `json:"before_tail_ms"`
	AfterTailMs  float64 `json:"after_tail_ms"`
	TailDeltaMs  float64 `json:"tail_delta_ms"`
}

// OverlayBucket is one log bucket of the before/after histogram overlay,
// with each side's cumulative share for a CDF chart.
type OverlayBucket struct {
	LowerMs   float64 `json:"lower_ms"`
	UpperMs   float64 `json:"upper_ms"`
	Before    int     `json:"before"`
	After     int     `json:"after"`
	BeforeCDF float64 `json:"before_cdf"`
	AfterCDF  float64 `json:"after_cdf"`
}

// compareSide is one side while computing.
type compareSide struct {
	CompareSide
	samples []store.Sample
	sorted  []int64
	// cw are the sampling weights along sorted (nil: all 1), nEff the
	// side's effective sample size (compare_weights.go).
	cw   cumWeights
	nEff float64
	// start and end bound the side's time with data (Unix ns).
	start, end int64
}

// Compare compares an endpoint before and after a deploy, over two
// windows, or between two versions in one window: percentile deltas with
// bootstrap confidence intervals, Mann–Whitney U, an error-rate test,
// throughput, critical-path deltas per hop, a verdict and a summary.
func Compare(ctx context.Context, src SpanSource, q CompareQuery) (Comparison, error) {
	mode, err := q.normalize()
	if err != nil {
		return Comparison{}, err
	}
	before, after, err := q.readSides(ctx, src, mode)
	if err != nil {
		return Comparison{}, err
	}
	c := Comparison{
		Service: q.Service, Endpoint: q.Endpoint, Mode: mode,
		Before: before.CompareSide, After: after.CompareSide,
		Bootstrap: BootstrapParameter{Resamples: q.Resamples, Seed: q.Seed},
		Reasons:   []string{}, Baseline: BaselineFull,
		Throughput: ThroughputDelta{BeforePerS: before.RatePerS, AfterPerS: after.RatePerS},
	}
	c.Overlay = overlay(&before, &after)
	switch {
	case before.Count == 0:
		c.noBaseline()
		return c, nil
	case before.start > before.From.UnixNano():
		c.Baseline = BaselinePartial
	}
	tests := len(comparePercentiles) + 1 // percentiles and the error rate
	alpha := (1 - q.Confidence) / float64(tests)
	c.CILevel = round4(1 - alpha)
	rng := rand.New(rand.NewPCG(q.Seed, 0x7a11_5c09e))
	for _, p := range comparePercentiles {
		c.Percentiles = append(c.Percentiles, percentileDelta(&before, &after, p, alpha, q.Resamples, rng))
	}
	mw := compareDistributions(&before, &after)
	mw.Z, mw.PValue = round4(mw.Z), roundSig(mw.PValue)
	c.MannWhitney = &mw
	pt := compareErrorRates(&before, &after)
	c.ErrorRate = &ErrorRateDelta{ProportionTest: pt,
		Significant: pt.PValue < alpha && math.Abs(pt.RateB-pt.RateA) >= minErrorDelta}
	c.ErrorRate.RateA, c.ErrorRate.RateB = round4(pt.RateA), round4(pt.RateB)
	c.ErrorRate.Z, c.ErrorRate.PValue = round4(pt.Z), roundSig(pt.PValue)
	if before.RatePerS > 0 {
		c.Throughput.DeltaPct = floatPtr(round3((after.RatePerS/before.RatePerS - 1) * 100))
	}
	if before.Weighted || after.Weighted {
		c.Reasons = append(c.Reasons, fmt.Sprintf("sampled traces: counts, rates and percentiles are estimated from %d and %d stored requests, each counted as many times as its sampler's rate says",
			before.SampledCount, after.SampledCount))
	}
	if c.Baseline == BaselinePartial {
		c.Reasons = append(c.Reasons, fmt.Sprintf("%s has data only from %s UTC: the endpoint had no earlier requests",
			c.Before.Label, c.Before.DataFrom.Format("2006-01-02 15:04:05")))
	}
	c.Insufficient = !c.Percentiles[0].Tested
	c.verdict()
	c.TailPercentile = c.headline().Percentile
	deps, err := dependencyDeltas(ctx, src, before, after, c.TailPercentile, q.MaxTraces)
	if err != nil {
		return Comparison{}, err
	}
	c.Dependencies = deps
	c.Summary = c.summary()
	return c, nil
}

func (q *CompareQuery) normalize() (string, error) {
	if q.Service == "" {
		return "", invalidf("compare: service is required")
	}
	if q.Endpoint == "" {
		return "", invalidf("compare: endpoint is required")
	}
	deploy := !q.DeployAt.IsZero()
	ranges := !q.BeforeFrom.IsZero() || !q.BeforeTo.IsZero() || !q.AfterFrom.IsZero() || !q.AfterTo.IsZero()
	versions := q.VersionA != "" || q.VersionB != ""
	n := 0
	for _, b := range []bool{deploy, ranges, versions} {
		if b {
			n++
		}
	}
	if n != 1 {
		return "", invalidf("compare: give exactly one of a deploy, before/after ranges, or two versions")
	}
	switch {
	case math.IsNaN(q.Confidence) || q.Confidence < 0 || q.Confidence >= 1:
		return "", invalidf("compare: confidence %v: want a value in (0, 1), e.g. 0.95", q.Confidence)
	case q.Resamples < 0 || q.Resamples > maxResamples:
		return "", invalidf("compare: resamples %d: want 0 to %d", q.Resamples, maxResamples)
	case q.MaxTraces < 0 || q.MaxTraces > maxSampleSize:
		return "", invalidf("compare: max traces %d: want 0 to %d", q.MaxTraces, maxSampleSize)
	case q.Window < 0:
		return "", invalidf("compare: window must not be negative")
	}
	if q.Confidence == 0 {
		q.Confidence = defaultConfidence
	}
	if q.Resamples == 0 {
		q.Resamples = defaultResamples
	}
	if q.MaxTraces == 0 {
		q.MaxTraces = defaultCompareTraces
	}
	if q.Window == 0 {
		q.Window = defaultCompareWindow
	}
	switch {
	case deploy:
		if !q.Now.IsZero() && !q.Now.After(q.DeployAt) {
			return "", invalidf("compare: the deploy at %s has no requests after it yet", q.DeployAt.UTC().Format(time.RFC3339))
		}
		return CompareDeploy, nil
	case ranges:
		if q.BeforeFrom.IsZero() || q.BeforeTo.IsZero() || q.AfterFrom.IsZero() || q.AfterTo.IsZero() {
			return "", invalidf("compare: before_from, before_to, after_from and after_to are all required")
		}
		if !q.BeforeTo.After(q.BeforeFrom) || !q.AfterTo.After(q.AfterFrom) {
			return "", invalidf("compare: each range must end after it starts")
		}
		return CompareRanges, nil
	default:
		if q.VersionA == "" || q.VersionB == "" {
			return "", invalidf("compare: version_a and version_b are both required")
		}
		if q.VersionA == q.VersionB {
			return "", invalidf("compare: version_a and version_b are the same")
		}
		if err := checkWindow(q.Service, q.From, q.To); err != nil {
			return "", err
		}
		return CompareVersions, nil
	}
}

// readSides reads both sides' samples.
func (q *CompareQuery) readSides(ctx context.Context, src SpanSource, mode string) (compareSide, compareSide, error) {
	var b, a compareSide
	read := func(s *compareSide, from, to time.Time, version string, limit int) error {
		ss, err := src.Samples(ctx, store.SampleQuery{Service: q.Service, Endpoint: q.Endpoint, Version: version, From: from, To: to, Limit: limit})
		if err != nil {
			return fmt.Errorf("analysis: compare: read %s samples: %w", s.Label, err)
		}
		s.samples = ss
		s.From, s.To, s.Version = from.UTC(), to.UTC(), version
		return nil
	}
	b.Label, a.Label = "before", "after"
	switch mode {
	case CompareDeploy:
		end := q.DeployAt.Add(q.Window)
		if !q.Now.IsZero() && q.Now.Before(end) {
			end = q.Now
		}
		if err := read(&a, q.DeployAt, end, "", 0); err != nil {
			return b, a, err
		}
		if q.EqualCounts {
			// The newest len(after) requests before the marker, looking
			// back at most 30 windows.
			from := q.DeployAt.Add(-30 * end.Sub(q.DeployAt))
			b.From, b.To = from.UTC(), q.DeployAt.UTC()
			if len(a.samples) > 0 {
				if err := read(&b, from, q.DeployAt, "", len(a.samples)); err != nil {
					return b, a, err
				}
			}
			if len(b.samples) > 0 {
				b.From = time.Unix(0, b.samples[0].StartUnixNano).UTC()
			}
		} else if err := read(&b, q.DeployAt.Add(-end.Sub(q.DeployAt)), q.DeployAt, "", 0); err != nil {
			return b, a, err
		}
	case CompareRanges:
		if err := read(&b, q.BeforeFrom, q.BeforeTo, "", 0); err != nil {
			return b, a, err
		}
		if err := read(&a, q.AfterFrom, q.AfterTo, "", 0); err != nil {
			return b, a, err
		}
	case CompareVersions:
		b.Label, a.Label = q.VersionA, q.VersionB
		if err := read(&b, q.From, q.To, q.VersionA, 0); err != nil {
			return b, a, err
		}
		if err := read(&a, q.From, q.To, q.VersionB, 0); err != nil {
			return b, a, err
		}
	}
	for _, s := range []*compareSide{&b, &a} {
		if err := q.dataSpan(ctx, src, s); err != nil {
			return b, a, err
		}
		s.finish()
	}
	return b, a, nil
}

// dataSpan finds where a side's data starts and ends (rates.go).
func (q *CompareQuery) dataSpan(ctx context.Context, src SampleSource, s *compareSide) error {
	from := s.From.UnixNano()
	s.start, s.end = from, dataEnd(s.To, q.Now).UnixNano()
	if len(s.samples) == 0 {
		return nil
	}
	st, err := seriesStart(ctx, src, seriesKey{q.Service, q.Endpoint, s.Version}, from, s.samples[0].StartUnixNano, s.To.Sub(s.From))
	if err != nil {
		return fmt.Errorf("analysis: compare: %s: %w", s.Label, err)
	}
	s.start = st
	return nil
}

// finish computes a side's counts, rates and percentiles. With sampled
// streams (compare_weights.go) the counts and percentiles are those of
// the requests the samples stand for.
func (s *compareSide) finish() {
	n := len(s.samples)
	s.sorted = make([]int64, n)
	var errs float64
	weighted := false
	for i := range s.samples {
		w := float64(store.CountWeight(s.samples[i].Weight))
		s.sorted[i] = max(s.samples[i].DurationNano, 0)
		weighted = weighted || w != 1
		if s.samples[i].Error {
			errs += w
		}
	}
	if !weighted {
		slices.Sort(s.sorted)
	} else {
		xs := make([]weightedValue, n)
		for i := range s.samples {
			xs[i] = weightedValue{v: s.sorted[i], w: float64(store.CountWeight(s.samples[i].Weight))}
		}
		slices.SortFunc(xs, func(a, b weightedValue) int { return cmp.Compare(a.v, b.v) })
		for i := range xs {
			s.sorted[i] = xs[i].v
		}
		s.cw = newCumWeights(n, func(i int) float64 { return xs[i].w })
	}
	s.nEff = s.cw.effectiveSize(n)
	s.Count, s.Errors = int(math.Round(s.cw.upTo(n))), int(math.Round(errs))
	s.Weighted, s.SampledCount = s.cw != nil, n
	if s.Count > 0 {
		s.ErrorRate = round4(float64(s.Errors) / float64(s.Count))
	}
	s.RatePerS = ratePerS(s.Count, s.start, s.end)
	s.DataSpan = dataSpan(s.Count, s.start, s.end)
	s.Percentiles = s.percentiles()
}

// percentileDelta bootstraps the change of one percentile.
func percentileDelta(before, after *compareSide, p, alpha float64, resamples int, rng *rand.Rand) PercentileDelta {
	q := p / 100
	bv, av := before.quantile(q), after.quantile(q)
	d := PercentileDelta{
		Percentile: p,
		BeforeMs:   round3(nsToMs(bv)),
		AfterMs:    round3(nsToMs(av)),
		DeltaMs:    round3(nsToMs(av - bv)),
	}
	if bv > 0 {
		d.DeltaPct = round3((float64(av)/float64(bv) - 1) * 100)
	}
	need := int(math.Ceil(minTailCount / (1 - q)))
	mb, ma := before.effectiveSizeAt(q), after.effectiveSizeAt(q)
	if mb < float64(need) || ma < float64(need) {
		return d
	}
	d.Tested = true
	bb := newQuantileBootstrap(before.sorted, before.cw, mb, q, rng)
	ab := newQuantileBootstrap(after.sorted, after.cw, ma, q, rng)
	deltas := make([]float64, resamples)
	ratios := make([]float64, 0, resamples)
	for i := range deltas {
		x, y := bb.draw(), ab.draw()
		deltas[i] = float64(y - x)
		if x > 0 {
			ratios = append(ratios, float64(y)/float64(x)-1)
		}
	}
	slices.Sort(deltas)
	slices.Sort(ratios)
	lo, hi := empiricalQuantile(deltas, alpha/2), empiricalQuantile(deltas, 1-alpha/2)
	d.CILowMs, d.CIHighMs = round3(lo/1e6), round3(hi/1e6)
	d.CILowPct = round3(empiricalQuantile(ratios, alpha/2) * 100)
	d.CIHighPct = round3(empiricalQuantile(ratios, 1-alpha/2) * 100)
	big := math.Abs(float64(av-bv)) >= math.Max(minRelDelta*float64(bv), float64(minDeltaNs))
	d.Significant = big && (lo > 0 || hi < 0)
	return d
}
