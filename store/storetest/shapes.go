package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// testTraceShapes: TraceShapes is Traces without attributes, resources and
// events — the same traces, spans, order and other fields (links, which the
// trace tree follows, included) — over more ids than one SQL IN list holds.
func testTraceShapes(t *testing.T, s store.Store) {
	const n = shapeTraces
	full := fullSpan()
	query := writeShapeTraces(t, s)
	whole, err := s.Traces(ctxT(t), query)
	if err != nil {
		t.Fatalf("Traces: %v", err)
	}
	got, err := s.TraceShapes(ctxT(t), query)
	if err != nil {
		t.Fatalf("TraceShapes: %v", err)
	}
	if len(got) != n-1 || len(whole) != n-1 {
		t.Fatalf("TraceShapes returned %d traces, Traces %d, want %d", len(got), len(whole), n-1)
	}
	if _, ok := got[traceID(n+5)]; ok {
		t.Errorf("unknown trace id present in result")
	}
	for id, want := range whole {
		g := got[id]
		if len(g) != len(want) {
			t.Fatalf("trace %s: %d spans, Traces has %d", id, len(g), len(want))
		}
		for i := range want {
			if g[i].Attributes != nil || g[i].Resource != nil || g[i].Events != nil {
				t.Fatalf("trace %s span %d: attributes, resource or events read: %+v", id, i, g[i])
			}
			w := want[i]
			w.Attributes, w.Resource, w.Events = nil, nil, nil
			if d := diffSpan(w, g[i]); d != "" {
				t.Fatalf("trace %s span %d: %s", id, i, d)
			}
		}
	}
	if w := whole[traceID(1)]; len(w) != 2 || w[1].Attributes == nil || w[1].Resource == nil || w[1].Events == nil {
		t.Fatalf("Traces lost the full span's attributes, resource or events: %+v", w)
	}
	if g := got[traceID(1)]; len(g) != 2 || len(g[1].Links) != len(full.Links) || g[1].StatusMessage != full.StatusMessage {
		t.Errorf("full span's shape = %+v, want its links and status kept", g)
	}
	empty, err := s.TraceShapes(ctxT(t), nil)
	if err != nil || len(empty) != 0 {
		t.Errorf("TraceShapes(nil) = %v, %v; want empty, nil", empty, err)
	}
}

// shapeTraces is how many traces writeShapeTraces writes, less one: more
// than SQLite's chunk of 500 ids.
const shapeTraces = 600

// writeShapeTraces writes trace 1 (fullSpan under a root) and traces 2 to
// shapeTraces-1 of three spans each — a root with attributes and a
// resource, a child with events and a link, a sibling with attributes —
// and returns their ids and two unknown ones. Span ids repeat across
// traces: trace i's sibling has the id of trace i−1's child.
func writeShapeTraces(t *testing.T, s store.Store) []store.TraceID {
	t.Helper()
	const n = shapeTraces
	full := fullSpan()
	spans := []store.Span{full, mkSpan(1, 1, store.SpanID{}, "edge", "GET /", store.KindServer, at(0), time.Minute)}
	for i := 2; i < n; i++ {
		root := mkSpan(i, 2*i, store.SpanID{}, "svc", "root", store.KindServer, at(time.Duration(i)*time.Millisecond), time.Millisecond)
		root.Attributes = store.Attributes(fmt.Sprintf(`{"i":%d}`, i))
		root.Resource = store.Attributes(`{"service.name":"svc"}`)
		child := mkSpan(i, 2*i+1, spanID(2*i), "svc", "child", store.KindClient, at(time.Duration(i)*time.Millisecond)+1, time.Microsecond)
		child.Dependency, child.StatusCode = "db", store.StatusError
		child.Events = []store.Event{{TimeUnixNano: child.StartUnixNano, Name: "exception"}}
		child.Links = []store.Link{{TraceID: traceID(i), SpanID: spanID(2 * i), Attributes: store.Attributes(`{"opentracing.ref_type":"follows_from"}`)}}
		// Same start as the root: the span id breaks the tie.
		sib := mkSpan(i, 2*i-1, spanID(2*i), "svc", "sibling", store.KindInternal, at(time.Duration(i)*time.Millisecond), time.Microsecond)
		sib.Attributes = store.Attributes(`{"sibling":true}`)
		spans = append(spans, root, child, sib)
	}
	write(t, s, spans...)
	query := make([]store.TraceID, 0, n+2)
	for i := 1; i < n; i++ {
		query = append(query, traceID(i))
	}
	return append(query, traceID(n+5), traceID(n+6)) // unknown
}

// testRequestShapes: RequestShapes is TraceShapes but for the named spans,
// which keep their attributes and resource as Traces reads them (events
// left out) — a trace named twice keeps both spans', a span sharing its id
// with one named in another trace keeps nothing, a name of no span keeps
// nothing, and an unknown trace is absent.
func testRequestShapes(t *testing.T, s store.Store) {
	query := writeShapeTraces(t, s)
	whole, err := s.Traces(ctxT(t), query)
	if err != nil {
		t.Fatalf("Traces: %v", err)
	}
	reqs := []store.SpanRef{{TraceID: traceID(1), SpanID: spanID(2)}, {TraceID: traceID(3), SpanID: spanID(6)},
		{TraceID: traceID(5), SpanID: spanID(9999)}, {TraceID: traceID(shapeTraces + 5), SpanID: spanID(1)}}
	for i := 2; i < shapeTraces; i++ {
		switch {
		case i == 5:
		case i%2 == 0: // the root
			reqs = append(reqs, store.SpanRef{TraceID: traceID(i), SpanID: spanID(2 * i)})
		default: // the child, whose id the next trace's sibling shares
			reqs = append(reqs, store.SpanRef{TraceID: traceID(i), SpanID: spanID(2*i + 1)})
		}
	}
	got, err := s.RequestShapes(ctxT(t), reqs)
	if err != nil {
		t.Fatalf("RequestShapes: %v", err)
	}
	if len(got) != shapeTraces-1 {
		t.Fatalf("RequestShapes returned %d traces, want %d", len(got), shapeTraces-1)
	}
	named := map[store.SpanRef]bool{}
	for _, r := range reqs {
		named[r] = true
	}
	kept := 0
	for id, want := range whole {
		g := got[id]
		if len(g) != len(want) {
			t.Fatalf("trace %s: %d spans, Traces has %d", id, len(g), len(want))
		}
		for i := range want {
			w := want[i]
			w.Events = nil
			if !named[store.SpanRef{TraceID: w.TraceID, SpanID: w.SpanID}] {
				w.Attributes, w.Resource = nil, nil
			} else if w.Attributes != nil {
				kept++
			}
			if d := diffSpan(w, g[i]); d != "" {
				t.Fatalf("trace %s span %x: %s", id, w.SpanID, d)
			}
			if g[i].Events != nil || string(g[i].Attributes) != string(w.Attributes) || string(g[i].Resource) != string(w.Resource) {
				t.Fatalf("trace %s span %x: attributes %s, resource %s, events %v; want %s, %s, none", id, w.SpanID,
					g[i].Attributes, g[i].Resource, g[i].Events, w.Attributes, w.Resource)
			}
		}
	}
	if want := shapeTraces/2 + 1; kept != want { // the full span, and every root named
		t.Errorf("%d named spans kept their attributes, want %d", kept, want)
	}
	empty, err := s.RequestShapes(ctxT(t), nil)
	if err != nil || len(empty) != 0 {
		t.Errorf("RequestShapes(nil) = %v, %v; want empty, nil", empty, err)
	}
}
