package analysis

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/internal/validate"
	"github.com/tailscope/tailscope/store"
)

func validBudget() store.Budget {
	return store.Budget{
		Name: "feed p99", Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint,
		Threshold: 100 * time.Millisecond, Target: 0.99, Period: 30 * 24 * time.Hour,
		Hops: []store.HopBudget{
			{Service: analysistest.FeedAPI, Dependency: analysistest.ProfileSvc, Allocation: 30 * time.Millisecond},
			{Service: analysistest.CandidateSvc, Dependency: analysistest.Postgres, Allocation: 40 * time.Millisecond},
		},
	}
}

func TestValidateBudget(t *testing.T) {
	tests := []struct {
		name  string
		mut   func(b *store.Budget)
		wants []validate.FieldError // none = valid
	}{
		{"valid", func(b *store.Budget) {}, nil},
		{"no hops is fine", func(b *store.Budget) { b.Hops = nil }, nil},
		{"own time", func(b *store.Budget) { b.HopMeasure = store.HopOwnTime }, nil},
		{"zero threshold", func(b *store.Budget) { b.Threshold = 0 }, []validate.FieldError{{Field: FieldThreshold, Index: -1, Msg: "threshold must be positive (got 0s)"}}},
		{"negative threshold", func(b *store.Budget) { b.Threshold = -time.Second }, []validate.FieldError{{Field: FieldThreshold, Index: -1, Msg: "threshold must be positive (got -1s)"}}},
		{"target 1", func(b *store.Budget) { b.Target = 1 }, []validate.FieldError{{Field: FieldTarget, Index: -1, Msg: "target 1 is outside (0, 1): write 99% as 0.99"}}},
		{"target 99", func(b *store.Budget) { b.Target = 99 }, []validate.FieldError{{Field: FieldTarget, Index: -1, Msg: "target 99 is outside (0, 1): write 99% as 0.99"}}},
		{"target NaN", func(b *store.Budget) { b.Target = math.NaN() }, []validate.FieldError{{Field: FieldTarget, Index: -1, Msg: "target NaN is outside (0, 1): write 99% as 0.99"}}},
		{"no period", func(b *store.Budget) { b.Period = 0 }, []validate.FieldError{{Field: FieldPeriod, Index: -1, Msg: "period must be positive (got 0s)"}}},
		{"long period", func(b *store.Budget) { b.Period = 1000 * 24 * time.Hour }, []validate.FieldError{{Field: FieldPeriod, Index: -1, Msg: "period 1000d is longer than 400 days"}}},
		{"unknown measure", func(b *store.Budget) { b.HopMeasure = "wall" }, []validate.FieldError{{Field: FieldHopMeasure, Index: -1, Msg: `hop measure "wall" is neither "whole_call" nor "own_time"`}}},
		{"no service or endpoint", func(b *store.Budget) { b.Service, b.Endpoint = "", " " },
			[]validate.FieldError{{Field: FieldService, Index: -1, Msg: "service is required"}, {Field: FieldEndpoint, Index: -1, Msg: "endpoint is required"}}},
		{"service and endpoint too long to be stored", func(b *store.Budget) {
			b.Service, b.Endpoint = strings.Repeat("s", store.MaxLabelBytes+1), strings.Repeat("e", store.MaxNameBytes+1)
		}, []validate.FieldError{{Field: FieldService, Index: -1, Msg: "service is longer than 256 bytes"}, {Field: FieldEndpoint, Index: -1, Msg: "endpoint is longer than 1024 bytes"}}},
		{"negative allocation", func(b *store.Budget) { b.Hops[1].Allocation = -time.Millisecond },
			[]validate.FieldError{{Field: FieldHopAllocation, Index: 1, Msg: "allocation must be positive (got -1ms)"}}},
		{"allocations above threshold", func(b *store.Budget) { b.Hops[1].Allocation = 80 * time.Millisecond },
			[]validate.FieldError{{Field: FieldHops, Index: -1, Msg: "hop allocations add up to 110ms, more than the 100ms threshold"}}},
		{"duplicate hop", func(b *store.Budget) { b.Hops[1] = b.Hops[0] }, []validate.FieldError{{Field: FieldHops, Index: 1, Msg: "feed-api → profile-svc appears twice"}}},
		{"hop without service", func(b *store.Budget) { b.Hops[0].Service = "" }, []validate.FieldError{{Field: FieldHopService, Index: 0, Msg: "service is required"}}},
		{"several problems at once", func(b *store.Budget) { b.Threshold, b.Target = 0, 2 },
			[]validate.FieldError{{Field: FieldThreshold, Index: -1, Msg: "threshold must be positive (got 0s)"}, {Field: FieldTarget, Index: -1, Msg: "target 2 is outside (0, 1): write 99% as 0.99"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := validBudget()
			tt.mut(&b)
			err := ValidateBudget(b)
			if len(tt.wants) == 0 {
				if err != nil {
					t.Fatalf("ValidateBudget = %v, want nil", err)
				}
				return
			}
			var verr validate.ValidationError
			if !errors.Is(err, store.ErrInvalid) || !errors.As(err, &verr) {
				t.Fatalf("ValidateBudget = %v, want a ValidationError (an ErrInvalid)", err)
			}
			if !slices.Equal(verr, tt.wants) {
				t.Errorf("ValidateBudget problems\n got %+v\nwant %+v", verr, tt.wants)
			}
		})
	}
}

func TestCompliance(t *testing.T) {
	ds := analysistest.Generate(analysistest.Scenario{Seed: 31, Traces: 4000, Start: testEpoch})
	src := analysistest.NewSource(ds.Spans)
	b := validBudget()
	b.Threshold = 250 * time.Millisecond
	var roots []store.Span
	byTrace := map[store.TraceID][]store.Span{}
	for _, sp := range ds.Spans {
		byTrace[sp.TraceID] = append(byTrace[sp.TraceID], sp)
		if sp.IsRoot() {
			roots = append(roots, sp)
		}
	}
	bad := 0
	for _, r := range roots {
		if r.DurationNano > int64(b.Threshold) {
			bad++
		}
	}
	// The profile hop's critical time in v1 is its calls' total duration.
	profileOver := 0
	for _, r := range roots {
		var sum int64
		for _, sp := range byTrace[r.TraceID] {
			if sp.Dependency == analysistest.ProfileSvc {
				sum += sp.DurationNano
			}
		}
		if sum > int64(30*time.Millisecond) {
			profileOver++
		}
	}
	now := testEpoch.Add(time.Hour)
	rep, err := Compliance(context.Background(), src, b, testEpoch, now, now)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total != 4000 || rep.Bad != bad || rep.Good != 4000-bad {
		t.Fatalf("total %d bad %d, want 4000 and %d", rep.Total, rep.Bad, bad)
	}
	if bad == 0 || bad > 400 {
		t.Fatalf("scenario gives %d bad requests; the test needs some, not many", bad)
	}
	wantRemaining := round4(1 - float64(bad)/(0.01*4000))
	if rep.ErrorBudgetRemaining != wantRemaining || rep.Attainment != round4(float64(4000-bad)/4000) {
		t.Errorf("remaining %v attainment %v, want %v", rep.ErrorBudgetRemaining, rep.Attainment, wantRemaining)
	}
	if rep.Met != (bad <= 40) {
		t.Errorf("met = %v with %d bad of 4000", rep.Met, bad)
	}
	wantBurn := round3(float64(bad) / 4000 / 0.01)
	wantAlert := []float64{14.4, 6, 3}
	for i, br := range rep.BurnRates {
		if br.Total != 4000 || br.BurnRate != wantBurn || br.AlertThreshold != wantAlert[i] || br.Alerting != (wantBurn >= wantAlert[i]) {
			t.Errorf("burn %s = %+v, want rate %v threshold %v", br.Window, br, wantBurn, wantAlert[i])
		}
	}
	last := rep.Series[len(rep.Series)-1]
	if last.Total != 4000 || last.Bad != bad || last.BudgetRemaining != wantRemaining {
		t.Errorf("series ends at %+v", last)
	}
	for i := 1; i < len(rep.Series); i++ {
		if rep.Series[i].Total < rep.Series[i-1].Total {
			t.Fatal("series is not cumulative")
		}
	}
	if rep.SampledRequests != hopSampleSize || rep.SampleComplete || len(rep.Hops) != 2 {
		t.Fatalf("sampled %d requests (complete %v), %d hops; want %d of the 4,000", rep.SampledRequests, rep.SampleComplete, len(rep.Hops), hopSampleSize)
	}
	prof, pg := hopByLabel(t, rep, "feed-api → profile-svc"), hopByLabel(t, rep, "candidate-svc → postgresql")
	wantRate := float64(profileOver) / 4000
	if prof.OverrunRateLow > wantRate || prof.OverrunRateHigh < wantRate || prof.Overruns == 0 || prof.MeanOverrunMs <= 0 || prof.MaxOverrunMs < prof.MeanOverrunMs {
		t.Errorf("profile hop %+v, want an interval around the true overrun rate %.4f", prof, wantRate)
	}
	if pg.OverrunRate > 0.15 || pg.P50Ms < 15 || pg.P50Ms > 25 {
		t.Errorf("postgres hop %+v: the v1 query takes ~20 ms against 40 ms", pg)
	}
	if rep.WorstHop != prof.Label {
		t.Errorf("worst hop %q, want %q", rep.WorstHop, prof.Label)
	}
	if rep.Unbudgeted.AllocationMs != 180 || rep.Unbudgeted.Requests != rep.SampledRequests {
		t.Errorf("unbudgeted %+v", rep.Unbudgeted)
	}
	wantStatus := BudgetOK
	switch {
	case wantRemaining < 0:
		wantStatus = BudgetExhausted
	case slices.ContainsFunc(rep.BurnRates, func(r BurnRate) bool { return r.Alerting }):
		wantStatus = BudgetBurning
	}
	if rep.Status != wantStatus || rep.StatusText != wantStatus.Text() {
		t.Errorf("status %s (%q), want %s", rep.Status, rep.StatusText, wantStatus)
	}
}

func hopByLabel(t *testing.T, rep ComplianceReport, label string) HopCompliance {
	t.Helper()
	for _, h := range rep.Hops {
		if h.Label == label {
			return h
		}
	}
	t.Fatalf("no hop %q in %+v", label, rep.Hops)
	return HopCompliance{}
}

// TestComplianceBurn: a long healthy period then one bad hour: the 1 h
// burn rate alerts, the long-window attainment still looks fine.
func TestComplianceBurn(t *testing.T) {
	healthy := analysistest.Generate(analysistest.Scenario{Seed: 32, Traces: 6000, Start: testEpoch, Window: 47 * time.Hour})
	burning := analysistest.Generate(analysistest.Scenario{Seed: 33, Traces: 200, Start: testEpoch.Add(47 * time.Hour), Window: time.Hour,
		Causes: []analysistest.Cause{{Name: "outage", Dependency: analysistest.ProfileSvc, Probability: 0.5, Extra: time.Second}}})
	src := analysistest.NewSource(append(healthy.Spans, burning.Spans...))
	b := validBudget()
	b.Threshold = 500 * time.Millisecond
	now := testEpoch.Add(48 * time.Hour)
	rep, err := Compliance(context.Background(), src, b, time.Time{}, time.Time{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total != 6200 || !rep.From.Equal(now.Add(-b.Period)) {
		t.Fatalf("whole period: %d requests from %s", rep.Total, rep.From)
	}
	one := rep.BurnRates[0]
	if one.Window != "1h" || one.Total != 200 || one.BurnRate < 14.4 || !one.Alerting {
		t.Errorf("1h burn %+v, want alerting", one)
	}
	if rep.Status != BudgetExhausted && rep.Status != BudgetBurning {
		t.Errorf("status %s", rep.Status)
	}
	// Read a day at a time: two chunks of samples for the 48 hours, which
	// hold the burn-rate windows too.
	src2 := &countingSource{Source: src}
	again, err := Compliance(context.Background(), src2, b, testEpoch, now, now)
	if err != nil {
		t.Fatal(err)
	}
	if src2.samples != 2 || !slices.Equal(again.BurnRates, rep.BurnRates) {
		t.Errorf("%d sample reads, want 2 (burn rates %+v, want %+v)", src2.samples, again.BurnRates, rep.BurnRates)
	}
	// A window that ends before the burn windows reads them on their own,
	// with the same result.
	src3 := &countingSource{Source: src}
	past, err := Compliance(context.Background(), src3, b, testEpoch, testEpoch.Add(12*time.Hour), now)
	if err != nil {
		t.Fatal(err)
	}
	if src3.samples != 2 || !slices.Equal(past.BurnRates, rep.BurnRates) {
		t.Errorf("past window: %d sample reads, want 2 (one chunk, the burn-rate day); burn rates %+v, want %+v", src3.samples, past.BurnRates, rep.BurnRates)
	}
}

type countingSource struct {
	*analysistest.Source
	samples, traces int
}

func (c *countingSource) Samples(ctx context.Context, q store.SampleQuery) ([]store.Sample, error) {
	c.samples++
	return c.Source.Samples(ctx, q)
}

func (c *countingSource) Traces(ctx context.Context, ids []store.TraceID) (map[store.TraceID][]store.Span, error) {
	c.traces += len(ids)
	return c.Source.Traces(ctx, ids)
}

// TestComplianceWithoutHops: a budget without hops has no hop table, and
// computing its compliance reads no trace.
func TestComplianceWithoutHops(t *testing.T) {
	ds := analysistest.Generate(analysistest.Scenario{Seed: 34, Traces: 500, Start: testEpoch})
	src := &countingSource{Source: analysistest.NewSource(ds.Spans)}
	b := validBudget()
	b.Hops = nil
	now := testEpoch.Add(time.Hour)
	rep, err := Compliance(context.Background(), src, b, testEpoch, now, now)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total != 500 || rep.Bad == 0 || len(rep.Hops) != 0 || rep.SampledRequests != 0 || rep.WorstHop != "" || src.traces != 0 {
		t.Errorf("total %d bad %d, %d hops, %d sampled, worst %q, %d traces read; want the counts and no table", rep.Total, rep.Bad, len(rep.Hops), rep.SampledRequests, rep.WorstHop, src.traces)
	}
}

func TestComplianceNoDataAndInvalid(t *testing.T) {
	src := analysistest.NewSource(nil)
	b := validBudget()
	now := testEpoch
	rep, err := Compliance(context.Background(), src, b, time.Time{}, time.Time{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != BudgetNoData || rep.Attainment != 1 || rep.ErrorBudgetRemaining != 1 || rep.WorstHop != "" {
		t.Errorf("no data: %+v", rep)
	}
	b.Target = 2
	if _, err := Compliance(context.Background(), src, b, time.Time{}, time.Time{}, now); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("invalid budget: %v", err)
	}
	if _, err := Compliance(context.Background(), src, validBudget(), now, now.Add(-time.Hour), now); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("inverted range: %v", err)
	}
	if _, err := Compliance(context.Background(), src, validBudget(), time.Time{}, time.Time{}, time.Time{}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("no now: %v", err)
	}
}

func TestParseBurnRules(t *testing.T) {
	rules, err := ParseBurnRules("14.4:1h:5m, 6:6h:30m, 3:1d:2h:ticket")
	if err != nil || len(rules) != 3 || rules[2].Severity != "ticket" || rules[2].Long != 24*time.Hour || rules[0].Name() != "14.4× over 1h and 5m" {
		t.Fatalf("rules %+v, %v", rules, err)
	}
	if !slices.Equal(rules, DefaultBurnRules()) {
		t.Errorf("%+v, want the defaults %+v", rules, DefaultBurnRules())
	}
	for _, bad := range []string{"", "14.4", "x:1h:5m", "0:1h:5m", "14.4:5m:1h", "14.4:1h:5m:pager", "14.4:1h:5m,14.4:1h:5m", "14.4:1h:-5m", "NaN:1h:5m", "14.4:60d:1h"} {
		if _, err := ParseBurnRules(bad); err == nil {
			t.Errorf("ParseBurnRules(%q) accepted", bad)
		}
	}
}
