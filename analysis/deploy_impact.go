package analysis

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/tailscope/tailscope/store"
)

// A deploy's impact at a glance: the service's requests in the window
// before a deploy marker and the window after it, read from rollups (the
// deploys list shows one per marker, so each costs a read of one service's
// rollups, not of its spans). The whole minutes around the marker are
// compared; the minute it falls in belongs to neither side. Compare, over
// spans, is the full before/after comparison with its intervals.

const (
	// defaultImpactWindow is each side's length.
	defaultImpactWindow = time.Hour
	// impactAlpha is the error-rate test's level: a list of markers is
	// many tests, so a stricter level than one comparison's 5%.
	impactAlpha = 0.01
	// minImpactTail is the requests each side needs for its p99 change to
	// be reported: ten past the p99.
	minImpactTail = 100 * minTailCount
	// minP99ChangePct is the smallest p99 change P99Changed reports: the
	// sketch alone is within 1%, and a smaller move is rarely what a
	// deploy list should point at.
	minP99ChangePct = 10
)

// DeployImpactQuery asks how Service's requests changed across a deploy
// at At; Now cuts the after side (zero: no cut).
type DeployImpactQuery struct {
	Service string
	At, Now time.Time
	Window  time.Duration // each side's length (0: an hour)
}

// ImpactSide is one side of a DeployImpact: every entry span of the
// service over [From, To), whole rollup buckets.
type ImpactSide struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	RequestStats
}

// DeployImpact is the body of a deploy marker's "impact" in the API.
type DeployImpact struct {
	Before ImpactSide `json:"before"`
	After  ImpactSide `json:"after"`
	// Pending: no whole minute after the marker has passed yet.
	Pending bool `json:"pending"`
	// RateChangePct is the request rate's change; null without requests
	// before.
	RateChangePct *float64 `json:"rate_change_pct"`
	// ErrorRateDelta is after's error rate minus before's; ErrorsChanged
	// says a two-proportion test at the 1% level finds it and it is at
	// least 0.1 point.
	ErrorRateDelta float64 `json:"error_rate_delta"`
	ErrorsChanged  bool    `json:"errors_changed"`
	// P99ChangePct is the p99's change, when each side has at least
	// 1,000 requests (ten past its p99; of a sampled stream, 1,000
	// effective draws); null otherwise.
	P99ChangePct *float64 `json:"p99_change_pct"`
	// P99Changed says the tail moved, not just its estimate: the slower
	// side has more of its requests past the faster side's p99 bin, or
	// the faster side fewer past the slower side's (two-proportion tests
	// at 0.5% each, on effective sample sizes; tailMoved), and the p99
	// changed by at least 10%. A thousand requests put a p99 on its tenth-slowest one,
	// so a 10% swing is common between two samples of one distribution;
	// the change alone is not evidence.
	P99Changed bool `json:"p99_changed"`
}

// DeployImpactFromRollups summarises the service before and after q.At
// from the rollups. Counts are exact over the whole minutes of each side
// (sampled spans count as their weight), percentiles within
// SketchRelativeAccuracy; the error and tail tests take each side's
// effective sample size (store.Rollup.WeightSq), so a sampled stream is
// tested on the requests drawn, not on the ones they stand for.
func DeployImpactFromRollups(ctx context.Context, src RollupSource, q DeployImpactQuery) (DeployImpact, error) {
	if q.Service == "" || q.At.IsZero() {
		return DeployImpact{}, invalidf("deploy impact: a service and a time are required")
	}
	w := q.Window
	if w == 0 {
		w = defaultImpactWindow
	}
	if w < 0 || w > 6*time.Hour {
		return DeployImpact{}, invalidf("deploy impact: window %s: want up to 6h", w)
	}
	at := q.At.UTC()
	before := at.Truncate(time.Minute)
	after := before
	if after.Before(at) {
		after = after.Add(time.Minute)
	}
	var imp DeployImpact
	// side summarises the service over [from, to) and keeps the aggregate
	// of its rollups, whose bins the p99 test counts.
	side := func(from, to time.Time) (ImpactSide, *binAgg, error) {
		f, t, step := rollupWindow(from, to)
		s := ImpactSide{From: f, To: t}
		rows, err := src.Rollups(ctx, store.RollupQuery{Step: step, From: f, To: t, Service: q.Service})
		if err != nil {
			return s, nil, fmt.Errorf("analysis: deploy impact: read rollups: %w", err)
		}
		rows = slices.DeleteFunc(rows, func(r store.Rollup) bool { return r.Service != q.Service })
		if len(rows) == 0 {
			return s, newBinAgg(), nil
		}
		sum, agg, err := summarizeService(ctx, src, rows, statsWindow{from: f, to: t, end: dataEnd(t, q.Now), points: 1})
		if err != nil {
			return s, nil, fmt.Errorf("analysis: deploy impact: %w", err)
		}
		s.RequestStats = sum.RequestStats
		s.P99SparklineMs = nil
		return s, agg, nil
	}
	var bAgg, aAgg *binAgg
	var err error
	if imp.Before, bAgg, err = side(before.Add(-w), before); err != nil {
		return imp, err
	}
	if !q.Now.IsZero() && !q.Now.After(after) {
		imp.After = ImpactSide{From: after, To: after.Add(w)}
		imp.Pending = true
		return imp, nil
	}
	if imp.After, aAgg, err = side(after, after.Add(w)); err != nil {
		return imp, err
	}
	b, a := imp.Before.RequestStats, imp.After.RequestStats
	if b.Count > 0 && b.RatePerS > 0 {
		imp.RateChangePct = floatPtr(round3((a.RatePerS/b.RatePerS - 1) * 100))
	}
	if b.Count > 0 && a.Count > 0 {
		// Counts of a sampled stream stand for more requests than were
		// drawn: the test takes each side's effective sample size, with
		// its weighted error rate.
		pt := twoProportion(bAgg.effective(bAgg.errors), effectiveN(bAgg), aAgg.effective(aAgg.errors), effectiveN(aAgg))
		imp.ErrorRateDelta = round4(float64(aAgg.errors)/float64(aAgg.count) - float64(bAgg.errors)/float64(bAgg.count))
		imp.ErrorsChanged = pt.PValue < impactAlpha && max(imp.ErrorRateDelta, -imp.ErrorRateDelta) >= minErrorDelta
	}
	if effectiveN(bAgg) >= minImpactTail && effectiveN(aAgg) >= minImpactTail && b.P99Ms > 0 {
		pct := round3((a.P99Ms/b.P99Ms - 1) * 100)
		imp.P99ChangePct = &pct
		imp.P99Changed = tailMoved(bAgg, aAgg, pct)
	}
	return imp, nil
}

// tailMoved tests whether the tails of before and after differ in the
// direction of the p99 change pct: the side whose p99 is higher (slow)
// should have more of its requests past a cut than the other (fast).
// Two cuts are tried, each by a two-proportion test at half of
// impactAlpha: the bin holding fast's p99 (slow's share past it should
// exceed fast's 1%) and the bin holding slow's p99 (fast's share past it
// should fall short of slow's 1%) — the first finds a tail that grew
// more frequent, the second one that grew longer (a few requests much
// slower, which moves the p99 far but adds little past the old one).
// It also needs pct to be at least minP99ChangePct either way.
func tailMoved(before, after *binAgg, pct float64) bool {
	if math.Abs(pct) < minP99ChangePct || before.count == 0 || after.count == 0 {
		return false
	}
	slow, fast := after, before
	if pct < 0 {
		slow, fast = before, after
	}
	for _, cut := range [...]tailCut{tailBin(fast, 0.99), tailBin(slow, 0.99)} {
		xs, xf := slow.above(cut), fast.above(cut)
		pt := twoProportion(fast.effective(xf), effectiveN(fast), slow.effective(xs), effectiveN(slow))
		if pt.PValue < impactAlpha/2 && float64(xs)/float64(slow.count) > float64(xf)/float64(fast.count) {
			return true
		}
	}
	return false
}

// effectiveN is a's effective sample size rounded (binAgg.nEff).
func effectiveN(a *binAgg) int { return int(math.Round(a.nEff())) }
