package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis/analysistest"
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
		wants []string // substrings of the error; none = valid
	}{
		{"valid", func(b *store.Budget) {}, nil},
		{"no hops is fine", func(b *store.Budget) { b.Hops = nil }, nil},
		{"zero threshold", func(b *store.Budget) { b.Threshold = 0 }, []string{"threshold must be positive"}},
		{"negative threshold", func(b *store.Budget) { b.Threshold = -time.Second }, []string{"threshold must be positive (got -1s)"}},
		{"target 1", func(b *store.Budget) { b.Target = 1 }, []string{"target 1 is outside (0, 1)"}},
		{"target 99", func(b *store.Budget) { b.Target = 99 }, []string{"target 99 is outside (0, 1): write 99% as 0.99"}},
		{"target 0", func(b *store.Budget) { b.Target = 0 }, []string{"outside (0, 1)"}},
		{"target NaN", func(b *store.Budget) { b.Target = math.NaN() }, []string{"outside (0, 1)"}},
		{"no period", func(b *store.Budget) { b.Period = 0 }, []string{"period must be positive"}},
		{"long period", func(b *store.Budget) { b.Period = 1000 * 24 * time.Hour }, []string{"longer than 400 days"}},
		{"no service or endpoint", func(b *store.Budget) { b.Service, b.Endpoint = "", " " }, []string{"service is required", "endpoint is required"}},
		{"negative allocation", func(b *store.Budget) { b.Hops[0].Allocation = -time.Millisecond },
			[]string{"hop feed-api → profile-svc: allocation must be positive (got -1ms)"}},
		{"allocations above threshold", func(b *store.Budget) { b.Hops[1].Allocation = 80 * time.Millisecond },
			[]string{"hop allocations add up to 110ms, more than the 100ms threshold"}},
		{"duplicate hop", func(b *store.Budget) { b.Hops[1] = b.Hops[0] }, []string{"hop feed-api → profile-svc appears twice"}},
		{"hop without service", func(b *store.Budget) { b.Hops[0].Service = "" }, []string{"hops[0]: service is required"}},
		{"several problems at once", func(b *store.Budget) { b.Threshold, b.Target = 0, 2 },
			[]string{"threshold must be positive", "target 2 is outside"}},
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
			if !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("ValidateBudget = %v, want an ErrInvalid", err)
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestDecodeBudget(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string // error substring; "" = valid
	}{
		{"valid", `{"name":"n","service":"s","endpoint":"e","threshold_ms":500,"target":0.99,"period":"30d","hops":[{"service":"s","dependency":"d","allocation_ms":20}]}`, ""},
		{"go duration period", `{"service":"s","endpoint":"e","threshold_ms":500,"target":0.99,"period":"12h"}`, ""},
		{"unknown field", `{"service":"s","endpoint":"e","threshold_ms":500,"target":0.99,"period":"30d","treshold":1}`, `unknown field "treshold"`},
		{"unknown hop field", `{"service":"s","endpoint":"e","threshold_ms":500,"target":0.99,"period":"30d","hops":[{"service":"s","alloc":3}]}`, `unknown field "alloc"`},
		{"wrong type", `{"service":"s","endpoint":"e","threshold_ms":"500ms","target":0.99,"period":"30d"}`, `field "threshold_ms": want a float64, got a JSON string`},
		{"trailing data", `{"service":"s","endpoint":"e","threshold_ms":500,"target":0.99,"period":"30d"} {}`, "unexpected data after"},
		{"empty", ``, "empty body"},
		{"malformed", `{"service":`, "malformed JSON"},
		{"bad period", `{"service":"s","endpoint":"e","threshold_ms":500,"target":0.99,"period":"a month"}`, `period "a month"`},
		{"missing period", `{"service":"s","endpoint":"e","threshold_ms":500,"target":0.99}`, "period is required"},
		{"huge threshold", `{"service":"s","endpoint":"e","threshold_ms":1e300,"target":0.99,"period":"30d"}`, "threshold_ms: 1e+300 is not a usable"},
		{"validation runs", `{"service":"s","endpoint":"e","threshold_ms":-1,"target":0.99,"period":"30d"}`, "threshold must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := DecodeBudget(strings.NewReader(tt.body))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("DecodeBudget = %v", err)
				}
				if b.Service != "s" || b.Threshold != 500*time.Millisecond || b.Target != 0.99 {
					t.Errorf("decoded %+v", b)
				}
				return
			}
			if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("DecodeBudget error %v, want one saying %q", err, tt.want)
			}
		})
	}
}

func TestBudgetJSONRoundTrip(t *testing.T) {
	b := validBudget()
	b.ID = 7
	b.CreatedAt = testEpoch
	j, err := json.Marshal(BudgetToJSON(b))
	if err != nil {
		t.Fatal(err)
	}
	// The id and timestamps are the store's; a client sending them back
	// is not an error, and they are not taken from the body.
	back, err := DecodeBudget(strings.NewReader(string(j)))
	if err != nil {
		t.Fatalf("decode %s: %v", j, err)
	}
	b.ID, b.CreatedAt = 0, time.Time{}
	if !reflect.DeepEqual(back, b) {
		t.Errorf("round trip: %+v, want %+v", back, b)
	}
}

func TestPeriods(t *testing.T) {
	for _, tt := range []struct {
		text string
		d    time.Duration
	}{{"30d", 30 * 24 * time.Hour}, {"1d", 24 * time.Hour}, {"12h0m0s", 12 * time.Hour}, {"1h30m0s", 90 * time.Minute}} {
		d, err := ParsePeriod(tt.text)
		if err != nil || d != tt.d {
			t.Errorf("ParsePeriod(%q) = %v, %v", tt.text, d, err)
		}
		if got := FormatPeriod(tt.d); got != tt.text {
			t.Errorf("FormatPeriod(%v) = %q, want %q", tt.d, got, tt.text)
		}
	}
	for _, bad := range []string{"", "d", "1.5d", "month", "30 d"} {
		if _, err := ParsePeriod(bad); err == nil {
			t.Errorf("ParsePeriod(%q) should fail", bad)
		}
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
	if rep.SampledRequests < 400 || len(rep.Hops) != 2 {
		t.Fatalf("sampled %d requests, %d hops", rep.SampledRequests, len(rep.Hops))
	}
	prof := rep.Hops[0]
	wantRate := float64(profileOver) / 4000
	if math.Abs(prof.OverrunRate-wantRate) > 0.07 || prof.Overruns == 0 || prof.MeanOverrunMs <= 0 || prof.MaxOverrunMs < prof.MeanOverrunMs {
		t.Errorf("profile hop %+v, want overrun rate ≈ %.3f", prof, wantRate)
	}
	if rep.Hops[1].OverrunRate > 0.15 || rep.Hops[1].P50Ms < 15 || rep.Hops[1].P50Ms > 25 {
		t.Errorf("postgres hop %+v: the v1 query takes ~20 ms against 40 ms", rep.Hops[1])
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
	if rep.Status != wantStatus {
		t.Errorf("status %s, want %s", rep.Status, wantStatus)
	}
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
	// Read a day at a time: two chunks of samples for the 48 hours.
	src2 := &countingSource{Source: src}
	if _, err := Compliance(context.Background(), src2, b, testEpoch, now, now); err != nil {
		t.Fatal(err)
	}
	if src2.samples != 3 { // two chunks + the burn-rate day
		t.Errorf("%d sample reads, want 3", src2.samples)
	}
}

type countingSource struct {
	*analysistest.Source
	samples int
}

func (c *countingSource) Samples(ctx context.Context, q store.SampleQuery) ([]store.Sample, error) {
	c.samples++
	return c.Source.Samples(ctx, q)
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
