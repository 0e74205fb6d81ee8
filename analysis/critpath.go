package analysis

import (
	"bytes"
	"cmp"
	"encoding/binary"
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
// Asynchronous work is off the path. The trace Tree marks each child the
// parent did not wait for (it outlives the parent, it is a message
// hand-off, a follows-from reference or a link; see Tie): such a child
// and everything under it is an async branch. It is not walked, it does
// not reduce its parent's own time, and it keeps its own self time
// (jaeger-ui drops FOLLOWS_FROM children the same way; tailscope also
// drops children that end after their parent, which jaeger-ui trims and
// keeps, so a fire-and-forget call that outlives the request can never
// take the request's critical time).
//
// Before the walk each synchronous child is clipped to its parent, top
// down: a child that starts before its parent, or ends after it within
// clock skew, counts only inside it, and one entirely outside it is not
// walked. The result tiles the root span exactly: the segments are
// contiguous and sum to the root's duration.
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
// duration (minus the time any synchronous child ran), CriticalNs on the
// critical path.
type SpanTime struct {
	SpanID     store.SpanID `json:"span_id"`
	Service    string       `json:"service"`
	Name       string       `json:"name"`
	Dependency string       `json:"dependency"`
	SelfMs     float64      `json:"self_ms"`
	CriticalMs float64      `json:"critical_ms"`
	SelfNs     int64        `json:"self_ns"`
	CriticalNs int64        `json:"critical_ns"`
	// Async marks a span of an async branch: the request did not wait for
	// it, so it is never on the critical path. AsyncTie names, on the
	// branch's first span, why ("outlives parent", "message hand-off",
	// "follows from", "linked").
	Async    bool   `json:"async,omitempty"`
	AsyncTie string `json:"async_tie,omitempty"`
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
	// root (async branches included), in start order.
	Spans []SpanTime `json:"spans"`
	// Hops is critical time per (service, dependency), largest first.
	Hops []HopTime `json:"hops"`
	Gaps []Gap     `json:"gaps"`
	// AsyncSpans counts the spans of async branches under the root.
	AsyncSpans int `json:"async_spans"`
	// DetachedSpans counts spans not connected to the root (their parent
	// is missing, or they duplicate a span id); they are not on the path.
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
	return e.result()
}

// result turns the last computation into a CriticalPathResult.
func (e *cpEngine) result() CriticalPathResult {
	t := &e.tree
	rs := t.Span(e.root)
	rstart, rend := e.start[e.root], e.end[e.root]
	res := CriticalPathResult{
		TraceID:       rs.TraceID,
		RootSpanID:    rs.SpanID,
		StartUnixNano: UnixNano(rstart),
		DurationNs:    rend - rstart,
		DurationMs:    round3(nsToMs(rend - rstart)),
		SpanIDs:       []store.SpanID{},
		Segments:      make([]Segment, 0, len(e.segs)),
		Spans:         []SpanTime{},
		Hops:          []HopTime{},
		Gaps:          []Gap{},
		AsyncSpans:    len(e.async),
		DetachedSpans: len(t.spans) - len(e.order) - len(e.async),
	}
	critical := make([]int64, t.Len())
	seen := make([]bool, t.Len())
	hops := map[hopKey]int64{}
	for _, sg := range e.segs {
		sp := t.Span(sg.node)
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
			OffsetMs:   round3(nsToMs(sg.start - rstart)),
			DurationMs: round3(nsToMs(d)), DurationNs: d,
		})
		if e.nwalk[sg.node] > 0 && d > 0 {
			res.Gaps = append(res.Gaps, Gap{
				SpanID: sp.SpanID, Service: sp.Service, Name: sp.Name,
				StartUnixNano: UnixNano(sg.start), EndUnixNano: UnixNano(sg.end),
				OffsetMs:   round3(nsToMs(sg.start - rstart)),
				DurationMs: round3(nsToMs(d)), DurationNs: d,
			})
		}
	}
	res.Spans = e.spanTimes(critical, rstart)
	res.Hops = hopTimes(hops, res.DurationNs)
	return res
}

// spanTimes lists the analysed spans (the root's synchronous subtree and its
// async branches) with their self and critical-path time; rstart is the
// root's start.
func (e *cpEngine) spanTimes(critical []int64, rstart int64) []SpanTime {
	t := &e.tree
	// Spans in start order, ties by span id. The order is the largest
	// cost of a 10,000-span result: two stable radix sorts, by id (read
	// as a big-endian number, which orders as its bytes do) and then by
	// start relative to the earliest, so the high bytes are skipped.
	keys := make([]durIdx, 0, len(e.order)+len(e.async))
	for _, i := range slices.Concat(e.order, e.async) {
		id := t.Span(i).SpanID
		keys = append(keys, durIdx{int64(binary.BigEndian.Uint64(id[:])), i})
	}
	radixSort(keys)
	first := rstart
	for _, k := range keys {
		first = min(first, e.start[k.i])
	}
	for j, k := range keys {
		keys[j].d = e.start[k.i] - first
	}
	radixSort(keys)
	out := make([]SpanTime, 0, len(keys))
	for _, k := range keys {
		i := k.i
		sp := t.Span(i)
		self := e.selfTime(i)
		st := SpanTime{
			SpanID: sp.SpanID, Service: sp.Service, Name: sp.Name, Dependency: sp.Dependency,
			SelfNs: self, CriticalNs: critical[i],
			SelfMs: round3(nsToMs(self)), CriticalMs: round3(nsToMs(critical[i])),
			Async: e.isAsync[i],
		}
		if st.Async && t.Tie(i).Async() {
			st.AsyncTie = t.Tie(i).String()
		}
		out = append(out, st)
	}
	return out
}

// hopTimes is critical-path time per hop, largest first.
func hopTimes(hops map[hopKey]int64, total int64) []HopTime {
	out := make([]HopTime, 0, len(hops))
	for k, ns := range hops {
		h := HopTime{Service: k.service, Dependency: k.dependency, Label: HopLabel(k.service, k.dependency),
			CriticalNs: ns, CriticalMs: round3(nsToMs(ns))}
		if total > 0 {
			h.Share = round4(float64(ns) / float64(total))
		}
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b HopTime) int {
		if c := cmp.Compare(b.CriticalNs, a.CriticalNs); c != 0 {
			return c
		}
		return cmp.Compare(a.Label, b.Label)
	})
	return out
}

// hopKey identifies a hop: a service's own time (dependency "") or its
// calls to one dependency.
type hopKey struct {
	service    string
	dependency string
}

// rawSeg is a path segment before it is turned into a Segment.
type rawSeg struct {
	node       int32
	start, end int64
}

// cpEngine computes critical paths over a Tree. Outlier analysis reuses
// one engine for thousands of traces, so its buffers are kept between
// calls. Per node (indexes of the tree):
type cpEngine struct {
	tree Tree
	// start and end are clipped to the parent for synchronous children;
	// an async branch's first span keeps its own times.
	start, end []int64
	// walk holds, at the tree's child offsets, each node's walkable
	// children (synchronous and overlapping it) sorted by end descending;
	// nwalk how many, next the walk's cursor into them.
	walk, nwalk, next []int32
	isAsync           []bool
	order             []int32 // the root and its synchronous descendants, BFS order
	async             []int32 // spans of async branches under the root
	queue             []int32
	segs              []rawSeg
	root              int32
}

// compute builds the tree of spans and walks the critical path from root,
// or from the trace's root when root is zero or absent (a non-root entry
// span analyses its own subtree). It reports false when there is no span.
func (e *cpEngine) compute(spans []store.Span, rootID store.SpanID) bool {
	t := &e.tree
	t.Reset(spans)
	e.segs, e.order, e.async = e.segs[:0], e.order[:0], e.async[:0]
	root := t.Root()
	if n, ok := t.Node(rootID); ok {
		root = n
	}
	if root < 0 {
		return false
	}
	e.root = root
	n := t.Len()
	e.start = slices.Grow(e.start[:0], n)[:n]
	e.end = slices.Grow(e.end[:0], n)[:n]
	e.walk = resize(e.walk, len(t.kids))
	e.nwalk = resize(e.nwalk, n)
	e.next = resize(e.next, n)
	e.isAsync = slices.Grow(e.isAsync[:0], n)[:n]
	clear(e.nwalk)
	clear(e.next)
	clear(e.isAsync)

	e.clip(root)
	e.walkBack(root)
	e.joinSegments()
	return true
}

// clip goes top down from the root: it clips synchronous children to their
// parent and collects the walkable ones, sorted by end; async children
// start branches.
func (e *cpEngine) clip(root int32) {
	t := &e.tree
	rs := t.Span(root)
	e.start[root], e.end[root] = rs.StartUnixNano, satAdd(rs.StartUnixNano, max(rs.DurationNano, 0))
	e.queue = append(e.queue[:0], root)
	for qi := 0; qi < len(e.queue); qi++ {
		p := e.queue[qi]
		if e.isAsync[p] {
			e.async = append(e.async, p)
		} else {
			e.order = append(e.order, p)
		}
		base := t.kid0[p]
		for _, c := range t.Children(p) {
			cs := t.Span(c)
			e.start[c], e.end[c] = cs.StartUnixNano, satAdd(cs.StartUnixNano, max(cs.DurationNano, 0))
			e.queue = append(e.queue, c)
			if t.Tie(c).Async() {
				e.isAsync[c] = true
				continue
			}
			e.isAsync[c] = e.isAsync[p]
			if e.start[c] > e.end[p] || e.end[c] < e.start[p] {
				continue // entirely outside (clock skew): not walked
			}
			e.start[c] = max(e.start[c], e.start[p])
			e.end[c] = min(e.end[c], e.end[p])
			e.walk[base+e.nwalk[p]] = c
			e.nwalk[p]++
		}
		if ks := e.walkKids(p); len(ks) > 1 {
			slices.SortFunc(ks, e.byEndDesc)
		}
	}
}

// walkBack walks the critical path from the root's end backwards in time,
// appending a segment per stretch of a span on the path. Each node's cursor
// only moves forward: the point we return to a parent at only moves back in
// time, so a child skipped because it ended after that point can never
// qualify later. That makes the walk linear in the number of spans.
func (e *cpEngine) walkBack(root int32) {
	t := &e.tree
	cur := root
	bound := e.end[root]
	for {
		ks := e.walkKids(cur)
		for int(e.next[cur]) < len(ks) && e.end[ks[e.next[cur]]] > bound {
			e.next[cur]++
		}
		if int(e.next[cur]) < len(ks) {
			c := ks[e.next[cur]]
			e.next[cur]++
			cend := e.end[c]
			if cend < bound {
				e.segs = append(e.segs, rawSeg{node: cur, start: cend, end: bound})
			}
			cur, bound = c, cend
			continue
		}
		if e.start[cur] < bound {
			e.segs = append(e.segs, rawSeg{node: cur, start: e.start[cur], end: bound})
		}
		if cur == root {
			break
		}
		bound = e.start[cur]
		cur = t.Parent(cur)
	}
}

// joinSegments puts the walk's segments in time order and joins stretches
// of one span that only a zero-length child split.
func (e *cpEngine) joinSegments() {
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
}

// walkKids returns node p's walkable children.
func (e *cpEngine) walkKids(p int32) []int32 {
	b := e.tree.kid0[p]
	return e.walk[b : b+e.nwalk[p]]
}

// byEndDesc orders children latest end first, then latest start, then by
// span id.
func (e *cpEngine) byEndDesc(a, b int32) int {
	if c := cmp.Compare(e.end[b], e.end[a]); c != 0 {
		return c
	}
	if c := cmp.Compare(e.start[b], e.start[a]); c != 0 {
		return c
	}
	ia, ib := e.tree.Span(a).SpanID, e.tree.Span(b).SpanID
	return bytes.Compare(ia[:], ib[:])
}

// selfTime is a node's (clipped) duration minus the union of its walkable
// children. Children are sorted by end descending, so one sweep merges
// them: a child overlaps the current block exactly when it ends at or
// after the block's start.
func (e *cpEngine) selfTime(i int32) int64 {
	dur := e.end[i] - e.start[i]
	ks := e.walkKids(i)
	if len(ks) == 0 {
		return dur
	}
	var union int64
	lo, hi := e.start[ks[0]], e.end[ks[0]]
	for _, c := range ks[1:] {
		if e.end[c] >= lo {
			lo = min(lo, e.start[c])
			continue
		}
		union += hi - lo
		lo, hi = e.start[c], e.end[c]
	}
	union += hi - lo
	return dur - union
}

// hopTimes adds the critical time of each hop of the last computed trace
// to add(span, ns).
func (e *cpEngine) hopTimes(add func(sp *store.Span, ns int64)) {
	for _, sg := range e.segs {
		add(e.tree.Span(sg.node), sg.end-sg.start)
	}
}

// rootSpan returns the span the last computation started from.
func (e *cpEngine) rootSpan() *store.Span { return e.tree.Span(e.root) }
