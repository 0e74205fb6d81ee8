package analysis

import (
	"context"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis/analysistest"
)

// TestCompareHopOfTheHeadline: a deploy makes one tenant's query 150 ms
// slower (11% of the requests), at 450 requests a side — a p95 change, as
// in the acceptance regression scenario. Both sides also carry what a
// real run has: a cold query now and then and stalls in the ranker (a
// loaded machine). The slowest 1% is then 4 requests a side, and which
// hop grew most there is chance; past p95, the headline, it is the query.
func TestCompareHopOfTheHeadline(t *testing.T) {
	reps := 200
	if testing.Short() {
		reps = 40
	}
	noise := []analysistest.Cause{
		{Name: "cold-query", Dependency: analysistest.Postgres, Probability: 0.008, Extra: 150 * time.Millisecond},
		{Name: "stall", Dependency: analysistest.Ranker, Probability: 0.01, Extra: 60 * time.Millisecond},
	}
	regression := analysistest.Cause{Name: "count-query", Dependency: analysistest.Postgres, Tenant: "acme", Extra: 150 * time.Millisecond}
	named, naive := 0, 0
	var missed []string
	for s := range uint64(reps) {
		before := analysistest.Scenario{Seed: 5000 + 2*s, Traces: 450, Parallel: true, Causes: noise}
		after := analysistest.Scenario{Seed: 5001 + 2*s, Traces: 450, Parallel: true, Causes: append([]analysistest.Cause{regression}, noise...)}
		src := beforeAfter(before, after)
		q := deployQuery()
		q.Seed, q.Resamples = s, 500
		c := runCompare(t, src, q)
		if c.Verdict != VerdictRegressed || c.TailPercentile != 95 {
			t.Fatalf("seed %d: verdict %s, tail past p%v: %s", s, c.Verdict, c.TailPercentile, c.Summary)
		}
		if topTailHop(c.Dependencies).Dependency == analysistest.Postgres {
			named++
		} else {
			missed = append(missed, c.Summary)
		}
		// The rule it replaced: the slowest 1% whatever the headline.
		bs, as, err := q.readSides(context.Background(), src, CompareDeploy)
		if err != nil {
			t.Fatal(err)
		}
		deps, err := dependencyDeltas(context.Background(), src, bs, as, 99, defaultCompareTraces)
		if err != nil {
			t.Fatal(err)
		}
		if topTailHop(deps).Dependency == analysistest.Postgres {
			naive++
		}
	}
	t.Logf("the query named in %d of %d repetitions past the headline percentile, %d past p99", named, reps, naive)
	if named < reps*95/100 {
		t.Errorf("the query was the hop that grew most past the headline in %d of %d repetitions; missed: %q", named, reps, missed)
	}
	if naive > reps*90/100 {
		t.Errorf("past p99 the query was named in %d of %d repetitions too: the case does not show why the tail must be the headline's", naive, reps)
	}
}

// topTailHop is the hop whose tail time grew most.
func topTailHop(deps []DependencyDelta) DependencyDelta {
	var top DependencyDelta
	for _, d := range deps {
		if d.TailDeltaMs > top.TailDeltaMs {
			top = d
		}
	}
	return top
}
