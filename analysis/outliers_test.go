package analysis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/store"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// feedQuery is the outlier query of the generated feed endpoint.
func feedQuery() OutlierQuery {
	return OutlierQuery{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint, From: testEpoch, To: testEpoch.Add(time.Hour)}
}

func runOutliers(tb testing.TB, ds analysistest.Dataset, q OutlierQuery) OutlierReport {
	tb.Helper()
	rep, err := Outliers(context.Background(), analysistest.NewSource(ds.Spans), q)
	if err != nil {
		tb.Fatal(err)
	}
	return rep
}

// trueCounterfactualP99 is the p99 of the root durations with one cause's
// injected delay taken out again: in the sequential shape this is exactly
// what the p99 would have been without the cause.
func trueCounterfactualP99(ds analysistest.Dataset, cause string) float64 {
	var durs []int64
	for _, sp := range ds.Spans {
		if sp.IsRoot() {
			durs = append(durs, sp.DurationNano-int64(ds.Injected[cause][sp.TraceID]))
		}
	}
	slices.Sort(durs)
	return nsToMs(Quantile(durs, 0.99))
}

// checkExamples asserts every example trace of a group was hit by cause.
func checkExamples(t *testing.T, ds analysistest.Dataset, g OutlierGroup, cause string) {
	t.Helper()
	if len(g.ExampleTraceIDs) == 0 {
		t.Errorf("group %s has no examples", g.Label)
	}
	for _, id := range g.ExampleTraceIDs {
		if !slices.Contains(ds.Truth[id], cause) {
			t.Errorf("example %s of group %s was not hit by %s (causes %v)", id, g.Label, cause, ds.Truth[id])
		}
	}
}

// TestOutliersSlowDependencyForTenant is the first ground truth: a slow
// profile-svc for tenant acme makes the top group "dependency profile-svc
// and tenant acme", in both the sequential and the parallel shape.
func TestOutliersSlowDependencyForTenant(t *testing.T) {
	for _, parallel := range []bool{false, true} {
		t.Run(map[bool]string{false: "v1", true: "v2"}[parallel], func(t *testing.T) {
			ds := analysistest.Generate(analysistest.Scenario{Seed: 11, Traces: 20000, Parallel: parallel,
				Causes: []analysistest.Cause{{Name: "acme-profile", Dependency: analysistest.ProfileSvc, Tenant: "acme", Probability: 0.15, Extra: 500 * time.Millisecond}}})
			rep := runOutliers(t, ds, feedQuery())
			if len(rep.Groups) == 0 {
				t.Fatal("no groups")
			}
			top := rep.Groups[0]
			want := map[string]string{DimDependency: analysistest.ProfileSvc, DimTenant: "acme"}
			if top.Dimension != DimDependency || top.Value != analysistest.ProfileSvc || !reflect.DeepEqual(top.DimensionValues, want) {
				t.Fatalf("top group %+v, want %v", top, want)
			}
			if top.Share < 0.8 {
				t.Errorf("top group share %.2f, want most of the tail", top.Share)
			}
			if math.Abs(top.ExcessMs-500) > 75 {
				t.Errorf("top group excess %.1f ms, injected 500 ± 20%%", top.ExcessMs)
			}
			checkExamples(t, ds, top, "acme-profile")
			if d := rep.Dimensions[DimTenant][0]; d.Value != "acme" || !d.Significant || d.OutlierShare < 0.8 {
				t.Errorf("top tenant row %+v", d)
			}
			if d := rep.Dimensions[DimDependency][0]; d.Value != analysistest.ProfileSvc || !d.Significant {
				t.Errorf("top dependency row %+v", d)
			}
			if rep.DependencyExcess[0].Dependency != analysistest.ProfileSvc {
				t.Errorf("largest excess on %s", rep.DependencyExcess[0].Dependency)
			}
			if !parallel {
				// The cause hits 1.6% of requests, more than the tail: the
				// counterfactual must account for requests below p99 too.
				want := trueCounterfactualP99(ds, "acme-profile")
				if math.Abs(top.CounterfactualP99Ms-want) > 0.15*want {
					t.Errorf("counterfactual p99 %.1f ms, truth %.1f ms", top.CounterfactualP99Ms, want)
				}
			}
		})
	}
}

// TestOutliersCommonSlowTenant: the slow tenant is the most common one and
// another tenant is slow by nature (large payloads), so the requests
// around the median over-represent the common tenant. Comparing the
// outliers with all requests below the threshold still names it — the
// case a baseline band around the median got wrong on feedsvc's data.
func TestOutliersCommonSlowTenant(t *testing.T) {
	tenants := []string{"acme", "globex", "initech", "umbrella", "hooli"} // Zipf: acme ≈ 44%
	ds := analysistest.Generate(analysistest.Scenario{Seed: 5, Traces: 20000, Tenants: tenants,
		LargePayload: &analysistest.LargePayload{Tenant: "globex", Probability: 1, Bytes: 2 << 20},
		Causes:       []analysistest.Cause{{Name: "acme-profile", Dependency: analysistest.ProfileSvc, Tenant: "acme", Probability: 0.05, Extra: 900 * time.Millisecond}}})
	rep := runOutliers(t, ds, feedQuery())
	if len(rep.Groups) == 0 {
		t.Fatal("no groups")
	}
	top := rep.Groups[0]
	if top.Value != analysistest.ProfileSvc || top.DimensionValues[DimTenant] != "acme" {
		t.Fatalf("top group %v, want profile-svc for tenant acme", top.DimensionValues)
	}
	if d := rep.Dimensions[DimTenant][0]; d.Value != "acme" || !d.Significant {
		t.Errorf("top tenant row %+v, want acme, significant", d)
	}
}

// TestOutliersPayload: large payloads make the ranker slow; the top
// payload bucket is the large one and the top group is the ranker for it.
func TestOutliersPayload(t *testing.T) {
	ds := analysistest.Generate(analysistest.Scenario{Seed: 12, Traces: 20000,
		LargePayload: &analysistest.LargePayload{Probability: 0.02, Bytes: 3 << 20}})
	rep := runOutliers(t, ds, feedQuery())
	if d := rep.Dimensions[DimPayload][0]; d.Value != "2MiB-4MiB" || !d.Significant {
		t.Fatalf("top payload bucket %+v, want 2MiB-4MiB", d)
	}
	top := rep.Groups[0]
	if top.Value != analysistest.Ranker || top.DimensionValues[DimPayload] != "2MiB-4MiB" {
		t.Fatalf("top group %+v, want ranker for the large payload", top)
	}
	checkExamples(t, ds, top, "large-payload")
}

// TestOutliersTwoCauses: two independent causes come out as two groups,
// ranked by counterfactual payoff, each with a counterfactual p99 close to
// the truth.
func TestOutliersTwoCauses(t *testing.T) {
	ds := analysistest.Generate(analysistest.Scenario{Seed: 13, Traces: 30000, Causes: []analysistest.Cause{
		{Name: "acme-profile", Dependency: analysistest.ProfileSvc, Tenant: "acme", Probability: 0.08, Extra: 700 * time.Millisecond},
		{Name: "slow-ranker", Dependency: analysistest.Ranker, Probability: 0.007, Extra: 350 * time.Millisecond},
	}})
	rep := runOutliers(t, ds, feedQuery())
	truth := map[string]float64{
		"acme-profile": trueCounterfactualP99(ds, "acme-profile"),
		"slow-ranker":  trueCounterfactualP99(ds, "slow-ranker"),
	}
	byDep := map[string]string{analysistest.ProfileSvc: "acme-profile", analysistest.Ranker: "slow-ranker"}
	if len(rep.Groups) < 2 {
		t.Fatalf("groups %+v, want two causes", rep.Groups)
	}
	var got []string
	for _, g := range rep.Groups[:2] {
		cause, ok := byDep[g.Value]
		if !ok {
			t.Fatalf("group %s among the top two", g.Label)
		}
		got = append(got, cause)
		checkExamples(t, ds, g, cause)
		if math.Abs(g.CounterfactualP99Ms-truth[cause]) > 0.15*truth[cause] {
			t.Errorf("%s: counterfactual p99 %.1f, truth %.1f", g.Label, g.CounterfactualP99Ms, truth[cause])
		}
	}
	if rep.Groups[0].DimensionValues[DimTenant] != "acme" {
		t.Errorf("profile group not refined by tenant: %+v", rep.Groups[0].DimensionValues)
	}
	// The larger true payoff (lower counterfactual p99) ranks first.
	want := []string{"acme-profile", "slow-ranker"}
	if truth["slow-ranker"] < truth["acme-profile"] {
		want = []string{"slow-ranker", "acme-profile"}
	}
	if !slices.Equal(got, want) {
		t.Errorf("groups ranked %v, want %v (true counterfactual p99s %v)", got, want, truth)
	}
	if rep.Groups[0].PayoffMs <= rep.Groups[1].PayoffMs {
		t.Errorf("payoffs not descending: %v, %v", rep.Groups[0].PayoffMs, rep.Groups[1].PayoffMs)
	}
}

// TestOutliersNoSpuriousAttributes: with no injected cause the natural
// tail (profile-svc's own long tail, the odd slow query) is grouped by
// dependency, but no tenant, payload, version or host is blamed.
func TestOutliersNoSpuriousAttributes(t *testing.T) {
	blamed := 0
	for seed := range uint64(6) {
		ds := analysistest.Generate(analysistest.Scenario{Seed: 100 + seed, Traces: 10000})
		rep := runOutliers(t, ds, feedQuery())
		for _, g := range rep.Groups {
			if len(g.DimensionValues) > 1 {
				t.Errorf("seed %d: group %s refined by %v with no such cause", seed, g.Label, g.DimensionValues)
			}
		}
		for _, dim := range []string{DimTenant, DimPayload, DimVersion, DimHost} {
			for _, v := range rep.Dimensions[dim] {
				if v.Significant && v.OutlierShare > v.BaselineShare {
					blamed++
				}
			}
		}
	}
	if blamed > 1 {
		t.Errorf("%d values significantly over-represented across 6 null datasets", blamed)
	}
}

func TestOutliersThresholdAndEndpoint(t *testing.T) {
	ds := analysistest.Generate(analysistest.Scenario{Seed: 14, Traces: 5000, Causes: []analysistest.Cause{
		{Name: "slow-db", Dependency: analysistest.Postgres, Probability: 0.03, Extra: 200 * time.Millisecond}}})
	q := feedQuery()
	q.ThresholdMs = 150
	rep := runOutliers(t, ds, q)
	want := 0
	for _, sp := range ds.Spans {
		if sp.IsRoot() && sp.DurationNano >= 150e6 {
			want++
		}
	}
	if rep.OutlierCount != want || rep.Percentile != 0 || rep.ThresholdMs != 150 {
		t.Errorf("threshold mode: %d outliers (want %d), percentile %v, threshold %v", rep.OutlierCount, want, rep.Percentile, rep.ThresholdMs)
	}
	if rep.Groups[0].Value != analysistest.Postgres {
		t.Errorf("top group %s, want postgresql", rep.Groups[0].Label)
	}
	// A non-root entry span: candidate-svc's own endpoint, analysed on
	// its subtree.
	q = OutlierQuery{Service: analysistest.CandidateSvc, Endpoint: "GET /candidates", From: testEpoch, To: testEpoch.Add(time.Hour)}
	rep = runOutliers(t, ds, q)
	if rep.RequestCount != 5000 || len(rep.Groups) == 0 || rep.Groups[0].Value != analysistest.Postgres {
		t.Fatalf("candidate-svc: %d requests, groups %+v", rep.RequestCount, rep.Groups)
	}
	for _, d := range rep.DependencyExcess {
		if d.Dependency == analysistest.ProfileSvc || d.Dependency == analysistest.Ranker {
			t.Errorf("candidate-svc's subtree includes %s", d.Dependency)
		}
	}
}

// dropTraces serves samples but only some traces, as a store does when
// traces age out between the two reads.
type dropTraces struct {
	*analysistest.Source
}

func (d dropTraces) Traces(ctx context.Context, ids []store.TraceID) (map[store.TraceID][]store.Span, error) {
	m, err := d.Source.Traces(ctx, ids)
	for id := range m {
		if id[15]%2 == 0 {
			delete(m, id)
		}
	}
	return m, err
}

func TestOutliersMissingTraces(t *testing.T) {
	ds := analysistest.Generate(analysistest.Scenario{Seed: 15, Traces: 10000, Causes: []analysistest.Cause{
		{Name: "acme-profile", Dependency: analysistest.ProfileSvc, Tenant: "acme", Probability: 0.1, Extra: 400 * time.Millisecond}}})
	rep, err := Outliers(context.Background(), dropTraces{analysistest.NewSource(ds.Spans)}, feedQuery())
	if err != nil {
		t.Fatal(err)
	}
	if rep.AnalyzedOutlierCount >= rep.OutlierCount || rep.AnalyzedOutlierCount < rep.OutlierCount/4 {
		t.Errorf("analysed %d of %d outliers with half the traces gone", rep.AnalyzedOutlierCount, rep.OutlierCount)
	}
	if len(rep.Groups) == 0 || rep.Groups[0].DimensionValues[DimTenant] != "acme" {
		t.Errorf("groups %+v", rep.Groups)
	}
}

func TestOutliersEmptyAndInvalid(t *testing.T) {
	src := analysistest.NewSource(analysistest.Generate(analysistest.Scenario{Seed: 1, Traces: 50}).Spans)
	ctx := context.Background()
	q := feedQuery()
	q.From, q.To = testEpoch.Add(-2*time.Hour), testEpoch.Add(-time.Hour)
	rep, err := Outliers(ctx, src, q)
	if err != nil || rep.RequestCount != 0 || rep.Groups == nil || rep.Dimensions == nil {
		t.Fatalf("empty window: %+v, %v", rep, err)
	}
	if b, _ := json.Marshal(rep); !bytes.Contains(b, []byte(`"groups":[]`)) {
		t.Errorf("empty groups must encode as []: %s", b)
	}
	// Every request at or above p99 of 50 requests is the single slowest;
	// a tiny window must not crash or divide by zero.
	if _, err := Outliers(ctx, src, feedQuery()); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(q *OutlierQuery){
		"no service":       func(q *OutlierQuery) { q.Service = "" },
		"no endpoint":      func(q *OutlierQuery) { q.Endpoint = "" },
		"inverted window":  func(q *OutlierQuery) { q.From, q.To = q.To, q.From },
		"percentile 100":   func(q *OutlierQuery) { q.Percentile = 100 },
		"negative pct":     func(q *OutlierQuery) { q.Percentile = -1 },
		"NaN percentile":   func(q *OutlierQuery) { q.Percentile = math.NaN() },
		"both":             func(q *OutlierQuery) { q.Percentile, q.ThresholdMs = 95, 100 },
		"negative thresh":  func(q *OutlierQuery) { q.ThresholdMs = -3 },
		"huge baseline":    func(q *OutlierQuery) { q.BaselineSize = 1e9 },
		"negative example": func(q *OutlierQuery) { q.MaxExamples = -1 },
	}
	for name, mut := range bad {
		q := feedQuery()
		mut(&q)
		if _, err := Outliers(ctx, src, q); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

// TestOutliersGolden pins the whole report of a fixed dataset, JSON
// included. Run with -update after an intended change.
func TestOutliersGolden(t *testing.T) {
	ds := analysistest.Generate(analysistest.Scenario{Seed: 1, Traces: 6000,
		Causes:       []analysistest.Cause{{Name: "acme-profile", Dependency: analysistest.ProfileSvc, Tenant: "acme", Probability: 0.1, Extra: 600 * time.Millisecond}},
		LargePayload: &analysistest.LargePayload{Probability: 0.006}})
	q := feedQuery()
	q.MaxExamples = 3
	rep := runOutliers(t, ds, q)
	again := runOutliers(t, ds, q)
	if !reflect.DeepEqual(rep, again) {
		t.Fatal("two runs over the same data differ")
	}
	got, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "outliers.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run Golden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("report differs from %s; rerun with -update if intended", path)
	}
	// The API contract's fields are all there, by name.
	var m map[string]any
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"threshold_ms", "p50_ms", "p99_ms", "outlier_count", "baseline_count", "groups", "dimensions"} {
		if _, ok := m[k]; !ok {
			t.Errorf("report lacks %q", k)
		}
	}
	g := m["groups"].([]any)[0].(map[string]any)
	for _, k := range []string{"dimension", "value", "share", "excess_ms", "counterfactual_p99_ms", "example_trace_ids"} {
		if _, ok := g[k]; !ok {
			t.Errorf("group lacks %q", k)
		}
	}
	dims := m["dimensions"].(map[string]any)
	for _, d := range []string{"dependency", "tenant", "payload", "version"} {
		rows, ok := dims[d].([]any)
		if !ok || len(rows) == 0 {
			t.Fatalf("dimension %s missing", d)
		}
		for _, k := range []string{"value", "outlier_share", "baseline_share", "lift", "p_value"} {
			if _, ok := rows[0].(map[string]any)[k]; !ok {
				t.Errorf("dimension %s row lacks %q", d, k)
			}
		}
	}
}
