package analysis_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
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
			if imp.P99ChangePct == nil || (*imp.P99ChangePct > 50) != c.slower || imp.P99Changed != c.slower {
				t.Errorf("p99 change %v%% (changed by test: %v), want slower %v", imp.P99ChangePct, imp.P99Changed, c.slower)
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

// TestDeployImpactTailTest: a p99 is the tenth-slowest of a thousand
// requests, so between two samples of the same traffic it often moves by
// a tenth or more. Over 200 seeded pairs of hours, 1,200 requests each
// with 5% errors, P99Changed holds for few pairs drawn from one
// distribution (the test's 1% level), where a 10% move of the p99 alone
// (the deploys list's mark before the test) holds for many; it holds for
// nearly every pair where 3% of the requests after the deploy are 300 ms
// slower; and ErrorsChanged holds for few. The same when each request is
// a sampled span standing for ten (weight 10): the counts are ten times
// larger and the tests must still rest on the 1,200 requests drawn (with
// the counts as sample sizes, about two pairs in five were flagged).
func TestDeployImpactTailTest(t *testing.T) {
	for _, weight := range []float64{1, 10} {
		t.Run(fmt.Sprintf("weight=%g", weight), func(t *testing.T) { deployImpactTails(t, weight) })
	}
}

func deployImpactTails(t *testing.T, weight float64) {
	start := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	at := start.Add(time.Hour)
	const (
		seeds    = seededReps
		requests = 1200
	)
	// hour returns one hour of a service's requests from t0: durations
	// lognormal around 50 ms, slowed by extra for a share of them, 5%
	// errors.
	hour := func(rng *rand.Rand, t0 time.Time, share float64, extra time.Duration, spans []store.Span) []store.Span {
		for i := range requests {
			d := time.Duration(float64(50*time.Millisecond) * math.Exp(0.6*rng.NormFloat64()))
			if rng.Float64() < share {
				d += extra
			}
			s := checkoutSpan(rng, t0, i, requests, d, weight)
			if rng.Float64() < 0.05 {
				s.StatusCode = store.StatusError
			}
			spans = append(spans, s)
		}
		return spans
	}
	ctx := context.Background()
	var flagged, moved, caught, errFlagged int
	for seed := range uint64(seeds) {
		rng := rand.New(rand.NewPCG(seed, 0xd3b1))
		before := hour(rng, start, 0, 0, nil)
		for _, c := range []struct {
			share float64
			extra time.Duration
		}{{0, 0}, {0.03, 300 * time.Millisecond}} {
			spans := hour(rng, at.Add(time.Minute), c.share, c.extra, before[:len(before):len(before)])
			imp, err := analysis.DeployImpactFromRollups(ctx, analysistest.NewSource(spans),
				analysis.DeployImpactQuery{Service: "checkout", At: at.Add(time.Second), Now: at.Add(3 * time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			want := int(requests * weight)
			if imp.P99ChangePct == nil || imp.Before.Count != want || imp.After.Count != want {
				t.Fatalf("seed %d: p99 change %v with %d and %d requests, want %d a side", seed, imp.P99ChangePct, imp.Before.Count, imp.After.Count, want)
			}
			switch {
			case c.share == 0 && imp.P99Changed:
				flagged++
			case c.share > 0 && imp.P99Changed && *imp.P99ChangePct > 0:
				caught++
			}
			if c.share == 0 && math.Abs(*imp.P99ChangePct) >= 10 {
				moved++
			}
			if c.share == 0 && imp.ErrorsChanged {
				errFlagged++
			}
		}
	}
	t.Logf("same traffic: p99 moved ≥10%% in %d of %d pairs, tail test flagged %d, error test %d; slowed: caught %d",
		moved, seeds, flagged, errFlagged, caught)
	seededOutcome{falseAlarms: map[string]int{"the tail test": flagged, "the error test": errFlagged},
		naive: moved, caught: caught}.check(t)
}
