package analysis

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/store"
)

// scenarioBudget is the budget of the budget scenario's tests: 300 ms for
// 99% of requests over 30 days. The candidate-svc call is given less than
// its usual time, so it overruns in many requests by a few milliseconds;
// the culprit is the profile call, a second slower in 3% of the busy
// hour's requests.
func scenarioBudget(measure store.HopMeasure) store.Budget {
	return store.Budget{
		Name: "feed", Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint,
		Threshold: 300 * time.Millisecond, Target: 0.99, Period: 30 * 24 * time.Hour, HopMeasure: measure,
		Hops: []store.HopBudget{
			{Service: analysistest.FeedAPI, Dependency: analysistest.CandidateSvc, Allocation: 25 * time.Millisecond},
			{Service: analysistest.FeedAPI, Dependency: analysistest.ProfileSvc, Allocation: 100 * time.Millisecond},
			{Service: analysistest.FeedAPI, Dependency: analysistest.Ranker, Allocation: 30 * time.Millisecond},
		},
	}
}

// wholeCallTruth is each request's whole-call time per hop of b, read
// straight from the spans: in the sequential (v1) shape every call of
// feed-api is on the critical path from its start to its end, so a call
// hop's whole-call time is the summed duration of its client spans.
func wholeCallTruth(spans []store.Span, b store.Budget) (roots []store.Span, times map[store.TraceID][]int64) {
	idx := map[hopKey]int{}
	for i, h := range b.Hops {
		idx[hopKey{h.Service, h.Dependency}] = i
	}
	times = map[store.TraceID][]int64{}
	for _, sp := range spans {
		if sp.IsRoot() {
			roots = append(roots, sp)
		}
		if times[sp.TraceID] == nil {
			times[sp.TraceID] = make([]int64, len(b.Hops))
		}
		if i, ok := idx[hopKey{sp.Service, sp.Dependency}]; ok && sp.Kind == store.KindClient && sp.ParentSpanID != (store.SpanID{}) {
			times[sp.TraceID][i] += sp.DurationNano
		}
	}
	return roots, times
}

// TestComplianceBudgetScenario is issue 14's case: a 30-day budget with
// 2,000 requests spread over the month and 20,000 in its last hour, where
// the profile call is a second slower in 3% of the busy hour's requests.
// Sampling each day alike measured 16 requests of that hour and could not
// see the culprit; the sample must follow the traffic, be at least 1,000
// requests, give intervals that hold the true overrun rates, and rank the
// culprit first although another hop overruns more often.
func TestComplianceBudgetScenario(t *testing.T) {
	sc := analysistest.BudgetScenario{Seed: 14}
	ds := analysistest.GenerateBudget(sc)
	end := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	b := scenarioBudget(store.HopWholeCall)
	roots, truth := wholeCallTruth(ds.Spans, b)
	if len(roots) != 22_000 {
		t.Fatalf("%d requests generated, want 22,000", len(roots))
	}
	rep, err := Compliance(context.Background(), analysistest.NewSource(ds.Spans), b, time.Time{}, time.Time{}, end)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total != 22_000 || rep.SampledRequests < 1000 || rep.SampleComplete {
		t.Fatalf("total %d, sampled %d (complete %v): want at least 1,000 of 22,000", rep.Total, rep.SampledRequests, rep.SampleComplete)
	}
	// The sample follows the traffic: about 20/22 of it in the last hour.
	if busy := sampledIn(t, ds, rep, b, end.Add(-time.Hour)); busy < 0.85*float64(rep.SampledRequests) {
		t.Errorf("%.0f of %d sampled requests in the busy hour, want about 91%%", busy, rep.SampledRequests)
	}
	for i, h := range b.Hops {
		over := 0
		for _, r := range roots {
			if truth[r.TraceID][i] > int64(h.Allocation) {
				over++
			}
		}
		rate := float64(over) / float64(len(roots))
		row := hopByLabel(t, rep, HopLabel(h.Service, h.Dependency))
		if row.OverrunRateLow > rate || row.OverrunRateHigh < rate || row.Requests != rep.SampledRequests {
			t.Errorf("%s: overran in %.4f of the window's requests; interval [%.4f, %.4f] of %d sampled does not hold it",
				row.Label, rate, row.OverrunRateLow, row.OverrunRateHigh, row.Requests)
		}
	}
	culprit, candidate := hopByLabel(t, rep, "feed-api → profile-svc"), hopByLabel(t, rep, "feed-api → candidate-svc")
	if rep.WorstHop != culprit.Label || rep.Hops[0].Label != culprit.Label {
		t.Errorf("worst hop %q (first row %q), want the culprit %q", rep.WorstHop, rep.Hops[0].Label, culprit.Label)
	}
	// The test means something only if ranking by frequency would have
	// named another hop.
	if candidate.OverrunRate <= culprit.OverrunRate {
		t.Fatalf("candidate hop overruns in %.3f, culprit in %.3f: the scenario no longer separates frequency from cost", candidate.OverrunRate, culprit.OverrunRate)
	}
	if culprit.Contribution < 0.8 || rep.WorstHopContribution != culprit.Contribution {
		t.Errorf("culprit contributes %.3f of the time over the threshold, want most of it", culprit.Contribution)
	}
	var sum float64
	for _, h := range append(slices.Clone(rep.Hops), rep.Unbudgeted) {
		sum += h.Contribution
	}
	if math.Abs(sum-1) > 0.001 {
		t.Errorf("contributions add up to %.4f, want 1", sum)
	}
	if rep.SampledSlowRequests != slowSampleSize {
		t.Errorf("%d slow requests measured, want %d of the %d", rep.SampledSlowRequests, slowSampleSize, rep.Bad)
	}
	// Examples are culprit traces.
	if len(culprit.ExampleTraceIDs) != hopExamples {
		t.Fatalf("culprit examples %v", culprit.ExampleTraceIDs)
	}
	for _, id := range culprit.ExampleTraceIDs {
		if !slices.Contains(ds.Truth[id], "culprit") {
			t.Errorf("example %s is not a culprit trace", id)
		}
	}
	// The status and the burn rates use one vocabulary.
	if rep.Status != BudgetExhausted || rep.StatusText != "Exhausted" {
		t.Errorf("status %s %q, want exhausted: 3%% slow requests against a 1%% budget", rep.Status, rep.StatusText)
	}
	for _, br := range rep.BurnRates {
		if br.State == BurnWithinPace || br.Text == "" || br.StateText == "" {
			t.Errorf("burn %+v: the busy hour burns at about 2.7×", br)
		}
	}
}

// sampledIn counts the sampled requests (those in rows' Requests) that
// started at or after t, by recomputing the sample the report used.
func sampledIn(t *testing.T, ds analysistest.Dataset, rep ComplianceReport, b store.Budget, after time.Time) float64 {
	t.Helper()
	src := analysistest.NewSource(ds.Spans)
	ss, err := src.Samples(context.Background(), store.SampleQuery{Service: b.Service, Endpoint: b.Endpoint, From: rep.From, To: rep.To})
	if err != nil {
		t.Fatal(err)
	}
	k := newBottomK(hopSampleSize)
	for i := range ss {
		k.add(&ss[i])
	}
	n := 0
	for _, s := range k.samples() {
		if s.StartUnixNano >= after.UnixNano() {
			n++
		}
	}
	return float64(n)
}

// TestHopMeasures: a call hop measured as own time counts only the client
// span's network and queueing, so a 25 ms allocation for feed-api →
// candidate-svc never overruns though the call itself takes ~21 ms at the
// median and longer in many requests; measured as the whole call it
// overruns exactly when the call takes longer.
func TestHopMeasures(t *testing.T) {
	ds := analysistest.Generate(analysistest.Scenario{Seed: 41, Traces: 800, Start: testEpoch})
	src := analysistest.NewSource(ds.Spans)
	now := testEpoch.Add(time.Hour)
	for _, tt := range []struct {
		measure  store.HopMeasure
		wantSome bool
	}{{store.HopOwnTime, false}, {store.HopWholeCall, true}, {"", true}} {
		b := scenarioBudget(tt.measure)
		rep, err := Compliance(context.Background(), src, b, testEpoch, now, now)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.SampleComplete || rep.SampledRequests != 800 {
			t.Fatalf("%s: %d of 800 requests measured (complete %v), want all", tt.measure, rep.SampledRequests, rep.SampleComplete)
		}
		if want := HopMeasureOf(b); rep.HopMeasure != want {
			t.Errorf("report says hop measure %q, want %q", rep.HopMeasure, want)
		}
		roots, truth := wholeCallTruth(ds.Spans, b)
		over := 0
		for _, r := range roots {
			if truth[r.TraceID][0] > int64(b.Hops[0].Allocation) {
				over++
			}
		}
		cand := hopByLabel(t, rep, "feed-api → candidate-svc")
		want := 0
		if tt.wantSome {
			want = over
		}
		if cand.Overruns != want || cand.OverrunRateLow != cand.OverrunRate || cand.OverrunRateHigh != cand.OverrunRate {
			t.Errorf("%q: candidate hop overran in %d (interval [%v, %v]), want %d of all 800 (exact: every request measured)",
				tt.measure, cand.Overruns, cand.OverrunRateLow, cand.OverrunRateHigh, want)
		}
		if over < 100 {
			t.Fatalf("only %d whole calls over 25 ms: the test needs many", over)
		}
	}
}

// TestHopMeterTiles: whatever the measure and however hops nest, each
// request's hop times and unbudgeted rest add up to its duration; a
// budgeted hop inside a whole call takes its own time out of the call.
func TestHopMeterTiles(t *testing.T) {
	for _, parallel := range []bool{false, true} {
		ds := analysistest.Generate(analysistest.Scenario{Seed: 43, Traces: 300, Start: testEpoch, Parallel: parallel})
		byTrace := map[store.TraceID][]store.Span{}
		for _, sp := range ds.Spans {
			byTrace[sp.TraceID] = append(byTrace[sp.TraceID], sp)
		}
		outer := store.HopBudget{Service: analysistest.FeedAPI, Dependency: analysistest.CandidateSvc, Allocation: time.Millisecond}
		inner := store.HopBudget{Service: analysistest.CandidateSvc, Dependency: analysistest.Postgres, Allocation: time.Millisecond}
		self := store.HopBudget{Service: analysistest.FeedAPI, Allocation: time.Millisecond}
		alone := newHopMeter(store.Budget{Hops: []store.HopBudget{outer}})
		nested := newHopMeter(store.Budget{Hops: []store.HopBudget{outer, inner, self}})
		own := newHopMeter(store.Budget{HopMeasure: store.HopOwnTime, Hops: []store.HopBudget{outer, inner, self}})
		for _, id := range ds.Roots {
			spans := byTrace[id]
			var root, call *store.Span
			var query int64
			for i := range spans {
				switch sp := &spans[i]; {
				case sp.IsRoot():
					root = sp
				case sp.Dependency == analysistest.CandidateSvc:
					call = sp
				case sp.Dependency == analysistest.Postgres && sp.Service == analysistest.CandidateSvc:
					query = sp.DurationNano
				}
			}
			one := make([]int64, 1)
			three := make([]int64, 3)
			rest, ok := alone.measure(spans, root.SpanID, one)
			if !ok || one[0]+rest != root.DurationNano {
				t.Fatalf("alone: %v + %v != %v", one, rest, root.DurationNano)
			}
			// Sequentially the whole call is on the path; in parallel
			// only when it is the longest branch.
			if !parallel && one[0] != call.DurationNano {
				t.Errorf("whole call %d ns, client span %d ns", one[0], call.DurationNano)
			}
			if one[0] > call.DurationNano {
				t.Errorf("whole call %d ns exceeds the client span's %d ns", one[0], call.DurationNano)
			}
			rest, ok = nested.measure(spans, root.SpanID, three)
			if !ok || three[0]+three[1]+three[2]+rest != root.DurationNano {
				t.Fatalf("nested: %v + %v != %v", three, rest, root.DurationNano)
			}
			if three[0]+three[1] != one[0] || (one[0] == call.DurationNano && three[1] != query) {
				t.Errorf("nested: call %d + query %d, want the whole call %d split with the query's %d", three[0], three[1], one[0], query)
			}
			rest, ok = own.measure(spans, root.SpanID, three)
			if !ok || three[0]+three[1]+three[2]+rest != root.DurationNano || three[0] > call.DurationNano-query {
				t.Errorf("own time: %v + %v; the client span's own time cannot hold the server's work", three, rest)
			}
		}
	}
}

// TestHopContributions works two slow requests by hand: threshold
// 100 ms, hops allocated 30 and 40 ms (30 left unbudgeted). The first
// took 150 ms: 20 ms, 110 ms, 20 ms unbudgeted; only the second hop
// overran (by 70 ms), so it carries all 50 ms over the threshold. Sampled
// with weight 3 (it stands for three requests), it counts three times.
func TestHopContributions(t *testing.T) {
	ms := int64(time.Millisecond)
	allocs := []int64{30 * ms, 40 * ms, 30 * ms}
	for _, tc := range []struct {
		w1           float64
		want, wantMs []float64
	}{
		// 30, 50 + 10 and 10 of the 100 ms over, per 2 requests.
		{1, []float64{0.3, 0.6, 0.1}, []float64{15, 30, 5}},
		// 30, 150 + 10 and 10 of the 200 ms over, per 4 requests.
		{3, []float64{0.15, 0.8, 0.05}, []float64{7.5, 40, 2.5}},
	} {
		rows := make([]HopCompliance, 3)
		slow := []*hopRequest{
			{per: []int64{20 * ms, 110 * ms}, rest: 20 * ms, w: tc.w1},
			// 60 + 50 + 40 = 150: hop 0 over by 30, hop 1 by 10, the rest
			// by 10, so 50 ms split 3:1:1.
			{per: []int64{60 * ms, 50 * ms}, rest: 40 * ms, w: 1},
		}
		hopContributions(slow, allocs, 100*ms, rows)
		for i := range rows {
			if math.Abs(rows[i].Contribution-tc.want[i]) > 1e-4 || math.Abs(rows[i].ContributionMs-tc.wantMs[i]) > 1e-3 {
				t.Errorf("weight %v, row %d: contribution %v (%v ms per slow request), want %v (%v ms)", tc.w1, i,
					rows[i].Contribution, rows[i].ContributionMs, tc.want[i], tc.wantMs[i])
			}
		}
	}
}

// TestBottomK: the sample is the same whatever the order and chunks the
// requests come in, and every request is equally likely to be in it.
func TestBottomK(t *testing.T) {
	ds := analysistest.Generate(analysistest.Scenario{Seed: 44, Traces: 5000, Start: testEpoch})
	src := analysistest.NewSource(ds.Spans)
	ss, err := src.Samples(context.Background(), store.SampleQuery{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	a, b := newBottomK(500), newBottomK(500)
	for i := range ss {
		a.add(&ss[i])
	}
	shuffled := slices.Clone(ss)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for i := range shuffled {
		b.add(&shuffled[i])
	}
	if !slices.Equal(a.samples(), b.samples()) || len(a.samples()) != 500 {
		t.Fatal("the sample depends on the order requests arrive in")
	}
	// Uniform over time: each tenth of the hour holds about a tenth.
	var bins [10]int
	for _, s := range a.samples() {
		bins[(s.StartUnixNano-testEpoch.UnixNano())*10/int64(time.Hour)]++
	}
	for i, n := range bins {
		if n < 25 || n > 75 {
			t.Errorf("tenth %d of the hour holds %d of 500 sampled requests, want about 50: %v", i, n, bins)
		}
	}
	small := newBottomK(10_000)
	for i := range ss {
		small.add(&ss[i])
	}
	if len(small.samples()) != len(ss) {
		t.Errorf("a sampler larger than the stream keeps %d of %d", len(small.samples()), len(ss))
	}
}

// TestWilson checks the interval against published values and its
// coverage by simulation, for the small rates hop overruns have.
func TestWilson(t *testing.T) {
	// Brown, Cai & DasGupta (2001) and Newcombe (1998), 95%.
	for _, tt := range []struct {
		x, n   int
		lo, hi float64
	}{
		{0, 16, 0, 0.1936},
		{81, 263, 0.2553, 0.3662},
		{15, 148, 0.0624, 0.1605},
		{0, 20, 0, 0.1611},
		{1, 29, 0.0061, 0.1718},
		{29, 29, 0.8830, 1},
	} {
		lo, hi := wilson(tt.x, tt.n, hopZ)
		if math.Abs(lo-tt.lo) > 1e-4 || math.Abs(hi-tt.hi) > 1e-4 {
			t.Errorf("wilson(%d, %d) = [%.4f, %.4f], want [%.4f, %.4f]", tt.x, tt.n, lo, hi, tt.lo, tt.hi)
		}
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for _, p := range []float64{0.005, 0.02, 0.1} {
		const trials, n = 2000, 1000
		covered := 0
		for range trials {
			x := 0
			for range n {
				if rng.Float64() < p {
					x++
				}
			}
			if lo, hi := wilson(x, n, hopZ); lo <= p && p <= hi {
				covered++
			}
		}
		// 95% nominal; 2,000 trials put the estimate within ±1.5 points.
		if c := float64(covered) / trials; c < 0.925 || c > 0.975 {
			t.Errorf("p=%v: covered in %.3f of trials, want about 0.95", p, c)
		}
	}
}

// TestHopMeterAsync: work the caller does not wait for is off the critical
// path (the trace Tree marks it async), so it never counts towards a hop,
// and a whole call that started it is not stretched by it.
func TestHopMeterAsync(t *testing.T) {
	ms := int64(time.Millisecond)
	tid := store.TraceID{9}
	span := func(id, parent byte, service, dep string, kind store.SpanKind, start, end int64) store.Span {
		sp := store.Span{TraceID: tid, SpanID: store.SpanID{id}, Service: service, Dependency: dep, Name: service + dep, Kind: kind,
			StartUnixNano: start * ms, DurationNano: (end - start) * ms}
		if parent != 0 {
			sp.ParentSpanID = store.SpanID{parent}
		}
		return sp
	}
	spans := []store.Span{
		span(1, 0, "checkout-api", "", store.KindServer, 0, 100),
		span(2, 1, "checkout-api", "pricing-svc", store.KindClient, 10, 60),
		span(3, 2, "pricing-svc", "", store.KindServer, 11, 59),
		span(4, 3, "pricing-svc", "audit", store.KindClient, 50, 300),       // outlives its parent
		span(5, 1, "checkout-api", "analytics", store.KindClient, 90, 1500), // fire and forget
	}
	m := newHopMeter(store.Budget{Hops: []store.HopBudget{
		{Service: "checkout-api", Dependency: "pricing-svc", Allocation: 30 * time.Millisecond},
		{Service: "checkout-api", Dependency: "analytics", Allocation: 10 * time.Millisecond},
		{Service: "pricing-svc", Dependency: "audit", Allocation: 5 * time.Millisecond},
	}})
	per := make([]int64, 3)
	rest, ok := m.measure(spans, store.SpanID{1}, per)
	if !ok || per[0] != 50*ms || per[1] != 0 || per[2] != 0 || rest != 50*ms {
		t.Errorf("hop times %v, rest %v; want the 50 ms call, nothing for the async work, 50 ms of the caller's own", per, rest)
	}
}

// TestHopRowWeighted: a tail-sampled stream keeps its one slow request
// (weight 1) and one fast one standing for nine (weight 9). The row
// counts what was measured (2 requests, 1 overrun) and estimates the
// rest for the ten requests they stand for: a 10% overrun rate, p50 the
// fast time, p95 the slow one; unweighted it would say 50%.
func TestHopRowWeighted(t *testing.T) {
	ms := int64(time.Millisecond)
	h := hopRow("feed-api", "profile-svc", "feed-api → profile-svc", 50*ms,
		[]weightedValue{{v: 10 * ms, w: 9}, {v: 100 * ms, w: 1}}, false)
	if h.Requests != 2 || h.Overruns != 1 || h.OverrunRate != 0.1 || h.P50Ms != 10 || h.P95Ms != 100 || h.MeanOverrunMs != 50 {
		t.Errorf("row %+v: want 2 requests, 1 overrun, rate 0.1, p50 10 ms, p95 100 ms, mean overrun 50 ms", h)
	}
	// Kish's effective size of weights 9 and 1 is 100/82 ≈ 1: the
	// interval must be wide, not the two-request one of weight 1 each.
	if h.OverrunRateLow > 0.1 || h.OverrunRateHigh < 0.5 {
		t.Errorf("interval [%v, %v]: want a wide one around 0.1", h.OverrunRateLow, h.OverrunRateHigh)
	}
}
