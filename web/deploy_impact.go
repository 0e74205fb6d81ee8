package web

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/components/chart"
	"github.com/tailscope/tailscope/internal/units"
	"github.com/tailscope/tailscope/store"
)

// maxListImpacts is how many markers of a list (the newest) get their
// impact: each is a read of one service's rollups around the marker.
const maxListImpacts = 20

// impactWindow is each side of a marker's impact, as the deploys list and
// its latency links show it.
const impactWindow = time.Hour

// deployImpact reads a marker's impact from rollups. Once its after side
// has passed, the answer no longer depends on now and is cached as such.
func (s *Server) deployImpact(ctx context.Context, d store.Deploy) (analysis.DeployImpact, error) {
	q := analysis.DeployImpactQuery{Service: d.Service, At: d.At, Window: impactWindow}
	if now := s.analysisNow(); now.Before(d.At.Add(impactWindow + time.Minute)) {
		q.Now = now
	}
	return cached(ctx, s, queryKey("deploy-impact", q), func(ctx context.Context) (analysis.DeployImpact, error) {
		return analysis.DeployImpactFromRollups(ctx, s.store, q)
	})
}

// impactView words an impact for the deploys list.
func impactView(imp analysis.DeployImpact, firstSeen bool) components.ImpactView {
	b, a := imp.Before.RequestStats, imp.After.RequestStats
	v := components.ImpactView{Shown: true, Pending: imp.Pending}
	rate := func(r float64) string { return chart.FormatCount(r) + "/s" }
	switch {
	case imp.Pending:
		v.Rate = rate(b.RatePerS) + " before; the first minute after has not passed"
		return v
	case firstSeen || b.Count == 0:
		v.Rate = rate(a.RatePerS) + " after (no requests before)"
		v.Errors = "errors " + chart.FormatPercent(a.ErrorRate)
		v.P99 = "p99 " + units.Ms(a.P99Ms)
		return v
	}
	v.Rate = rate(b.RatePerS) + " → " + rate(a.RatePerS) + signedPct(imp.RateChangePct)
	v.Errors = "errors " + chart.FormatPercent(b.ErrorRate) + " → " + chart.FormatPercent(a.ErrorRate)
	v.ErrorsUp = imp.ErrorsChanged && imp.ErrorRateDelta > 0
	v.ErrorsDown = imp.ErrorsChanged && imp.ErrorRateDelta < 0
	v.P99 = "p99 " + units.Ms(b.P99Ms) + " → " + units.Ms(a.P99Ms) + signedPct(imp.P99ChangePct)
	// Marked when the tail is slower by test, not by a p99 estimate that
	// moves this much between two samples of the same traffic.
	v.P99Up = imp.P99Changed && *imp.P99ChangePct > 0
	v.P99Noise = imp.P99ChangePct != nil && math.Abs(*imp.P99ChangePct) >= 10 && !imp.P99Changed
	return v
}

// signedPct formats a change as " (+12%)", nothing when unknown.
func signedPct(p *float64) string {
	if p == nil {
		return ""
	}
	return fmt.Sprintf(" (%+.0f%%)", *p)
}
