package analysis_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/store"
)

// mapTopology generates n checkout traces, one every 500 ms from t0, with a
// known topology:
//
//	gateway GET /checkout (root, 100 ms)
//	├── gateway → redis (cache, 5 ms)
//	└── gateway → orders GET /orders (30 ms)
//	    ├── orders → postgresql/orders (database, 5 ms; 500 ms in every
//	    │   20th trace, which makes those the slow ones)
//	    └── orders → kafka (queue, producer 1 ms)
//	        └── billing process (consumer, after the request ended)
//	            └── billing → api.stripe.com (external, 8 ms, every 10th fails)
//
// It returns the spans and the exact durations of each edge's calls.
func mapTopology(n int, t0 time.Time) ([]store.Span, map[string][]int64) {
	var spans []store.Span
	truth := map[string][]int64{}
	var seq uint64
	id := func() store.SpanID {
		seq++
		var s store.SpanID
		binary.BigEndian.PutUint64(s[:], seq)
		return s
	}
	ms := int64(time.Millisecond)
	attrs := func(m map[string]any) store.Attributes { return store.AttributesOf(m) }
	for i := range n {
		var tid store.TraceID
		binary.BigEndian.PutUint64(tid[8:], uint64(i+1))
		start := t0.Add(time.Duration(i) * 500 * time.Millisecond).UnixNano()
		dbDur := 5*ms + int64(i%7)*ms/10
		if i%20 == 7 {
			dbDur = 500 * ms
		}
		ordersDur := 25*ms + dbDur
		rootDur := 70*ms + ordersDur
		root, cl, srv, db, prod, cons, ext, cache := id(), id(), id(), id(), id(), id(), id(), id()
		span := func(sid, parent store.SpanID, svc, name string, kind store.SpanKind, off, dur int64, dep string, a store.Attributes, status store.StatusCode) {
			spans = append(spans, store.Span{TraceID: tid, SpanID: sid, ParentSpanID: parent, Service: svc, Name: name, Kind: kind,
				StartUnixNano: start + off, DurationNano: dur, Dependency: dep, Attributes: a, StatusCode: status})
		}
		span(root, store.SpanID{}, "gateway", "GET /checkout", store.KindServer, 0, rootDur, "", nil, store.StatusUnset)
		span(cache, root, "gateway", "GET", store.KindClient, 1*ms, 5*ms, "redis", attrs(map[string]any{"db.system": "redis"}), store.StatusUnset)
		span(cl, root, "gateway", "GET /orders", store.KindClient, 10*ms, ordersDur+2*ms, "orders", nil, store.StatusUnset)
		span(srv, cl, "orders", "GET /orders", store.KindServer, 11*ms, ordersDur, "", nil, store.StatusUnset)
		span(db, srv, "orders", "SELECT orders", store.KindClient, 12*ms, dbDur, "postgresql/orders", attrs(map[string]any{"db.system": "postgresql"}), store.StatusUnset)
		span(prod, srv, "orders", "publish", store.KindProducer, 12*ms+dbDur+ms, ms, "kafka", attrs(map[string]any{"messaging.system": "kafka"}), store.StatusUnset)
		span(cons, prod, "billing", "process", store.KindConsumer, rootDur+5*ms, 20*ms, "", nil, store.StatusUnset)
		extStatus := store.StatusUnset
		if i%10 == 3 {
			extStatus = store.StatusError
		}
		span(ext, cons, "billing", "POST /charge", store.KindClient, rootDur+6*ms, 8*ms+int64(i%5)*ms, "api.stripe.com", nil, extStatus)
		truth["service:gateway>service:orders"] = append(truth["service:gateway>service:orders"], ordersDur+2*ms)
		truth["service:gateway>dependency:redis"] = append(truth["service:gateway>dependency:redis"], 5*ms)
		truth["service:orders>dependency:postgresql/orders"] = append(truth["service:orders>dependency:postgresql/orders"], dbDur)
		truth["service:orders>dependency:kafka"] = append(truth["service:orders>dependency:kafka"], ms)
		truth["dependency:kafka>service:billing"] = append(truth["dependency:kafka>service:billing"], 20*ms)
		truth["service:billing>dependency:api.stripe.com"] = append(truth["service:billing>dependency:api.stripe.com"], 8*ms+int64(i%5)*ms)
	}
	return spans, truth
}

// exactP returns the nearest-rank quantile of durations in ms.
func exactP(ns []int64, q float64) float64 {
	s := slices.Clone(ns)
	slices.Sort(s)
	r := int(math.Ceil(q*float64(len(s)))) - 1
	return float64(s[max(r, 0)]) / 1e6
}

func TestServiceMapKnownTopology(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const n = 200
	spans, truth := mapTopology(n, t0)
	src := analysistest.NewSource(spans)
	q := analysis.ServiceMapQuery{From: t0, To: t0.Add(100 * time.Second), Traces: 1000}
	m, err := analysis.BuildServiceMap(context.Background(), src, q)
	if err != nil {
		t.Fatal(err)
	}
	wantNodes := map[string]analysis.MapNodeKind{
		"service:gateway": analysis.NodeService, "service:orders": analysis.NodeService, "service:billing": analysis.NodeService,
		"dependency:redis": analysis.NodeCache, "dependency:postgresql/orders": analysis.NodeDatabase,
		"dependency:kafka": analysis.NodeQueue, "dependency:api.stripe.com": analysis.NodeExternal,
	}
	if len(m.Nodes) != len(wantNodes) {
		t.Errorf("nodes = %+v, want %d", m.Nodes, len(wantNodes))
	}
	for _, nd := range m.Nodes {
		if k, ok := wantNodes[nd.ID]; !ok || k != nd.Kind {
			t.Errorf("node %s kind %s, want %q (known: %v)", nd.ID, nd.Kind, k, ok)
		}
		if nd.Entry != (nd.ID == "service:gateway") {
			t.Errorf("node %s entry = %v", nd.ID, nd.Entry)
		}
	}
	if m.TypicalTraces != n {
		t.Errorf("typical traces = %d, want every trace (%d)", m.TypicalTraces, n)
	}
	wantKinds := map[string]analysis.MapEdgeKind{
		"service:gateway>service:orders": analysis.EdgeCall, "service:gateway>dependency:redis": analysis.EdgeDep,
		"service:orders>dependency:postgresql/orders": analysis.EdgeDep, "service:orders>dependency:kafka": analysis.EdgeProduce,
		"dependency:kafka>service:billing": analysis.EdgeConsume, "service:billing>dependency:api.stripe.com": analysis.EdgeDep,
	}
	if len(m.Edges) != len(truth) {
		t.Errorf("edges = %+v, want %d", m.Edges, len(truth))
	}
	for _, e := range m.Edges {
		key := e.From + ">" + e.To
		durs, ok := truth[key]
		if !ok {
			t.Errorf("unexpected edge %s", key)
			continue
		}
		if e.Kind != wantKinds[key] {
			t.Errorf("%s: kind %s, want %s", key, e.Kind, wantKinds[key])
		}
		if e.Calls != n || e.Sampled != n {
			t.Errorf("%s: calls %v sampled %d, want %d", key, e.Calls, e.Sampled, n)
		}
		if e.RatePerS != 2 {
			t.Errorf("%s: rate %v/s, want 2", key, e.RatePerS)
		}
		wantErr := 0.0
		if key == "service:billing>dependency:api.stripe.com" {
			wantErr = 0.1
		}
		if e.ErrorRate != wantErr {
			t.Errorf("%s: error rate %v, want %v", key, e.ErrorRate, wantErr)
		}
		for _, c := range []struct {
			q   float64
			got float64
		}{{0.5, e.P50Ms}, {0.99, e.P99Ms}} {
			want := exactP(durs, c.q)
			if math.Abs(c.got-want) > analysis.SketchRelativeAccuracy*want+0.001 {
				t.Errorf("%s: p%v = %v ms, exact %v ms", key, c.q*100, c.got, want)
			}
		}
		// The slow requests are slow in the database: that edge and the
		// call that waits for it are on the tail's critical path more
		// than their share; the cache, the queue and billing are not.
		wantHot := key == "service:orders>dependency:postgresql/orders" || key == "service:gateway>service:orders"
		if e.Hot != wantHot {
			t.Errorf("%s: hot = %v (tail %v, typical %v), want %v", key, e.Hot, e.TailShare, e.TypicalShare, wantHot)
		}
	}
	byID := map[string]analysis.MapEdge{}
	for _, e := range m.Edges {
		byID[e.From+">"+e.To] = e
	}
	if e := byID["service:gateway>service:orders"]; e.CallerEndpoint != "GET /checkout" || e.CalleeEndpoint != "GET /orders" {
		t.Errorf("gateway→orders endpoints = %q → %q", e.CallerEndpoint, e.CalleeEndpoint)
	}
	if e := byID["dependency:kafka>service:billing"]; e.CallerService != "orders" || e.CallerEndpoint != "GET /orders" || e.CalleeEndpoint != "process" {
		t.Errorf("kafka→billing caller %q %q callee %q", e.CallerService, e.CallerEndpoint, e.CalleeEndpoint)
	}
	// Layout: gateway left, orders next, the queue's consumer after the
	// queue, leaf dependencies in the last column.
	layer := map[string]int{}
	for _, nd := range m.Nodes {
		layer[nd.ID] = nd.Layer
	}
	if layer["service:gateway"] != 0 || layer["service:orders"] != 1 || layer["dependency:kafka"] != 2 || layer["service:billing"] != 3 {
		t.Errorf("layers = %v", layer)
	}
	for _, leaf := range []string{"dependency:redis", "dependency:postgresql/orders", "dependency:api.stripe.com"} {
		if layer[leaf] != m.Layers-1 {
			t.Errorf("leaf %s in layer %d of %d", leaf, layer[leaf], m.Layers)
		}
	}
}

// TestServiceMapSampledRates: with a sample smaller than the traffic the
// counts are scaled back to the whole range.
func TestServiceMapSampledRates(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	spans, _ := mapTopology(1000, t0)
	m, err := analysis.BuildServiceMap(context.Background(), analysistest.NewSource(spans),
		analysis.ServiceMapQuery{From: t0, To: t0.Add(500 * time.Second), Traces: 100})
	if err != nil {
		t.Fatal(err)
	}
	if m.TypicalTraces != 100 || m.TailTraces != 10 {
		t.Errorf("typical %d tail %d traces, want 100 and 10", m.TypicalTraces, m.TailTraces)
	}
	for _, e := range m.Edges {
		if e.Sampled != 100 || math.Abs(e.Calls-1000) > 1e-6 || math.Abs(e.RatePerS-2) > 1e-6 {
			t.Errorf("%s→%s: sampled %d calls %v rate %v, want 100, 1000, 2/s", e.From, e.To, e.Sampled, e.Calls, e.RatePerS)
		}
	}
}

// TestServiceMapSampledStream: a tail-sampling collector keeps every slow
// trace (weight 1) and one in 13 of the others (weight 13). The map of
// what it stored must describe the traffic those traces stand for — the
// map of the whole stream — not the sample, in which slow traces are
// eleven times over-represented: 40% of the stored traces are slow against
// 5% of the requests, so an unweighted map reads the database edge's share
// of critical time as 0.68 instead of 0.24, the payment errors as 6%
// instead of 10%, and takes its tail from the slowest 0.3%.
func TestServiceMapSampledStream(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const n = 2800
	full, _ := mapTopology(n, t0)
	q := analysis.ServiceMapQuery{From: t0, To: t0.Add(n * 500 * time.Millisecond)}
	kept := analysistest.TailSample(full, int64(300*time.Millisecond), 13)
	if len(kept)*4 > len(full) {
		t.Fatalf("kept %d of %d spans: the sampler kept too much for the test to mean anything", len(kept), len(full))
	}
	// The tail is the slowest 1% of the requests, kept whole: the same
	// traces as the whole stream's, but for one more or one fewer (one in
	// 13 is not exactly a thirteenth of the rest).
	for _, traces := range []int{0, analysis.MaxMapTraces} {
		q.Traces = traces
		m, err := analysis.BuildServiceMap(context.Background(), analysistest.NewSource(kept), q)
		if err != nil {
			t.Fatal(err)
		}
		if d := m.TailTraces - 28; d < -1 || d > 1 {
			t.Errorf("traces %d: tail of %d traces, the whole stream's slowest 1%% is 28", traces, m.TailTraces)
		}
	}
	checkSampledMap(t, q, full, kept)
}

// TestServiceMapSamplingRateChanges: the collector sampled one trace in 13
// (by trace id, weight 13) for the first half of the window and kept every
// trace after, when the database also stopped being slow. Each slice of
// the window must count the requests its samples stand for: counted as
// stored, the first half would weigh a thirteenth of what it does, and
// with it the slow database calls that make the edge's p99 and put it on
// the tail's critical path. (A tail of fewer samples than mapMinTail is
// padded with faster ones, by design; the window is long enough for the
// slowest 1% to hold more.)
func TestServiceMapSamplingRateChanges(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const n = 14000 // the slowest 1% is then 140 requests, over ten of the first half's heavy samples
	spans, _ := mapTopology(n, t0)
	half := t0.Add(n / 2 * 500 * time.Millisecond).UnixNano()
	slowDB := map[store.TraceID]bool{}
	rootStart := map[store.TraceID]int64{}
	for _, sp := range spans {
		if sp.Dependency == "postgresql/orders" && sp.DurationNano >= int64(100*time.Millisecond) {
			slowDB[sp.TraceID] = true
		}
		if sp.IsRoot() {
			rootStart[sp.TraceID] = sp.StartUnixNano
		}
	}
	var full, kept []store.Span
	for _, sp := range spans {
		first := rootStart[sp.TraceID] < half
		if !first && slowDB[sp.TraceID] {
			continue // the database is no longer slow in the second half
		}
		full = append(full, sp)
		switch {
		case !first:
			sp.Weight = 1
		case binary.BigEndian.Uint64(sp.TraceID[8:])%13 == 0:
			sp.Weight = 13
		default:
			continue
		}
		kept = append(kept, sp)
	}
	q := analysis.ServiceMapQuery{From: t0, To: t0.Add(n * 500 * time.Millisecond)}
	checkSampledMap(t, q, full, kept)
}

// checkSampledMap compares the map of kept, spans stored with sampling
// weights, with the map of full, every span of the stream, at the
// default sample and at the largest.
func checkSampledMap(t *testing.T, q analysis.ServiceMapQuery, full, kept []store.Span) {
	t.Helper()
	truthQ := q
	truthQ.Traces = analysis.MaxMapTraces
	truth, err := analysis.BuildServiceMap(context.Background(), analysistest.NewSource(full), truthQ)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]analysis.MapEdge{}
	for _, e := range truth.Edges {
		want[e.From+">"+e.To] = e
	}
	for _, traces := range []int{0, analysis.MaxMapTraces} { // the default sample, and every stored trace
		q.Traces = traces
		m, err := analysis.BuildServiceMap(context.Background(), analysistest.NewSource(kept), q)
		if err != nil {
			t.Fatal(err)
		}
		if !m.Weighted || truth.Weighted {
			t.Errorf("traces %d: weighted = %v, the whole stream's %v", traces, m.Weighted, truth.Weighted)
		}
		if len(m.Edges) != len(want) {
			t.Errorf("traces %d: %d edges, want %d", traces, len(m.Edges), len(want))
		}
		for _, e := range m.Edges {
			key := e.From + ">" + e.To
			w, ok := want[key]
			if !ok {
				t.Errorf("traces %d: unexpected edge %s", traces, key)
				continue
			}
			if math.Abs(e.Calls-w.Calls) > 0.02*w.Calls || math.Abs(e.RatePerS-w.RatePerS) > 0.02*w.RatePerS {
				t.Errorf("traces %d: %s: %v calls at %v/s, whole stream %v at %v/s", traces, key, e.Calls, e.RatePerS, w.Calls, w.RatePerS)
			}
			if math.Abs(e.ErrorRate-w.ErrorRate) > 0.02 {
				t.Errorf("traces %d: %s: error rate %v, whole stream %v", traces, key, e.ErrorRate, w.ErrorRate)
			}
			if math.Abs(e.TypicalShare-w.TypicalShare) > 0.05 || math.Abs(e.TailShare-w.TailShare) > 0.05 {
				t.Errorf("traces %d: %s: critical-time share typical %v tail %v, whole stream %v and %v",
					traces, key, e.TypicalShare, e.TailShare, w.TypicalShare, w.TailShare)
			}
			if math.Abs(e.P50Ms-w.P50Ms) > 0.05*w.P50Ms || math.Abs(e.P99Ms-w.P99Ms) > 0.05*w.P99Ms {
				t.Errorf("traces %d: %s: p50 %v p99 %v ms, whole stream %v and %v", traces, key, e.P50Ms, e.P99Ms, w.P50Ms, w.P99Ms)
			}
			if e.Hot != w.Hot {
				t.Errorf("traces %d: %s: hot = %v, whole stream %v", traces, key, e.Hot, w.Hot)
			}
		}
	}
}

// genGraph builds a random layered graph of n nodes: a few entry services,
// services calling services further right, and leaf dependencies.
func genGraph(n int, seed uint64) ([]analysis.MapNode, []analysis.MapEdge) {
	r := rand.New(rand.NewPCG(seed, 1))
	var nodes []analysis.MapNode
	for i := range n {
		nd := analysis.MapNode{ID: fmt.Sprintf("service:svc-%02d", i), Name: fmt.Sprintf("svc-%02d", i), Kind: analysis.NodeService, Entry: i < 3}
		if i >= n*2/3 {
			nd = analysis.MapNode{ID: fmt.Sprintf("dependency:db-%02d", i), Name: fmt.Sprintf("db-%02d", i), Kind: analysis.NodeDatabase}
		}
		nodes = append(nodes, nd)
	}
	var edges []analysis.MapEdge
	for i := range n * 2 / 3 {
		for range 2 {
			lo := max(i+1, 3) // nothing calls an entry service
			j := lo + r.IntN(n-lo)
			edges = append(edges, analysis.MapEdge{From: nodes[i].ID, To: nodes[j].ID})
		}
	}
	// One cycle between two services.
	edges = append(edges, analysis.MapEdge{From: nodes[9].ID, To: nodes[4].ID})
	return nodes, edges
}

func TestServiceMapLayout30Nodes(t *testing.T) {
	nodes, edges := genGraph(30, 7)
	layers := analysis.LayoutMap(nodes, edges)
	pos := map[string][2]int{}
	seen := map[[2]int]string{}
	for _, nd := range nodes {
		p := [2]int{nd.Layer, nd.Row}
		if other, ok := seen[p]; ok {
			t.Errorf("%s and %s both at %v", nd.ID, other, p)
		}
		seen[p] = nd.ID
		pos[nd.ID] = p
		if nd.Entry && nd.Layer != 0 {
			t.Errorf("entry %s in layer %d", nd.ID, nd.Layer)
		}
		if nd.Kind != analysis.NodeService && nd.Layer != layers-1 {
			t.Errorf("leaf %s in layer %d of %d", nd.ID, nd.Layer, layers)
		}
	}
	backward := 0
	for _, e := range edges {
		if pos[e.To][0] <= pos[e.From][0] {
			backward++
		}
	}
	if backward > 1 {
		t.Errorf("%d edges point left, want only the one cycle edge", backward)
	}
	// Deterministic: the same graph given in another order is laid out
	// the same way.
	n2, e2 := slices.Clone(nodes), slices.Clone(edges)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(e2), func(i, j int) { e2[i], e2[j] = e2[j], e2[i] })
	slices.Reverse(n2)
	slices.SortFunc(n2, func(a, b analysis.MapNode) int {
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
	analysis.LayoutMap(n2, e2)
	for _, nd := range n2 {
		if p := [2]int{nd.Layer, nd.Row}; p != pos[nd.ID] {
			t.Errorf("%s at %v after reordering edges, was %v", nd.ID, p, pos[nd.ID])
		}
	}
}

// TestServiceMapLinkedConsumer: when each message starts a trace of its own
// that links to the producer (as messaging instrumentations record it), the
// queue → consumer edge is still found, with the same numbers.
func TestServiceMapLinkedConsumer(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const n = 200
	spans, truth := mapTopology(n, t0)
	moved := map[store.SpanID]store.TraceID{} // consumer span → its new trace
	for i := range spans {
		sp := &spans[i]
		if sp.Kind == store.KindConsumer {
			var tid store.TraceID
			copy(tid[:], sp.TraceID[:])
			tid[0] = 0xc0
			sp.Links = []store.Link{{TraceID: sp.TraceID, SpanID: sp.ParentSpanID}}
			sp.ParentSpanID = store.SpanID{}
			sp.TraceID = tid
			moved[sp.SpanID] = tid
		}
	}
	for i := range spans {
		if tid, ok := moved[spans[i].ParentSpanID]; ok {
			spans[i].TraceID = tid
		}
	}
	m, err := analysis.BuildServiceMap(context.Background(), analysistest.NewSource(spans),
		analysis.ServiceMapQuery{From: t0, To: t0.Add(100 * time.Second), Traces: 1000})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]analysis.MapEdge{}
	for _, e := range m.Edges {
		got[e.From+">"+e.To] = e
	}
	for key, durs := range truth {
		e, ok := got[key]
		if !ok {
			t.Errorf("edge %s missing (edges %v)", key, m.Edges)
			continue
		}
		if e.Calls != n {
			t.Errorf("%s: %v calls, want %d", key, e.Calls, n)
		}
		if want := exactP(durs, 0.99); math.Abs(e.P99Ms-want) > analysis.SketchRelativeAccuracy*want+0.001 {
			t.Errorf("%s: p99 %v ms, exact %v", key, e.P99Ms, want)
		}
	}
	if len(got) != len(truth) {
		t.Errorf("%d edges, want %d", len(got), len(truth))
	}
	if e := got["dependency:kafka>service:billing"]; e.Kind != analysis.EdgeConsume || e.CallerService != "orders" {
		t.Errorf("kafka → billing: kind %s, caller %q", e.Kind, e.CallerService)
	}
}

// One very slow request dominated by the cache puts the cache edge past
// the hot margin (its share of the tail's summed critical time is large)
// but is one request, not a pattern of the tail: the edge is not hot,
// while the database, slow in every 20th request, still is.
func TestServiceMapOneSlowTraceIsNotHot(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	spans, _ := mapTopology(200, t0)
	var fluke store.TraceID
	binary.BigEndian.PutUint64(fluke[8:], 101) // trace i=100: not a slow-database one
	for i := range spans {
		sp := &spans[i]
		if sp.TraceID != fluke {
			continue
		}
		switch {
		case sp.Dependency == "redis":
			sp.DurationNano += int64(3 * time.Second)
		case sp.IsRoot():
			sp.DurationNano += int64(3 * time.Second)
		}
	}
	m, err := analysis.BuildServiceMap(context.Background(), analysistest.NewSource(spans),
		analysis.ServiceMapQuery{From: t0, To: t0.Add(100 * time.Second), Traces: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range m.Edges {
		key := e.From + ">" + e.To
		switch key {
		case "service:gateway>dependency:redis":
			if e.TailShare-e.TypicalShare < analysis.MapHotMargin {
				t.Fatalf("cache edge tail share %v, typical %v: the fluke does not cross the margin, the test proves nothing", e.TailShare, e.TypicalShare)
			}
			if e.Hot {
				t.Errorf("cache edge hot on one slow request (p %v)", e.HotPValue)
			}
		case "service:orders>dependency:postgresql/orders":
			if !e.Hot {
				t.Errorf("database edge not hot (tail %v, typical %v, p %v)", e.TailShare, e.TypicalShare, e.HotPValue)
			}
		}
	}
}

// TestServiceMapManyRootEndpoints: a gateway whose instrumentation names
// its entry spans after the raw path has an endpoint per request. The map
// reads a bounded number of them — the busiest and a draw of the rest by
// their traffic — and each drawn one stands for the endpoints it was
// drawn for, so the edges' call counts estimate every request's. The draw
// is fixed by the names, so ten gateways (ten draws) check that the
// estimate is unbiased, not only bounded.
func TestServiceMapManyRootEndpoints(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const n = 3000
	base, _ := mapTopology(n, t0)
	var sum float64
	const draws = 10
	for d := range draws {
		gateway := fmt.Sprintf("gateway-%d", d)
		spans := slices.Clone(base)
		for i := range spans {
			s := &spans[i]
			if s.Service != "gateway" {
				continue
			}
			s.Service = gateway
			if s.ParentSpanID == (store.SpanID{}) {
				s.Name = fmt.Sprintf("GET /checkout/%d", binary.BigEndian.Uint64(s.TraceID[8:]))
			}
		}
		m, err := analysis.BuildServiceMap(context.Background(), analysistest.NewSource(spans),
			analysis.ServiceMapQuery{From: t0, To: t0.Add(n * 500 * time.Millisecond)})
		if err != nil {
			t.Fatal(err)
		}
		if m.RootEndpoints != n || m.RootEndpointsRead > 300 {
			t.Fatalf("%s: read %d of %d root endpoints, want %d of them, at most 300", gateway, m.RootEndpointsRead, m.RootEndpoints, n)
		}
		var calls float64
		for _, e := range m.Edges {
			if e.From == "service:"+gateway && e.To == "service:orders" {
				calls = e.Calls
			}
		}
		if math.Abs(calls-n) > 0.35*n {
			t.Errorf("%s: %s→orders estimated at %.0f calls, want %d ± 35%%", gateway, gateway, calls, n)
		}
		sum += calls
	}
	if mean := sum / draws; math.Abs(mean-n) > 0.07*n {
		t.Errorf("the mean of %d draws' estimates is %.0f calls, want %d ± 7%%: the draw is biased", draws, mean, n)
	}
}
