package analysis

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"time"

	"github.com/tailscope/tailscope/store"
)

// Service map (Jaeger's System Architecture, Tempo's service graph): which
// service calls which, and which databases, caches, queues and external
// hosts they depend on, with rate, error rate and p99 per edge.
//
// Cost is bounded by sampling, not by traffic. The map reads the entry
// samples of the endpoints where requests enter the system (trace roots):
// at most mapSampleLimit per endpoint, the newest of each of mapSlices
// slices of the window (index range scans that stop at their limit), and
// then whole traces only for a sample of them: a typical sample spread
// over each root endpoint's slices in proportion to their traffic and
// evenly within each (q.Traces in all, shared in proportion to the
// endpoints' traffic), and the slowest 1% of the samples read (at least
// mapMinTail per endpoint, q.Traces/2 in all beyond that minimum). Each typical trace
// stands for its slice's share of the endpoint's Roots over the slice's
// sampled traces, so the rates estimate the whole range and are exact when
// every trace is sampled. Past mapMaxRoots root endpoints the map reads the
// busiest half of that bound and a draw of the rest weighted by traffic
// (pickRoots), so its cost is bounded by the endpoints' number too.
//
// A sampled stream's samples carry their sampling weights (store.Span.Weight:
// how many requests each stands for). Then a slice holds the sum of its
// samples' weights, the typical traces are picked evenly in the requests
// the samples stand for rather than evenly among the samples (mapStratum.picks),
// and the tail is the samples slowest first up to 1% of the requests they
// stand for (tailCount): a tail-sampling collector keeps every slow trace
// and a fraction of the rest, and an unweighted map would take its slow
// traces for typical ones and miss the edge they are slow in.
//
// Edges come from span pairs and the Dependency column:
//   - a CLIENT span whose child is a SERVER (or CONSUMER) span of another
//     service: caller → callee;
//   - a CLIENT span without such a child, or any span with a Dependency
//     that is not an entry span: caller → dependency (database, cache or
//     external host);
//   - a PRODUCER span with a Dependency: producer → queue, and each CONSUMER
//     span under it: queue → consumer; without a Dependency the producer
//     points at the consumer's service directly. A consumer that starts a
//     trace of its own and links to the producer (how messaging
//     instrumentations usually record it) is paired through the link: the
//     producer's trace is read for that span (queue → consumer when the
//     producer names a queue).
//
// An edge's duration is the calling span's (what the caller waits for; for
// queue → consumer, the consumer's processing), its error is the calling
// span's error status or, for a call, the callee's.
//
// Critical path: for each sampled trace, the critical time inside an edge's
// calling span and everything under it (the whole call, HopWholeCall) over
// the trace's duration. An edge is hot when its share of the tail sample's
// critical time exceeds its share of the typical sample's by at least
// MapHotMargin — it is on the tail's critical path more than its share —
// and more tail traces than chance would give spend an unusually large
// share on it (a binomial test against the typical sample's 90th
// percentile, Benjamini–Hochberg over the edges past the margin), so one
// very slow trace does not make an edge hot.

// Service map bounds and rules.
const (
	DefaultMapTraces = 400
	MaxMapTraces     = 5000
	// mapSampleLimit caps the entry samples read per root endpoint, in
	// mapSlices slices of the window.
	mapSampleLimit = 20000
	mapSlices      = 16
	// MapHotMargin is how much larger (absolute share of critical time)
	// an edge's tail share must be than its typical share to be hot.
	MapHotMargin = 0.10
	// mapTailFraction: the tail sample is the slowest 1% of requests,
	// at least mapMinTail of them.
	mapTailFraction = 0.01
	mapMinTail      = 10
	// mapMaxRoots bounds the root endpoints read (pickRoots).
	mapMaxRoots = 200
)

// MapNodeKind says what a node of the map is.
type MapNodeKind string

// Node kinds.
const (
	NodeService  MapNodeKind = "service"
	NodeDatabase MapNodeKind = "database"
	NodeCache    MapNodeKind = "cache"
	NodeQueue    MapNodeKind = "queue"
	NodeExternal MapNodeKind = "external"
)

// MapEdgeKind says how an edge was derived.
type MapEdgeKind string

// Edge kinds.
const (
	EdgeCall    MapEdgeKind = "call" // client → server span pair
	EdgeDep     MapEdgeKind = "dependency"
	EdgeProduce MapEdgeKind = "produce" // producer → queue (or consumer service)
	EdgeConsume MapEdgeKind = "consume" // queue → consumer service
)

// ServiceMapQuery selects the window of a service map.
type ServiceMapQuery struct {
	From, To time.Time
	// Traces caps the typical sample (0: DefaultMapTraces; at most
	// MaxMapTraces). The tail sample is at most half of it.
	Traces int
}

// MapNode is a service or a dependency.
type MapNode struct {
	ID   string      `json:"id"` // "service:<name>" or "dependency:<name>"
	Name string      `json:"name"`
	Kind MapNodeKind `json:"kind"`
	// Entry is true for services where requests enter the system.
	Entry bool `json:"entry"`
	// Layer and Row place the node: layers left to right, rows top down.
	Layer int `json:"layer"`
	Row   int `json:"row"`
	// Requests is the estimated number of requests the node served in the
	// range (entry spans for a service, calls received for a dependency).
	Requests  float64 `json:"requests"`
	RatePerS  float64 `json:"rate_per_s"`
	ErrorRate float64 `json:"error_rate"`
	P99Ms     float64 `json:"p99_ms"`
	// Endpoint is a service's busiest entry endpoint in the sample (what its
	// latency page opens on).
	Endpoint string `json:"endpoint,omitempty"`
}

// MapEdge is a dependency between two nodes with its numbers.
type MapEdge struct {
	From string      `json:"from"`
	To   string      `json:"to"`
	Kind MapEdgeKind `json:"kind"`
	// Calls is the estimated number of calls in the range; Sampled the
	// calls seen in the typical sample.
	Calls     float64 `json:"calls"`
	Sampled   int     `json:"sampled"`
	RatePerS  float64 `json:"rate_per_s"`
	ErrorRate float64 `json:"error_rate"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	// TailShare and TypicalShare are the edge's share of the critical
	// time of the tail and of the typical sample.
	TailShare    float64 `json:"tail_share"`
	TypicalShare float64 `json:"typical_share"`
	// Hot: the tail share exceeds the typical share by MapHotMargin and
	// significantly many tail traces spend an unusual share on the edge
	// (HotPValue, adjusted over the map's candidate edges, below 0.05).
	Hot       bool    `json:"hot"`
	HotPValue float64 `json:"hot_p_value"`
	// CallerService and CallerEndpoint name the caller's entry endpoint
	// that made most of the calls (its outliers show this edge as a
	// dependency); CalleeEndpoint the callee's endpoint for calls between
	// services.
	CallerService  string `json:"caller_service"`
	CallerEndpoint string `json:"caller_endpoint,omitempty"`
	CalleeEndpoint string `json:"callee_endpoint,omitempty"`
}

// ServiceMap is the map of a window.
type ServiceMap struct {
	From  UnixNano  `json:"from_unix_nano"`
	To    UnixNano  `json:"to_unix_nano"`
	Nodes []MapNode `json:"nodes"`
	Edges []MapEdge `json:"edges"`
	// Layers is the number of columns of the layout.
	Layers int `json:"layers"`
	// TypicalTraces and TailTraces are the traces read for the map.
	TypicalTraces int     `json:"typical_traces"`
	TailTraces    int     `json:"tail_traces"`
	HotMargin     float64 `json:"hot_margin"`
	// Weighted: some entry sample read stands for more than one request
	// (a sampled stream), so the map is estimated by sampling weight.
	Weighted bool `json:"weighted"`
	// RootEndpoints are the endpoints where the window's traces start;
	// RootEndpointsRead those the map read: all of them up to a bound,
	// then the busiest and a draw of the rest weighted by traffic.
	RootEndpoints     int `json:"root_endpoints"`
	RootEndpointsRead int `json:"root_endpoints_read"`
}

// MapSource is what the map reads: endpoints, their samples and traces.
// store.Reader implements it.
type MapSource interface {
	EndpointSource
	Traces(ctx context.Context, ids []store.TraceID) (map[store.TraceID][]store.Span, error)
}

// BuildServiceMap computes the service map of q's window.
func BuildServiceMap(ctx context.Context, src MapSource, q ServiceMapQuery) (ServiceMap, error) {
	if !q.To.After(q.From) {
		return ServiceMap{}, fmt.Errorf("analysis: service map: %w", store.ErrInvalid)
	}
	budget := q.Traces
	if budget <= 0 {
		budget = DefaultMapTraces
	}
	budget = min(budget, MaxMapTraces)
	eps, err := src.Endpoints(ctx, q.From, q.To)
	if err != nil {
		return ServiceMap{}, fmt.Errorf("analysis: service map: %w", err)
	}
	var roots []store.Endpoint
	var totalRoots int64
	for _, e := range eps {
		if e.Roots > 0 {
			roots = append(roots, e)
			totalRoots += e.Roots
		}
	}
	picked := pickRoots(roots, mapMaxRoots)
	b := newMapBuilder(q)
	var typical, tail []mapPick
	var shares []float64 // per stratum: the requests it stands for
	weighted := false
	for _, r := range picked {
		// e stands for the requests of the endpoints it was drawn for:
		// its own over its chance of being drawn.
		e := r.ep
		e.Roots = int64(math.Round(float64(e.Roots) / r.p))
		strata, err := readStrata(ctx, src, e, q)
		if err != nil {
			return ServiceMap{}, err
		}
		var est float64
		var all []store.Sample
		for _, st := range strata {
			est += st.est
			all = append(all, st.samples...)
			weighted = weighted || st.weighted
		}
		if len(all) == 0 {
			continue
		}
		share := float64(e.Roots) / float64(totalRoots)
		n := min(len(all), max(1, int(math.Round(float64(budget)*share))))
		// The endpoint's typical sample is spread over its strata in
		// proportion to their traffic, evenly within each.
		quota := apportion(n, strata, est)
		for j, st := range strata {
			k := quota[j]
			if k == 0 {
				continue
			}
			g := len(shares)
			shares = append(shares, float64(e.Roots)*st.est/est)
			for _, i := range st.picks(k) {
				typical = append(typical, mapPick{ep: e, id: st.samples[i].TraceID, stratum: g})
			}
		}
		slices.SortFunc(all, func(a, b store.Sample) int {
			if c := cmp.Compare(b.DurationNano, a.DurationNano); c != 0 {
				return c
			}
			return bytes.Compare(a.TraceID[:], b.TraceID[:])
		})
		k := min(tailCount(all), max(mapMinTail, int(math.Round(float64(budget/2)*share))))
		for _, s := range all[:k] {
			tail = append(tail, mapPick{ep: r.ep, id: s.TraceID, w: float64(store.CountWeight(s.Weight)) / r.p})
		}
	}
	b.weighted = weighted
	ids := make([]store.TraceID, 0, len(typical)+len(tail))
	for _, p := range slices.Concat(typical, tail) {
		ids = append(ids, p.id)
	}
	// Whole traces, not shapes: depKind reads calls' attributes
	// (db.system, messaging.system) to tell caches and queues apart.
	traces, err := readTraces(ctx, src, ids)
	if err != nil {
		return ServiceMap{}, fmt.Errorf("analysis: service map: %w", err)
	}
	if b.linked, err = readLinkedProducers(ctx, src, traces); err != nil {
		return ServiceMap{}, err
	}
	// Weights: each typical trace whose root is its endpoint's entry span
	// stands for its stratum's requests over the stratum's valid traces.
	valid := make([][]*Tree, len(shares))
	for _, p := range typical {
		if t := rootedTree(traces[p.id], p.ep); t != nil {
			valid[p.stratum] = append(valid[p.stratum], t)
		}
	}
	for g, ts := range valid {
		for _, t := range ts {
			b.addTrace(t, shares[g]/float64(len(ts)), &b.typical)
			b.typicalTraces++
		}
	}
	for _, p := range tail {
		if t := rootedTree(traces[p.id], p.ep); t != nil {
			b.addTail(t, p.w)
			b.tailTraces++
		}
	}
	m := b.result()
	m.Weighted = weighted
	m.RootEndpoints, m.RootEndpointsRead = len(roots), len(picked)
	return m, nil
}

// rootPick is a root endpoint the map reads, drawn with probability p.
type rootPick struct {
	ep store.Endpoint
	p  float64
}

// pickRoots bounds the root endpoints the map reads to about k. Each one
// read costs mapSlices sample reads and at least 1 + mapMinTail traces,
// whatever its traffic, and a service whose span names carry ids
// ("GET /users/12345": an instrumentation without a route template) has as
// many endpoints as requests: 20,000 of them took 31–38 s to map. Past k,
// the k/2 busiest are read for sure and the rest are drawn with
// probability proportional to their traffic, k/2 expected (Poisson
// sampling): a drawn endpoint stands for its traffic over its
// probability (Horvitz–Thompson), so edge rates stay unbiased. The draw is
// a hash of the service and name, not a random number: the same window
// draws the same endpoints, and a cached map matches a recomputed one.
func pickRoots(roots []store.Endpoint, k int) []rootPick {
	out := make([]rootPick, 0, min(len(roots), k+k/2))
	if len(roots) <= k {
		for _, e := range roots {
			out = append(out, rootPick{ep: e, p: 1})
		}
		return out
	}
	sorted := slices.Clone(roots)
	slices.SortFunc(sorted, func(a, b store.Endpoint) int {
		return cmp.Or(cmp.Compare(b.Roots, a.Roots), cmp.Compare(a.Service, b.Service), cmp.Compare(a.Name, b.Name))
	})
	sure := k / 2
	for _, e := range sorted[:sure] {
		out = append(out, rootPick{ep: e, p: 1})
	}
	rest := sorted[sure:]
	var restRoots int64
	for _, e := range rest {
		restRoots += e.Roots
	}
	want := float64(k - sure)
	for _, e := range rest {
		p := min(1, want*float64(e.Roots)/float64(restRoots))
		if drawUnit(e.Service, e.Name) < p {
			out = append(out, rootPick{ep: e, p: p})
		}
	}
	return out
}

// drawUnit maps a service and name to a number in [0, 1), uniform over
// names and fixed for each.
func drawUnit(service, name string) float64 {
	h := fnv.New64a()
	h.Write([]byte(service))
	h.Write([]byte{0})
	h.Write([]byte(name))
	// FNV's last bytes barely reach its top bits ("GET /users/1" and
	// "GET /users/2" differ in bits 0–17 and 40–48): mix them all in
	// (splitmix64's finalizer) before taking the top 53.
	x := h.Sum64()
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / (1 << 53)
}

// apportion splits n picks over the strata in proportion to their
// estimated traffic (largest remainders, ties to the earlier slice), none
// beyond a stratum's samples, so the typical sample has n traces when the
// samples allow.
func apportion(n int, strata []mapStratum, est float64) []int {
	q := make([]int, len(strata))
	rem := make([]float64, len(strata))
	left := n
	for j, st := range strata {
		exact := float64(n) * st.est / est
		q[j] = min(len(st.samples), int(exact))
		rem[j] = exact - float64(q[j])
		left -= q[j]
	}
	for left > 0 {
		best := -1
		for j, st := range strata {
			if q[j] < len(st.samples) && (best < 0 || rem[j] > rem[best]) {
				best = j
			}
		}
		if best < 0 {
			break
		}
		q[best]++
		rem[best] = -1
		left--
	}
	return q
}

// readLinkedProducers reads the producer spans that the root consumer spans
// of the sampled traces link to in other traces: at most one trace read per
// sampled trace, so the map's reads stay bounded by its sample.
func readLinkedProducers(ctx context.Context, src MapSource, traces map[store.TraceID][]store.Span) (map[linkRef]*store.Span, error) {
	want := map[linkRef]bool{}
	var ids []store.TraceID
	for _, spans := range traces {
		for i := range spans {
			sp := &spans[i]
			if sp.Kind != store.KindConsumer || !sp.IsRoot() {
				continue
			}
			for _, l := range sp.Links {
				if l.TraceID == sp.TraceID || l.TraceID.IsZero() {
					continue
				}
				if !want[linkRef{l.TraceID, l.SpanID}] {
					want[linkRef{l.TraceID, l.SpanID}] = true
					ids = append(ids, l.TraceID)
				}
			}
		}
	}
	out := map[linkRef]*store.Span{}
	if len(ids) == 0 {
		return out, nil
	}
	slices.SortFunc(ids, func(a, b store.TraceID) int { return bytes.Compare(a[:], b[:]) })
	ids = slices.Compact(ids)
	// Of a producer the map reads its kind, ids, service and dependency
	// only: shapes suffice.
	got, err := readShapes(ctx, src, ids)
	if err != nil {
		return nil, fmt.Errorf("analysis: service map: linked producers: %w", err)
	}
	for _, spans := range got {
		for i := range spans {
			sp := &spans[i]
			if sp.Kind == store.KindProducer && want[linkRef{sp.TraceID, sp.SpanID}] {
				out[linkRef{sp.TraceID, sp.SpanID}] = sp
			}
		}
	}
	return out, nil
}

// mapStratum is the entry samples read from one slice of the window and
// an estimate of how many requests the slice holds (the samples' sampling
// weights summed, scaled up when the read stopped at its limit).
type mapStratum struct {
	samples  []store.Sample
	est      float64
	weighted bool // some sample stands for more than one request
}

// picks returns k positions of the stratum's samples to read as typical
// traces, each standing for the same share of the stratum's requests:
// evenly spaced when every sample stands for itself; otherwise evenly
// spaced in the requests the samples stand for (cumWeights.pps), so a
// tail-sampling collector's kept slow traces (weight 1) are not taken for
// as many requests as its one-in-ten fast ones. A heavy sample may be
// picked twice and then counts twice.
func (st mapStratum) picks(k int) []int {
	n := len(st.samples)
	cw := newCumWeights(n, func(i int) float64 { return st.samples[i].Weight })
	if cw == nil {
		out := make([]int, k)
		for i := range out {
			out[i] = i * n / k
		}
		return out
	}
	return cw.pps([][2]int{{0, n}}, k)
}

// tailCount returns how many of samples, sorted slowest first, are the
// slowest mapTailFraction of the requests they stand for, and never fewer
// than mapMinTail: a share of one or two traces' critical time is noise,
// not a tail.
func tailCount(samples []store.Sample) int {
	n := len(samples)
	k := int(math.Ceil(float64(n) * mapTailFraction))
	if cw := newCumWeights(n, func(i int) float64 { return samples[i].Weight }); cw != nil && n > 0 {
		k = cw.posOf(math.Ceil(cw[n]*mapTailFraction)-1, 0, n) + 1
	}
	return max(k, min(mapMinTail, n))
}

// readStrata reads an endpoint's entry samples in mapSlices slices of the
// window, at most mapSampleLimit/mapSlices each (the newest of a slice: an
// index range scan that stops at the limit), so a busy hour is sampled over
// the hour and not only in its last seconds. A slice that hit the limit is
// estimated from the time its samples cover.
func readStrata(ctx context.Context, src MapSource, e store.Endpoint, q ServiceMapQuery) ([]mapStratum, error) {
	per := mapSampleLimit / mapSlices
	step := q.To.Sub(q.From) / mapSlices
	out := make([]mapStratum, 0, mapSlices)
	for k := range mapSlices {
		from, to := q.From.Add(time.Duration(k)*step), q.From.Add(time.Duration(k+1)*step)
		if k == mapSlices-1 {
			to = q.To
		}
		ss, err := src.Samples(ctx, store.SampleQuery{Service: e.Service, Endpoint: e.Name, From: from, To: to, Limit: per})
		if err != nil {
			return nil, fmt.Errorf("analysis: service map: samples: %w", err)
		}
		var w float64
		for i := range ss {
			w += float64(store.CountWeight(ss[i].Weight))
		}
		st := mapStratum{samples: ss, est: w, weighted: w > float64(len(ss))}
		if len(ss) == per {
			if covered := to.UnixNano() - ss[0].StartUnixNano; covered > 0 {
				st.est = w * float64(to.Sub(from)) / float64(covered)
			}
		}
		out = append(out, st)
	}
	return out, nil
}

type mapPick struct {
	ep      store.Endpoint
	id      store.TraceID
	stratum int     // typical picks: index into the strata's shares
	w       float64 // tail picks: the requests the sample stands for
}

// rootedTree builds the trace's tree when its root is the endpoint's entry
// span (an endpoint can also be a downstream hop of other traces), else nil.
func rootedTree(spans []store.Span, ep store.Endpoint) *Tree {
	if len(spans) == 0 {
		return nil
	}
	t := NewTree(spans)
	r := t.Root()
	if r < 0 {
		return nil
	}
	if sp := t.Span(r); sp.Service != ep.Service || sp.Name != ep.Name || !sp.IsRoot() {
		return nil
	}
	return t
}
