package analysis

import (
	"bytes"
	"cmp"
	"encoding/json"
	"slices"
	"time"

	"github.com/tailscope/tailscope/store"
)

// Tree is one trace's spans arranged as a tree: the one structure every
// page and analysis walks, so they agree on which span is the root, which
// copy of a duplicated span counts, and which children the parent waited
// for.
//
// The rules, in order:
//
//   - Dedup: a span id seen twice keeps one copy, the longer, then the
//     earlier, then by service and name (independent of input order).
//     Spans with a zero id are ignored.
//   - Parents: a span's parent is the span its ParentSpanID names when that
//     span is in the trace. A span without one (a root, or an orphan whose
//     parent never arrived) that has a link to a span of the trace hangs
//     under the linked span, tied by the link (an async branch).
//   - Cycles (a parent chain that loops) are broken at a link tie when the
//     loop has one, else at the earliest span of the loop, which becomes a
//     root: every span is reachable from some root.
//   - Roots: spans without a parent, true roots (no ParentSpanID) before
//     orphans, then earliest first, then longest, then by span id. Root()
//     is the first: the trace root every page names.
//   - Children are sorted by start time, then span id.
//   - Ties: each child is tied to its parent synchronously (the parent
//     waited for it) or asynchronously; see Tie and tieOf.
//
// Walks are iterative: traces can be 10,000 spans deep.
type Tree struct {
	spans   []store.Span
	idx     map[store.SpanID]int32
	src     []int32 // per node: index into spans
	parent  []int32 // per node: parent node, -1 for a root
	tie     []Tie
	kid0    []int32 // per node: first child in kids
	nkids   []int32
	kids    []int32
	roots   []int32
	dropped int // duplicate copies and zero ids
	scratch []int32
}

// Tie is how a span is tied to its parent.
type Tie uint8

// Ties. TieChild is the one synchronous tie; every tie from TieOutlives on
// is asynchronous: the parent did not wait for the child, so the child is
// off the parent's critical path, is not subtracted from the parent's own
// time, and keeps all of its own.
const (
	// TieRoot: no parent in the trace.
	TieRoot Tie = iota
	// TieChild: a child the parent waited for.
	TieChild
	// TieOutlives: a child that ends after its parent ends (beyond clock
	// skew between services), or starts after it ended: fire-and-forget
	// work such as `go analytics.Track(ctx)`.
	TieOutlives
	// TieMessaging: a CONSUMER span processing a message its parent
	// produced or handed over, which the parent did not demonstrably wait
	// for (see tieOf).
	TieMessaging
	// TieFollowsFrom: the parent reference is a follows-from reference
	// (OpenTracing's FOLLOWS_FROM, carried by OTel as a link to the parent
	// with opentracing.ref_type=follows_from).
	TieFollowsFrom
	// TieLink: no parent in the trace; the span hangs under a span of the
	// trace it links to.
	TieLink
)

var tieNames = [...]string{"root", "child", "outlives parent", "message hand-off", "follows from", "linked"}

// String names the tie for pages and the API: "child", "outlives parent",
// "message hand-off", "follows from", "linked", "root".
func (k Tie) String() string {
	if int(k) < len(tieNames) {
		return tieNames[k]
	}
	return "unknown"
}

// Async reports whether the parent did not wait for the child.
func (k Tie) Async() bool { return k >= TieOutlives }

// skewTolerance is how far a child in another service may end after its
// parent before it counts as outliving it: hosts' clocks disagree by
// milliseconds, so a synchronous call can appear to overrun its caller.
// Within one service (one process, one clock) any overrun counts.
func skewTolerance(p, c *store.Span) int64 {
	if p.Service == c.Service {
		return 0
	}
	return max(int64(time.Millisecond), max(c.DurationNano, 0)/10)
}

// tieOf decides how child c is tied to its parent p.
//
//   - A follows-from parent reference is asynchronous by definition.
//   - A CONSUMER child is a message hand-off unless its parent demonstrably
//     waits: the parent is not the PRODUCER that sent the message and the
//     consumer runs entirely inside the parent (a poll loop processing what
//     it received, or a caller that blocks for the reply).
//   - A SERVER child of a CLIENT span is synchronous by contract (the
//     client waits for the reply); if it seems to overrun, that is clock
//     skew, and it is clipped to the client.
//   - Any other child that ends after its parent (or starts after it
//     ended), by more than skewTolerance, was not waited for.
func tieOf(p, c *store.Span) Tie {
	if followsFrom(c) {
		return TieFollowsFrom
	}
	pe, ce := p.End(), c.End()
	if c.Kind == store.KindConsumer && (p.Kind == store.KindProducer || c.StartUnixNano < p.StartUnixNano || ce > pe) {
		return TieMessaging
	}
	if p.Kind == store.KindClient && c.Kind == store.KindServer {
		return TieChild
	}
	if max(ce, c.StartUnixNano) > pe+skewTolerance(p, c) {
		return TieOutlives
	}
	return TieChild
}

// followsFrom reports whether c's link to its parent says the reference is
// follows-from (the OpenTracing shim's opentracing.ref_type attribute).
func followsFrom(c *store.Span) bool {
	for i := range c.Links {
		l := &c.Links[i]
		if l.SpanID != c.ParentSpanID || !bytes.Contains(l.Attributes, []byte("follows_from")) {
			continue
		}
		var m map[string]any
		if json.Unmarshal(l.Attributes, &m) == nil && m["opentracing.ref_type"] == "follows_from" {
			return true
		}
	}
	return false
}

// NewTree builds the tree of spans, given in any order. It keeps spans
// (does not copy them): do not modify them while the tree is in use.
func NewTree(spans []store.Span) *Tree {
	t := &Tree{}
	t.Reset(spans)
	return t
}

// better reports whether a should represent a duplicated span id rather
// than b: longer, then earlier, then by service and name, so the choice is
// independent of input order.
func better(a, b *store.Span) bool {
	if a.DurationNano != b.DurationNano {
		return a.DurationNano > b.DurationNano
	}
	if a.StartUnixNano != b.StartUnixNano {
		return a.StartUnixNano < b.StartUnixNano
	}
	if a.Service != b.Service {
		return a.Service < b.Service
	}
	return a.Name < b.Name
}

// Reset rebuilds t for spans, reusing its buffers: outlier analysis builds
// thousands of trees.
func (t *Tree) Reset(spans []store.Span) {
	t.spans = spans
	if t.idx == nil {
		t.idx = make(map[store.SpanID]int32, len(spans))
	} else {
		clear(t.idx)
	}
	t.src = t.src[:0]
	t.roots = t.roots[:0]
	t.dropped = 0
	for i := range spans {
		sp := &spans[i]
		if sp.SpanID.IsZero() {
			t.dropped++
			continue
		}
		if j, dup := t.idx[sp.SpanID]; dup {
			t.dropped++
			if better(sp, &spans[t.src[j]]) {
				t.src[j] = int32(i)
			}
			continue
		}
		t.idx[sp.SpanID] = int32(len(t.src))
		t.src = append(t.src, int32(i))
	}
	n := len(t.src)
	t.parent = resize(t.parent, n)
	t.tie = slices.Grow(t.tie[:0], n)[:n]
	for i := range n {
		sp := t.Span(int32(i))
		t.parent[i], t.tie[i] = -1, TieRoot
		if p, ok := t.idx[sp.ParentSpanID]; ok && !sp.ParentSpanID.IsZero() && p != int32(i) {
			t.parent[i] = p
			t.tie[i] = tieOf(t.Span(p), sp)
			continue
		}
		for _, l := range sp.Links {
			if p, ok := t.idx[l.SpanID]; ok && p != int32(i) && (l.TraceID.IsZero() || l.TraceID == sp.TraceID) {
				t.parent[i], t.tie[i] = p, TieLink
				break
			}
		}
	}
	t.breakCycles()
	t.buildChildren()
	for i := range n {
		if t.parent[i] < 0 {
			t.roots = append(t.roots, int32(i))
		}
	}
	slices.SortFunc(t.roots, func(a, b int32) int {
		sa, sb := t.Span(a), t.Span(b)
		if ra, rb := sa.ParentSpanID.IsZero(), sb.ParentSpanID.IsZero(); ra != rb {
			if ra {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(sa.StartUnixNano, sb.StartUnixNano), cmp.Compare(sb.DurationNano, sa.DurationNano),
			bytes.Compare(sa.SpanID[:], sb.SpanID[:]))
	})
}

func resize(s []int32, n int) []int32 { return slices.Grow(s[:0], n)[:n] }

// breakCycles makes every node reach a root: a parent chain that loops is
// cut at its link tie if it has one, else at its earliest span. Each node
// is walked up at most once (state: 0 unknown, 1 on the current chain,
// 2 reaches a root).
func (t *Tree) breakCycles() {
	n := len(t.src)
	state := resize(t.scratch, n)
	clear(state)
	var chain []int32
	for i := range int32(n) {
		chain = chain[:0]
		cur := i
		for cur >= 0 && state[cur] == 0 {
			state[cur] = 1
			chain = append(chain, cur)
			cur = t.parent[cur]
		}
		if cur >= 0 && state[cur] == 1 {
			// cur is on this chain: the loop is chain[k:] from cur.
			k := slices.Index(chain, cur)
			loop := chain[k:]
			cut := int32(-1)
			for _, x := range loop {
				if t.tie[x] == TieLink {
					cut = x
					break
				}
			}
			if cut < 0 {
				cut = loop[0]
				for _, x := range loop[1:] {
					a, b := t.Span(x), t.Span(cut)
					if a.StartUnixNano < b.StartUnixNano || (a.StartUnixNano == b.StartUnixNano && bytes.Compare(a.SpanID[:], b.SpanID[:]) < 0) {
						cut = x
					}
				}
			}
			t.parent[cut], t.tie[cut] = -1, TieRoot
		}
		for _, x := range chain {
			state[x] = 2
		}
	}
	t.scratch = state
}

// buildChildren lays the children out in CSR form, each run sorted by
// start, then span id.
func (t *Tree) buildChildren() {
	n := len(t.src)
	t.kid0 = resize(t.kid0, n+1)
	clear(t.kid0)
	for i := range n {
		if p := t.parent[i]; p >= 0 {
			t.kid0[p+1]++
		}
	}
	for i := 1; i <= n; i++ {
		t.kid0[i] += t.kid0[i-1]
	}
	t.kids = resize(t.kids, int(t.kid0[n]))
	t.nkids = resize(t.nkids, n)
	clear(t.nkids)
	for i := range n {
		if p := t.parent[i]; p >= 0 {
			t.kids[t.kid0[p]+t.nkids[p]] = int32(i)
			t.nkids[p]++
		}
	}
	for i := range n {
		if ks := t.Children(int32(i)); len(ks) > 1 {
			slices.SortFunc(ks, t.byStart)
		}
	}
}

func (t *Tree) byStart(a, b int32) int {
	sa, sb := t.Span(a), t.Span(b)
	if c := cmp.Compare(sa.StartUnixNano, sb.StartUnixNano); c != 0 {
		return c
	}
	return bytes.Compare(sa.SpanID[:], sb.SpanID[:])
}

// Len is the number of distinct spans (nodes).
func (t *Tree) Len() int { return len(t.src) }

// Dropped counts the input spans that are not nodes: duplicate copies of a
// span id and spans with a zero id.
func (t *Tree) Dropped() int { return t.dropped }

// Span returns node n's span.
func (t *Tree) Span(n int32) *store.Span { return &t.spans[t.src[n]] }

// Node returns the node of a span id.
func (t *Tree) Node(id store.SpanID) (int32, bool) {
	n, ok := t.idx[id]
	return n, ok && !id.IsZero()
}

// Parent returns n's parent node, -1 for a root.
func (t *Tree) Parent(n int32) int32 { return t.parent[n] }

// Tie returns how n is tied to its parent.
func (t *Tree) Tie(n int32) Tie { return t.tie[n] }

// Children returns n's children in start order. The slice is the tree's:
// do not modify it.
func (t *Tree) Children(n int32) []int32 { return t.kids[t.kid0[n] : t.kid0[n]+t.nkids[n]] }

// Roots returns the roots, the trace root first.
func (t *Tree) Roots() []int32 { return t.roots }

// Root returns the trace root, -1 when the tree is empty.
func (t *Tree) Root() int32 {
	if len(t.roots) == 0 {
		return -1
	}
	return t.roots[0]
}

// Depth counts n's ancestors.
func (t *Tree) Depth(n int32) int {
	d := 0
	for p := t.parent[n]; p >= 0; p = t.parent[p] {
		d++
	}
	return d
}

// Walk visits the nodes under each root (the roots themselves included) in
// depth-first preorder, children in start order, with their depth below
// their root. When visit returns false the node's children are skipped.
func (t *Tree) Walk(visit func(n int32, depth int) bool) {
	t.walkFrom(t.roots, 0, visit)
}

// WalkFrom is Walk from one node, whose depth is given.
func (t *Tree) WalkFrom(n int32, depth int, visit func(n int32, depth int) bool) {
	t.walkFrom([]int32{n}, depth, visit)
}

func (t *Tree) walkFrom(starts []int32, depth int, visit func(n int32, depth int) bool) {
	type item struct {
		n     int32
		depth int
	}
	stack := make([]item, 0, len(starts)+16)
	for i := len(starts) - 1; i >= 0; i-- {
		stack = append(stack, item{starts[i], depth})
	}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !visit(it.n, it.depth) {
			continue
		}
		ks := t.Children(it.n)
		for i := len(ks) - 1; i >= 0; i-- {
			stack = append(stack, item{ks[i], it.depth + 1})
		}
	}
}

// Subtree returns n and its descendants in preorder.
func (t *Tree) Subtree(n int32) []int32 {
	var out []int32
	t.WalkFrom(n, 0, func(x int32, _ int) bool {
		out = append(out, x)
		return true
	})
	return out
}

// SubtreeSizes returns each node's subtree size, itself included.
func (t *Tree) SubtreeSizes() []int {
	size := make([]int, len(t.src))
	var order []int32
	t.Walk(func(n int32, _ int) bool {
		order = append(order, n)
		return true
	})
	for k := len(order) - 1; k >= 0; k-- {
		n := order[k]
		size[n]++
		if p := t.parent[n]; p >= 0 {
			size[p] += size[n]
		}
	}
	return size
}

// Extent returns the earliest start and latest end over every node.
func (t *Tree) Extent() (start, end int64) {
	for i := range t.src {
		sp := t.Span(int32(i))
		if i == 0 || sp.StartUnixNano < start {
			start = sp.StartUnixNano
		}
		if i == 0 || sp.End() > end {
			end = sp.End()
		}
	}
	return start, end
}
