package analysis

import (
	"context"
	"fmt"
	"time"
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
	// 1,000 requests (ten past its p99); null otherwise.
	P99ChangePct *float64 `json:"p99_change_pct"`
}

// DeployImpactFromRollups summarises the service before and after q.At
// from the rollups. Counts are exact over the whole minutes of each side
// (sampled spans count as their weight, so the error test on a sampled
// stream is too confident), percentiles within SketchRelativeAccuracy.
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
	side := func(from, to time.Time) (ImpactSide, error) {
		s := ImpactSide{From: from, To: to}
		rep, err := ServiceStats(ctx, src, ServicesQuery{From: from, To: to, Now: q.Now, Service: q.Service, SparklinePoints: 1})
		if err != nil {
			return s, fmt.Errorf("analysis: deploy impact: %w", err)
		}
		for _, svc := range rep.Services {
			if svc.Name == q.Service {
				s.RequestStats = svc.RequestStats
			}
		}
		s.P99SparklineMs = nil
		return s, nil
	}
	var err error
	if imp.Before, err = side(before.Add(-w), before); err != nil {
		return imp, err
	}
	if !q.Now.IsZero() && !q.Now.After(after) {
		imp.After = ImpactSide{From: after, To: after.Add(w)}
		imp.Pending = true
		return imp, nil
	}
	if imp.After, err = side(after, after.Add(w)); err != nil {
		return imp, err
	}
	b, a := imp.Before.RequestStats, imp.After.RequestStats
	if b.Count > 0 && b.RatePerS > 0 {
		imp.RateChangePct = floatPtr(round3((a.RatePerS/b.RatePerS - 1) * 100))
	}
	if b.Count > 0 && a.Count > 0 {
		pt := twoProportion(b.Errors, b.Count, a.Errors, a.Count)
		imp.ErrorRateDelta = round4(pt.RateB - pt.RateA)
		imp.ErrorsChanged = pt.PValue < impactAlpha && max(imp.ErrorRateDelta, -imp.ErrorRateDelta) >= minErrorDelta
	}
	if b.Count >= minImpactTail && a.Count >= minImpactTail && b.P99Ms > 0 {
		imp.P99ChangePct = floatPtr(round3((a.P99Ms/b.P99Ms - 1) * 100))
	}
	return imp, nil
}
