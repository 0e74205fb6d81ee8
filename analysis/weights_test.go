package analysis_test

import (
	"context"
	"encoding/binary"
	"math"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/ingest/otlpconv"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/sqlite"
)

// TestWeightsEstimateSampledStreams: a sampled stream, weighted at ingest
// (otlpconv, from the sampler's metadata) and stored, estimates the
// unsampled population's counts, rates and percentiles — through the
// rollups (services overview, RED, latency from rollups) and through the
// spans (latency exact and sketch, RED grouped by an attribute).
//
// Head sampling keeps a trace when the last 56 bits of its id reach the
// threshold of ot=th:c (1 in 4), as an OpenTelemetry consistent sampler
// does. Tail sampling keeps every trace slower than a threshold (weight
// 1) and 1 in 20 of the others, marked SampleRate 20 (Refinery's way).
//
// Bounds: a count must be within 4σ of the truth, σ the standard
// deviation of the Horvitz–Thompson estimate (σ² = Σ (1−p)/p over the
// population's requests of keep-probability p). A q-quantile must lie
// between the truth's (q ∓ δ)-quantiles, δ = 4·sqrt(q(1−q)/n_eff) with
// n_eff = (Σw)²/Σw² (Kish's effective sample size), widened by the
// sketch's relative accuracy. Each case also checks that the unweighted
// answer (every kept span counted once) falls outside its bound, so the
// test fails when weights are ignored.
func TestWeightsEstimateSampledStreams(t *testing.T) {
	start := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	ds := analysistest.Generate(analysistest.Scenario{Seed: 18, Start: start, Window: time.Hour, Traces: 40000, ErrorRate: 0.05})
	roots := map[store.TraceID]*store.Span{}
	var truth []int64
	for i := range ds.Spans {
		if sp := &ds.Spans[i]; sp.IsRoot() {
			roots[sp.TraceID] = sp
			truth = append(truth, sp.DurationNano)
		}
	}
	slices.Sort(truth)
	slowCut := analysis.Quantile(truth, 0.97)

	const headTh = "c" // 1 in 4
	headT := uint64(0xc) << 52
	cases := []struct {
		name string
		// keep says whether a trace is kept and its sampling metadata.
		keep func(tid store.TraceID) (kept bool, traceState string, sampleRate int)
	}{
		{"head 1 in 4 by th", func(tid store.TraceID) (bool, string, int) {
			r := binary.BigEndian.Uint64(tid[8:]) & (1<<56 - 1) // the trace id's randomness
			return r >= headT, "ot=th:" + headTh, 0
		}},
		{"tail: slow kept, fast 1 in 20", func(tid store.TraceID) (bool, string, int) {
			if roots[tid].DurationNano >= slowCut {
				return true, "", 0
			}
			return binary.BigEndian.Uint64(tid[8:])%20 == 0, "", 20
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var kept []store.Span
			meta := map[store.TraceID][2]any{}
			for tid := range roots {
				if ok, ts, rate := tc.keep(tid); ok {
					meta[tid] = [2]any{ts, rate}
				}
			}
			for _, sp := range ds.Spans {
				if _, ok := meta[sp.TraceID]; ok {
					kept = append(kept, sp)
				}
			}
			rows := convertSampled(t, kept, meta, start.Add(2*time.Hour))
			db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "weights.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for b := range slices.Chunk(rows, 5000) {
				if err := db.WriteSpans(context.Background(), b); err != nil {
					t.Fatal(err)
				}
			}
			checkWeightedEstimates(t, db, rows, truth, start)
		})
	}
}

// convertSampled turns the kept spans into an OTLP request carrying each
// trace's sampling metadata (tracestate, SampleRate) and converts it as
// the receiver does, so the weights come from ingest.
func convertSampled(t *testing.T, spans []store.Span, meta map[store.TraceID][2]any, now time.Time) []store.Span {
	t.Helper()
	td := ptrace.NewTraces()
	scopes := map[string]ptrace.SpanSlice{}
	for _, sp := range spans {
		ss, ok := scopes[sp.Service]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", sp.Service)
			ss = rs.ScopeSpans().AppendEmpty().Spans()
			scopes[sp.Service] = ss
		}
		o := ss.AppendEmpty()
		o.SetTraceID(pcommon.TraceID(sp.TraceID))
		o.SetSpanID(pcommon.SpanID(sp.SpanID))
		o.SetParentSpanID(pcommon.SpanID(sp.ParentSpanID))
		o.SetName(sp.Name)
		o.SetKind(ptrace.SpanKind(sp.Kind))
		o.SetStartTimestamp(pcommon.Timestamp(sp.StartUnixNano))
		o.SetEndTimestamp(pcommon.Timestamp(sp.End()))
		o.Status().SetCode(ptrace.StatusCode(sp.StatusCode))
		o.Attributes().PutStr("tenant.id", sp.Tenant)
		m := meta[sp.TraceID]
		o.TraceState().FromRaw(m[0].(string))
		if rate := m[1].(int); rate > 0 {
			o.Attributes().PutInt("SampleRate", int64(rate))
		}
	}
	opts := otlpconv.DefaultOptions()
	opts.Now = func() time.Time { return now }
	c, err := otlpconv.NewConverter(opts)
	if err != nil {
		t.Fatal(err)
	}
	rows, res := c.Convert(td)
	if len(rows) != len(spans) {
		t.Fatalf("converted %d of %d spans: %s", len(rows), len(spans), res.Message())
	}
	return rows
}

// estimateBounds is what a sampled stream's estimates must meet.
type estimateBounds struct {
	truth     []int64 // the population's durations, sorted
	n         float64 // the population's count
	countTol  float64 // 4σ of the count estimate
	nEff      float64
	unweighed []int64 // the kept durations, sorted: the answer without weights
}

func newEstimateBounds(rows []store.Span, truth []int64) estimateBounds {
	b := estimateBounds{truth: truth, n: float64(len(truth))}
	var sumW, sumW2, variance float64
	for _, sp := range rows {
		if !sp.IsRoot() {
			continue
		}
		w := sp.Weight
		sumW += w
		sumW2 += w * w
		// A kept request of weight w = 1/p stands for w requests, each
		// kept with p: it contributes w·(1−p)/p = w·(w−1) to Σ (1−p)/p.
		variance += w * (w - 1)
		b.unweighed = append(b.unweighed, sp.DurationNano)
	}
	slices.Sort(b.unweighed)
	b.countTol = 4*math.Sqrt(variance) + 1
	b.nEff = sumW * sumW / sumW2
	return b
}

// quantileOK reports whether got (ms) is an acceptable estimate of the
// q-quantile, alpha the method's relative accuracy.
func (b estimateBounds) quantileOK(got, q, alpha float64) (bool, float64, float64) {
	d := 4 * math.Sqrt(q*(1-q)/b.nEff)
	lo := float64(analysis.Quantile(b.truth, max(q-d, 0))) / 1e6 * (1 - alpha)
	hi := float64(analysis.Quantile(b.truth, min(q+d, 1))) / 1e6 * (1 + alpha)
	return got >= lo-0.001 && got <= hi+0.001, lo, hi
}

func checkWeightedEstimates(t *testing.T, db store.Store, rows []store.Span, truth []int64, start time.Time) {
	t.Helper()
	ctx := context.Background()
	b := newEstimateBounds(rows, truth)
	from, to := start, start.Add(time.Hour)
	countOK := func(what string, got float64) {
		t.Helper()
		if math.Abs(got-b.n) > b.countTol {
			t.Errorf("%s: %v requests, truth %v ± %.0f", what, got, b.n, b.countTol)
		}
	}
	quantOK := func(what string, got, q, alpha float64) {
		t.Helper()
		if ok, lo, hi := b.quantileOK(got, q, alpha); !ok {
			t.Errorf("%s: p%v = %v ms, want within [%v, %v] ms (truth %v ms)", what, q*100, got, lo, hi,
				float64(analysis.Quantile(truth, q))/1e6)
		}
	}
	// The test must be able to fail: without weights the count, and in
	// the tail case p50 or p99, are outside their bounds.
	if math.Abs(float64(len(b.unweighed))-b.n) <= b.countTol {
		t.Fatalf("vacuous: the unweighted count %d is within %v ± %.0f", len(b.unweighed), b.n, b.countTol)
	}
	tailCase := false
	for _, sp := range rows {
		tailCase = tailCase || sp.Weight == 20
	}
	if tailCase {
		for _, q := range []float64{0.50, 0.99} {
			if ok, _, _ := b.quantileOK(float64(analysis.Quantile(b.unweighed, q))/1e6, q, 0); ok {
				t.Errorf("vacuous: the unweighted p%v is within its bound", q*100)
			}
		}
	}

	// Rollups: the services overview and RED.
	sv, err := analysis.ServiceStats(ctx, db, analysis.ServicesQuery{From: from, To: to, SparklinePoints: 6})
	if err != nil {
		t.Fatal(err)
	}
	var feed *analysis.ServiceSummary
	for i := range sv.Services {
		if sv.Services[i].Name == analysistest.FeedAPI {
			feed = &sv.Services[i]
		}
	}
	if feed == nil {
		t.Fatalf("no %s in the services overview", analysistest.FeedAPI)
	}
	countOK("services overview", float64(feed.Count))
	countOK("services overview rate × window", feed.RatePerS*feed.DataTo.Sub(feed.DataFrom).Seconds())
	quantOK("services overview", feed.P50Ms, 0.50, analysis.SketchRelativeAccuracy)
	quantOK("services overview", feed.P99Ms, 0.99, analysis.SketchRelativeAccuracy)

	red, err := analysis.OperationsRED(ctx, db, analysis.REDQuery{From: from, To: to, Service: analysistest.FeedAPI})
	if err != nil {
		t.Fatal(err)
	}
	grouped, err := analysis.OperationsRED(ctx, db, analysis.REDQuery{From: from, To: to, Service: analysistest.FeedAPI, GroupBy: "tenant.id"})
	if err != nil {
		t.Fatal(err)
	}
	if !grouped.Weighted || red.Weighted {
		t.Errorf("RED weighted: %v from spans, %v from rollups; want true, false", grouped.Weighted, red.Weighted)
	}
	for _, rep := range []analysis.REDReport{red, grouped} {
		var count int64
		for _, o := range rep.Operations {
			if o.Name == analysistest.Endpoint && o.Kind == store.KindServer.String() {
				count += o.Count
				if rep.GroupBy == "" {
					quantOK("RED "+rep.Source, o.P50Ms, 0.50, analysis.SketchRelativeAccuracy)
					quantOK("RED "+rep.Source, o.P99Ms, 0.99, analysis.SketchRelativeAccuracy)
					countOK("RED rate × window", o.RatePerS*time.Hour.Seconds())
				}
			}
		}
		countOK("RED from "+rep.Source, float64(count))
	}

	// Latency: from spans (exact and sketch) and from rollups.
	q := analysis.LatencyQuery{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint, From: from, To: to, Step: 10 * time.Minute}
	for _, m := range []string{analysis.MethodExact, analysis.MethodSketch, analysis.MethodRollups} {
		q.Method = m
		var (
			rep analysis.LatencyReport
			err error
		)
		if m == analysis.MethodRollups {
			rep, err = analysis.LatencyFromRollups(ctx, db, q)
		} else {
			rep, err = analysis.Latency(ctx, db, q)
		}
		if err != nil {
			t.Fatal(err)
		}
		alpha := rep.RelativeError
		countOK("latency "+m, float64(rep.Count))
		countOK("latency "+m+" rate × data", rep.RatePerS*rep.DataTo.Sub(rep.DataFrom).Seconds())
		quantOK("latency "+m, rep.Percentiles.P50Ms, 0.50, alpha)
		quantOK("latency "+m, rep.Percentiles.P99Ms, 0.99, alpha)
		if m != analysis.MethodRollups && !rep.Weighted {
			t.Errorf("latency %s: weighted = false, want true", m)
		}
		var hist, points int
		for _, h := range rep.Histogram {
			hist += h.Count
		}
		for _, p := range rep.Series.Points {
			points += p.Count
		}
		if hist != rep.Count || points != rep.Count {
			t.Errorf("latency %s: histogram holds %d, series %d; count %d", m, hist, points, rep.Count)
		}
	}
}
