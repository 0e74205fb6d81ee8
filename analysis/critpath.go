package analysis

import (
	"bytes"
	"cmp"
	"slices"

	"github.com/tailscope/tailscope/store"
)

// Critical path, as Jaeger computes it (jaeger-ui's criticalPath, after
// "Critical path analysis" in Uber's CRISP): starting at the end of the
// root span, walk back through the last-finishing child that ended before
// the current point, descend into it, and when a span has no such child,
// the rest of it back to its start is its own time and the walk returns
// to its parent at the span's start.
//
// Before the walk each child is clipped to its parent, top down: a child
// that starts before or ends after its parent counts only inside it, so an
// async child that ends after the parent does not extend it, and a child
// entirely outside its parent is left out. The result tiles the root span
// exactly: the segments are contiguous and sum to the root's duration.
//
// Two deliberate differences from jaeger-ui: a child that ends exactly
// when the next one starts (back-to-back sequential calls) is on the path
// (jaeger-ui's strict "<" leaves it out and bills the parent), and ties are
// broken by span id, never by input order, so the result does not depend
// on the order spans are given in.
//
// Attribution. Time on the critical path spent in a span counts for the
// hop (span.Service, span.Dependency): a client span's own time (the
// network and queueing around the server span under it, or all of the
// call for an uninstrumented dependency) belongs to the caller's hop
// towards that dependency, e.g. (feed-api, candidate-svc); time inside
// candidate-svc's server span belongs to (candidate-svc, "") until
// candidate-svc calls something itself, e.g. (candidate-svc, postgresql).

// Segment is one contiguous stretch of the critical path spent in a span's
// own work (no child of it running on the path).
type Segment struct {
	SpanID        store.SpanID `json:"span_id"`
	Service       string       `json:"service"`
	Name          string       `json:"name"`
	Dependency    string       `json:"dependency"`
	StartUnixNano UnixNano     `json:"start_unix_nano"`
	EndUnixNano   UnixNano     `json:"end_unix_nano"`
	// OffsetMs is the segment start relative to the root span's start.
	OffsetMs   float64 `json:"offset_ms"`
	DurationMs float64 `json:"duration_ms"`
	DurationNs int64   `json:"duration_ns"`
}

// SpanTime is the time a span spent itself: SelfNs over its whole
// duration (minus the time any child ran), CriticalNs on the critical path.
type SpanTime struct {
	SpanID     store.SpanID `json:"span_id"`
	Service    string       `json:"service"`
	Name       string       `json:"name"`
	Dependency string       `json:"dependency"`
	SelfMs     float64      `json:"self_ms"`
	CriticalMs float64      `json:"critical_ms"`
	SelfNs     int64        `json:"self_ns"`
	CriticalNs int64        `json:"critical_ns"`
}

// HopTime is critical-path time per (service, dependency); Dependency ""
// is time in the service's own code.
type HopTime struct {
	Service    string  `json:"service"`
	Dependency string  `json:"dependency"`
	Label      string  `json:"label"`
	CriticalMs float64 `json:"critical_ms"`
	CriticalNs int64   `json:"critical_ns"`
	// Share is CriticalNs over the root's duration.
	Share float64 `json:"share"`
}

// Gap is critical-path time inside a span that has children but during
// which none of them ran: work nobody instrumented, or network and
// queueing time around a remote call.
type Gap struct {
	SpanID        store.SpanID `json:"span_id"`
	Service       string       `json:"service"`
	Name          string       `json:"name"`
	StartUnixNano UnixNano     `json:"start_unix_nano"`
	EndUnixNano   UnixNano     `json:"end_unix_nano"`
	OffsetMs      float64      `json:"offset_ms"`
	DurationMs    float64      `json:"duration_ms"`
	DurationNs    int64        `json:"duration_ns"`
}

// CriticalPathResult is the critical path of one trace.
type CriticalPathResult struct {
	TraceID       store.TraceID `json:"trace_id"`
	RootSpanID    store.SpanID  `json:"root_span_id"`
	StartUnixNano UnixNano      `json:"start_unix_nano"`
	DurationMs    float64       `json:"duration_ms"`
	DurationNs    int64         `json:"duration_ns"`
	// SpanIDs are the spans on the path, each once, in the order the path
	// first enters them (chronological).
	SpanIDs []store.SpanID `json:"span_ids"`
	// Segments tile [root start, root end] in time order.
	Segments []Segment `json:"segments"`
	// Spans holds self and critical time of every span connected to the
	// root, in start order.
	Spans []SpanTime `json:"spans"`
	// Hops is critical time per (service, dependency), largest first.
	Hops []HopTime `json:"hops"`
	Gaps []Gap     `json:"gaps"`
	// DetachedSpans counts spans not connected to the root (their parent
	// is missing, they lie entirely outside it, or they duplicate a span
	// id); they are not on the path.
	DetachedSpans int `json:"detached_spans"`
}

// HopLabel names a hop the way pages and summaries do:
// "candidate-svc → postgresql", or "feed-api (self)" for own time.
func HopLabel(service, dependency string) string {
	if dependency == "" {
		return service + " (self)"
	}
	return service + " → " + dependency
}

// CriticalPath computes the critical path of a trace's spans, given in any
// order. Spans of other traces or with bad data do not make it fail: a
// span with a zero id is ignored, negative durations count as zero, and
// spans that cannot be connected to the root are counted as detached.
func CriticalPath(spans []store.Span) CriticalPathResult {
	var e cpEngine
	if !e.compute(spans, store.SpanID{}) {
		return CriticalPathResult{
			SpanIDs: []store.SpanID{}, Segments: []Segment{}, Spans: []SpanTime{},
			Hops: []HopTime{}, Gaps: []Gap{}, DetachedSpans: len(spans),
		}
	}
	root := &e.nodes[e.root]
	rs := &spans[root.span]
	res := CriticalPathResult{
		TraceID:       rs.TraceID,
		RootSpanID:    rs.SpanID,
		StartUnixNano: UnixNano(root.start),
		DurationNs:    root.end - root.start,
		DurationMs:    round3(nsToMs(root.end - root.start)),
		SpanIDs:       []store.SpanID{},
		Segments:      make([]Segment, 0, len(e.segs)),
		Spans:         []SpanTime{},
		Hops:          []HopTime{},
		Gaps:          []Gap{},
		DetachedSpans: len(spans) - e.reached,
	}
	critical := make([]int64, len(e.nodes))
	seen := make([]bool, len(e.nodes))
	hops := map[hopKey]int64{}
	for _, sg := range e.segs {
		n := &e.nodes[sg.node]
		sp := &spans[n.span]
		d := sg.end - sg.start
		critical[sg.node] += d
		hops[hopKey{sp.Service, sp.Dependency}] += d
		if !seen[sg.node] {
			seen[sg.node] = true
			res.SpanIDs = append(res.SpanIDs, sp.SpanID)
		}
		res.Segments = append(res.Segments, Segment{
			SpanID: sp.SpanID, Service: sp.Service, Name: sp.Name, Dependency: sp.Dependency,
			StartUnixNano: UnixNano(sg.start), EndUnixNano: UnixNano(sg.end),
			OffsetMs:   round3(nsToMs(sg.start - root.start)),
			DurationMs: round3(nsToMs(d)), DurationNs: d,
		})
		if n.nkids > 0 && d > 0 {
			res.Gaps = append(res.Gaps, Gap{
				SpanID: sp.SpanID, Service: sp.Service, Name: sp.Name,
				StartUnixNano: UnixNano(sg.start), EndUnixNano: UnixNano(sg.end),
				OffsetMs:   round3(nsToMs(sg.start - root.start)),
				DurationMs: round3(nsToMs(d)), DurationNs: d,
			})
		}
	}
	byStart := slices.Clone(e.order)
	slices.SortFunc(byStart, func(a, b int32) int {
		na, nb := &e.nodes[a], &e.nodes[b]
		if c := cmp.Compare(na.start, nb.start); c != 0 {
			return c
		}
		ia, ib := spans[na.span].SpanID, spans[nb.span].SpanID
		return bytes.Compare(ia[:], ib[:])
	})
	res.Spans = make([]SpanTime, 0, len(byStart))
	for _, i := range byStart {
		n := &e.nodes[i]
		sp := &spans[n.span]
		self := e.selfTime(i)
		res.Spans = append(res.Spans, SpanTime{
			SpanID: sp.SpanID, Service: sp.Service, Name: sp.Name, Dependency: sp.Dependency,
			SelfNs: self, CriticalNs: critical[i],
			SelfMs: round3(nsToMs(self)), CriticalMs: round3(nsToMs(critical[i])),
		})
	}
	for k, ns := range hops {
		h := HopTime{Service: k.service, Dependency: k.dependency, Label: HopLabel(k.service, k.dependency),
			CriticalNs: ns, CriticalMs: round3(nsToMs(ns))}
		if res.DurationNs > 0 {
			h.Share = round4(float64(ns) / float64(res.DurationNs))
		}
		res.Hops = append(res.Hops, h)
	}
	slices.SortFunc(res.Hops, func(a, b HopTime) int {
		if c := cmp.Compare(b.CriticalNs, a.CriticalNs); c != 0 {
			return c
		}
		return cmp.Compare(a.Label, b.Label)
	})
	return res
}

// hopKey identifies a hop: a service's own time (dependency "") or its
// calls to one dependency.
type hopKey struct {
	service    string
	dependency string
}

// cpNode is one distinct span in the engine.
type cpNode struct {
	span       int32 // index into the input
	parent     int32 // node index, -1 for none
	start, end int64 // clipped to the parent
	kid0       int32 // first child in cpEngine.kids
	nkids      int32 // kept children, sorted by end descending
	next       int32 // walk cursor into the children
	kept       bool  // connected to the root and inside its parent
}

// rawSeg is a path segment before it is turned into a Segment.
type rawSeg struct {
	node       int32
	start, end int64
}

// cpEngine computes critical paths. Outlier analysis reuses one engine
// for thousands of traces, so its buffers are kept between calls.
type cpEngine struct {
	idx     map[store.SpanID]int32
	nodes   []cpNode
	kids    []int32
	count   []int32
	queue   []int32
	order   []int32 // kept nodes in BFS order
	segs    []rawSeg
	root    int32
	reached int
}

// better reports whether a should represent a duplicated span id rather
// than b: longer, then earlier, then by name, so the choice is
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

// compute runs the walk from root, or from the trace's root when root is
// zero or absent (a non-root entry span analyses its own subtree). It
// reports false when no span qualifies as root.
func (e *cpEngine) compute(spans []store.Span, rootID store.SpanID) bool {
	if e.idx == nil {
		e.idx = make(map[store.SpanID]int32, len(spans))
	} else {
		clear(e.idx)
	}
	e.nodes = e.nodes[:0]
	e.segs = e.segs[:0]
	e.order = e.order[:0]
	e.reached = 0
	for i := range spans {
		sp := &spans[i]
		if sp.SpanID.IsZero() {
			continue
		}
		if j, dup := e.idx[sp.SpanID]; dup {
			if better(sp, &spans[e.nodes[j].span]) {
				e.nodes[j].span = int32(i)
			}
			continue
		}
		e.idx[sp.SpanID] = int32(len(e.nodes))
		e.nodes = append(e.nodes, cpNode{span: int32(i)})
	}
	if len(e.nodes) == 0 {
		return false
	}
	// Parents, and the root: a span without a parent, else the best span
	// whose parent is missing (its root has not arrived).
	rootIdx, rootIsTrue := int32(-1), false
	for i := range e.nodes {
		n := &e.nodes[i]
		sp := &spans[n.span]
		n.start = sp.StartUnixNano
		n.end = satAdd(sp.StartUnixNano, max(sp.DurationNano, 0))
		n.parent = -1
		n.kept = false
		n.nkids, n.next = 0, 0
		isTrue := sp.ParentSpanID.IsZero()
		if !isTrue {
			if p, ok := e.idx[sp.ParentSpanID]; ok && p != int32(i) {
				n.parent = p
				continue
			}
		}
		switch {
		case rootIdx < 0, isTrue && !rootIsTrue:
			rootIdx, rootIsTrue = int32(i), isTrue
		case isTrue == rootIsTrue:
			r := &spans[e.nodes[rootIdx].span]
			if better(sp, r) || (!better(r, sp) && bytes.Compare(sp.SpanID[:], r.SpanID[:]) < 0) {
				rootIdx = int32(i)
			}
		}
	}
	if i, ok := e.idx[rootID]; ok && !rootID.IsZero() {
		rootIdx = i
	}
	if rootIdx < 0 {
		// Every span has a parent in the set: a cycle. Nothing is a root.
		return false
	}
	root := rootIdx
	e.root = root

	// Children in CSR form.
	e.count = slices.Grow(e.count[:0], len(e.nodes)+1)[:len(e.nodes)+1]
	clear(e.count)
	for i := range e.nodes {
		if p := e.nodes[i].parent; p >= 0 {
			e.count[p+1]++
		}
	}
	for i := 1; i <= len(e.nodes); i++ {
		e.count[i] += e.count[i-1]
	}
	e.kids = slices.Grow(e.kids[:0], len(e.nodes))[:e.count[len(e.nodes)]]
	for i := range e.nodes {
		e.nodes[i].kid0 = e.count[i]
	}
	for i := range e.nodes {
		if p := e.nodes[i].parent; p >= 0 {
			e.kids[e.count[p]] = int32(i)
			e.count[p]++
		}
	}
	for i := range e.nodes {
		// count[i] now marks the end of node i's children.
		e.nodes[i].nkids = e.count[i] - e.nodes[i].kid0
	}

	// Top down from the root: clip children to their parent, drop those
	// entirely outside it, and keep only what is connected.
	e.nodes[root].kept = true
	e.queue = append(e.queue[:0], root)
	for qi := 0; qi < len(e.queue); qi++ {
		p := e.queue[qi]
		pn := &e.nodes[p]
		e.order = append(e.order, p)
		ks := e.kids[pn.kid0 : pn.kid0+pn.nkids]
		kept := ks[:0]
		for _, c := range ks {
			cn := &e.nodes[c]
			if cn.start > pn.end || cn.end < pn.start {
				continue
			}
			cn.start = max(cn.start, pn.start)
			cn.end = min(cn.end, pn.end)
			cn.kept = true
			kept = append(kept, c)
			e.queue = append(e.queue, c)
		}
		pn.nkids = int32(len(kept))
		if len(kept) > 1 {
			slices.SortFunc(kept, e.byEndDesc(spans))
		}
	}
	e.reached = len(e.order)

	// The walk. Each node's cursor only moves forward: the point we return
	// to a parent at only moves back in time, so a child skipped because
	// it ended after that point can never qualify later. That makes the
	// walk linear in the number of spans.
	cur := root
	bound := e.nodes[root].end
	for {
		n := &e.nodes[cur]
		ks := e.kids[n.kid0 : n.kid0+n.nkids]
		for n.next < n.nkids && e.nodes[ks[n.next]].end > bound {
			n.next++
		}
		if n.next < n.nkids {
			c := ks[n.next]
			n.next++
			cend := e.nodes[c].end
			if cend < bound {
				e.segs = append(e.segs, rawSeg{node: cur, start: cend, end: bound})
			}
			cur, bound = c, cend
			continue
		}
		if n.start < bound {
			e.segs = append(e.segs, rawSeg{node: cur, start: n.start, end: bound})
		}
		if cur == root {
			break
		}
		bound = n.start
		cur = n.parent
	}
	// The walk goes backwards in time; put the segments in time order and
	// join stretches of one span that only a zero-length child split.
	slices.Reverse(e.segs)
	out := e.segs[:0]
	for _, s := range e.segs {
		if k := len(out) - 1; k >= 0 && out[k].node == s.node && out[k].end == s.start {
			out[k].end = s.end
			continue
		}
		out = append(out, s)
	}
	e.segs = out
	return true
}

// byEndDesc orders children latest end first, then latest start, then by
// span id.
func (e *cpEngine) byEndDesc(spans []store.Span) func(a, b int32) int {
	return func(a, b int32) int {
		na, nb := &e.nodes[a], &e.nodes[b]
		if c := cmp.Compare(nb.end, na.end); c != 0 {
			return c
		}
		if c := cmp.Compare(nb.start, na.start); c != 0 {
			return c
		}
		ia, ib := spans[na.span].SpanID, spans[nb.span].SpanID
		return bytes.Compare(ia[:], ib[:])
	}
}

// selfTime is a node's clipped duration minus the union of its kept
// children. Children are sorted by end descending, so one sweep merges
// them: a child overlaps the current block exactly when it ends at or
// after the block's start.
func (e *cpEngine) selfTime(i int32) int64 {
	n := &e.nodes[i]
	dur := n.end - n.start
	if n.nkids == 0 {
		return dur
	}
	var union int64
	ks := e.kids[n.kid0 : n.kid0+n.nkids]
	lo, hi := e.nodes[ks[0]].start, e.nodes[ks[0]].end
	for _, c := range ks[1:] {
		cn := &e.nodes[c]
		if cn.end >= lo {
			lo = min(lo, cn.start)
			continue
		}
		union += hi - lo
		lo, hi = cn.start, cn.end
	}
	union += hi - lo
	return dur - union
}

// hopTimes adds the critical time of each hop of the last computed trace
// to add(service, dependency, ns).
func (e *cpEngine) hopTimes(spans []store.Span, add func(sp *store.Span, ns int64)) {
	for _, sg := range e.segs {
		add(&spans[e.nodes[sg.node].span], sg.end-sg.start)
	}
}
