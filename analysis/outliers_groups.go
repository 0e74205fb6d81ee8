package analysis

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/tailscope/tailscope/internal/units"
)

// Grouping. Outliers are clustered by their dominant dependency d; a
// request is "affected" on d when its excess there reaches the cluster's
// cut (half the cluster's median excess, and never less than d's ordinary
// slow cut-off), so the requests a cause hit are told apart from those
// merely a little slower than typical.
//
// A cluster is then described by qualifiers, chosen one at a time: a value
// qualifies only when, among the requests that match the qualifiers
// already chosen, those with the value are affected on d far more often
// than those without it (one-sided Fisher on the weighted table,
// refineMinShare of the cluster has it, a rate ratio of at least
// qualMinRatio, and enough requests without it to show they are not
// slow). The ratio is high on purpose: a value that only modulates a
// dependency-wide cause (larger payloads wait a little more on a
// saturated pool) must not split it into "d for value" and "d (other
// requests)" — the same cause found twice. So a tenant that merely sends most of the large payloads is not
// attached to "ranker for payload=2MiB-4MiB" when its other large payloads
// are as slow as anyone's, and a value every affected request shares with
// its qualifier (an attribute that only that tenant has) adds nothing. A
// version or host qualifies only when it belongs to d or to a service
// that calls d: the version of an unrelated service explains nothing
// about this cause.
//
// Each group has a test of its own: a qualified group the one-sided Fisher
// test of "affected" between requests matching its qualifiers and the
// rest; a dependency alone the tail test of its slow calls. A group that
// fails is no cause, and its outliers stay ungrouped. The groups of one
// dependency form a decision list (a request belongs to the first whose
// qualifiers it matches), and a request's dominant dependency picks the
// list, so every request belongs to at most one group.
const (
	refineMinShare  = 0.5
	qualMinRatio    = 4.0
	qualMinCount    = 3
	qualMinOthers   = 10
	maxRefinements  = 3
	maxGroupsPerDep = 4
	minGroupShare   = 0.03
)

// groupDef is a cause: a dependency and the qualifiers that say which
// requests it affects.
type groupDef struct {
	dep   int32
	quals []dimVal
	// excluded are the qualifiers of earlier groups of the same
	// dependency: a residual group is "d, but not the causes named".
	excluded [][]dimVal
	// aliases are fixed values that name the same requests as the
	// qualifiers (see aliasesOf): shown, never tested or used to match.
	aliases  []dimVal
	members  []int // examined outliers, indexes into outlierRun.trace
	p        float64
	evidence string
	// burst, for a cause found by the burst test, holds its outliers'
	// start times (sorted) and how near one a request must start to be
	// caught in the same episode (twice their typical gap).
	burst *episodes
}

// episodes are the times of a bursty cause.
type episodes struct {
	starts []int64
	reach  int64
}

// episodesOf grows a bursty cluster's episodes: from its outliers, every
// examined request slow on d that started within reach of a member joins
// (in both directions, so a chain of slow requests spans the whole
// episode, whose early requests waited less than its outliers).
func (r *outlierRun) episodesOf(d int32, cluster []int, reach int64) *episodes {
	type cand struct {
		t    int64
		seed bool
	}
	var cs []cand
	for _, ti := range cluster {
		cs = append(cs, cand{r.samples[r.trace[ti].sample].StartUnixNano, true})
	}
	for i := range r.trace {
		t := &r.trace[i]
		if t.stratum != stratOutlier && t.dominant == d && r.slowOn(t, d) {
			cs = append(cs, cand{r.samples[t.sample].StartUnixNano, false})
		}
	}
	slices.SortFunc(cs, func(a, b cand) int { return cmp.Compare(a.t, b.t) })
	in := make([]bool, len(cs))
	for i := range cs {
		in[i] = cs[i].seed || (i > 0 && in[i-1] && cs[i].t-cs[i-1].t <= reach)
	}
	for i := len(cs) - 2; i >= 0; i-- {
		in[i] = in[i] || (in[i+1] && cs[i+1].t-cs[i].t <= reach)
	}
	e := &episodes{reach: reach}
	for i, c := range cs {
		if in[i] {
			e.starts = append(e.starts, c.t)
		}
	}
	return e
}

// near reports whether t lies within reach of an episode member.
func (e *episodes) near(t int64) bool {
	i, _ := slices.BinarySearch(e.starts, t)
	return (i < len(e.starts) && e.starts[i]-t <= e.reach) || (i > 0 && t-e.starts[i-1] <= e.reach)
}

// findGroups clusters the examined outliers by dominant dependency and
// describes each cluster by its qualifiers.
func (r *outlierRun) findGroups() {
	minGroup := max(2, int(math.Ceil(minGroupShare*float64(r.nOut))))
	clusters := map[int32][]int{}
	for i := range r.trace {
		t := &r.trace[i]
		if t.stratum == stratOutlier && t.dominant >= 0 {
			clusters[t.dominant] = append(clusters[t.dominant], i)
		}
	}
	r.cut = make([]int64, len(r.deps.names))
	deps := make([]int32, 0, len(clusters))
	for d, c := range clusters {
		deps = append(deps, d)
		ex := make([]int64, len(c))
		for i, ti := range c {
			ex[i] = r.excess(&r.trace[ti], d)
		}
		slices.Sort(ex)
		r.cut[d] = max(r.deps.slowAt[d]-r.deps.typical[d], Quantile(ex, 0.5)/2, 1)
	}
	slices.SortFunc(deps, func(a, b int32) int { return cmp.Compare(r.deps.names[a], r.deps.names[b]) })
	for _, d := range deps {
		var remaining []int
		for _, ti := range clusters[d] {
			if r.affected(&r.trace[ti], d) {
				remaining = append(remaining, ti)
			}
		}
		var named [][]dimVal
		for len(remaining) >= minGroup && len(named) < maxGroupsPerDep {
			g := r.qualify(d, remaining, named)
			if len(g.quals) == 0 {
				if r.dependencyAlone(g, remaining) {
					r.groups = append(r.groups, g)
				}
				break
			}
			var in, out []int
			for _, ti := range remaining {
				if r.trace[ti].matchesAll(g.quals) {
					in = append(in, ti)
				} else {
					out = append(out, ti)
				}
			}
			if len(in) >= minGroup && g.p < causeMaxP {
				g.members = in
				r.groups = append(r.groups, g)
			}
			named = append(named, g.quals)
			remaining = out
		}
	}
}

// affected reports whether a request's excess on d reaches d's cut.
func (r *outlierRun) affected(t *exTrace, d int32) bool {
	return r.cut[d] > 0 && r.excess(t, d) >= r.cut[d]
}

// inGroup reports whether an examined request (outlier or not) has g's
// cause: d is its dominant dependency, it is affected there, and it
// matches g's qualifiers and no earlier group's. A bursty cause slows
// everyone caught in an episode, most of them less than the outliers: a
// request that started within an episode counts when it is slow on d at
// all (beyond d's ordinary slow cut-off), so fixing the cause removes
// their excess too.
func (r *outlierRun) inGroup(t *exTrace, g *groupDef) bool {
	if t.dominant != g.dep || !t.matchesAll(g.quals) {
		return false
	}
	switch {
	case r.affected(t, g.dep):
	case g.burst != nil && r.slowOn(t, g.dep) && g.burst.near(r.samples[t.sample].StartUnixNano):
	default:
		return false
	}
	for _, ex := range g.excluded {
		if t.matchesAll(ex) {
			return false
		}
	}
	return true
}

// qualCand is a candidate qualifier with its test on the current
// population.
type qualCand struct {
	v     dimVal
	p     float64
	ratio float64
}

// qualify chooses the qualifiers of cluster (affected outliers of d) among
// the requests not taken by the earlier groups' qualifiers, and tests the
// result. It returns a group without members.
func (r *outlierRun) qualify(d int32, cluster []int, excluded [][]dimVal) *groupDef {
	g := &groupDef{dep: d, excluded: slices.Clone(excluded), p: 1}
	var pop []*exTrace
	for i := range r.trace {
		t := &r.trace[i]
		if !slices.ContainsFunc(excluded, t.matchesAll) {
			pop = append(pop, t)
		}
	}
	for len(g.quals) < maxRefinements {
		best, ok := r.bestQualifier(d, cluster, pop, g.quals)
		if !ok {
			break
		}
		g.quals = append(g.quals, best.v)
	}
	if len(g.quals) == 0 {
		return g
	}
	tab := r.newTable()
	for _, t := range pop {
		tab.add(t.matchesAll(g.quals), r.affected(t, d), t.stratum)
	}
	a, b, c, dd := tab.counts()
	g.p = fisherGreater(a, b, c, dd)
	in, out := tab.rates()
	g.evidence = fmt.Sprintf("%s of requests with %s lost %s or more on %s, against %s of the other requests (one-sided Fisher p = %s).",
		pctText(in), r.qualText(g.quals), units.Ms(nsToMs(r.cut[d])), r.deps.names[d], pctText(out), pText(g.p))
	if g.aliases = r.aliasesOf(d, cluster, pop, g.quals); len(g.aliases) > 0 {
		g.evidence += fmt.Sprintf(" Nearly every request with %s has %s and nearly every request with %s has %s: the data cannot tell them apart.",
			r.qualText(g.quals), r.qualText(g.aliases), r.qualText(g.aliases), r.qualText(g.quals))
	}
	return g
}

// aliasShare is how completely a value and a group's qualifiers must name
// the same requests to be shown as one: 95% of the requests with the
// qualifiers have the value, and 95% of those with the value have the
// qualifiers.
const aliasShare = 0.95

// aliasesOf returns the fixed values (tenant, payload, version, host) that
// name the same requests as quals among pop. Such a value cannot qualify
// (nothing without it is left to compare with: a heavy tenant that always
// sends the large payloads), yet leaving it out hides who is affected. A
// value the qualified requests share with everyone else (the only host, a
// version every request runs) is no alias, nor is one a tenant sends only
// most of (the rest of its large payloads come from others): the
// qualifier test already judged those. Attributes are left out: they name
// a tenant's requests in words an engineer searches by less.
func (r *outlierRun) aliasesOf(d int32, cluster []int, pop []*exTrace, quals []dimVal) []dimVal {
	share := map[dimVal]int{}
	members := 0
	for _, ti := range cluster {
		t := &r.trace[ti]
		if !t.matchesAll(quals) {
			continue
		}
		members++
		for _, v := range t.vals {
			if v.dim <= dimHostIdx {
				share[v]++
			}
		}
	}
	var cands []dimVal
	for v, n := range share {
		if float64(n) >= aliasShare*float64(members) && !slices.ContainsFunc(quals, func(q dimVal) bool { return q.dim == v.dim }) && r.ownedBy(v, d) {
			cands = append(cands, v)
		}
	}
	slices.SortFunc(cands, func(a, b dimVal) int { return cmp.Or(cmp.Compare(a.dim, b.dim), cmp.Compare(a.val, b.val)) })
	var out []dimVal
	for _, v := range cands {
		tab := r.newTable()
		for _, t := range pop {
			tab.add(t.matchesAll(quals), t.has(v), t.stratum)
		}
		inShare, inSize, _ := tab.row(0)   // requests with the qualifiers: the share with v
		outShare, outSize, _ := tab.row(1) // the others: the share with v
		both, onlyV := inShare*inSize, outShare*outSize
		if inShare >= aliasShare && onlyV <= (1-aliasShare)*(both+onlyV) {
			out = append(out, v)
		}
	}
	return out
}

// bestQualifier tests every value most of the cluster shares, among the
// requests of pop that match quals, and returns the strongest that passes.
func (r *outlierRun) bestQualifier(d int32, cluster []int, pop []*exTrace, quals []dimVal) (qualCand, bool) {
	var members []*exTrace
	for _, ti := range cluster {
		if t := &r.trace[ti]; t.matchesAll(quals) {
			members = append(members, t)
		}
	}
	if len(members) == 0 {
		return qualCand{}, false
	}
	share := map[dimVal]int{}
	for _, t := range members {
		for _, v := range t.vals {
			share[v]++
		}
	}
	var cands []dimVal
	for v, n := range share {
		if float64(n) >= refineMinShare*float64(len(members)) && !slices.ContainsFunc(quals, func(q dimVal) bool { return q.dim == v.dim }) && r.ownedBy(v, d) {
			cands = append(cands, v)
		}
	}
	// In a fixed order: the comparison below tolerates a factor in p, so
	// the scan order must not come from map iteration.
	slices.SortFunc(cands, func(a, b dimVal) int { return cmp.Or(cmp.Compare(a.dim, b.dim), cmp.Compare(a.val, b.val)) })
	var best qualCand
	found := false
	for _, v := range cands {
		tab := r.newTable()
		for _, t := range pop {
			if t.matchesAll(quals) {
				tab.add(t.has(v), r.affected(t, d), t.stratum)
			}
		}
		a, b, c, dd := tab.counts()
		in, out := tab.rates()
		if a < qualMinCount || c+dd < qualMinOthers || in < qualMinRatio*out {
			continue
		}
		cand := qualCand{v: v, p: fisherGreater(a, b, c, dd), ratio: in / math.Max(out, 1e-9)}
		if cand.p >= causeMaxP {
			continue
		}
		if !found || r.strongerQualifier(cand, best) {
			best, found = cand, true
		}
	}
	return best, found
}

// strongerQualifier orders candidates: a fixed dimension (tenant, payload,
// version, host) before a discovered attribute unless the attribute's
// evidence is a thousand times stronger — an attribute that only that
// tenant's requests carry ("feed.candidates=800") says the same as the
// tenant, in words an engineer searches by less — then smaller p, then
// the larger ratio, then by name.
func (r *outlierRun) strongerQualifier(a, b qualCand) bool {
	if fa, fb := a.v.dim < numFixedDims, b.v.dim < numFixedDims; fa != fb {
		if fa {
			return a.p <= b.p*1e3
		}
		return a.p*1e3 < b.p
	}
	if a.p != b.p {
		return a.p < b.p
	}
	if a.ratio != b.ratio {
		return a.ratio > b.ratio
	}
	return r.valueText(a.v) < r.valueText(b.v)
}

// ownedBy reports whether a value may qualify a cause on d: versions and
// hosts only when they belong to d itself or to a service calling it.
func (r *outlierRun) ownedBy(v dimVal, d int32) bool {
	if v.dim != dimVersionIdx && v.dim != dimHostIdx {
		return true
	}
	for _, svc := range r.owner[v] {
		if svc == r.deps.names[d] || r.deps.callers[d][svc] {
			return true
		}
	}
	return false
}

// dependencyAlone tests a cluster no value explains: is the dependency's
// slowness a mode of its own (the tail test at the cluster's median own
// time), or did it come in bursts (the burst test)? It fills g's members,
// p and evidence, and reports whether g is a cause.
func (r *outlierRun) dependencyAlone(g *groupDef, cluster []int) bool {
	calls := make([]int64, len(cluster))
	for i, ti := range cluster {
		calls[i] = r.trace[ti].callTime(g.dep)
	}
	slices.Sort(calls)
	f := &r.deps.tail[g.dep]
	tail := f.test(Quantile(calls, 0.5))
	g.members = cluster
	name := r.deps.names[g.dep]
	if tail.mode(r.minTailZ()) {
		med, spread := f.typicalCall()
		g.p = tail.p
		g.evidence = fmt.Sprintf("%s of requests spent %s or more in %s, where its typical calls (median %s, spread ×%.2g) predict %s (tail test p = %s).",
			pctText(tail.observed), units.Ms(nsToMs(tail.cut)), name, units.Ms(nsToMs(med)), spread, pctText(tail.expected), pText(tail.p))
		return true
	}
	b := r.burstTest(cluster)
	g.p = min(tail.p, b.p)
	if !b.bursty() {
		return false
	}
	g.p = b.p
	g.burst = r.episodesOf(g.dep, cluster, int64(2*b.gap))
	g.evidence = fmt.Sprintf("The %d outliers that lost %s or more on %s came in bursts: each was %s from the next nearest, against %s for as many requests drawn at random from the window (burst test p = %s).",
		len(cluster), units.Ms(nsToMs(r.cut[g.dep])), name, units.Ms(b.gap/1e6), units.Ms(b.randomGap/1e6), pText(b.p))
	return true
}

func (r *outlierRun) valueText(v dimVal) string {
	return r.dims[v.dim].name + "=" + r.dims[v.dim].names[v.val]
}

func (r *outlierRun) qualText(vs []dimVal) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = r.valueText(v)
	}
	return strings.Join(parts, ", ")
}

// pctText writes a share as a percentage with the precision small shares
// need.
func pctText(x float64) string {
	switch {
	case x == 0:
		return "0%"
	case x < 0.0001:
		return fmt.Sprintf("%.2g%%", 100*x)
	case x < 0.1:
		return fmt.Sprintf("%.2f%%", 100*x)
	}
	return fmt.Sprintf("%.0f%%", 100*x)
}

// pText writes a p-value; 0 means below what a float64 holds.
func pText(p float64) string {
	if p < 1e-300 {
		return "< 1e-300"
	}
	return fmt.Sprintf("%.2g", p)
}

// stratTable is a 2×2 table (rows: has the value or not; columns: affected
// or not) estimated from the stratified sample. Each row's share affected
// is a stratified estimate, and its effective size the binomial size with
// the same variance: affected requests are mostly outliers, a stratum
// examined in full whose counts carry no sampling error, so the table
// keeps their evidence (a single design effect over all weights, as
// Kish's, would throw most of it away).
type stratTable struct {
	w, f [numStrata]float64 // weight and sampling fraction per stratum
	n, x [2][numStrata]float64
}

func (r *outlierRun) newTable() *stratTable {
	t := &stratTable{}
	for k := range r.strata {
		s := &r.strata[k]
		t.w[k] = s.weight
		if s.size > 0 {
			t.f[k] = float64(s.examined) / float64(s.size)
		}
	}
	return t
}

func (t *stratTable) add(row, outcome bool, stratum int8) {
	i := b2i(!row)
	t.n[i][stratum]++
	if outcome {
		t.x[i][stratum]++
	}
}

// row returns a row's estimated share affected, its estimated size and its
// effective size.
func (t *stratTable) row(i int) (p, size, neff float64) {
	var hit, v float64
	for k := range numStrata {
		size += t.w[k] * t.n[i][k]
		hit += t.w[k] * t.x[i][k]
	}
	if size == 0 {
		return 0, 0, 0
	}
	p = hit / size
	// A continuity half keeps an all-or-nothing stratum from claiming no
	// variance; the effective size is that of a simple random sample with
	// the same variance for the same (adjusted) share.
	var adj float64
	for k := range numStrata {
		n := t.n[i][k]
		if n == 0 {
			continue
		}
		ps := (t.x[i][k] + 0.5) / (n + 1)
		share := t.w[k] * n / size
		adj += share * ps
		v += share * share * ps * (1 - ps) / n * (1 - t.f[k])
	}
	neff = size
	if v > 0 {
		neff = min(size, max(adj*(1-adj)/v, 1))
	}
	return p, size, neff
}

// counts returns the table as whole counts at each row's effective size.
func (t *stratTable) counts() (a, b, c, d int) {
	p0, _, n0 := t.row(0)
	p1, _, n1 := t.row(1)
	a = int(math.Round(p0 * n0))
	c = int(math.Round(p1 * n1))
	return a, int(math.Round(n0)) - a, c, int(math.Round(n1)) - c
}

// rates returns the estimated share affected with the value and without.
func (t *stratTable) rates() (in, out float64) {
	in, _, _ = t.row(0)
	out, _, _ = t.row(1)
	return in, out
}
