package acceptance

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/feedsvc/scenario"
	"github.com/tailscope/tailscope/store"
)

// How a scenario.Cause is matched against an outlier report.
//
// A group's dependency is tailscope's name for where the excess time went:
// a span's dependency (peer.service, db.system/db.namespace, …) or, for
// time in a service's own code, the service. A cause names the service that
// spends the time and the dependency as feed-api sees it (the HTTP hop),
// and tailscope attributes queueing for candidate-svc's database to the
// database ("postgresql/…"), not to the hop. So a group matches a cause's
// dependency when it is that dependency, or when the critical-path time on
// the group's dependency in the group's example traces is spent mostly in
// the cause's service — which also tells the group's database time apart
// from another service's, and does not depend on how the real and the
// simulated mode name the database.

// groupOwner returns the service that spends most of the critical-path
// time on g's dependency in g's example traces, and that time per service
// (ms), for messages.
func groupOwner(ctx context.Context, t *testing.T, st store.Reader, g analysis.OutlierGroup) (string, map[string]float64) {
	t.Helper()
	traces, err := st.Traces(ctx, g.ExampleTraceIDs)
	if err != nil {
		t.Fatalf("read example traces of group %q: %v", g.Label, err)
	}
	by := map[string]float64{}
	for _, spans := range traces {
		for _, h := range analysis.CriticalPath(spans).Hops {
			if h.Dependency == g.Value || (h.Dependency == "" && h.Service == g.Value) {
				by[h.Service] += h.CriticalMs
			}
		}
	}
	owner, most := "", 0.0
	for s, ms := range by {
		if ms > most || (ms == most && s < owner) {
			owner, most = s, ms
		}
	}
	return owner, by
}

// groupMismatch says how g differs from what c describes, "" when g is
// the group of c. owner is groupOwner's answer for g.
func groupMismatch(g analysis.OutlierGroup, c scenario.Cause, owner string) string {
	var diffs []string
	if c.Dependency != "" || c.Service != "" {
		if g.Value != c.Dependency && (c.Service == "" || owner != c.Service) {
			diffs = append(diffs, fmt.Sprintf("dependency %q spent in %q, want dependency %q or time spent in %q",
				g.Value, owner, c.Dependency, c.Service))
		}
	}
	if c.Tenant != "" && g.DimensionValues[analysis.DimTenant] != c.Tenant {
		diffs = append(diffs, fmt.Sprintf("tenant %q, want %q", g.DimensionValues[analysis.DimTenant], c.Tenant))
	}
	return strings.Join(diffs, "; ")
}

// checkRankedCause checks a cause with a rank: the group at that rank is
// the cause's, and the cause's tenant and payload lead their dimension
// tables (the most over-represented values, significantly so).
func checkRankedCause(ctx context.Context, t *testing.T, st store.Reader, rep analysis.OutlierReport, c scenario.Cause) {
	t.Helper()
	if c.Rank > len(rep.Groups) {
		t.Errorf("cause %s: expected at rank %d, but there are %d groups:\n%s", c.Fault, c.Rank, len(rep.Groups), describeGroups(rep))
	} else {
		g := rep.Groups[c.Rank-1]
		owner, by := groupOwner(ctx, t, st, g)
		if d := groupMismatch(g, c, owner); d != "" {
			t.Errorf("cause %s: group at rank %d is %q: %s (critical ms on %s by service: %v)\ngroups:\n%s",
				c.Fault, c.Rank, g.Label, d, g.Value, by, describeGroups(rep))
		}
	}
	if c.Tenant != "" {
		checkTopValue(t, rep, analysis.DimTenant, c.Tenant)
	}
	if c.Payload == "large" {
		checkTopValue(t, rep, analysis.DimPayload, largestBucket(t, rep))
	}
}

// checkTopValue checks that want is the most over-represented value of a
// dimension, and significantly so.
func checkTopValue(t *testing.T, rep analysis.OutlierReport, dim, want string) {
	t.Helper()
	vs := rep.Dimensions[dim]
	if len(vs) == 0 {
		t.Errorf("dimension %s is empty, want %s on top", dim, want)
		return
	}
	top := vs[0]
	if top.Value != want || !top.Significant || top.OutlierShare <= top.BaselineShare {
		t.Errorf("dimension %s: top value %q (outliers %.2f, baseline %.2f, q %.3g, significant %v), want %q significantly over-represented; table: %s",
			dim, top.Value, top.OutlierShare, top.BaselineShare, top.QValue, top.Significant, want, describeDim(vs))
	}
}

// largestBucket returns the largest payload bucket the report has seen.
func largestBucket(t *testing.T, rep analysis.OutlierReport) string {
	t.Helper()
	best, bestLow := "", int64(-1)
	for _, v := range rep.Dimensions[analysis.DimPayload] {
		low, err := bucketLow(v.Value)
		if err != nil {
			t.Fatal(err)
		}
		if low > bestLow {
			best, bestLow = v.Value, low
		}
	}
	return best
}

// bucketLow returns the lower bound in bytes of an analysis.PayloadBucket
// name such as "256KiB-512KiB" ("none" is 0).
func bucketLow(name string) (int64, error) {
	if name == "none" {
		return 0, nil
	}
	low, _, _ := strings.Cut(strings.TrimSuffix(name, "+"), "-")
	i := strings.IndexFunc(low, func(r rune) bool { return r < '0' || r > '9' })
	if i <= 0 {
		return 0, fmt.Errorf("payload bucket %q: no size", name)
	}
	n, err := strconv.ParseInt(low[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("payload bucket %q: %w", name, err)
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	u := slices.Index(units, low[i:])
	if u < 0 {
		return 0, fmt.Errorf("payload bucket %q: unknown unit %q", name, low[i:])
	}
	return n << (10 * u), nil
}

// checkUnrankedCauses checks causes without a rank: each is matched by a
// group of its own.
func checkUnrankedCauses(ctx context.Context, t *testing.T, st store.Reader, rep analysis.OutlierReport, causes []scenario.Cause) {
	t.Helper()
	if len(causes) == 0 {
		return
	}
	owners := make([]string, len(rep.Groups))
	for i, g := range rep.Groups {
		owners[i], _ = groupOwner(ctx, t, st, g)
	}
	used := map[int]bool{}
	for _, c := range causes {
		found := -1
		var near []string
		for i, g := range rep.Groups {
			d := groupMismatch(g, c, owners[i])
			if d == "" && !used[i] {
				found = i
				break
			}
			near = append(near, fmt.Sprintf("  %q (time in %s): %s", g.Label, owners[i], cmp.Or(d, "taken by another cause")))
		}
		if found < 0 {
			t.Errorf("cause %s (dependency %s, service %s, tenant %q): no group of its own:\n%s",
				c.Fault, c.Dependency, c.Service, c.Tenant, strings.Join(near, "\n"))
			continue
		}
		used[found] = true
	}
}

// checkPayoffOrder checks that groups come largest counterfactual payoff
// first and that every payoff is what its counterfactual p99 says.
func checkPayoffOrder(t *testing.T, rep analysis.OutlierReport) {
	t.Helper()
	for i, g := range rep.Groups {
		if i > 0 && g.PayoffMs > rep.Groups[i-1].PayoffMs {
			t.Errorf("group %d %q pays off %.1f ms, more than group %d %q (%.1f ms): not ranked by payoff",
				i+1, g.Label, g.PayoffMs, i, rep.Groups[i-1].Label, rep.Groups[i-1].PayoffMs)
		}
		if g.CounterfactualP99Ms > rep.P99Ms+0.01 || g.PayoffMs < 0 {
			t.Errorf("group %q: counterfactual p99 %.1f ms above the p99 %.1f ms, or negative payoff %.1f",
				g.Label, g.CounterfactualP99Ms, rep.P99Ms, g.PayoffMs)
		}
	}
}

func describeGroups(rep analysis.OutlierReport) string {
	var b strings.Builder
	for i, g := range rep.Groups {
		fmt.Fprintf(&b, "  %d. %-60s count %3d share %.2f excess %7.1f ms payoff %7.1f ms (p99 %.1f → %.1f)\n",
			i+1, g.Label, g.Count, g.Share, g.ExcessMs, g.PayoffMs, rep.P99Ms, g.CounterfactualP99Ms)
	}
	if len(rep.Groups) == 0 {
		b.WriteString("  (none)\n")
	}
	return b.String()
}

func describeDim(vs []analysis.DimensionValue) string {
	parts := make([]string, 0, len(vs))
	for _, v := range vs[:min(len(vs), 6)] {
		parts = append(parts, fmt.Sprintf("%s %.2f/%.2f", v.Value, v.OutlierShare, v.BaselineShare))
	}
	return strings.Join(parts, ", ") + " (outlier/baseline share)"
}

// percentile returns the comparison row of percentile p.
func percentile(t *testing.T, c analysis.Comparison, p float64) analysis.PercentileDelta {
	t.Helper()
	for _, d := range c.Percentiles {
		if math.Abs(d.Percentile-p) < 1e-9 {
			return d
		}
	}
	t.Fatalf("comparison has no p%g row: %+v", p, c.Percentiles)
	return analysis.PercentileDelta{}
}

// checkDeployVerdict checks a deploy cause against a comparison: the
// verdict, and at p99 a tested change in the verdict's direction whose
// confidence interval excludes zero.
func checkDeployVerdict(t *testing.T, c analysis.Comparison, cause scenario.Cause) {
	t.Helper()
	if c.Verdict != cause.Verdict {
		t.Errorf("verdict %q, want %q: %s; reasons %v", c.Verdict, cause.Verdict, c.Summary, c.Reasons)
	}
	p99 := percentile(t, c, 99)
	excludesZero := p99.CIHighMs < 0
	if cause.Verdict == analysis.VerdictRegressed {
		excludesZero = p99.CILowMs > 0
	}
	if !p99.Tested || !p99.Significant || !excludesZero {
		t.Errorf("p99 %.1f → %.1f ms (CI %.1f … %.1f ms, tested %v, significant %v; %d before, %d after): want a significant %s with the interval excluding zero",
			p99.BeforeMs, p99.AfterMs, p99.CILowMs, p99.CIHighMs, p99.Tested, p99.Significant, c.Before.Count, c.After.Count, cause.Verdict)
	}
}

// checkNamedHop checks that the hop carrying most of a regression's tail
// change is the cause's (its service, or its dependency) and that the
// summary names it.
func checkNamedHop(t *testing.T, c analysis.Comparison, cause scenario.Cause) {
	t.Helper()
	var top *analysis.DependencyDelta
	for i := range c.Dependencies {
		d := &c.Dependencies[i]
		if d.TailDeltaMs > 0 && (top == nil || d.TailDeltaMs > top.TailDeltaMs) {
			top = d
		}
	}
	if top == nil {
		t.Errorf("no hop got slower in the tail; dependencies %+v", c.Dependencies)
		return
	}
	if top.Service != cause.Service && top.Dependency != cause.Dependency {
		t.Errorf("the tail grew most on %s (+%.1f ms), want a hop of service %s or dependency %s; summary %q; hops %s",
			top.Label, top.TailDeltaMs, cause.Service, cause.Dependency, c.Summary, hopDeltas(c.Dependencies))
	}
	if !strings.Contains(c.Summary, top.Label) {
		t.Errorf("summary %q does not name %s", c.Summary, top.Label)
	}
}

// hopDeltas lists each hop's tail and mean change, for failure messages.
func hopDeltas(deps []analysis.DependencyDelta) string {
	var b strings.Builder
	for _, d := range deps {
		fmt.Fprintf(&b, "[%s tail %.1f→%.1f ms, mean %.1f→%.1f ms] ", d.Label, d.BeforeTailMs, d.AfterTailMs, d.BeforeMs, d.AfterMs)
	}
	return b.String()
}
