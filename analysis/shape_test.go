package analysis

import (
	"context"
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
