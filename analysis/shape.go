package analysis

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/tailscope/tailscope/internal/units"
	"github.com/tailscope/tailscope/store"
)

// Shape of slow requests: the outlier cohort of an endpoint (requests at or
// above a percentile) and its typical cohort (requests between p25 and p75)
// each merged into one tree of span paths, so what changes in the *shape*
// of slow requests — a call that only they make, a loop that runs longer,
// a dependency that takes the time — reads off one table.
//
// The merged tree is keyed like a trace comparison's, by service and name
// from the entry span down, except that repeated siblings are one node
// (an N+1 loop is "SELECT posts, 40 calls per request", not forty rows).
// Per node and cohort: the share of requests that have the span, calls per
// request, and mean duration, self time and critical-path time per request
// (a request without the span counts 0, so the means add up along the
// tree). The summary descends the critical-time difference as
// CompareTraces does.

// ShapeQuery selects an endpoint's requests for a shape comparison.
type ShapeQuery struct {
	Service  string
	Endpoint string
	From, To time.Time
	// Percentile (0 < p < 100, default 99) defines the slow cohort.
	Percentile float64
	// MaxTraces caps the requests examined per cohort (default 200),
	// spread evenly over each cohort's durations.
	MaxTraces int
}

// ShapeStats is one cohort's figures at a node, per request of the cohort.
type ShapeStats struct {
	// Presence is the share of the cohort's requests with the span.
	Presence   float64 `json:"presence"`
	Calls      float64 `json:"calls"`
	MeanMs     float64 `json:"mean_ms"`
	SelfMs     float64 `json:"self_ms"`
	CriticalMs float64 `json:"critical_ms"`
}

// ShapeNode is one path of the merged tree, in pre-order.
type ShapeNode struct {
	Depth      int        `json:"depth"`
	Service    string     `json:"service"`
	Name       string     `json:"name"`
	Dependency string     `json:"dependency,omitempty"`
	Async      bool       `json:"async,omitempty"`
	Slow       ShapeStats `json:"slow"`
	Typical    ShapeStats `json:"typical"`
	// CriticalDeltaMs is slow minus typical critical time per request in
	// the node's subtree.
	CriticalDeltaMs float64 `json:"critical_delta_ms"`
}

// ShapeReport is the body of GET /api/v1/shape.
type ShapeReport struct {
	Service     string    `json:"service"`
	Endpoint    string    `json:"endpoint"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	Percentile  float64   `json:"percentile"`
	ThresholdMs float64   `json:"threshold_ms"`
	// Requests is the window's requests: on a sampled stream (Weighted)
	// the requests its SampledCount stored samples stand for, and the
	// threshold, the cohorts' bounds and the traces examined are those of
	// the requests, not of the samples (see pickCohort).
	Requests     int  `json:"requests"`
	Weighted     bool `json:"weighted"`
	SampledCount int  `json:"sampled_count"`
	// SlowCount and TypicalCount are the requests examined per cohort.
	SlowCount       int             `json:"slow_count"`
	TypicalCount    int             `json:"typical_count"`
	SlowMeanMs      float64         `json:"slow_mean_ms"`
	TypicalMeanMs   float64         `json:"typical_mean_ms"`
	Nodes           []ShapeNode     `json:"nodes"`
	Culprit         int             `json:"culprit"`
	Summary         string          `json:"summary"`
	SlowExamples    []store.TraceID `json:"slow_examples"`
	TypicalExamples []store.TraceID `json:"typical_examples"`
}

// shapeAcc accumulates a node's figures for one cohort.
type shapeAcc struct {
	requests, calls, async  int
	dur, self, crit, offset int64
	lastReq                 int // request index that last counted presence
}

type shapeKey struct {
	parent        int32
	service, name string
}

// shapeTree is the merged tree under construction.
type shapeTree struct {
	index  map[shapeKey]int32
	parent []int32
	span   []*store.Span // a representative span, for names
	acc    [][2]shapeAcc // [slow, typical]
}

func (st *shapeTree) node(parent int32, sp *store.Span) int32 {
	k := shapeKey{parent, sp.Service, sp.Name}
	if n, ok := st.index[k]; ok {
		return n
	}
	n := int32(len(st.parent))
	st.index[k] = n
	st.parent = append(st.parent, parent)
	cp := *sp
	st.span = append(st.span, &cp)
	st.acc = append(st.acc, [2]shapeAcc{{lastReq: -1}, {lastReq: -1}})
	return n
}

// add merges one request's entry subtree into cohort c (0 slow, 1 typical).
func (st *shapeTree) add(e *cpEngine, c, req int) {
	t := &e.tree
	crit := make([]int64, t.Len())
	for _, sg := range e.segs {
		crit[sg.node] += sg.end - sg.start
	}
	rootStart := e.start[e.root]
	// node maps the tree's nodes to merged nodes; pre-order visits a
	// parent before its children.
	node := make([]int32, t.Len())
	t.WalkFrom(e.root, 0, func(n int32, _ int) bool {
		sp := t.Span(n)
		parent := int32(-1)
		if n != e.root {
			parent = node[t.Parent(n)]
		}
		m := st.node(parent, sp)
		node[n] = m
		a := &st.acc[m][c]
		a.calls++
		if a.lastReq != req {
			a.lastReq = req
			a.requests++
			a.offset += sp.StartUnixNano - rootStart
		}
		a.dur += max(sp.DurationNano, 0)
		a.self += e.selfTime(n)
		a.crit += crit[n]
		if e.isAsync[n] {
			a.async++
		}
		return true
	})
}

// CohortShape compares the merged span trees of an endpoint's slow and
// typical requests. A window without requests gives a report with no
// nodes.
func CohortShape(ctx context.Context, src SpanSource, q ShapeQuery) (ShapeReport, error) {
	if q.Percentile == 0 {
		q.Percentile = 99
	}
	if q.Percentile <= 0 || q.Percentile >= 100 {
		return ShapeReport{}, fmt.Errorf("analysis: shape: percentile %v: want 0 < p < 100: %w", q.Percentile, store.ErrInvalid)
	}
	if q.MaxTraces <= 0 {
		q.MaxTraces = 200
	}
	rep := ShapeReport{Service: q.Service, Endpoint: q.Endpoint, From: q.From, To: q.To, Percentile: q.Percentile,
		Nodes: []ShapeNode{}, Culprit: -1, SlowExamples: []store.TraceID{}, TypicalExamples: []store.TraceID{}}
	samples, err := src.Samples(ctx, store.SampleQuery{Service: q.Service, Endpoint: q.Endpoint, From: q.From, To: q.To})
	if err != nil {
		return ShapeReport{}, fmt.Errorf("analysis: shape: read samples: %w", err)
	}
	rep.Requests, rep.SampledCount = len(samples), len(samples)
	if len(samples) < 2 {
		rep.Summary = "Too few requests in the window to compare slow and typical ones."
		return rep, nil
	}
	slices.SortFunc(samples, func(a, b store.Sample) int {
		if c := cmp.Compare(a.DurationNano, b.DurationNano); c != 0 {
			return c
		}
		return cmp.Compare(a.StartUnixNano, b.StartUnixNano)
	})
	n := len(samples)
	// at is the position of the request of rank ⌊requests·num/den⌋.
	at := func(num, den float64) int { return int(float64(n) * num / den) }
	cw := newCumWeights(n, func(i int) float64 { return samples[i].Weight })
	if cw != nil {
		rep.Requests, rep.Weighted = int(cw[n]), true
		at = func(num, den float64) int { return cw.posOf(math.Floor(cw[n]*num/den), 0, n) }
	}
	cut := min(at(q.Percentile, 100), n-1)
	rep.ThresholdMs = round3(nsToMs(samples[cut].DurationNano))
	lo := at(1, 4)
	cohorts := [2][]store.Sample{
		pickCohort(samples, cw, cut, n, q.MaxTraces),
		pickCohort(samples, cw, lo, max(at(3, 4), lo+1), q.MaxTraces),
	}
	var ids []store.TraceID
	for _, co := range cohorts {
		for _, s := range co {
			ids = append(ids, s.TraceID)
		}
	}
	// The cohorts' trees, times and critical paths: shapes suffice.
	traces, err := readShapes(ctx, src, ids)
	if err != nil {
		return ShapeReport{}, fmt.Errorf("analysis: shape: %w", err)
	}
	st := &shapeTree{index: map[shapeKey]int32{}}
	var e cpEngine
	var counts [2]int
	var durs [2]int64
	examples := [2]*[]store.TraceID{&rep.SlowExamples, &rep.TypicalExamples}
	for c, co := range cohorts {
		for _, smp := range co {
			spans, ok := traces[smp.TraceID]
			if !ok || !e.compute(spans, smp.SpanID) {
				continue
			}
			st.add(&e, c, counts[c])
			counts[c]++
			durs[c] += smp.DurationNano
			if len(*examples[c]) < 5 && !slices.Contains(*examples[c], smp.TraceID) {
				*examples[c] = append(*examples[c], smp.TraceID)
			}
		}
	}
	rep.SlowCount, rep.TypicalCount = counts[0], counts[1]
	if counts[0] == 0 || counts[1] == 0 {
		rep.Summary = "The traces of the window's requests could not be read; none to compare."
		return rep, nil
	}
	rep.SlowMeanMs = round3(nsToMs(durs[0]) / float64(counts[0]))
	rep.TypicalMeanMs = round3(nsToMs(durs[1]) / float64(counts[1]))
	st.emit(&rep, counts)
	return rep, nil
}

// pickCohort takes at most k of samples[lo:hi] to examine for a cohort:
// evenly spaced (spread) when they stand for as many requests each;
// otherwise evenly spaced in the requests they stand for (cumWeights.pps),
// so that a tail-sampling collector's slow traces, kept whole at weight 1,
// are not examined as if each were as common as a fast one kept one in
// ten. A heavy sample may then be examined twice and counts twice: every
// examined trace stands for the same share of the cohort.
func pickCohort(samples []store.Sample, cw cumWeights, lo, hi, k int) []store.Sample {
	xs := samples[lo:hi]
	if cw == nil || cw.uniform(lo, hi) {
		return spread(xs, k)
	}
	out := make([]store.Sample, 0, k)
	for _, i := range cw.pps([][2]int{{lo, hi}}, k) {
		out = append(out, samples[i])
	}
	return out
}

// spread takes at most k of xs, evenly spaced, first and last included.
func spread(xs []store.Sample, k int) []store.Sample {
	if len(xs) <= k {
		return xs
	}
	out := make([]store.Sample, 0, k)
	for i := range k {
		out = append(out, xs[i*(len(xs)-1)/(k-1)])
	}
	return out
}

// emit writes the merged tree in pre-order, children by their mean start,
// with the per-request figures and the summary.
func (st *shapeTree) emit(rep *ShapeReport, counts [2]int) {
	kids := make([][]int32, len(st.parent))
	var roots []int32
	for n, p := range st.parent {
		if p < 0 {
			roots = append(roots, int32(n))
		} else {
			kids[p] = append(kids[p], int32(n))
		}
	}
	meanOffset := func(n int32) float64 {
		var off float64
		var reqs int
		for c := range 2 {
			off += float64(st.acc[n][c].offset)
			reqs += st.acc[n][c].requests
		}
		return off / float64(max(reqs, 1))
	}
	for _, ks := range kids {
		slices.SortFunc(ks, func(a, b int32) int {
			if c := cmp.Compare(meanOffset(a), meanOffset(b)); c != 0 {
				return c
			}
			if c := cmp.Compare(st.span[a].Service, st.span[b].Service); c != 0 {
				return c
			}
			return cmp.Compare(st.span[a].Name, st.span[b].Name)
		})
	}
	var crits []int64
	var walk []DiffNode // depths, for subtreeSums and explain
	type item struct {
		n     int32
		depth int
	}
	stack := make([]item, 0, len(roots))
	for i := len(roots) - 1; i >= 0; i-- {
		stack = append(stack, item{roots[i], 0})
	}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		sp := st.span[it.n]
		node := ShapeNode{Depth: it.depth, Service: sp.Service, Name: sp.Name, Dependency: sp.Dependency}
		var async, calls int
		for c, stats := range []*ShapeStats{&node.Slow, &node.Typical} {
			a := st.acc[it.n][c]
			k := float64(counts[c])
			*stats = ShapeStats{
				Presence: round4(float64(a.requests) / k), Calls: round3(float64(a.calls) / k),
				MeanMs: round3(nsToMs(a.dur) / k), SelfMs: round3(nsToMs(a.self) / k), CriticalMs: round3(nsToMs(a.crit) / k),
			}
			async += a.async
			calls += a.calls
		}
		node.Async = 2*async > calls
		// Per-request critical difference in nanoseconds, scaled so the
		// subtree sums and the descent work on integers.
		a0, a1 := st.acc[it.n][0], st.acc[it.n][1]
		crits = append(crits, int64(float64(a0.crit)/float64(counts[0])-float64(a1.crit)/float64(counts[1])))
		rep.Nodes = append(rep.Nodes, node)
		walk = append(walk, DiffNode{Depth: it.depth})
		for i := len(kids[it.n]) - 1; i >= 0; i-- {
			stack = append(stack, item{kids[it.n][i], it.depth + 1})
		}
	}
	sums := subtreeSums(walk, crits)
	for i := range rep.Nodes {
		rep.Nodes[i].CriticalDeltaMs = round3(nsToMs(sums[i]))
	}
	rep.Culprit = explain(walk, sums, rep.SlowMeanMs)
	rep.Summary = shapeSummary(rep)
}

func shapeSummary(rep *ShapeReport) string {
	head := fmt.Sprintf("Requests at or above p%s (%s and slower, mean %s) against typical ones (p25–p75, mean %s)",
		formatPercentile(rep.Percentile), units.Ms(rep.ThresholdMs), units.Ms(rep.SlowMeanMs), units.Ms(rep.TypicalMeanMs))
	if rep.Culprit < 0 {
		return head + ": the same shape and time; no span explains the difference."
	}
	n := rep.Nodes[rep.Culprit]
	label := n.Service + " " + n.Name
	var where string
	switch {
	case n.Typical.Presence == 0:
		where = fmt.Sprintf("%s, which only slow requests make (%s per request)", label, units.Ms(n.Slow.MeanMs))
	case n.Slow.Calls > 1.5*n.Typical.Calls && n.Slow.Calls-n.Typical.Calls >= 1:
		where = fmt.Sprintf("%s, %.1f calls per slow request against %.1f (%s vs %s)", label, n.Slow.Calls, n.Typical.Calls, units.Ms(n.Slow.MeanMs), units.Ms(n.Typical.MeanMs))
	default:
		where = fmt.Sprintf("%s (mean %s vs %s)", label, units.Ms(n.Slow.MeanMs), units.Ms(n.Typical.MeanMs))
	}
	return fmt.Sprintf("%s: %s on the critical path, most of it in %s.", head, units.SignedMs(rep.Nodes[0].CriticalDeltaMs), where)
}

// formatPercentile writes 99 as "99" and 99.9 as "99.9".
func formatPercentile(p float64) string {
	return fmt.Sprint(round4(p))
}
