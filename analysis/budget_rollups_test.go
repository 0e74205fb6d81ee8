package analysis_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/postgres"
	"github.com/tailscope/tailscope/store/sqlite"
)

// budgetRollupData is three busy hours after 40 quiet ones (fixed seeds),
// with the endpoint's requests that lasted within 3% of the threshold it
// returns moved onto it: exactly at it, a nanosecond either side, half a
// percent either side. So the threshold's sketch bin holds requests on
// both sides of it, some that only the threshold's own ≤ (not <) makes
// good. Some requests carry a sampling weight.
func budgetRollupData(start time.Time) ([]store.Span, time.Duration) {
	busy := analysistest.Generate(analysistest.Scenario{Seed: 181, Start: start, Window: 3 * time.Hour, Traces: 4000, ErrorRate: 0.01})
	quiet := analysistest.Generate(analysistest.Scenario{Seed: 182, Start: start.Add(-40 * time.Hour), Window: 40 * time.Hour, Traces: 1500})
	spans := append(busy.Spans, quiet.Spans...)
	var ds []int64
	for _, sp := range spans {
		if sp.Service == analysistest.FeedAPI && sp.Name == analysistest.Endpoint && sp.ParentSpanID.IsZero() {
			ds = append(ds, sp.DurationNano)
		}
	}
	slices.Sort(ds)
	thr := time.Duration(ds[len(ds)*92/100]).Truncate(time.Millisecond)
	t := int64(thr)
	moves := []int64{t - 1, t, t + 1, t + t/200, t - t/200}
	k := 0
	for i := range spans {
		sp := &spans[i]
		if sp.Service == analysistest.FeedAPI && sp.Name == analysistest.Endpoint && sp.ParentSpanID.IsZero() &&
			sp.DurationNano > t-t*3/100 && sp.DurationNano < t+t*3/100 {
			sp.DurationNano = moves[k%len(moves)]
			k++
		}
	}
	// A third of the requests of the quiet hours and of the last quarter
	// hour were sampled (weight 2.6, counted as 3): the long window's
	// totals and the burn windows ending in that quarter hour, from
	// rollups and from their edge minutes' spans, and from spans alone,
	// count the requests the sample stands for. (The busy windows' own
	// requests stay unweighted, so their uncertain minutes hold few
	// enough requests to be settled.)
	sampled := func(ns int64) bool {
		return ns < start.UnixNano() || ns >= start.Add(2*time.Hour+45*time.Minute).UnixNano()
	}
	n := 0
	for i := range spans {
		if sp := &spans[i]; sp.Service == analysistest.FeedAPI && sp.Name == analysistest.Endpoint && sp.ParentSpanID.IsZero() && sampled(sp.StartUnixNano) {
			if n%3 == 0 {
				sp.Weight = 2.6
			}
			n++
		}
	}
	return spans, thr
}

// budgetStores opens an empty store of each backend.
var budgetStores = map[string]func(t *testing.T) store.Store{
	"sqlite": func(t *testing.T) store.Store {
		db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "budget.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	},
	"postgres": func(t *testing.T) store.Store {
		db, err := postgres.Open(context.Background(), testenv.FreshPostgres(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	},
}

// TestComplianceFromRollupsMatchesSpans is the rollups' contract for
// budgets: on each backend, over windows whose edges and now fall inside
// minutes (so partial edge minutes and burn windows are counted from the
// spans) and a 41-hour window charted in hours, ComplianceFromRollups has
// the exact totals of Compliance (window, every chart point, every burn
// window), bad counts within its own BadUncertain of the exact ones (and
// exact where the uncertain minutes are few enough to settle from their
// spans), and hop table rows whose overrun-rate intervals hold the
// spans' estimate.
func TestComplianceFromRollupsMatchesSpans(t *testing.T) {
	start := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	spans, thr := budgetRollupData(start)
	b := store.Budget{Name: "feed", Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint, Threshold: thr, Target: 0.95, Period: time.Hour,
		Hops: []store.HopBudget{
			{Service: analysistest.FeedAPI, Dependency: analysistest.ProfileSvc, Allocation: thr * 3 / 10},
			{Service: analysistest.FeedAPI, Dependency: analysistest.CandidateSvc, Allocation: thr / 4},
			{Service: analysistest.CandidateSvc, Dependency: analysistest.Postgres, Allocation: thr / 5},
		}}
	odd := 17*time.Minute + 23*time.Second + 411*time.Millisecond
	// settled: the minute buckets around the threshold hold few enough
	// requests (≤ 2,000) to be counted exactly from their spans; the hour
	// buckets of the long window do not.
	windows := []struct {
		name          string
		from, to, now time.Time
		settled       bool
	}{
		{"two busy hours, now at to", start.Add(odd), start.Add(2*time.Hour + 41*time.Minute + 7*time.Second), start.Add(2*time.Hour + 41*time.Minute + 7*time.Second), true},
		{"two busy hours, now later", start.Add(odd), start.Add(2*time.Hour + 3*time.Minute + 59*time.Second), start.Add(2*time.Hour + 57*time.Minute + 31*time.Second), true},
		{"41 hours charted in hours", start.Add(-40*time.Hour + odd), start.Add(time.Hour + 7*time.Second), start.Add(time.Hour + 7*time.Second), false},
	}
	ctx := context.Background()
	for name, open := range budgetStores {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			for i := 0; i < len(spans); i += 5000 {
				if err := db.WriteSpans(ctx, spans[i:min(i+5000, len(spans))]); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.CompactRollups(ctx); err != nil {
				t.Fatal(err)
			}
			uncertain := 0
			for _, w := range windows {
				t.Run(w.name, func(t *testing.T) {
					got, err := analysis.ComplianceFromRollups(ctx, db, b, w.from, w.to, w.now)
					if err != nil {
						t.Fatal(err)
					}
					want, err := analysis.Compliance(ctx, db, b, w.from, w.to, w.now)
					if err != nil {
						t.Fatal(err)
					}
					checkComplianceMatches(t, got, want)
					if w.settled && (got.BadUncertain != 0 || got.Bad != want.Bad) {
						t.Errorf("%d bad ±%d, exact %d: the uncertain minutes were not settled from their spans", got.Bad, got.BadUncertain, want.Bad)
					}
					uncertain += got.BadUncertain
				})
			}
			if uncertain == 0 {
				t.Error("no request was uncertain: the threshold's bin is not exercised")
			}
		})
	}
}

func checkComplianceMatches(t *testing.T, got, want analysis.ComplianceReport) {
	t.Helper()
	if got.Source != analysis.ComplianceRollups || want.Source != analysis.ComplianceSpans {
		t.Errorf("sources %q, %q", got.Source, want.Source)
	}
	if want.Total <= 1000 || want.Bad == 0 {
		t.Fatalf("%d requests, %d bad: too few to read from rollups", want.Total, want.Bad)
	}
	if !got.From.Equal(want.From) || !got.To.Equal(want.To) {
		t.Errorf("window %s – %s, want %s – %s", got.From, got.To, want.From, want.To)
	}
	if got.Total != want.Total || !within(got.Bad, want.Bad, got.BadUncertain) {
		t.Errorf("%d requests, %d bad ±%d; exact %d, %d", got.Total, got.Bad, got.BadUncertain, want.Total, want.Bad)
	}
	// The chart: same step or coarser (at least a minute); every point
	// of the rollups' chart at an instant the exact chart has.
	at := map[time.Time]analysis.BudgetPoint{}
	for _, p := range want.Series {
		at[p.Time] = p
	}
	for _, p := range got.Series {
		w, ok := at[p.Time]
		if !ok {
			if p.Time.Before(want.To) || p.Time.After(want.To.Add(time.Duration(got.StepSeconds*1e9))) {
				t.Errorf("chart point at %s: the exact chart has none", p.Time)
			}
			continue
		}
		if p.Total != w.Total || !within(p.Bad, w.Bad, p.BadUncertain) {
			t.Errorf("chart at %s: %d requests, %d bad ±%d; exact %d, %d", p.Time, p.Total, p.Bad, p.BadUncertain, w.Total, w.Bad)
		}
	}
	if len(got.BurnRates) != len(want.BurnRates) {
		t.Fatalf("%d burn rates, want %d", len(got.BurnRates), len(want.BurnRates))
	}
	for i, g := range got.BurnRates {
		w := want.BurnRates[i]
		if g.Total != w.Total || g.ShortTotal != w.ShortTotal || !within(g.Bad, w.Bad, g.BadUncertain) || !within(g.ShortBad, w.ShortBad, g.ShortBadUncertain) {
			t.Errorf("burn %s: %d (%d bad ±%d), short %d (%d ±%d); exact %d (%d), %d (%d)", g.Rule, g.Total, g.Bad, g.BadUncertain,
				g.ShortTotal, g.ShortBad, g.ShortBadUncertain, w.Total, w.Bad, w.ShortTotal, w.ShortBad)
		}
		if g.BadUncertain == 0 && g.ShortBadUncertain == 0 && (g.BurnRate != w.BurnRate || g.ShortBurnRate != w.ShortBurnRate || g.Alerting != w.Alerting) {
			t.Errorf("burn %s: %v, %v (alerting %v); exact %v, %v (%v)", g.Rule, g.BurnRate, g.ShortBurnRate, g.Alerting, w.BurnRate, w.ShortBurnRate, w.Alerting)
		}
	}
	// The hop table: both are samples; the rollups' interval must hold
	// the spans' estimate, over samples of the full sizes.
	if got.SampledRequests < 990 || got.SampleComplete || got.SampledSlowRequests < min(want.SampledSlowRequests, 300)-10 {
		t.Errorf("sampled %d (complete %v), %d slow; spans sampled %d, %d slow", got.SampledRequests, got.SampleComplete,
			got.SampledSlowRequests, want.SampledRequests, want.SampledSlowRequests)
	}
	rows := func(r analysis.ComplianceReport) map[string]analysis.HopCompliance {
		out := map[string]analysis.HopCompliance{"unbudgeted": r.Unbudgeted}
		for _, h := range r.Hops {
			out[h.Label] = h
		}
		return out
	}
	wantRows := rows(want)
	for label, g := range rows(got) {
		w := wantRows[label]
		if w.OverrunRate < g.OverrunRateLow || w.OverrunRate > g.OverrunRateHigh {
			t.Errorf("hop %s: overrun rate %v [%v, %v] from rollups; the spans' sample says %v", label, g.OverrunRate, g.OverrunRateLow, g.OverrunRateHigh, w.OverrunRate)
		}
	}
}

// within reports whether got is within tol of want.
func within(got, want, tol int) bool { return got-want <= tol && want-got <= tol }
