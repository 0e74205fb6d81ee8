package analysis_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/store"
)

// TestDeployImpact: a deploy after which feed-api errs more and its
// profile calls are slow shows both in its impact, with the counts of the
// spans over each side's whole minutes; an unchanged deploy shows
// neither; a deploy a few seconds old is pending.
func TestDeployImpact(t *testing.T) {
	start := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	// Inside a minute: that minute is on neither side. Profile calls fail
	// 20% of the time (a request fails when four attempts do: 0.16%),
	// after a bad deploy 50% (6.25%).
	at := start.Add(time.Hour + 20*time.Second)
	v1 := analysistest.Generate(analysistest.Scenario{Seed: 21, Start: start, Window: time.Hour + 20*time.Second, Traces: 4000, ErrorRate: 0.2})
	bad := analysistest.Generate(analysistest.Scenario{Seed: 22, Start: at, Window: time.Hour, Traces: 4000, ErrorRate: 0.5,
		Causes: []analysistest.Cause{{Name: "slow-profile", Dependency: analysistest.ProfileSvc, Probability: 0.1, Extra: 900 * time.Millisecond}}})
	same := analysistest.Generate(analysistest.Scenario{Seed: 23, Start: at, Window: time.Hour, Traces: 4000, ErrorRate: 0.2})
	ctx := context.Background()
	for _, c := range []struct {
		name           string
		after          analysistest.Dataset
		errors, slower bool
	}{{"regressed", bad, true, true}, {"unchanged", same, false, false}} {
		t.Run(c.name, func(t *testing.T) {
			spans := append(append([]store.Span{}, v1.Spans...), c.after.Spans...)
			src := analysistest.NewSource(spans)
			now := at.Add(2 * time.Hour)
			imp, err := analysis.DeployImpactFromRollups(ctx, src, analysis.DeployImpactQuery{Service: analysistest.FeedAPI, At: at, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []struct {
				side     analysis.ImpactSide
				from, to time.Time
			}{{imp.Before, start, start.Add(time.Hour)}, {imp.After, start.Add(time.Hour + time.Minute), start.Add(2*time.Hour + time.Minute)}} {
				if !s.side.From.Equal(s.from) || !s.side.To.Equal(s.to) {
					t.Errorf("side %s – %s, want %s – %s", s.side.From, s.side.To, s.from, s.to)
				}
				n, e := 0, 0
				for _, sp := range spans {
					if sp.Service == analysistest.FeedAPI && sp.IsEntry() && sp.StartUnixNano >= s.from.UnixNano() && sp.StartUnixNano < s.to.UnixNano() {
						n++
						if sp.StatusCode == store.StatusError {
							e++
						}
					}
				}
				if s.side.Count != n || s.side.Errors != e || n == 0 {
					t.Errorf("side from %s: %d requests, %d errors; spans hold %d, %d", s.from, s.side.Count, s.side.Errors, n, e)
				}
			}
			if imp.Pending || imp.RateChangePct == nil || math.Abs(*imp.RateChangePct) > 10 {
				t.Errorf("rate change %v (pending %v): the traffic is the same", imp.RateChangePct, imp.Pending)
			}
			if imp.ErrorsChanged != c.errors || (c.errors && imp.ErrorRateDelta < 0.03) {
				t.Errorf("errors changed %v by %v, want %v", imp.ErrorsChanged, imp.ErrorRateDelta, c.errors)
			}
			if imp.P99ChangePct == nil || (*imp.P99ChangePct > 50) != c.slower {
				t.Errorf("p99 change %v%%, want slower %v", imp.P99ChangePct, c.slower)
			}
		})
	}
	t.Run("pending", func(t *testing.T) {
		src := analysistest.NewSource(v1.Spans)
		imp, err := analysis.DeployImpactFromRollups(ctx, src, analysis.DeployImpactQuery{Service: analysistest.FeedAPI, At: at, Now: at.Add(10 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		if !imp.Pending || imp.After.Count != 0 || imp.Before.Count == 0 || imp.RateChangePct != nil {
			t.Errorf("a deploy 10 s old: pending %v, after %d, before %d, rate change %v", imp.Pending, imp.After.Count, imp.Before.Count, imp.RateChangePct)
		}
	})
}
