package analysis

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis/analysistest"
)

// TestCohortShape: with profile-svc slow for a few requests, the slow
// cohort's merged tree puts the difference in profile-svc's subtree and
// the summary names it; the typical cohort's figures do not carry it.
func TestCohortShape(t *testing.T) {
	start, window := testEpoch, time.Hour
	ds := analysistest.Generate(analysistest.Scenario{Seed: 21, Traces: 5_000, Start: start, Window: window,
		Causes: []analysistest.Cause{{Name: "slow-profile", Dependency: analysistest.ProfileSvc, Probability: 0.02, Extra: 800 * time.Millisecond}}})
	src := analysistest.NewSource(ds.Spans)
	rep, err := CohortShape(context.Background(), src, ShapeQuery{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint, From: start, To: start.Add(window)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 5_000 || rep.SlowCount != 50 || rep.TypicalCount != 200 {
		t.Fatalf("requests %d, slow %d, typical %d", rep.Requests, rep.SlowCount, rep.TypicalCount)
	}
	t.Log(rep.Summary)
	if rep.Culprit < 0 {
		t.Fatalf("no culprit: %s", rep.Summary)
	}
	c := rep.Nodes[rep.Culprit]
	if c.Service != analysistest.ProfileSvc && c.Dependency != analysistest.ProfileSvc {
		t.Errorf("culprit %s %s (dep %q); summary %q", c.Service, c.Name, c.Dependency, rep.Summary)
	}
	if !strings.Contains(rep.Summary, "most of it in "+c.Service+" "+c.Name) {
		t.Errorf("summary %q does not name the culprit", rep.Summary)
	}
	// The root's critical difference is the mean duration difference (the
	// critical path tiles the entry span).
	root := rep.Nodes[0]
	if root.Depth != 0 || root.Service != analysistest.FeedAPI || root.Slow.Presence != 1 || root.Typical.Presence != 1 {
		t.Fatalf("root %+v", root)
	}
	if d, want := root.CriticalDeltaMs, rep.SlowMeanMs-rep.TypicalMeanMs; d < want-1 || d > want+1 {
		t.Errorf("root critical delta %v, mean difference %v", d, want)
	}
	if c.CriticalDeltaMs < 0.5*root.CriticalDeltaMs {
		t.Errorf("culprit holds %v of %v ms", c.CriticalDeltaMs, root.CriticalDeltaMs)
	}
	// Pre-order: each node is at most one deeper than the one before.
	for i := 1; i < len(rep.Nodes); i++ {
		if rep.Nodes[i].Depth > rep.Nodes[i-1].Depth+1 {
			t.Fatalf("node %d at depth %d after depth %d", i, rep.Nodes[i].Depth, rep.Nodes[i-1].Depth)
		}
	}
	if len(rep.SlowExamples) != 5 || len(rep.TypicalExamples) != 5 {
		t.Errorf("examples %d and %d", len(rep.SlowExamples), len(rep.TypicalExamples))
	}
}

func TestCohortShapeEmptyAndInvalid(t *testing.T) {
	src := analysistest.NewSource(nil)
	rep, err := CohortShape(context.Background(), src, ShapeQuery{Service: "x", Endpoint: "y", From: testEpoch, To: testEpoch.Add(time.Hour)})
	if err != nil || len(rep.Nodes) != 0 || rep.Culprit != -1 || rep.Summary == "" {
		t.Errorf("empty window: %+v, %v", rep, err)
	}
	if _, err := CohortShape(context.Background(), src, ShapeQuery{Service: "x", Percentile: 100}); err == nil {
		t.Error("percentile 100 accepted")
	}
}

// TestCohortShapeSampledStream: a tail-sampling collector keeps every
// request above a cut (weight 1) and one in ten of the rest (weight 10).
// The shape of the stored sample must be the shape of the traffic it
// stands for: the same request count, p99 threshold, cohort means and
// culprit as the whole stream's within sampling error. Unweighted, a cut
// at p95 puts the sample's p99 among the slowest 0.1% of requests; a cut
// at the median splits the typical cohort (p25–p75) into a half stored one
// in ten and a half stored whole, which an even spread over the stored
// samples would examine 1:10 instead of 1:1.
func TestCohortShapeSampledStream(t *testing.T) {
	start, window := testEpoch, time.Hour
	ds := analysistest.Generate(analysistest.Scenario{Seed: 21, Traces: 5_000, Start: start, Window: window,
		Causes: []analysistest.Cause{{Name: "slow-profile", Dependency: analysistest.ProfileSvc, Probability: 0.02, Extra: 800 * time.Millisecond}}})
	q := ShapeQuery{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint, From: start, To: start.Add(window)}
	truth, err := CohortShape(context.Background(), analysistest.NewSource(ds.Spans), q)
	if err != nil {
		t.Fatal(err)
	}
	roots := rootDurations(ds.Spans, start, start.Add(window))
	for _, cut := range []float64{0.95, 0.5} {
		t.Run(fmt.Sprintf("cut at p%v", cut*100), func(t *testing.T) {
			kept := analysistest.TailSample(ds.Spans, Quantile(roots, cut), 10)
			rep, err := CohortShape(context.Background(), analysistest.NewSource(kept), q)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Weighted || truth.Weighted || rep.SampledCount > truth.Requests*3/5 {
				t.Errorf("weighted %v (whole stream %v), %d stored of %d", rep.Weighted, truth.Weighted, rep.SampledCount, truth.Requests)
			}
			near := func(what string, got, want, rel float64) {
				t.Helper()
				if math.Abs(got-want) > rel*want {
					t.Errorf("%s = %v, whole stream %v (within %v%%)", what, got, want, rel*100)
				}
			}
			t.Logf("requests %d (%d stored), p99 %v ms, slow mean %v ms, typical mean %v ms", rep.Requests, rep.SampledCount, rep.ThresholdMs, rep.SlowMeanMs, rep.TypicalMeanMs)
			near("requests", float64(rep.Requests), float64(truth.Requests), 0.1)
			near("p99 threshold ms", rep.ThresholdMs, truth.ThresholdMs, 0.1)
			near("slow cohort mean ms", rep.SlowMeanMs, truth.SlowMeanMs, 0.1)
			near("typical cohort mean ms", rep.TypicalMeanMs, truth.TypicalMeanMs, 0.05)
			if rep.Culprit < 0 || truth.Culprit < 0 {
				t.Fatalf("culprit %d, whole stream %d: %s", rep.Culprit, truth.Culprit, rep.Summary)
			}
			if c, w := rep.Nodes[rep.Culprit], truth.Nodes[truth.Culprit]; c.Service != w.Service || c.Name != w.Name {
				t.Errorf("culprit %s %s, whole stream %s %s", c.Service, c.Name, w.Service, w.Name)
			}
			if len(rep.SlowExamples) != 5 || len(rep.TypicalExamples) != 5 {
				t.Errorf("examples %v and %v", rep.SlowExamples, rep.TypicalExamples)
			}
		})
	}
}
