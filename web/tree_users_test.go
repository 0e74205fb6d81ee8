package web

import (
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/store"
)

// pathological traces every user of the trace tree must agree on.
func pathologicalTraces() map[string][]store.Span {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	id := func(n int) store.SpanID {
		var s store.SpanID
		binary.BigEndian.PutUint64(s[:], uint64(n))
		return s
	}
	tid := store.TraceID{1, 2, 3}
	sp := func(n, parent int, service string, kind store.SpanKind, startMs, endMs float64) store.Span {
		return store.Span{TraceID: tid, SpanID: id(n), ParentSpanID: id(parent), Service: service, Name: "op", Kind: kind,
			StartUnixNano: t0 + int64(startMs*1e6), DurationNano: int64((endMs - startMs) * 1e6)}
	}
	consumer := sp(9, 0, "worker", store.KindConsumer, 300, 700)
	consumer.Links = []store.Link{{TraceID: tid, SpanID: id(3)}}
	return map[string][]store.Span{
		"duplicates": {sp(1, 0, "a", store.KindServer, 0, 100), sp(2, 1, "a", store.KindClient, 10, 40),
			sp(2, 1, "a", store.KindClient, 10, 60), sp(3, 2, "b", store.KindServer, 12, 55)},
		"cycle under a root": {sp(1, 0, "a", store.KindServer, 0, 100), sp(4, 5, "a", 0, 20, 30), sp(5, 4, "a", 0, 10, 40)},
		"cycle and no root":  {sp(4, 5, "a", 0, 20, 30), sp(5, 4, "a", 0, 10, 40)},
		"orphans and two roots": {sp(7, 0, "b", store.KindServer, 50, 900), sp(1, 0, "a", store.KindServer, 0, 100),
			sp(6, 42, "c", 0, 5, 50), sp(8, 42, "c", 0, 1, 20)},
		"self parent": {sp(5, 5, "a", 0, 0, 10), sp(6, 5, "a", 0, 2, 8)},
		"link-only":   {sp(1, 0, "a", store.KindServer, 0, 100), sp(3, 1, "a", store.KindProducer, 10, 15), consumer},
		"fire-and-forget": {sp(1, 0, "a", store.KindServer, 0, 100), sp(2, 1, "a", store.KindClient, 10, 60),
			sp(3, 1, "a", store.KindClient, 5, 1500), sp(4, 3, "analytics", store.KindServer, 6, 1490)},
	}
}

// TestTreeUsersAgree feeds the same pathological traces to every user of
// the trace tree — the critical path, the findings, the waterfall and the
// span-profile subtree — and checks they agree with the tree and with each
// other: one root, every span once, the same parents, the same async
// branches.
func TestTreeUsersAgree(t *testing.T) {
	for name, spans := range pathologicalTraces() {
		t.Run(name, func(t *testing.T) {
			tree := analysis.NewTree(spans)
			root := tree.Span(tree.Root()).SpanID
			cp := analysis.CriticalPath(spans)
			d := &traceDetail{TraceID: spans[0].TraceID.String(), spans: spans, Analysis: cp, Findings: analysis.Findings(spans)}
			v := buildWaterfall(d, waterfallOptions{ExpandAll: true})

			if cp.RootSpanID != root || v.RootSpanID != root.String() {
				t.Errorf("roots: tree %s, critical path %s, waterfall %s", root, cp.RootSpanID, v.RootSpanID)
			}
			if got := len(cp.Spans) + cp.DetachedSpans; got != len(spans) {
				t.Errorf("critical path accounts for %d of %d spans", got, len(spans))
			}
			seen := map[string]bool{}
			async := map[string]bool{}
			for _, st := range cp.Spans {
				async[st.SpanID.String()] = st.Async
			}
			for _, r := range v.Rows {
				if seen[r.SpanID] {
					t.Errorf("waterfall lists %s twice", r.SpanID)
				}
				seen[r.SpanID] = true
				sid, _ := store.ParseSpanID(r.SpanID)
				n, ok := tree.Node(sid)
				if !ok {
					t.Fatalf("waterfall row %s is not in the tree", r.SpanID)
				}
				want := ""
				if p := tree.Parent(n); p >= 0 {
					want = tree.Span(p).SpanID.String()
				}
				if r.ParentID != want {
					t.Errorf("row %s: parent %q, tree says %q", r.SpanID, r.ParentID, want)
				}
				if a, ok := async[r.SpanID]; ok && a != r.Async {
					t.Errorf("row %s: async %v, critical path says %v", r.SpanID, r.Async, a)
				}
			}
			if len(seen) != tree.Len() {
				t.Errorf("waterfall has %d rows, tree %d spans", len(seen), tree.Len())
			}
			for _, f := range d.Findings {
				for _, id := range f.SpanIDs {
					if _, ok := tree.Node(id); !ok {
						t.Errorf("finding %s names %s, not in the tree", f.Kind, id)
					}
				}
			}
			var want []store.SpanID
			for _, n := range tree.Subtree(tree.Root()) {
				want = append(want, tree.Span(n).SpanID)
			}
			if got := subtreeIDs(spans, root); !slices.Equal(got, want) {
				t.Errorf("profile subtree %v, tree %v", got, want)
			}
		})
	}
}
