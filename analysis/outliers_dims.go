package analysis

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// For the dependency dimension, a request counts as "slow on d" when its
// critical time on d exceeds both d's typical time and its p95 over the
// baseline by a tolerance, so about 5% of the baseline at most is slow on
// any dependency and noise of a few microseconds never counts.
const slowTolMinNs = int64(time.Millisecond)

// computeTypical sets each dependency's typical (median) time and slow
// cut-off over the baseline, fits each one's own time for the tail test,
// and finds each examined request's dominant excess.
func (r *outlierRun) computeTypical() {
	nd := len(r.deps.names)
	r.deps.typical = make([]int64, nd)
	r.deps.slowAt = make([]int64, nd)
	var base []*exTrace
	for i := range r.trace {
		if r.trace[i].stratum == stratBaseline {
			base = append(base, &r.trace[i])
		}
	}
	p50 := r.at(r.rankPos(0.5))
	tol := max(slowTolMinNs, p50/50)
	vals := make([]int64, len(base))
	for d := range nd {
		for i, t := range base {
			vals[i] = t.depTime(int32(d))
		}
		slices.Sort(vals)
		r.deps.typical[d] = Quantile(vals, 0.5)
		r.deps.slowAt[d] = max(r.deps.typical[d], Quantile(vals, 0.95)) + tol
	}
	for i := range r.trace {
		t := &r.trace[i]
		for _, x := range t.deps {
			ex := x.ns - r.deps.typical[x.dep]
			if ex <= 0 {
				continue
			}
			if ex > t.domEx || (ex == t.domEx && r.deps.names[x.dep] < r.deps.names[t.dominant]) {
				t.dominant, t.domEx = x.dep, ex
			}
		}
	}
	r.fitTails()
}

// excess returns a request's excess on dependency d.
func (r *outlierRun) excess(t *exTrace, d int32) int64 {
	return max(t.depTime(d)-r.deps.typical[d], 0)
}

func (r *outlierRun) slowOn(t *exTrace, d int32) bool { return t.depTime(d) > r.deps.slowAt[d] }

// dimensionTables compares each value's share among outliers and among the
// requests below the threshold, one dimension at a time.
func (r *outlierRun) dimensionTables() map[string][]DimensionValue {
	out := map[string][]DimensionValue{}
	mk := func(value string, oc, nOut, bc, nBase int, p float64) DimensionValue {
		v := DimensionValue{Value: value, OutlierCount: oc, BaselineCount: bc, PValue: p}
		if nOut > 0 {
			v.OutlierShare = round4(float64(oc) / float64(nOut))
		}
		if nBase > 0 {
			v.BaselineShare = round4(float64(bc) / float64(nBase))
		}
		v.Lift = round3(lift(oc, nOut, bc, nBase))
		return v
	}
	out[DimDependency] = r.dependencyRows(mk)
	for di, dim := range r.dims {
		oc := r.outlierCounts(int32(di), len(dim.names))
		bc, nBase := r.comparisonCounts(int32(di), len(dim.names))
		var rows []DimensionValue
		for vi, name := range dim.names {
			if oc[vi]+bc[vi] == 0 {
				continue
			}
			rows = append(rows, mk(name, oc[vi], r.nOut, bc[vi], nBase,
				fisherGreater(oc[vi], r.nOut-oc[vi], bc[vi], nBase-bc[vi])))
		}
		out[dim.name] = rows
	}
	for d, rows := range out {
		out[d] = rankDimension(rows)
	}
	// Every fixed dimension appears, even when empty.
	for _, d := range []string{DimDependency, DimTenant, DimPayload, DimVersion, DimHost} {
		if out[d] == nil {
			out[d] = []DimensionValue{}
		}
	}
	return out
}

// dependencyRows counts, per dependency, the outliers and baseline requests
// slow on it, and tests its slow calls against its typical spread: the
// share test would be circular here.
func (r *outlierRun) dependencyRows(mk func(string, int, int, int, int, float64) DimensionValue) []DimensionValue {
	var rows []DimensionValue
	for d, name := range r.deps.names {
		oc, bc := 0, 0
		var exSum int64
		var slowCalls []int64
		for i := range r.trace {
			t := &r.trace[i]
			slow := r.slowOn(t, int32(d))
			switch t.stratum {
			case stratOutlier:
				exSum += r.excess(t, int32(d))
				if slow {
					oc++
					slowCalls = append(slowCalls, t.callTime(int32(d)))
				}
			case stratBaseline:
				if slow {
					bc++
				}
			}
		}
		res := tailResult{p: 1}
		if len(slowCalls) > 0 {
			slices.Sort(slowCalls)
			res = r.deps.tail[d].test(Quantile(slowCalls, 0.5))
		}
		v := mk(name, oc, r.nOut, bc, r.nBase, res.p)
		v.notMode = !res.mode(r.minTailZ())
		if r.nOut > 0 {
			v.MeanExcessMs = round3(float64(exSum) / float64(r.nOut) / 1e6)
		}
		rows = append(rows, v)
	}
	return rows
}

// rankDimension adjusts a dimension's p-values (Benjamini–Hochberg within
// the dimension: a family of related questions) and orders its values:
// significantly over-represented first, then by how much more common the
// value is among outliers.
func rankDimension(rows []DimensionValue) []DimensionValue {
	ps := make([]float64, len(rows))
	for i := range rows {
		ps[i] = rows[i].PValue
	}
	qs := benjaminiHochberg(ps)
	for i := range rows {
		rows[i].PValue = roundSig(rows[i].PValue)
		rows[i].QValue = roundSig(qs[i])
		rows[i].Significant = qs[i] < significance && rows[i].OutlierShare > rows[i].BaselineShare && !rows[i].notMode
	}
	slices.SortFunc(rows, func(a, b DimensionValue) int {
		if a.Significant != b.Significant {
			if a.Significant {
				return -1
			}
			return 1
		}
		da, db := a.OutlierShare-a.BaselineShare, b.OutlierShare-b.BaselineShare
		return cmp.Or(cmp.Compare(db, da), cmp.Compare(a.PValue, b.PValue), cmp.Compare(a.Value, b.Value))
	})
	return rows[:min(len(rows), maxDimRows)]
}

// outlierCounts counts each value of dimension di among the examined
// outliers.
func (r *outlierRun) outlierCounts(di int32, nvals int) []int {
	c := make([]int, nvals)
	for i := range r.trace {
		if r.trace[i].stratum != stratOutlier {
			continue
		}
		for _, v := range r.trace[i].vals {
			if v.dim == di {
				c[v.val]++
			}
		}
	}
	return c
}

// comparisonCounts estimates how many of the requests below the threshold
// have each value of dimension di: the examined ones weighted by their
// stratum, scaled to the sample's Kish effective size, which it returns
// too, so a test sees the precision the weighted sample really has.
func (r *outlierRun) comparisonCounts(di int32, nvals int) ([]int, int) {
	w := make([]float64, nvals)
	var sw, sw2 float64
	for i := range r.trace {
		t := &r.trace[i]
		if t.stratum == stratOutlier {
			continue
		}
		sw += t.w
		sw2 += t.w * t.w
		for _, v := range t.vals {
			if v.dim == di {
				w[v.val] += t.w
			}
		}
	}
	c := make([]int, nvals)
	if sw == 0 {
		return c, 0
	}
	neff := sw * sw / sw2
	for i := range w {
		c[i] = int(math.Round(w[i] / sw * neff))
	}
	return c, int(math.Round(neff))
}

// lift is the smoothed ratio of shares; see DimensionValue.Lift. A value
// seen nowhere has lift 1: no evidence either way.
func lift(oc, nOut, bc, nBase int) float64 {
	if oc+bc == 0 {
		return 1
	}
	return ((float64(oc) + 0.5) / (float64(nOut) + 1)) / ((float64(bc) + 0.5) / (float64(nBase) + 1))
}

func (r *outlierRun) dependencyExcess() []DependencyExcess {
	if r.nOut == 0 {
		return []DependencyExcess{}
	}
	sums := make([]int64, len(r.deps.names))
	var total int64
	for i := range r.trace {
		t := &r.trace[i]
		if t.stratum != stratOutlier {
			continue
		}
		for _, x := range t.deps {
			ex := r.excess(t, x.dep)
			sums[x.dep] += ex
			total += ex
		}
	}
	out := make([]DependencyExcess, 0, len(sums))
	for d, s := range sums {
		de := DependencyExcess{
			Dependency:   r.deps.names[d],
			TypicalMs:    round3(nsToMs(r.deps.typical[d])),
			MeanExcessMs: round3(float64(s) / float64(r.nOut) / 1e6),
		}
		if total > 0 {
			de.Share = round4(float64(s) / float64(total))
		}
		out = append(out, de)
	}
	slices.SortFunc(out, func(a, b DependencyExcess) int {
		return cmp.Or(cmp.Compare(b.MeanExcessMs, a.MeanExcessMs), cmp.Compare(a.Dependency, b.Dependency))
	})
	return out
}
