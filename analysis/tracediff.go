package analysis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/tailscope/tailscope/internal/units"
	"github.com/tailscope/tailscope/store"
)

// Trace comparison: two traces of one endpoint (a slow one and a typical
// one) aligned span by span, so the difference in their shape and timing
// can be read off one table, and summarised in one sentence.
//
// Alignment. A span is identified by its path from the root: the service
// and name of each ancestor, and at each level its ordinal among siblings
// with the same service and name, in start order. So the third "SELECT
// posts" under the second "GET /v1/profile" of one trace is paired with the
// third such query of the other; the extra calls of an N+1 loop or a retry
// are the spans present in one trace only, with their subtrees. Siblings
// are listed in the order they start (relative to their own trace's root).
//
// The summary names where the difference is. Each aligned node carries
// the difference of critical-path time in its subtree (A − B: a span
// present in one trace counts with its time there and 0 in the other).
// From the root, the explanation descends into the child that carries
// more than half of the parent's difference, and stops where no single
// child does: "+860 ms: profile-svc GET /v1/profile 1.1 s vs 18 ms" names
// the deepest span that explains most of the gap, not every span that
// happens to be a little slower.

// ErrEmptyTrace means a trace given to a comparison has no usable span.
var ErrEmptyTrace = errors.New("trace has no spans")

// DiffTrace describes one side of a comparison.
type DiffTrace struct {
	TraceID       store.TraceID `json:"trace_id"`
	Service       string        `json:"service"`
	Name          string        `json:"name"`
	StartUnixNano UnixNano      `json:"start_unix_nano"`
	DurationMs    float64       `json:"duration_ms"`
	CriticalMs    float64       `json:"critical_ms"`
	Spans         int           `json:"spans"`
}

// DiffSpan is one side's span at an aligned position.
type DiffSpan struct {
	SpanID store.SpanID `json:"span_id"`
	// OffsetMs is the span's start from its trace's root start.
	OffsetMs   float64 `json:"offset_ms"`
	DurationMs float64 `json:"duration_ms"`
	SelfMs     float64 `json:"self_ms"`
	CriticalMs float64 `json:"critical_ms"`
	Error      bool    `json:"error,omitempty"`
	// Async: the span is on an async branch of its trace (see Tie).
	Async bool `json:"async,omitempty"`
}

// DiffNode is one aligned position, in pre-order (a node's subtree follows
// it, one Depth deeper).
type DiffNode struct {
	Depth      int    `json:"depth"`
	Service    string `json:"service"`
	Name       string `json:"name"`
	Dependency string `json:"dependency,omitempty"`
	// Ordinal is the span's rank, from 1, among its siblings of the same
	// service and name.
	Ordinal int `json:"ordinal"`
	// A and B are the two traces' spans; one is nil when the span is in
	// the other trace only.
	A *DiffSpan `json:"a"`
	B *DiffSpan `json:"b"`
	// DeltaMs is A's duration minus B's (a missing side counts as 0).
	DeltaMs float64 `json:"delta_ms"`
	// CriticalDeltaMs is the difference of critical-path time in the
	// node's subtree, A − B.
	CriticalDeltaMs float64 `json:"critical_delta_ms"`
}

// TraceDiff is the body of GET /api/v1/traces/compare.
type TraceDiff struct {
	A DiffTrace `json:"a"`
	B DiffTrace `json:"b"`
	// DeltaMs is A's root duration minus B's.
	DeltaMs float64    `json:"delta_ms"`
	Nodes   []DiffNode `json:"nodes"`
	Matched int        `json:"matched"`
	OnlyA   int        `json:"only_a"`
	OnlyB   int        `json:"only_b"`
	// Culprit indexes Nodes: the span the summary names, -1 when the two
	// traces take the same time.
	Culprit int    `json:"culprit"`
	Summary string `json:"summary"`
}

// diffSide is one trace prepared for alignment.
type diffSide struct {
	e    cpEngine
	crit []int64
	in   []bool // under the root (on the path walk or an async branch)
	id   store.TraceID
}

func (d *diffSide) load(spans []store.Span, rootID store.SpanID) bool {
	if !d.e.compute(spans, rootID) {
		return false
	}
	n := d.e.tree.Len()
	d.crit = make([]int64, n)
	for _, sg := range d.e.segs {
		d.crit[sg.node] += sg.end - sg.start
	}
	d.in = make([]bool, n)
	for _, i := range d.e.order {
		d.in[i] = true
	}
	for _, i := range d.e.async {
		d.in[i] = true
	}
	d.id = d.e.rootSpan().TraceID
	return true
}

func (d *diffSide) trace() DiffTrace {
	rs := d.e.rootSpan()
	var crit int64
	for _, c := range d.crit {
		crit += c
	}
	spans := 0
	for _, in := range d.in {
		if in {
			spans++
		}
	}
	return DiffTrace{TraceID: rs.TraceID, Service: rs.Service, Name: rs.Name, StartUnixNano: UnixNano(rs.StartUnixNano),
		DurationMs: round3(nsToMs(max(rs.DurationNano, 0))), CriticalMs: round3(nsToMs(crit)), Spans: spans}
}

func (d *diffSide) span(n int32) *DiffSpan {
	sp := d.e.tree.Span(n)
	return &DiffSpan{
		SpanID:     sp.SpanID,
		OffsetMs:   round3(nsToMs(sp.StartUnixNano - d.e.rootSpan().StartUnixNano)),
		DurationMs: round3(nsToMs(max(sp.DurationNano, 0))),
		SelfMs:     round3(nsToMs(d.e.selfTime(n))),
		CriticalMs: round3(nsToMs(d.crit[n])),
		Error:      sp.StatusCode == store.StatusError,
		Async:      d.e.isAsync[n],
	}
}

// offset is a node's start from its root, for ordering siblings.
func (d *diffSide) offset(n int32) int64 {
	return d.e.tree.Span(n).StartUnixNano - d.e.rootSpan().StartUnixNano
}

// pairKey identifies a child among its siblings: service, name, ordinal.
type pairKey struct {
	service, name string
	ordinal       int
}

// pair is an aligned child: a and b are nodes of each tree, -1 if absent.
type pair struct {
	key   pairKey
	a, b  int32
	first int64 // the earlier start offset of the two, for the order
	depth int
}

// CompareTraces aligns two traces by span path and explains the
// difference of A from B. It fails only when a trace has no span.
func CompareTraces(a, b []store.Span) (TraceDiff, error) {
	var sa, sb diffSide
	if !sa.load(a, store.SpanID{}) {
		return TraceDiff{}, fmt.Errorf("trace A: %w", ErrEmptyTrace)
	}
	if !sb.load(b, store.SpanID{}) {
		return TraceDiff{}, fmt.Errorf("trace B: %w", ErrEmptyTrace)
	}
	d := TraceDiff{A: sa.trace(), B: sb.trace(), Nodes: []DiffNode{}}
	d.DeltaMs = round3(d.A.DurationMs - d.B.DurationMs)
	crits := []int64{}
	// Depth-first with an explicit stack: traces can be tens of thousands
	// of spans deep.
	stack := []pair{{a: sa.e.root, b: sb.e.root}}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		node := DiffNode{Depth: p.depth, Ordinal: max(p.key.ordinal, 1)}
		var crit int64
		var ref *store.Span
		if p.a >= 0 {
			node.A = sa.span(p.a)
			crit += sa.crit[p.a]
			ref = sa.e.tree.Span(p.a)
		}
		if p.b >= 0 {
			node.B = sb.span(p.b)
			crit -= sb.crit[p.b]
			if ref == nil {
				ref = sb.e.tree.Span(p.b)
			}
		}
		node.Service, node.Name, node.Dependency = ref.Service, ref.Name, ref.Dependency
		switch {
		case node.A != nil && node.B != nil:
			d.Matched++
			node.DeltaMs = round3(node.A.DurationMs - node.B.DurationMs)
		case node.A != nil:
			d.OnlyA++
			node.DeltaMs = node.A.DurationMs
		default:
			d.OnlyB++
			node.DeltaMs = -node.B.DurationMs
		}
		d.Nodes = append(d.Nodes, node)
		crits = append(crits, crit)
		kids := alignChildren(&sa, &sb, p.a, p.b, p.depth+1)
		for i := len(kids) - 1; i >= 0; i-- {
			stack = append(stack, kids[i])
		}
	}
	sums := subtreeSums(d.Nodes, crits)
	for i := range d.Nodes {
		d.Nodes[i].CriticalDeltaMs = round3(nsToMs(sums[i]))
	}
	d.Culprit = explain(d.Nodes, sums, max(d.A.DurationMs, d.B.DurationMs))
	d.Summary = diffSummary(d)
	return d, nil
}

// alignChildren pairs the children of a (in trace A) and b (in trace B) by
// service, name and ordinal, in start order. Either parent may be -1.
func alignChildren(sa, sb *diffSide, a, b int32, depth int) []pair {
	var out []pair
	index := map[pairKey]int{}
	add := func(s *diffSide, parent int32, isA bool) {
		if parent < 0 {
			return
		}
		seen := map[[2]string]int{}
		for _, c := range s.e.tree.Children(parent) {
			if !s.in[c] {
				continue
			}
			sp := s.e.tree.Span(c)
			k2 := [2]string{sp.Service, sp.Name}
			seen[k2]++
			k := pairKey{sp.Service, sp.Name, seen[k2]}
			off := s.offset(c)
			i, ok := index[k]
			if !ok {
				i = len(out)
				index[k] = i
				out = append(out, pair{key: k, a: -1, b: -1, first: off, depth: depth})
			}
			if isA {
				out[i].a = c
			} else {
				out[i].b = c
			}
			out[i].first = min(out[i].first, off)
		}
	}
	add(sa, a, true)
	add(sb, b, false)
	slices.SortStableFunc(out, func(x, y pair) int {
		if c := cmp.Compare(x.first, y.first); c != 0 {
			return c
		}
		if c := cmp.Compare(x.key.service, y.key.service); c != 0 {
			return c
		}
		if c := cmp.Compare(x.key.name, y.key.name); c != 0 {
			return c
		}
		return cmp.Compare(x.key.ordinal, y.key.ordinal)
	})
	return out
}

// subtreeSums adds each pre-order node's value to its ancestors'.
func subtreeSums(nodes []DiffNode, vals []int64) []int64 {
	sums := slices.Clone(vals)
	parent := make([]int, len(nodes))
	var stack []int // ancestors of the current node, by index
	for i := range nodes {
		for len(stack) > 0 && nodes[stack[len(stack)-1]].Depth >= nodes[i].Depth {
			stack = stack[:len(stack)-1]
		}
		parent[i] = -1
		if len(stack) > 0 {
			parent[i] = stack[len(stack)-1]
		}
		stack = append(stack, i)
	}
	// Backwards, each node's sum is complete when it is added to its
	// parent's.
	for i := len(nodes) - 1; i > 0; i-- {
		if p := parent[i]; p >= 0 {
			sums[p] += sums[i]
		}
	}
	return sums
}

// explain descends from the root into the child holding more than half of
// its parent's difference (same sign) and returns the node where no child
// does, or -1 when the difference is negligible: under 1 ms and under 2%
// of the longer duration.
func explain(nodes []DiffNode, sums []int64, longerMs float64) int {
	if len(nodes) == 0 {
		return -1
	}
	total := sums[0]
	if math.Abs(nsToMs(total)) < max(1, 0.02*longerMs) {
		return -1
	}
	cur := 0
	for {
		best, bestV := -1, int64(0)
		for i := cur + 1; i < len(nodes) && nodes[i].Depth > nodes[cur].Depth; i++ {
			if nodes[i].Depth != nodes[cur].Depth+1 {
				continue
			}
			if v := sums[i]; sameSign(v, total) && abs64(v) > abs64(bestV) {
				best, bestV = i, v
			}
		}
		if best < 0 || 2*abs64(bestV) <= abs64(sums[cur]) {
			return cur
		}
		cur = best
	}
}

func sameSign(a, b int64) bool { return (a > 0) == (b > 0) && a != 0 }

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func diffSummary(d TraceDiff) string {
	if d.Culprit < 0 {
		return fmt.Sprintf("The two traces take the same time (%s vs %s); no span explains a difference.",
			units.Ms(d.A.DurationMs), units.Ms(d.B.DurationMs))
	}
	n := d.Nodes[d.Culprit]
	label := n.Service + " " + n.Name
	if n.Ordinal > 1 {
		label += fmt.Sprintf(" (call %d)", n.Ordinal)
	}
	switch {
	case n.A != nil && n.B != nil:
		return fmt.Sprintf("%s: %s %s vs %s", units.SignedMs(d.DeltaMs), label, units.Ms(n.A.DurationMs), units.Ms(n.B.DurationMs))
	case n.A != nil:
		return fmt.Sprintf("%s: %s (%s) only in trace %s", units.SignedMs(d.DeltaMs), label, units.Ms(n.A.DurationMs), shortID(d.A.TraceID))
	default:
		return fmt.Sprintf("%s: %s (%s) only in trace %s", units.SignedMs(d.DeltaMs), label, units.Ms(n.B.DurationMs), shortID(d.B.TraceID))
	}
}

func shortID(id store.TraceID) string { return id.String()[:12] }

// typicalMinSameVersion is how many requests of the trace's own version
// make its median worth preferring to the window's.
const typicalMinSameVersion = 20

// TypicalTrace picks the request of an endpoint closest to the endpoint's
// median duration within window either side of at, other than not: what
// "compare with a typical trace" compares a trace with. Requests of the
// given version (the trace's own, so a deploy in the window does not make
// the shapes differ) are preferred when there are typicalMinSameVersion
// of them. It returns an error
// wrapping store.ErrNotFound when the endpoint has no other request in
// that window.
func TypicalTrace(ctx context.Context, src SampleSource, service, endpoint, version string, at time.Time, window time.Duration, not store.TraceID) (store.TraceID, error) {
	samples, err := src.Samples(ctx, store.SampleQuery{Service: service, Endpoint: endpoint, From: at.Add(-window), To: at.Add(window)})
	if err != nil {
		return store.TraceID{}, fmt.Errorf("typical trace: %w", err)
	}
	samples = slices.DeleteFunc(samples, func(s store.Sample) bool { return s.TraceID == not })
	if version != "" {
		same := slices.DeleteFunc(slices.Clone(samples), func(s store.Sample) bool { return s.Version != version })
		if len(same) >= typicalMinSameVersion {
			samples = same
		}
	}
	if len(samples) == 0 {
		return store.TraceID{}, fmt.Errorf("no other request of %s %s within %s of it to compare with: %w", service, endpoint, window, store.ErrNotFound)
	}
	durs := make([]int64, len(samples))
	for i, s := range samples {
		durs[i] = s.DurationNano
	}
	slices.Sort(durs)
	median := durs[(len(durs)-1)/2]
	best := slices.MinFunc(samples, func(x, y store.Sample) int {
		if c := cmp.Compare(abs64(x.DurationNano-median), abs64(y.DurationNano-median)); c != 0 {
			return c
		}
		// Ties: the request nearest in time to the one being compared.
		if c := cmp.Compare(abs64(x.StartUnixNano-at.UnixNano()), abs64(y.StartUnixNano-at.UnixNano())); c != 0 {
			return c
		}
		return cmp.Compare(x.TraceID.String(), y.TraceID.String())
	})
	return best.TraceID, nil
}
