package analysis

import (
	"cmp"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"

	"github.com/tailscope/tailscope/internal/units"
	"github.com/tailscope/tailscope/store"
)

// Payoff. The population is every request of the window: the examined
// ones standing for their stratum with its weight, and the real durations
// of any stratum nobody was examined in. Fixing a set of groups removes,
// from each member request (outlier or not), its excess on the group's
// dependency; v(S) is the p99 drop that fixing the set S gives. A group's
// counterfactual p99 is the p99 with only its own requests fixed. p99 is
// not additive — two causes that each fill half the tail move it little
// alone and much together, and two that each could empty it alone share
// the credit — so the payoff of a group is its Shapley value: the drop it
// adds, averaged over every order of fixing the groups. Payoffs are never
// negative and add up exactly to v(all groups), the "fix all" figure.

// maxGroups caps the reported groups: 2^maxGroups counterfactuals are
// computed for exact Shapley values. With each group tested on its own,
// more than this many causes is rare; the rest are dropped, smallest
// counterfactual payoff first, and their outliers counted as ungrouped.
const maxGroups = 10

// cfPopulation is the population with its fixed part sorted once, so the
// p99 of each set of fixed groups only sorts the member requests.
type cfPopulation struct {
	fixed   []weightedValue // non-members, ascending
	members []cfMember
	total   float64
	buf     []weightedValue
}

type cfMember struct {
	dur, excess int64
	w           float64
	group       int
}

func (r *outlierRun) population(groups []*groupDef) *cfPopulation {
	pop := &cfPopulation{}
	for k := range r.strata {
		s := &r.strata[k]
		if s.examined > 0 {
			continue
		}
		for _, rg := range s.ranges {
			for pos := rg[0]; pos < rg[1]; pos++ {
				pop.fixed = append(pop.fixed, weightedValue{r.at(pos), 1})
			}
		}
	}
	for i := range r.trace {
		t := &r.trace[i]
		gi := slices.IndexFunc(groups, func(g *groupDef) bool { return r.inGroup(t, g) })
		if gi < 0 {
			pop.fixed = append(pop.fixed, weightedValue{t.dur, t.w})
			continue
		}
		pop.members = append(pop.members, cfMember{dur: t.dur, excess: r.excess(t, groups[gi].dep), w: t.w, group: gi})
	}
	slices.SortFunc(pop.fixed, func(a, b weightedValue) int { return cmp.Compare(a.v, b.v) })
	for _, x := range pop.fixed {
		pop.total += x.w
	}
	for _, m := range pop.members {
		pop.total += m.w
	}
	return pop
}

// p99 returns the weighted nearest-rank p99 with the groups in mask fixed.
func (p *cfPopulation) p99(mask uint) int64 {
	p.buf = p.buf[:0]
	for _, m := range p.members {
		v := m.dur
		if mask&(1<<m.group) != 0 {
			v -= m.excess
		}
		p.buf = append(p.buf, weightedValue{v, m.w})
	}
	slices.SortFunc(p.buf, func(a, b weightedValue) int { return cmp.Compare(a.v, b.v) })
	target := math.Max(math.Ceil(0.99*p.total-1e-6), math.Min(1, p.total))
	var cum float64
	i, j := 0, 0
	for i < len(p.fixed) || j < len(p.buf) {
		var x weightedValue
		if j >= len(p.buf) || (i < len(p.fixed) && p.fixed[i].v <= p.buf[j].v) {
			x = p.fixed[i]
			i++
		} else {
			x = p.buf[j]
			j++
		}
		cum += x.w
		if cum >= target-1e-6 {
			return x.v
		}
	}
	return 0
}

// payoffs computes each group's counterfactual p99 and Shapley payoff and
// fills the report's groups and fix-all figures.
func (r *outlierRun) payoffs(rep *OutlierReport) {
	if len(r.groups) > 60 { // masks are machine words
		slices.SortStableFunc(r.groups, func(a, b *groupDef) int { return cmp.Compare(len(b.members), len(a.members)) })
		r.groups = r.groups[:60]
	}
	if len(r.groups) > maxGroups {
		pop := r.population(r.groups)
		alone := map[*groupDef]int64{}
		for gi, g := range r.groups {
			alone[g] = pop.p99(1 << gi)
		}
		slices.SortStableFunc(r.groups, func(a, b *groupDef) int {
			return cmp.Or(cmp.Compare(alone[a], alone[b]), cmp.Compare(len(b.members), len(a.members)))
		})
		r.groups = r.groups[:maxGroups]
	}
	n := len(r.groups)
	pop := r.population(r.groups)
	v := make([]int64, 1<<n) // p99 with the groups of each mask fixed
	for mask := range uint(1 << n) {
		v[mask] = pop.p99(mask)
	}
	base, all := v[0], v[(1<<n)-1]
	rep.FixAllP99Ms = round3(nsToMs(all))
	rep.FixAllPayoffMs = round3(nsToMs(base - all))
	// Shapley weights |S|!(n−|S|−1)!/n! by the size of S.
	weight := make([]float64, n)
	for s := range n {
		weight[s] = math.Exp(lgamma(s+1) + lgamma(n-s) - lgamma(n+1))
	}
	grouped := 0
	for gi, g := range r.groups {
		var phi float64
		for mask := range uint(1 << n) {
			if mask&(1<<gi) == 0 {
				phi += weight[bits.OnesCount(mask)] * float64(v[mask]-v[mask|1<<gi])
			}
		}
		og := r.groupReport(g)
		og.CounterfactualP99Ms = round3(nsToMs(v[1<<gi]))
		og.PayoffMs = round3(nsToMs(int64(math.Round(phi))))
		rep.Groups = append(rep.Groups, og)
		grouped += len(g.members)
	}
	slices.SortStableFunc(rep.Groups, func(a, b OutlierGroup) int {
		return cmp.Or(cmp.Compare(b.PayoffMs, a.PayoffMs), cmp.Compare(b.TotalExcessMs, a.TotalExcessMs), cmp.Compare(a.Label, b.Label))
	})
	rep.UngroupedCount = r.nOut - grouped
	rep.NoDominantCause = len(rep.Groups) == 0
}

func lgamma(n int) float64 {
	l, _ := math.Lgamma(float64(n))
	return l
}

// groupReport describes a group for the report, without its payoff.
func (r *outlierRun) groupReport(g *groupDef) OutlierGroup {
	dep := r.deps.names[g.dep]
	og := OutlierGroup{
		Dimension: DimDependency, Value: dep,
		DimensionValues: map[string]string{DimDependency: dep},
		Count:           len(g.members),
		PValue:          roundSig(g.p),
		Evidence:        g.evidence,
		ExampleTraceIDs: []store.TraceID{},
	}
	og.Label = dep
	if len(g.quals) > 0 {
		var parts []string
		for _, v := range g.quals {
			og.DimensionValues[r.dims[v.dim].name] = r.dims[v.dim].names[v.val]
			parts = append(parts, r.valueText(v))
		}
		og.Label += " for " + strings.Join(parts, ", ")
		if len(g.aliases) > 0 {
			for _, v := range g.aliases {
				og.DimensionValues[r.dims[v.dim].name] = r.dims[v.dim].names[v.val]
			}
			og.Label += " (all " + r.qualText(g.aliases) + ")"
		}
	} else if len(g.excluded) > 0 {
		og.Label += " (other requests)"
	}
	var total int64
	for _, ti := range g.members {
		total += r.excess(&r.trace[ti], g.dep)
	}
	if r.nOut > 0 {
		og.Share = round4(float64(len(g.members)) / float64(r.nOut))
	}
	og.TotalExcessMs = round3(nsToMs(total))
	og.ExcessMs = round3(float64(total) / float64(len(g.members)) / 1e6)
	ex := slices.Clone(g.members)
	slices.SortFunc(ex, func(a, b int) int {
		ea, eb := r.excess(&r.trace[a], g.dep), r.excess(&r.trace[b], g.dep)
		return cmp.Or(cmp.Compare(eb, ea), cmp.Compare(r.trace[a].pos, r.trace[b].pos))
	})
	for _, ti := range ex {
		if len(og.ExampleTraceIDs) == r.q.MaxExamples {
			break
		}
		// A heavy sample of a sampled stream can be examined twice
		// (cumWeights.pick); it is one example.
		if id := r.samples[r.trace[ti].sample].TraceID; !slices.Contains(og.ExampleTraceIDs, id) {
			og.ExampleTraceIDs = append(og.ExampleTraceIDs, id)
		}
	}
	return og
}

// verdict is the report's one-sentence answer.
func verdict(rep OutlierReport) string {
	switch {
	case rep.OutlierCount == 0:
		return "No outliers in the window."
	case len(rep.Groups) > 0:
		g := rep.Groups[0]
		s := fmt.Sprintf("%s: %s of the tail (%d of %d outliers); fixing it saves %s of p99.",
			g.Label, pctText(g.Share), g.Count, rep.AnalyzedOutlierCount, units.Ms(g.PayoffMs))
		if len(rep.Groups) > 1 {
			s += fmt.Sprintf(" Fixing all %d causes: p99 %s → %s.", len(rep.Groups), units.Ms(rep.P99Ms), units.Ms(rep.FixAllP99Ms))
		}
		return s
	}
	var parts []string
	for _, d := range rep.DependencyExcess {
		if d.Share <= 0 || len(parts) == 3 {
			break
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", d.Dependency, pctText(d.Share)))
	}
	spread := "its dependencies"
	if len(parts) > 0 {
		spread = strings.Join(parts, ", ") + " of the outliers' excess"
	}
	return "No dominant cause: the tail is spread across " + spread +
		", and no tenant, payload, version, host or attribute, nor a distinct slow mode of one dependency, explains it."
}
