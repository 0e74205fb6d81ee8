package analysis

import (
	"bytes"
	"cmp"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/tailscope/tailscope/store"
)

// seg is an expected segment: span id and [start, end] in ms.
type seg struct {
	id         int
	start, end float64
}

func segsOf(r CriticalPathResult) []seg {
	out := make([]seg, len(r.Segments))
	for i, s := range r.Segments {
		out[i] = seg{
			id:    int(s.SpanID[7]) | int(s.SpanID[6])<<8,
			start: float64(int64(s.StartUnixNano)-testEpoch.UnixNano()) / 1e6,
			end:   float64(int64(s.EndUnixNano)-testEpoch.UnixNano()) / 1e6,
		}
	}
	return out
}

func TestCriticalPathShapes(t *testing.T) {
	tests := []struct {
		name     string
		spans    []sp
		want     []seg
		detached int
		async    int
	}{
		{
			name:  "single span",
			spans: []sp{{id: 1, start: 0, end: 100}},
			want:  []seg{{1, 0, 100}},
		},
		{
			// jaeger-ui's strict "<" would leave A off the path and bill
			// [10, 30] to the parent; back-to-back calls are on it here.
			name:  "sequential back-to-back children",
			spans: []sp{{id: 1, start: 0, end: 100}, {id: 2, parent: 1, start: 10, end: 30}, {id: 3, parent: 1, start: 30, end: 60}},
			want:  []seg{{1, 0, 10}, {2, 10, 30}, {3, 30, 60}, {1, 60, 100}},
		},
		{
			name:  "parallel children: the last to finish is critical",
			spans: []sp{{id: 1, start: 0, end: 100}, {id: 2, parent: 1, start: 10, end: 50}, {id: 3, parent: 1, start: 10, end: 80}},
			want:  []seg{{1, 0, 10}, {3, 10, 80}, {1, 80, 100}},
		},
		{
			name:  "overlapping children: earlier part of the first is the parent's",
			spans: []sp{{id: 1, start: 0, end: 100}, {id: 2, parent: 1, start: 10, end: 60}, {id: 3, parent: 1, start: 40, end: 70}},
			want:  []seg{{1, 0, 40}, {3, 40, 70}, {1, 70, 100}},
		},
		{
			// A fire-and-forget child that outlives its parent is an async
			// branch: the parent did not wait for it.
			name:  "child ending after the parent is off the path",
			spans: []sp{{id: 1, start: 0, end: 100}, {id: 2, parent: 1, start: 50, end: 200}},
			want:  []seg{{1, 0, 100}},
			async: 1,
		},
		{
			// A server span under its client is synchronous by contract:
			// an apparent overrun is clock skew, clipped to the client.
			name: "server overrunning its client by clock skew is clipped",
			spans: []sp{{id: 1, service: "a", start: 0, end: 100}, {id: 2, parent: 1, service: "a", kind: store.KindClient, start: 10, end: 90},
				{id: 3, parent: 2, service: "b", kind: store.KindServer, start: 15, end: 92}},
			want: []seg{{1, 0, 10}, {2, 10, 15}, {3, 15, 90}, {1, 90, 100}},
		},
		{
			name:  "child starting before the parent is clipped",
			spans: []sp{{id: 1, start: 10, end: 100}, {id: 2, parent: 1, start: 0, end: 40}},
			want:  []seg{{2, 10, 40}, {1, 40, 100}},
		},
		{
			name:  "child entirely after the parent is an async branch",
			spans: []sp{{id: 1, start: 0, end: 100}, {id: 2, parent: 1, start: 150, end: 200}, {id: 3, parent: 2, start: 160, end: 170}},
			want:  []seg{{1, 0, 100}},
			async: 2,
		},
		{
			name: "grandchild clipped to the clipped child",
			spans: []sp{{id: 1, service: "a", kind: store.KindClient, start: 0, end: 100}, {id: 2, parent: 1, service: "b", kind: store.KindServer, start: 50, end: 150},
				{id: 3, parent: 2, service: "b", start: 90, end: 140}},
			want: []seg{{1, 0, 50}, {2, 50, 90}, {3, 90, 100}},
		},
		{
			name:  "nested",
			spans: []sp{{id: 1, start: 0, end: 100}, {id: 2, parent: 1, start: 10, end: 90}, {id: 3, parent: 2, start: 20, end: 80}},
			want:  []seg{{1, 0, 10}, {2, 10, 20}, {3, 20, 80}, {2, 80, 90}, {1, 90, 100}},
		},
		{
			name:  "zero-length child splits nothing",
			spans: []sp{{id: 1, start: 0, end: 100}, {id: 2, parent: 1, start: 40, end: 40}},
			want:  []seg{{1, 0, 100}},
		},
		{
			name:     "orphan is detached when a root exists",
			spans:    []sp{{id: 1, start: 0, end: 100}, {id: 2, parent: 9, start: 10, end: 500}},
			want:     []seg{{1, 0, 100}},
			detached: 1,
		},
		{
			// One root rule for every page: the earliest orphan, as the
			// waterfall lists them.
			name:     "without a root the earliest orphan is the root",
			spans:    []sp{{id: 3, parent: 9, start: 10, end: 80}, {id: 2, parent: 9, start: 0, end: 50}, {id: 4, parent: 3, start: 20, end: 30}},
			want:     []seg{{2, 0, 50}},
			detached: 2,
		},
		{
			name:     "duplicate span id keeps the longer span",
			spans:    []sp{{id: 1, start: 0, end: 100}, {id: 2, parent: 1, start: 10, end: 20}, {id: 2, parent: 1, start: 10, end: 60}},
			want:     []seg{{1, 0, 10}, {2, 10, 60}, {1, 60, 100}},
			detached: 1,
		},
		{
			name:     "span that is its own parent is an orphan root",
			spans:    []sp{{id: 5, parent: 5, start: 0, end: 10}},
			want:     []seg{{5, 0, 10}},
			detached: 0,
		},
		{
			name:  "a parent cycle is broken at its earliest span",
			spans: []sp{{id: 2, parent: 1, start: 0, end: 10}, {id: 1, parent: 2, start: 0, end: 10}},
			want:  []seg{{2, 0, 10}},
		},
		{
			name:     "negative duration counts as zero",
			spans:    []sp{{id: 1, start: 0, end: 100}, {id: 2, parent: 1, start: 50, end: 40}},
			want:     []seg{{1, 0, 100}},
			detached: 0,
		},
		{
			name:  "zero-length root",
			spans: []sp{{id: 1, start: 5, end: 5}},
			want:  []seg{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := CriticalPath(build(t, tt.spans...))
			if got := segsOf(res); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("segments = %v, want %v", got, tt.want)
			}
			if res.DetachedSpans != tt.detached {
				t.Errorf("detached = %d, want %d", res.DetachedSpans, tt.detached)
			}
			if res.AsyncSpans != tt.async {
				t.Errorf("async = %d, want %d", res.AsyncSpans, tt.async)
			}
		})
	}
}

func TestCriticalPathEmpty(t *testing.T) {
	for _, spans := range [][]store.Span{nil, {{}}} {
		res := CriticalPath(spans)
		if len(res.Segments) != 0 || res.DurationNs != 0 || res.SpanIDs == nil || res.Hops == nil {
			t.Errorf("CriticalPath(%d spans) = %+v", len(spans), res)
		}
	}
}

// TestCriticalPathAttribution pins the hop rule: a client span's own time
// is the caller's hop to the dependency, a server span's own time is its
// service's self time, its calls are its hops.
func TestCriticalPathAttribution(t *testing.T) {
	spans := build(t,
		sp{id: 1, service: "feed-api", name: "GET /v1/feed", kind: store.KindServer, start: 0, end: 100},
		sp{id: 2, parent: 1, service: "feed-api", name: "GET /candidates", dep: "candidate-svc", kind: store.KindClient, start: 10, end: 70},
		sp{id: 3, parent: 2, service: "candidate-svc", name: "GET /candidates", kind: store.KindServer, start: 12, end: 68},
		sp{id: 4, parent: 3, service: "candidate-svc", name: "SELECT", dep: "postgresql", kind: store.KindClient, start: 20, end: 60},
		sp{id: 5, parent: 1, service: "feed-api", name: "GET /profile", dep: "profile-svc", kind: store.KindClient, start: 10, end: 30},
	)
	res := CriticalPath(spans)
	got := map[string]float64{}
	for _, h := range res.Hops {
		got[h.Label] = h.CriticalMs
	}
	want := map[string]float64{
		"feed-api (self)":            10 + 30,
		"feed-api → candidate-svc":   2 + 2,
		"candidate-svc (self)":       8 + 8,
		"candidate-svc → postgresql": 40,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("hops = %v, want %v", got, want)
	}
	if res.Hops[0].Label != "candidate-svc → postgresql" || res.Hops[0].Share != 0.4 {
		t.Errorf("largest hop = %+v", res.Hops[0])
	}
	wantIDs := []store.SpanID{sid(1), sid(2), sid(3), sid(4)}
	if !reflect.DeepEqual(res.SpanIDs, wantIDs) {
		t.Errorf("span ids = %v, want %v", res.SpanIDs, wantIDs)
	}
	self := map[store.SpanID]float64{}
	for _, s := range res.Spans {
		self[s.SpanID] = s.SelfMs
	}
	// The root ran children over [10, 70]: 40 ms of its own.
	if self[sid(1)] != 40 || self[sid(2)] != 4 || self[sid(3)] != 16 || self[sid(5)] != 20 {
		t.Errorf("self times = %v", self)
	}
	// Gaps are path time in spans with children: root [0,10] [70,100],
	// client [10,12] [68,70], server [12,20] [60,68].
	if len(res.Gaps) != 6 {
		t.Errorf("gaps = %+v, want 6", res.Gaps)
	}
}

func TestSelfTimeUnion(t *testing.T) {
	res := CriticalPath(build(t,
		sp{id: 1, start: 0, end: 100},
		sp{id: 2, parent: 1, start: 10, end: 30},
		sp{id: 3, parent: 1, start: 20, end: 50},
		sp{id: 4, parent: 1, start: 70, end: 80},
		sp{id: 5, parent: 1, start: 80, end: 85},
	))
	for _, s := range res.Spans {
		if s.SpanID == sid(1) && s.SelfMs != 45 {
			t.Errorf("root self = %v ms, want 45 (100 minus [10,50] and [70,85])", s.SelfMs)
		}
	}
}

// randomTrace builds a random span tree with the awkward cases the walk
// must survive: children sticking out of their parent on either side,
// children entirely outside, zero durations, identical times and
// back-to-back siblings (times are multiples of 5 ms to make ties common).
func randomTrace(r *rand.Rand, n int) []store.Span {
	descs := []sp{{id: 1, start: 0, end: float64(5 * (1 + r.IntN(200)))}}
	for i := 2; i <= n; i++ {
		p := descs[r.IntN(len(descs))]
		width := p.end - p.start
		start := p.start + float64(5*r.IntN(int(width/5)+1))
		dur := float64(5 * r.IntN(int(width/5)+1))
		switch r.IntN(10) {
		case 0: // async: runs past the parent
			dur += float64(5 * r.IntN(20))
		case 1: // starts before the parent
			start -= float64(5 * r.IntN(10))
		case 2: // zero length
			dur = 0
		case 3: // entirely after the parent
			start = p.end + 5
		}
		descs = append(descs, sp{id: i, parent: p.id, start: start, end: start + dur, service: fmt.Sprintf("s%d", r.IntN(4)),
			dep: []string{"", "db", "cache"}[r.IntN(3)], kind: store.SpanKind(r.IntN(6))})
	}
	spans := make([]store.Span, len(descs))
	for i, d := range descs {
		spans[i] = store.Span{
			TraceID: tid(1), SpanID: sid(d.id), ParentSpanID: sid(d.parent), Service: d.service, Name: "op", Dependency: d.dep, Kind: d.kind,
			StartUnixNano: testEpoch.UnixNano() + int64(d.start*1e6), DurationNano: int64((d.end - d.start) * 1e6),
		}
	}
	return spans
}

// refPath is an independent, quadratic transcription of the definition:
// clip children to parents top down, then from a bound walk back through
// the unvisited child that ends last at or before the bound.
func refPath(spans []store.Span) []rawSeg {
	type node struct {
		id         store.SpanID
		start, end int64
		kids       []*node
		visited    bool
		idx        int32
	}
	nodes := map[store.SpanID]*node{}
	byID := map[store.SpanID]*store.Span{}
	for i, s := range spans {
		nodes[s.SpanID] = &node{id: s.SpanID, start: s.StartUnixNano, end: s.StartUnixNano + s.DurationNano, idx: int32(i)}
		byID[s.SpanID] = &spans[i]
	}
	var root *node
	for i, s := range spans {
		if s.ParentSpanID.IsZero() {
			root = nodes[s.SpanID]
			continue
		}
		// Async children (their tie is tested on its own) are not walked.
		if tieOf(byID[s.ParentSpanID], &spans[i]).Async() {
			continue
		}
		p := nodes[s.ParentSpanID]
		p.kids = append(p.kids, nodes[s.SpanID])
	}
	var clip func(n *node)
	clip = func(n *node) {
		var kept []*node
		for _, c := range n.kids {
			if c.start > n.end || c.end < n.start {
				continue
			}
			c.start, c.end = max(c.start, n.start), min(c.end, n.end)
			kept = append(kept, c)
			clip(c)
		}
		n.kids = kept
	}
	clip(root)
	var out []rawSeg
	var visit func(n *node, bound int64)
	visit = func(n *node, bound int64) {
		for {
			var best *node
			for _, c := range n.kids {
				if c.visited || c.end > bound {
					continue
				}
				if best == nil || c.end > best.end || (c.end == best.end && c.start > best.start) ||
					(c.end == best.end && c.start == best.start && bytes.Compare(c.id[:], best.id[:]) < 0) {
					best = c
				}
			}
			if best == nil {
				out = append(out, rawSeg{node: n.idx, start: n.start, end: bound})
				return
			}
			best.visited = true
			out = append(out, rawSeg{node: n.idx, start: best.end, end: bound})
			visit(best, best.end)
			bound = best.start
		}
	}
	visit(root, root.end)
	slices.Reverse(out)
	var merged []rawSeg
	for _, s := range out {
		if s.start == s.end {
			continue
		}
		if k := len(merged) - 1; k >= 0 && merged[k].node == s.node && merged[k].end == s.start {
			merged[k].end = s.end
			continue
		}
		merged = append(merged, s)
	}
	return merged
}

// TestCriticalPathProperties checks on random trees: the path matches the
// reference transcription, tiles the root exactly (so it never exceeds
// the root's duration and is contiguous), stays inside each span, and
// does not depend on the order the spans are given in.
func TestCriticalPathProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := range 600 {
		spans := randomTrace(r, 1+r.IntN(120))
		res := CriticalPath(spans)
		root := spans[0]

		ref := refPath(spans)
		if len(ref) != len(res.Segments) {
			t.Fatalf("iter %d: %d segments, reference has %d", iter, len(res.Segments), len(ref))
		}
		for i, s := range ref {
			g := res.Segments[i]
			if g.SpanID != spans[s.node].SpanID || int64(g.StartUnixNano) != s.start || int64(g.EndUnixNano) != s.end {
				t.Fatalf("iter %d: segment %d = %s [%d,%d], reference %s [%d,%d]", iter, i,
					g.SpanID, g.StartUnixNano, g.EndUnixNano, spans[s.node].SpanID, s.start, s.end)
			}
		}

		var sum int64
		at := root.StartUnixNano
		byID := map[store.SpanID]store.Span{}
		for _, s := range spans {
			byID[s.SpanID] = s
		}
		for _, g := range res.Segments {
			if int64(g.StartUnixNano) != at {
				t.Fatalf("iter %d: gap or overlap at %d (segment starts %d)", iter, at, g.StartUnixNano)
			}
			if g.EndUnixNano <= g.StartUnixNano {
				t.Fatalf("iter %d: empty segment %+v", iter, g)
			}
			s := byID[g.SpanID]
			if int64(g.StartUnixNano) < s.StartUnixNano || int64(g.EndUnixNano) > s.End() {
				t.Fatalf("iter %d: segment outside its span", iter)
			}
			at = int64(g.EndUnixNano)
			sum += g.DurationNs
		}
		if root.DurationNano > 0 && at != root.End() {
			t.Fatalf("iter %d: path ends at %d, root at %d", iter, at, root.End())
		}
		if sum != root.DurationNano || res.DurationNs != root.DurationNano {
			t.Fatalf("iter %d: path sums to %d, root lasts %d", iter, sum, root.DurationNano)
		}
		var hops int64
		for _, h := range res.Hops {
			hops += h.CriticalNs
		}
		if hops != sum {
			t.Fatalf("iter %d: hops sum to %d, path to %d", iter, hops, sum)
		}

		shuffled := slices.Clone(spans)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if res2 := CriticalPath(shuffled); !reflect.DeepEqual(res, res2) {
			t.Fatalf("iter %d: result depends on span order", iter)
		}
	}
}

// TestCriticalPathDeepChain: a 10,000-deep chain (the walk is iterative,
// so depth costs no stack) gives every span on the path, in time order.
func TestCriticalPathDeepChain(t *testing.T) {
	const n = 10000
	spans := make([]store.Span, n)
	for i := range spans {
		spans[i] = store.Span{TraceID: tid(1), SpanID: sid(i + 1), ParentSpanID: sid(i),
			StartUnixNano: int64(i), DurationNano: int64(2*n - 2*i)}
	}
	res := CriticalPath(spans)
	if len(res.SpanIDs) != n || res.DurationNs != 2*n {
		t.Fatalf("chain: %d spans on path, duration %d", len(res.SpanIDs), res.DurationNs)
	}
	if !slices.IsSortedFunc(res.Segments, func(a, b Segment) int { return cmp.Compare(a.StartUnixNano, b.StartUnixNano) }) {
		t.Fatal("segments not in time order")
	}
}

// TestCriticalPathAsyncWork reproduces the shapes that used to hijack the
// path: async work is off it, keeps its own self time, and does not take
// the parent's own time.
func TestCriticalPathAsyncWork(t *testing.T) {
	selfOf := func(r CriticalPathResult, id int) SpanTime {
		for _, st := range r.Spans {
			if st.SpanID == sid(id) {
				return st
			}
		}
		t.Fatalf("span %d not in result", id)
		return SpanTime{}
	}
	t.Run("fire-and-forget analytics call", func(t *testing.T) {
		// feed-api answers in 100 ms; `go analytics.Track(ctx)` runs 1.5 s.
		res := CriticalPath(build(t,
			sp{id: 1, service: "feed-api", kind: store.KindServer, start: 0, end: 100},
			sp{id: 2, parent: 1, service: "feed-api", kind: store.KindClient, dep: "profile-svc", start: 10, end: 80},
			sp{id: 3, parent: 1, service: "feed-api", kind: store.KindClient, dep: "analytics", start: 5, end: 1505},
			sp{id: 4, parent: 3, service: "analytics", kind: store.KindServer, start: 6, end: 1500},
		))
		if got, want := segsOf(res), []seg{{1, 0, 10}, {2, 10, 80}, {1, 80, 100}}; !reflect.DeepEqual(got, want) {
			t.Errorf("segments %v, want %v", got, want)
		}
		for _, h := range res.Hops {
			if h.Dependency == "analytics" || h.Service == "analytics" {
				t.Errorf("async hop on the path: %+v", h)
			}
		}
		if st := selfOf(res, 3); !st.Async || st.AsyncTie != "outlives parent" || st.CriticalNs != 0 || st.SelfMs != 1500-1494 {
			t.Errorf("analytics client %+v", st)
		}
		if st := selfOf(res, 4); !st.Async || st.AsyncTie != "" || st.SelfMs != 1494 {
			t.Errorf("analytics server %+v: want async with its own 1494 ms", st)
		}
		if res.AsyncSpans != 2 || res.DetachedSpans != 0 {
			t.Errorf("async %d detached %d", res.AsyncSpans, res.DetachedSpans)
		}
	})
	t.Run("root's own time is not given to an async audit.write", func(t *testing.T) {
		res := CriticalPath(build(t,
			sp{id: 1, service: "checkout", start: 0, end: 100},
			sp{id: 2, parent: 1, service: "checkout", name: "audit.write", start: 90, end: 130},
		))
		if st := selfOf(res, 1); st.SelfMs != 100 || st.CriticalMs != 100 {
			t.Errorf("root %+v: want all 100 ms its own", st)
		}
	})
	t.Run("producer keeps its self time; the consumer is a hand-off", func(t *testing.T) {
		res := CriticalPath(build(t,
			sp{id: 1, service: "orders", start: 0, end: 200},
			sp{id: 2, parent: 1, service: "orders", kind: store.KindProducer, dep: "kafka", start: 20, end: 175},
			sp{id: 3, parent: 2, service: "billing", kind: store.KindConsumer, start: 115, end: 400},
		))
		if st := selfOf(res, 2); st.SelfMs != 155 || st.CriticalMs != 155 {
			t.Errorf("producer %+v: want self and critical 155 ms", st)
		}
		if st := selfOf(res, 3); !st.Async || st.AsyncTie != "message hand-off" {
			t.Errorf("consumer %+v", st)
		}
	})
	t.Run("follows-from child is off the path", func(t *testing.T) {
		spans := build(t,
			sp{id: 1, service: "a", start: 0, end: 100},
			sp{id: 2, parent: 1, service: "a", start: 10, end: 90},
		)
		spans[1].Links = []store.Link{{TraceID: tid(1), SpanID: sid(1), Attributes: store.AttributesOf(map[string]any{"opentracing.ref_type": "follows_from"})}}
		res := CriticalPath(spans)
		if got := segsOf(res); !reflect.DeepEqual(got, []seg{{1, 0, 100}}) {
			t.Errorf("segments %v", got)
		}
	})
	t.Run("span tied only by a link is an async branch, not a second root", func(t *testing.T) {
		spans := build(t,
			sp{id: 1, service: "a", start: 0, end: 100},
			sp{id: 2, parent: 1, service: "a", kind: store.KindProducer, start: 10, end: 20},
			sp{id: 3, service: "b", kind: store.KindConsumer, start: 500, end: 900},
		)
		spans[2].Links = []store.Link{{TraceID: tid(1), SpanID: sid(2)}}
		res := CriticalPath(spans)
		if res.RootSpanID != sid(1) || res.AsyncSpans != 1 || res.DetachedSpans != 0 {
			t.Errorf("root %s async %d detached %d", res.RootSpanID, res.AsyncSpans, res.DetachedSpans)
		}
		if st := selfOf(res, 3); st.AsyncTie != "linked" || st.SelfMs != 400 {
			t.Errorf("linked consumer %+v", st)
		}
	})
}

// TestCriticalPathSpanOrder: a result lists spans by start, ties by span id
// compared as bytes (ids with the high bit set included), whichever way
// the sort goes (under and over 256 spans).
func TestCriticalPathSpanOrder(t *testing.T) {
	for _, n := range []int{40, 2_000} {
		r := rand.New(rand.NewPCG(uint64(n), 9))
		randomID := func() store.SpanID {
			var id store.SpanID
			for j := range id {
				id[j] = byte(r.UintN(256))
			}
			return id
		}
		// A fan-out inside the root at 5 ms steps: many equal starts, and
		// no child clipped to its parent, so the start is the span's own.
		root := store.Span{TraceID: tid(1), SpanID: randomID(), Service: "api", Name: "GET /",
			StartUnixNano: testEpoch.UnixNano(), DurationNano: int64(1e9)}
		spans := []store.Span{root}
		for range n - 1 {
			off := 5 * r.IntN(100)
			spans = append(spans, store.Span{TraceID: tid(1), SpanID: randomID(), ParentSpanID: root.SpanID,
				Service: "api", Name: "q", Dependency: "db", Kind: store.KindClient,
				StartUnixNano: root.StartUnixNano + int64(off)*1e6,
				DurationNano:  int64(r.IntN(1000-off)) * 1e6})
		}
		starts := map[store.SpanID]int64{}
		for _, sp := range spans {
			starts[sp.SpanID] = sp.StartUnixNano
		}
		res := CriticalPath(spans)
		if len(res.Spans) != n {
			t.Fatalf("n=%d: %d spans in the result", n, len(res.Spans))
		}
		ties := 0
		for i := 1; i < len(res.Spans); i++ {
			a, b := res.Spans[i-1].SpanID, res.Spans[i].SpanID
			sa, sb := starts[a], starts[b]
			if sa > sb || (sa == sb && bytes.Compare(a[:], b[:]) >= 0) {
				t.Fatalf("n=%d: spans %d and %d out of order: %s@%d before %s@%d", n, i-1, i, a, sa, b, sb)
			}
			if sa == sb {
				ties++
			}
		}
		if ties == 0 {
			t.Fatalf("n=%d: no equal starts: the test does not exercise the tie order", n)
		}
	}
}
