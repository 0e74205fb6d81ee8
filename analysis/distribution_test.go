package analysis

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/store"
)

func TestQuantileNearestRank(t *testing.T) {
	hundred := make([]int64, 100)
	for i := range hundred {
		hundred[i] = int64(i + 1)
	}
	tests := []struct {
		name   string
		sorted []int64
		q      float64
		want   int64
	}{
		{"empty", nil, 0.5, 0},
		{"one", []int64{7}, 0.99, 7},
		{"p50 of 1..100", hundred, 0.5, 50},
		{"p99 of 1..100", hundred, 0.99, 99},
		{"p99.9 of 1..100", hundred, 0.999, 100},
		{"p0", hundred, 0, 1},
		{"p100", hundred, 1, 100},
		{"above 1 clamps", hundred, 2, 100},
		{"NaN is the minimum", hundred, math.NaN(), 1},
		{"p50 of 4", []int64{1, 2, 3, 4}, 0.5, 2},
		{"p90 of 3", []int64{1, 2, 3}, 0.9, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Quantile(tt.sorted, tt.q); got != tt.want {
				t.Errorf("Quantile = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestExactPercentiles(t *testing.T) {
	in := []int64{5e6, 1e6, 3e6, 2e6, 4e6}
	orig := slices.Clone(in)
	p := ExactPercentiles(in)
	want := Percentiles{Count: 5, MinMs: 1, MeanMs: 3, P50Ms: 3, P90Ms: 5, P95Ms: 5, P99Ms: 5, P999Ms: 5, MaxMs: 5}
	if p != want {
		t.Errorf("ExactPercentiles = %+v, want %+v", p, want)
	}
	if !slices.Equal(in, orig) {
		t.Error("ExactPercentiles modified its input")
	}
	if (ExactPercentiles(nil) != Percentiles{}) {
		t.Error("empty input should give zero percentiles")
	}
}

func TestWeightedQuantile(t *testing.T) {
	tests := []struct {
		name string
		xs   []weightedValue
		q    float64
		want int64
	}{
		{"unit weights are nearest rank", []weightedValue{{3, 1}, {1, 1}, {2, 1}, {4, 1}}, 0.5, 2},
		{"heavy value dominates", []weightedValue{{1, 1}, {10, 98}, {100, 1}}, 0.99, 10},
		{"fractional weights sum to whole", []weightedValue{{1, 2.5}, {2, 2.5}, {3, 5}}, 0.5, 2},
		{"empty", nil, 0.5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := weightedQuantile(tt.xs, tt.q); got != tt.want {
				t.Errorf("weightedQuantile = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestBucketsAndHistogram(t *testing.T) {
	tests := []struct {
		ns   int64
		want int
	}{{0, 0}, {999, 0}, {1000, 0}, {1999, 3}, {2000, 4}, {1_000_000, 39}, {-5, 0}}
	for _, tt := range tests {
		if got := bucketIndex(tt.ns, 4); got != tt.want {
			t.Errorf("bucketIndex(%d) = %d, want %d", tt.ns, got, tt.want)
		}
	}
	// Every duration lies in its bucket's bounds.
	r := rand.New(rand.NewPCG(1, 1))
	for range 10000 {
		ns := int64(math.Exp(r.Float64() * 25))
		i := bucketIndex(ns, 4)
		lo, hi := bucketLowerMs(i, 4)*1e6, bucketUpperMs(i, 4)*1e6
		if float64(ns) < lo*(1-1e-12) || float64(ns) >= hi*(1+1e-12) {
			t.Fatalf("%d ns in bucket %d [%v, %v)", ns, i, lo, hi)
		}
	}
	durs := []int64{1.1e6, 1.15e6, 8.5e6, 9e6}
	h := LogHistogram(durs, 0)
	total := 0
	for i, b := range h {
		total += b.Count
		if i > 0 && b.LowerMs != h[i-1].UpperMs {
			t.Fatalf("bucket %d not contiguous: %+v after %+v", i, b, h[i-1])
		}
	}
	if total != 4 || h[0].Count != 2 || h[len(h)-1].Count != 2 || len(h) != 13 {
		t.Errorf("histogram = %+v", h)
	}
	if len(LogHistogram(nil, 4)) != 0 {
		t.Error("empty histogram should have no buckets")
	}
}

func TestChooseStepAndGrid(t *testing.T) {
	tests := []struct {
		window time.Duration
		points int
		want   time.Duration
	}{
		{time.Hour, 120, 30 * time.Second},
		{time.Hour, 60, time.Minute},
		{24 * time.Hour, 120, 15 * time.Minute},
		{30 * 24 * time.Hour, 60, 12 * time.Hour},
		{365 * 24 * time.Hour, 60, 7 * 24 * time.Hour},
		{time.Second, 120, time.Second},
	}
	for _, tt := range tests {
		if got := chooseStep(tt.window, tt.points); got != tt.want {
			t.Errorf("chooseStep(%s, %d) = %s, want %s", tt.window, tt.points, got, tt.want)
		}
	}
	from := testEpoch.Add(90 * time.Second)
	g := newTimeGrid(from, from.Add(10*time.Minute), time.Minute)
	if !g.bucketStart(0).Equal(testEpoch.Add(time.Minute)) || g.n != 11 {
		t.Errorf("grid not aligned: start %s, n %d", g.bucketStart(0), g.n)
	}
	if g.index(from.UnixNano()) != 0 || g.index(testEpoch.UnixNano()) != -1 || g.index(from.Add(time.Hour).UnixNano()) != -1 {
		t.Error("grid index out of range handling")
	}
}

// TestSketchErrorBound states the sketch's guarantee and checks it: every
// quantile is within SketchRelativeAccuracy of the exact nearest-rank
// value, on distributions with very different shapes, also after merging.
func TestSketchErrorBound(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 3))
	dists := map[string]func() int64{
		"lognormal":  func() int64 { return int64(50e6 * math.Exp(0.6*r.NormFloat64())) },
		"uniform":    func() int64 { return 1e6 + r.Int64N(1e9) },
		"bimodal":    func() int64 { return []int64{2e6, 800e6}[r.IntN(2)] + r.Int64N(1e6) },
		"pareto":     func() int64 { return int64(1e6 / math.Pow(r.Float64()+1e-12, 1/1.2)) },
		"microsecs":  func() int64 { return 1000 + r.Int64N(5000) },
		"with zeros": func() int64 { return []int64{0, 5e6}[r.IntN(2)] },
	}
	qs := []float64{0, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999, 1}
	for name, draw := range dists {
		for _, n := range []int{1, 7, 1000, 50000} {
			vals := make([]int64, n)
			a, b := NewSketch(), NewSketch()
			for i := range vals {
				vals[i] = draw()
				if i%2 == 0 {
					a.Add(vals[i])
				} else {
					b.Add(vals[i])
				}
			}
			if err := a.Merge(b); err != nil {
				t.Fatal(err)
			}
			slices.Sort(vals)
			if a.Count() != int64(n) {
				t.Fatalf("%s n=%d: count %d", name, n, a.Count())
			}
			for _, q := range qs {
				exact := nsToMs(Quantile(vals, q))
				got := a.QuantileMs(q)
				if math.Abs(got-exact) > SketchRelativeAccuracy*exact+1e-9 {
					t.Errorf("%s n=%d q=%v: sketch %v, exact %v (error %.3f%%)", name, n, q, got, exact, 100*math.Abs(got-exact)/exact)
				}
			}
		}
	}
}

func TestSketchEncoding(t *testing.T) {
	s := NewSketch()
	for i := range 1000 {
		s.Add(int64(i) * 1e6)
	}
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back Sketch
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if back.Count() != 1000 || back.QuantileMs(0.99) != s.QuantileMs(0.99) || back.Percentiles() != s.Percentiles() {
		t.Errorf("round trip changed the sketch: %+v vs %+v", back.Percentiles(), s.Percentiles())
	}
	if err := back.UnmarshalBinary([]byte{0xff, 0x01}); err == nil {
		t.Error("decoding garbage should fail")
	}
	if (NewSketch().Percentiles() != Percentiles{}) || NewSketch().QuantileMs(0.5) != 0 {
		t.Error("empty sketch should report zeros")
	}
}

func latencySource(tb testing.TB) (*analysistest.Source, analysistest.Dataset) {
	tb.Helper()
	ds := analysistest.Generate(analysistest.Scenario{Seed: 21, Traces: 3000, ErrorRate: 0.3, Window: time.Hour})
	return analysistest.NewSource(ds.Spans), ds
}

func TestLatency(t *testing.T) {
	src, ds := latencySource(t)
	ctx := context.Background()
	var durs []int64
	errs := 0
	for _, sp := range ds.Spans {
		if sp.IsRoot() {
			durs = append(durs, sp.DurationNano)
			if sp.StatusCode == store.StatusError {
				errs++
			}
		}
	}
	exact := ExactPercentiles(durs)
	q := LatencyQuery{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint, From: testEpoch, To: testEpoch.Add(time.Hour)}
	rep, err := Latency(ctx, src, q)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Method != MethodExact || rep.Count != 3000 || rep.Percentiles != exact || rep.ErrorCount != errs {
		t.Fatalf("exact report: method %s count %d errors %d/%d percentiles %+v want %+v", rep.Method, rep.Count, rep.ErrorCount, errs, rep.Percentiles, exact)
	}
	if errs == 0 {
		t.Fatal("scenario has no errors; the error count test is vacuous")
	}
	if rep.Series.StepSeconds != 30 || len(rep.Series.Points) != 120 {
		t.Errorf("series step %v, %d points", rep.Series.StepSeconds, len(rep.Series.Points))
	}
	sum, sumErr, heat := 0, 0, 0
	for _, p := range rep.Series.Points {
		sum += p.Count
		sumErr += p.Errors
		if (p.Count == 0) != (p.P99Ms == nil) {
			t.Fatalf("point %+v: percentiles must be null exactly when empty", p)
		}
	}
	for _, col := range rep.Heatmap.Counts {
		for _, c := range col {
			heat += c
		}
	}
	hist := 0
	for _, b := range rep.Histogram {
		hist += b.Count
	}
	if sum != 3000 || sumErr != errs || heat != 3000 || hist != 3000 {
		t.Errorf("counts: series %d errors %d heatmap %d histogram %d", sum, sumErr, heat, hist)
	}
	if len(rep.Heatmap.BoundsMs) != len(rep.Heatmap.Counts[0])+1 {
		t.Errorf("heatmap bounds %d for %d rows", len(rep.Heatmap.BoundsMs), len(rep.Heatmap.Counts[0]))
	}

	q.Method = MethodSketch
	sk, err := Latency(ctx, src, q)
	if err != nil {
		t.Fatal(err)
	}
	if sk.Method != MethodSketch || sk.RelativeError != SketchRelativeAccuracy || sk.Count != 3000 {
		t.Fatalf("sketch report: %s %v %d", sk.Method, sk.RelativeError, sk.Count)
	}
	for _, pair := range [][2]float64{{sk.Percentiles.P50Ms, exact.P50Ms}, {sk.Percentiles.P99Ms, exact.P99Ms}, {sk.Percentiles.P999Ms, exact.P999Ms}} {
		if math.Abs(pair[0]-pair[1]) > SketchRelativeAccuracy*pair[1]+0.001 {
			t.Errorf("sketch percentile %v vs exact %v", pair[0], pair[1])
		}
	}
	if sk.Percentiles.MaxMs != exact.MaxMs || sk.Percentiles.MinMs != exact.MinMs {
		t.Errorf("sketch min/max should be exact: %+v vs %+v", sk.Percentiles, exact)
	}
}

func TestLatencyAutoMethodAndErrors(t *testing.T) {
	src, _ := latencySource(t)
	ctx := context.Background()
	counting := &countingSource{Source: src}
	long, err := Latency(ctx, counting, LatencyQuery{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint, From: testEpoch.Add(-10 * 24 * time.Hour), To: testEpoch.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	// 11 day-long reads, and one look-up of the endpoint's history: its
	// first request is ten days into the window.
	if long.Method != MethodSketch || long.Count != 3000 || counting.samples != 12 {
		t.Errorf("10-day window: method %s count %d in %d reads, want sketch over 3000 in 11 day-long reads and one look-up", long.Method, long.Count, counting.samples)
	}
	if want := 3000 / long.DataTo.Sub(long.DataFrom).Seconds(); math.Abs(long.RatePerS-want) > 0.001 || long.DataFrom.Before(testEpoch) {
		t.Errorf("rate %v/s over %s–%s; want the count over the time with data, %v/s", long.RatePerS, long.DataFrom, long.DataTo, want)
	}
	exact, err := Latency(ctx, src, LatencyQuery{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint, From: testEpoch.Add(-10 * 24 * time.Hour), To: testEpoch.Add(time.Hour), Method: MethodExact})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(exact.Histogram, long.Histogram) || !reflect.DeepEqual(exact.Heatmap, long.Heatmap) || exact.ErrorCount != long.ErrorCount {
		t.Error("chunked sketch read and single exact read count differently")
	}
	empty, err := Latency(ctx, src, LatencyQuery{Service: "nobody", From: testEpoch, To: testEpoch.Add(time.Hour)})
	if err != nil || empty.Count != 0 || len(empty.Histogram) != 0 || empty.Percentiles.P99Ms != 0 {
		t.Errorf("empty service: %+v, %v", empty, err)
	}
	bad := []LatencyQuery{
		{From: testEpoch, To: testEpoch.Add(time.Hour)},
		{Service: "s"},
		{Service: "s", From: testEpoch, To: testEpoch},
		{Service: "s", From: testEpoch, To: testEpoch.Add(time.Hour), Step: -time.Second},
		{Service: "s", From: testEpoch, To: testEpoch.Add(time.Hour), Step: time.Millisecond},
		{Service: "s", From: testEpoch, To: testEpoch.Add(time.Hour), Method: "median"},
	}
	for _, q := range bad {
		if _, err := Latency(ctx, src, q); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Latency(%+v) err = %v, want ErrInvalid", q, err)
		}
	}
}

func TestServiceStats(t *testing.T) {
	src, ds := latencySource(t)
	rep, err := ServiceStats(context.Background(), src, ServicesQuery{From: testEpoch, To: testEpoch.Add(time.Hour), SparklinePoints: 12})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, s := range rep.Services {
		names = append(names, s.Name)
	}
	want := []string{analysistest.CandidateSvc, analysistest.FeatureSvc, analysistest.FeedAPI, analysistest.Ranker}
	if !slices.Equal(names, want) {
		t.Fatalf("services = %v, want %v", names, want)
	}
	var feed ServiceSummary
	for _, s := range rep.Services {
		if s.Name == analysistest.FeedAPI {
			feed = s
		}
	}
	var durs []int64
	for _, sp := range ds.Spans {
		if sp.IsRoot() {
			durs = append(durs, sp.DurationNano)
		}
	}
	exact := ExactPercentiles(durs)
	// From rollups: percentiles within the sketch's bound of the exact
	// ones (plus rounding to the microsecond).
	within := func(got, want float64) bool { return math.Abs(got-want) <= SketchRelativeAccuracy*want+0.001 }
	if feed.Count != 3000 || feed.RatePerS != round4(3000.0/3600) || !within(feed.P99Ms, exact.P99Ms) || !within(feed.P50Ms, exact.P50Ms) ||
		!within(feed.P95Ms, exact.P95Ms) {
		t.Errorf("feed-api stats %+v, want p50 %v, p95 %v, p99 %v", feed.RequestStats, exact.P50Ms, exact.P95Ms, exact.P99Ms)
	}
	if len(feed.Endpoints) != 1 || feed.Endpoints[0].Name != analysistest.Endpoint || feed.Endpoints[0].Count != 3000 {
		t.Errorf("endpoints = %+v", feed.Endpoints)
	}
	if len(feed.P99SparklineMs) != 12 {
		t.Fatalf("sparkline has %d points", len(feed.P99SparklineMs))
	}
	for _, p := range feed.P99SparklineMs {
		if p == nil || *p <= 0 || *p > exact.MaxMs {
			t.Fatalf("sparkline point %v", p)
		}
	}
	if _, err := ServiceStats(context.Background(), src, ServicesQuery{From: testEpoch, To: testEpoch}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("empty range: err = %v", err)
	}
}

func TestServiceStatsSparklineGaps(t *testing.T) {
	span := func(id int, name string, at time.Duration, dur int64, status store.StatusCode) store.Span {
		return store.Span{TraceID: store.TraceID{byte(id)}, SpanID: store.SpanID{byte(id)}, Service: "svc", Name: name,
			Kind: store.KindServer, StartUnixNano: testEpoch.Add(at).UnixNano(), DurationNano: dur, StatusCode: status}
	}
	src := analysistest.NewSource([]store.Span{
		span(1, "a", 0, 1e6, store.StatusUnset),
		span(2, "a", 50*time.Minute, 3e6, store.StatusError),
		span(3, "b", 2*time.Hour, 9e6, store.StatusUnset), // outside
	})
	rep, err := ServiceStats(context.Background(), src, ServicesQuery{From: testEpoch, To: testEpoch.Add(time.Hour), SparklinePoints: 6})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Services) != 1 {
		t.Fatalf("services %+v", rep.Services)
	}
	s := rep.Services[0]
	if s.Count != 2 || s.ErrorRate != 0.5 || len(s.Endpoints) != 1 {
		t.Fatalf("summary %+v", s)
	}
	sp := s.P99SparklineMs
	if sp[0] == nil || *sp[0] != 1 || sp[1] != nil || sp[5] == nil || *sp[5] != 3 {
		t.Errorf("sparkline = %v", sp)
	}
}
