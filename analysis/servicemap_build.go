package analysis

import (
	"bytes"
	"cmp"
	"math"
	"slices"

	"github.com/tailscope/tailscope/store"
)

// The map's builder: edges from each sampled trace's span pairs, their
// weighted numbers, the tail's critical-time shares, and the result.

type edgeKey struct {
	from, to string
	kind     MapEdgeKind
}

type mapStat struct {
	n, errs float64
	sampled int
	sketch  *Sketch
	callers map[[2]string]float64 // caller (service, endpoint) → calls
	callees map[string]float64    // callee endpoint → calls
	// crit and tailCrit sum the typical and the tail samples' critical
	// time on the edge, each trace's by its weight (see cpTotals).
	crit, tailCrit float64
	// typShares and tailShares are the per-trace shares of critical time
	// (ppm of the trace's duration) of the sampled traces that took the
	// edge; traces that did not are zeros, added when the edge is judged.
	typShares, tailShares []int64
}

func newMapStat() *mapStat {
	return &mapStat{sketch: NewSketch(), callers: map[[2]string]float64{}, callees: map[string]float64{}}
}

type mapBuilder struct {
	q             ServiceMapQuery
	nodes         map[string]*MapNode
	nodeStat      map[string]*mapStat
	edges         map[edgeKey]*mapStat
	typical       cpTotals
	tail          cpTotals
	typicalTraces int
	tailTraces    int
	// weighted: the entry samples carry sampling weights, so traces count
	// in the critical-time shares by the requests they stand for.
	weighted bool
	// linked holds the producer spans of other traces that sampled
	// consumer roots link to (messaging instrumentations start a trace per
	// message and link it to the producer).
	linked map[linkRef]*store.Span
}

// linkRef names a span of any trace (a link target).
type linkRef struct {
	trace store.TraceID
	span  store.SpanID
}

// cpTotals sums the sampled traces' durations (the denominators of shares).
// Each trace counts once, or, on a sampled stream (mapBuilder.weighted), as
// the requests it stands for: a slice read whole or a tail of samples of
// different weights would otherwise count a kept slow trace as much as a
// fast one standing for thirteen. Sums of nanoseconds stay exact in a
// float64 up to 2^53 ns (104 days of summed durations).
type cpTotals struct{ dur float64 }

func newMapBuilder(q ServiceMapQuery) *mapBuilder {
	return &mapBuilder{q: q, nodes: map[string]*MapNode{}, nodeStat: map[string]*mapStat{}, edges: map[edgeKey]*mapStat{}}
}

func serviceID(name string) string { return "service:" + name }
func depID(name string) string     { return "dependency:" + name }

func (b *mapBuilder) node(id, name string, kind MapNodeKind) *MapNode {
	n, ok := b.nodes[id]
	if !ok {
		n = &MapNode{ID: id, Name: name, Kind: kind}
		b.nodes[id] = n
		b.nodeStat[id] = newMapStat()
	}
	// A more specific kind wins: a dependency first seen through a plain
	// client call is a database once a span says so.
	if kindRank(kind) > kindRank(n.Kind) {
		n.Kind = kind
	}
	return n
}

func kindRank(k MapNodeKind) int {
	switch k {
	case NodeService:
		return 4
	case NodeQueue:
		return 3
	case NodeDatabase, NodeCache:
		return 2
	}
	return 1
}

// edgeInstance is one call of an edge in one trace: the calling span's
// node and the edge it is a call of.
type edgeInstance struct {
	node int32
	key  edgeKey
	// producer is the linked producer of a consumer in a trace of its own.
	producer *store.Span
}

// instances lists the trace's edge calls and marks its services' nodes.
func (b *mapBuilder) instances(t *Tree) []edgeInstance {
	var out []edgeInstance
	t.Walk(func(n int32, _ int) bool {
		sp := t.Span(n)
		switch {
		case sp.Kind == store.KindConsumer && t.Parent(n) < 0:
			for _, l := range sp.Links {
				if p := b.linked[linkRef{l.TraceID, l.SpanID}]; p != nil && p.Dependency != "" {
					b.node(depID(p.Dependency), p.Dependency, NodeQueue)
					out = append(out, edgeInstance{node: n, key: edgeKey{depID(p.Dependency), serviceID(sp.Service), EdgeConsume}, producer: p})
					break
				}
			}
		case sp.Kind == store.KindProducer:
			if sp.Dependency != "" {
				out = append(out, edgeInstance{node: n, key: edgeKey{serviceID(sp.Service), depID(sp.Dependency), EdgeProduce}})
				b.node(depID(sp.Dependency), sp.Dependency, NodeQueue)
				for _, c := range t.Children(n) {
					if cs := t.Span(c); cs.Kind == store.KindConsumer {
						out = append(out, edgeInstance{node: c, key: edgeKey{depID(sp.Dependency), serviceID(cs.Service), EdgeConsume}})
					}
				}
				return true
			}
			for _, c := range t.Children(n) {
				if cs := t.Span(c); cs.Kind == store.KindConsumer && cs.Service != sp.Service {
					out = append(out, edgeInstance{node: n, key: edgeKey{serviceID(sp.Service), serviceID(cs.Service), EdgeProduce}})
				}
			}
		case sp.Kind == store.KindClient || (sp.Dependency != "" && !sp.IsEntry()):
			for _, c := range t.Children(n) {
				if cs := t.Span(c); cs.IsEntry() && cs.Service != sp.Service {
					out = append(out, edgeInstance{node: n, key: edgeKey{serviceID(sp.Service), serviceID(cs.Service), EdgeCall}})
					return true
				}
			}
			if sp.Dependency != "" {
				out = append(out, edgeInstance{node: n, key: edgeKey{serviceID(sp.Service), depID(sp.Dependency), EdgeDep}})
				b.node(depID(sp.Dependency), sp.Dependency, depKind(sp))
			}
		}
		return true
	})
	return out
}

// depKind classifies an uninstrumented dependency from its calling span.
// Attributes are decoded only for spans that name a database or messaging
// system (the map's sample is bounded, and most calls name neither).
func depKind(sp *store.Span) MapNodeKind {
	if !bytes.Contains(sp.Attributes, []byte(`"db.system`)) && !bytes.Contains(sp.Attributes, []byte(`"messaging.system"`)) {
		return NodeExternal
	}
	attrs, err := sp.Attributes.Decode()
	if err != nil {
		return NodeExternal
	}
	sys, _ := attrs["db.system.name"].(string)
	if sys == "" {
		sys, _ = attrs["db.system"].(string)
	}
	switch sys {
	case "":
		if _, ok := attrs["messaging.system"]; ok {
			return NodeQueue
		}
		return NodeExternal
	case "redis", "memcached", "valkey", "hazelcast", "geode", "coherence":
		return NodeCache
	}
	return NodeDatabase
}

// entryOf returns the nearest entry span at or above n in n's service.
func entryOf(t *Tree, n int32) *store.Span {
	svc := t.Span(n).Service
	for x := n; x >= 0; x = t.Parent(x) {
		sp := t.Span(x)
		if sp.Service != svc {
			return nil
		}
		if sp.IsEntry() {
			return sp
		}
	}
	return nil
}

// critSums returns each node's critical time including its subtree.
func critSums(t *Tree) []int64 {
	cp := CriticalPath(t.spans)
	sums := make([]int64, t.Len())
	for _, st := range cp.Spans {
		if n, ok := t.Node(st.SpanID); ok {
			sums[n] = st.CriticalNs
		}
	}
	var order []int32
	t.Walk(func(n int32, _ int) bool {
		order = append(order, n)
		return true
	})
	for k := len(order) - 1; k >= 0; k-- {
		if p := t.Parent(order[k]); p >= 0 {
			sums[p] += sums[order[k]]
		}
	}
	return sums
}

// addTrace adds a typical trace with weight w.
func (b *mapBuilder) addTrace(t *Tree, w float64, tot *cpTotals) {
	root := t.Span(t.Root())
	sw := b.shareWeight(w)
	tot.dur += sw * float64(root.DurationNano)
	b.node(serviceID(root.Service), root.Service, NodeService).Entry = true
	t.Walk(func(n int32, _ int) bool {
		sp := t.Span(n)
		id := serviceID(sp.Service)
		b.node(id, sp.Service, NodeService)
		if sp.IsEntry() {
			st := b.nodeStat[id]
			st.add(sp.DurationNano, sp.StatusCode == store.StatusError, w)
			st.callees[sp.Name] += w
		}
		return true
	})
	sums := critSums(t)
	perTrace := map[*mapStat]int64{}
	defer func() { appendShares(perTrace, root.DurationNano, false) }()
	for _, in := range b.instances(t) {
		sp := t.Span(in.node)
		st := b.edges[in.key]
		if st == nil {
			st = newMapStat()
			b.edges[in.key] = st
		}
		perTrace[st] += sums[in.node]
		isErr := sp.StatusCode == store.StatusError
		if in.key.kind == EdgeCall {
			for _, c := range t.Children(in.node) {
				if cs := t.Span(c); cs.IsEntry() && cs.Service != sp.Service {
					isErr = isErr || cs.StatusCode == store.StatusError
					st.callees[cs.Name] += w
					break
				}
			}
		}
		if in.key.kind == EdgeConsume {
			st.callees[sp.Name] += w
		}
		st.add(sp.DurationNano, isErr, w)
		st.crit += sw * float64(sums[in.node])
		caller := entryOf(t, in.node)
		if in.key.kind == EdgeConsume {
			caller = nil
			if p := t.Parent(in.node); p >= 0 {
				caller = entryOf(t, p)
			}
		}
		switch {
		case caller != nil:
			st.callers[[2]string{caller.Service, caller.Name}] += w
		case in.producer != nil:
			// The producer's trace was read only for its span: its
			// service is known, not the endpoint that sent the message.
			st.callers[[2]string{in.producer.Service, ""}] += w
		}
		if in.key.kind != EdgeCall && in.key.kind != EdgeConsume {
			ds := b.nodeStat[in.key.to]
			if ds != nil && b.nodes[in.key.to].Kind != NodeService {
				ds.add(sp.DurationNano, isErr, w)
			}
		}
	}
}

// shareWeight is how much a trace standing for w requests counts in the
// critical-time shares: 1 on an unsampled stream, whose picks stand for
// nearly equal shares by design (so its shares are as they always were).
func (b *mapBuilder) shareWeight(w float64) float64 {
	if !b.weighted {
		return 1
	}
	return w
}

// addTail adds a trace of the tail sample standing for w requests: only
// its critical time counts.
func (b *mapBuilder) addTail(t *Tree, w float64) {
	dur := t.Span(t.Root()).DurationNano
	sw := b.shareWeight(w)
	b.tail.dur += sw * float64(dur)
	sums := critSums(t)
	perTrace := map[*mapStat]int64{}
	defer func() { appendShares(perTrace, dur, true) }()
	for _, in := range b.instances(t) {
		st := b.edges[in.key]
		if st == nil {
			// An edge only slow requests take still belongs on the map.
			st = newMapStat()
			b.edges[in.key] = st
			b.ensure(in.key.from)
			b.ensure(in.key.to)
		}
		st.tailCrit += sw * float64(sums[in.node])
		perTrace[st] += sums[in.node]
	}
}

// appendShares records one trace's share of critical time per edge.
func appendShares(perTrace map[*mapStat]int64, durNs int64, tail bool) {
	if durNs <= 0 {
		return
	}
	for st, crit := range perTrace {
		ppm := int64(math.Round(1e6 * math.Min(float64(crit)/float64(durNs), 1)))
		if tail {
			st.tailShares = append(st.tailShares, ppm)
		} else {
			st.typShares = append(st.typShares, ppm)
		}
	}
}

// ensure adds a service node named by id unless the node exists
// (dependency nodes are added with their kind by instances).
func (b *mapBuilder) ensure(id string) {
	if _, ok := b.nodes[id]; !ok {
		b.node(id, nameOf(id), NodeService)
	}
}

func nameOf(id string) string {
	for _, p := range []string{"service:", "dependency:"} {
		if len(id) > len(p) && id[:len(p)] == p {
			return id[len(p):]
		}
	}
	return id
}

func (s *mapStat) add(durNs int64, isErr bool, w float64) {
	s.n += w
	s.sampled++
	if isErr {
		s.errs += w
	}
	s.sketch.addWeighted(durNs, w)
}

// addWeighted records a duration standing for w requests.
func (s *Sketch) addWeighted(ns int64, w float64) {
	// As in Add: only negative counts and NaN fail.
	_ = s.s.AddWithCount(math.Max(nsToMs(ns), 0), w)
}

func (s *mapStat) top() (caller [2]string, callee string) {
	best := -1.0
	for k, v := range s.callers {
		if v > best || (v == best && (k[0] < caller[0] || (k[0] == caller[0] && k[1] < caller[1]))) {
			best, caller = v, k
		}
	}
	best = -1
	for k, v := range s.callees {
		if v > best || (v == best && k < callee) {
			best, callee = v, k
		}
	}
	return caller, callee
}

func (b *mapBuilder) result() ServiceMap {
	secs := b.q.To.Sub(b.q.From).Seconds()
	m := ServiceMap{
		From: UnixNano(b.q.From.UnixNano()), To: UnixNano(b.q.To.UnixNano()),
		Nodes: []MapNode{}, Edges: []MapEdge{},
		TypicalTraces: b.typicalTraces, TailTraces: b.tailTraces, HotMargin: MapHotMargin,
	}
	for id, n := range b.nodes {
		st := b.nodeStat[id]
		n.Requests = round3(st.n)
		n.RatePerS = round4(st.n / secs)
		if st.n > 0 {
			n.ErrorRate = round4(st.errs / st.n)
			n.P99Ms = round3(st.sketch.QuantileMs(0.99))
		}
		if n.Kind == NodeService {
			_, n.Endpoint = st.top()
		}
		m.Nodes = append(m.Nodes, *n)
	}
	var hot []int // edges past the margin, judged together below
	for k, st := range b.edges {
		e := MapEdge{From: k.from, To: k.to, Kind: k.kind, Calls: round3(st.n), Sampled: st.sampled,
			RatePerS: round4(st.n / secs)}
		if st.n > 0 {
			e.ErrorRate = round4(st.errs / st.n)
			e.P50Ms = round3(st.sketch.QuantileMs(0.50))
			e.P99Ms = round3(st.sketch.QuantileMs(0.99))
		}
		if b.typical.dur > 0 {
			e.TypicalShare = round4(st.crit / b.typical.dur)
		}
		if b.tail.dur > 0 {
			e.TailShare = round4(st.tailCrit / b.tail.dur)
		}
		e.Hot = b.tail.dur > 0 && e.TailShare-e.TypicalShare >= MapHotMargin
		e.HotPValue = 1
		if e.Hot {
			e.HotPValue = st.hotTest(b.typicalTraces, b.tailTraces)
			hot = append(hot, len(m.Edges))
		}
		caller, callee := st.top()
		e.CallerService, e.CallerEndpoint = caller[0], caller[1]
		if e.CallerService == "" {
			e.CallerService = nameOf(k.from)
		}
		if k.kind == EdgeCall || k.kind == EdgeConsume {
			e.CalleeEndpoint = callee
		}
		m.Edges = append(m.Edges, e)
	}
	// A margin crossed by a handful of tail traces can be chance: an edge
	// is hot only when the tail's per-trace shares are also significantly
	// larger than the typical ones, with the false discovery rate held
	// over the map's candidate edges.
	ps := make([]float64, len(hot))
	for i, j := range hot {
		ps[i] = m.Edges[j].HotPValue
	}
	for i, q := range benjaminiHochberg(ps) {
		m.Edges[hot[i]].HotPValue = round4(q)
		m.Edges[hot[i]].Hot = q < mapHotAlpha
	}
	slices.SortFunc(m.Edges, func(a, b MapEdge) int {
		return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To), cmp.Compare(a.Kind, b.Kind))
	})
	m.Layers = LayoutMap(m.Nodes, m.Edges)
	return m
}

// mapHotAlpha is the false discovery rate of hot edges.
const mapHotAlpha = 0.05

// hotTest is the p-value that more of the tail's traces spend an
// unusually large share of their critical time on the edge than chance
// would give: "unusually" is above the typical sample's 90th percentile
// share, which a typical trace exceeds with probability p0 (counted, with
// one pseudo-observation so p0 is never 0), and the count of tail traces
// above it is tested against Binomial(tail, p0). One very slow trace
// dominated by the edge moves the tail's share of the sums past the
// margin but is one count, not a pattern.
func (s *mapStat) hotTest(typical, tail int) float64 {
	a := withZeros(s.typShares, typical)
	b := withZeros(s.tailShares, tail)
	if len(a) == 0 || len(b) == 0 {
		return 1
	}
	cut := a[min(len(a)-1, int(math.Ceil(0.9*float64(len(a))))-1)]
	over := func(xs []int64) int {
		i, _ := slices.BinarySearch(xs, cut+1)
		return len(xs) - i
	}
	p0 := float64(over(a)+1) / float64(len(a)+1)
	return binomialAtLeast(over(b), len(b), p0)
}

// withZeros is xs padded with zeros to n values, sorted.
func withZeros(xs []int64, n int) []int64 {
	out := make([]int64, max(n, len(xs)))
	copy(out[len(out)-len(xs):], xs)
	slices.Sort(out)
	return out
}
