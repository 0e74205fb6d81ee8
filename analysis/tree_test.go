package analysis

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tailscope/tailscope/store"
)

func TestTieOf(t *testing.T) {
	followsFromLink := func(parent int) []store.Link {
		return []store.Link{{TraceID: tid(1), SpanID: sid(parent), Attributes: store.AttributesOf(map[string]any{"opentracing.ref_type": "follows_from"})}}
	}
	tests := []struct {
		name          string
		parent, child sp
		links         []store.Link
		want          Tie
	}{
		{"nested child", sp{service: "a", start: 0, end: 100}, sp{service: "a", start: 10, end: 90}, nil, TieChild},
		{"back-to-back end", sp{service: "a", start: 0, end: 100}, sp{service: "a", start: 10, end: 100}, nil, TieChild},
		{"fire and forget in one process", sp{service: "a", start: 0, end: 100}, sp{service: "a", start: 50, end: 100.01}, nil, TieOutlives},
		{"starts after the parent ended", sp{service: "a", start: 0, end: 100}, sp{service: "a", start: 120, end: 130}, nil, TieOutlives},
		{"starts before the parent (clipped, still waited for)", sp{service: "a", start: 10, end: 100}, sp{service: "a", start: 0, end: 50}, nil, TieChild},
		{"other service within clock skew", sp{service: "a", start: 0, end: 100}, sp{service: "b", start: 10, end: 100.5}, nil, TieChild},
		{"other service beyond clock skew", sp{service: "a", start: 0, end: 100}, sp{service: "b", start: 10, end: 150}, nil, TieOutlives},
		{"server under client is synchronous even when skewed",
			sp{service: "a", kind: store.KindClient, start: 0, end: 100}, sp{service: "b", kind: store.KindServer, start: 40, end: 180}, nil, TieChild},
		{"consumer of a producer", sp{service: "a", kind: store.KindProducer, start: 0, end: 155},
			sp{service: "b", kind: store.KindConsumer, start: 95, end: 120}, nil, TieMessaging},
		{"consumer outliving its parent", sp{service: "a", kind: store.KindServer, start: 0, end: 100},
			sp{service: "b", kind: store.KindConsumer, start: 50, end: 100.2}, nil, TieMessaging},
		{"consumer processed inside its poll loop", sp{service: "a", kind: store.KindInternal, start: 0, end: 100},
			sp{service: "a", kind: store.KindConsumer, start: 10, end: 90}, nil, TieChild},
		{"producer that outlives its parent", sp{service: "a", kind: store.KindServer, start: 0, end: 100},
			sp{service: "a", kind: store.KindProducer, start: 90, end: 140}, nil, TieOutlives},
		{"producer the parent waited for", sp{service: "a", kind: store.KindServer, start: 0, end: 100},
			sp{service: "a", kind: store.KindProducer, start: 40, end: 90}, nil, TieChild},
		{"follows-from reference", sp{service: "a", start: 0, end: 100}, sp{service: "a", start: 10, end: 20}, followsFromLink(1), TieFollowsFrom},
		{"child-of link is not follows-from", sp{service: "a", start: 0, end: 100}, sp{service: "a", start: 10, end: 20},
			[]store.Link{{TraceID: tid(1), SpanID: sid(1), Attributes: store.AttributesOf(map[string]any{"opentracing.ref_type": "child_of"})}}, TieChild},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.parent.id, tt.child.id, tt.child.parent = 1, 2, 1
			spans := build(t, tt.parent, tt.child)
			spans[1].Links = tt.links
			if got := tieOf(&spans[0], &spans[1]); got != tt.want {
				t.Errorf("tie = %s, want %s", got, tt.want)
			}
			tree := NewTree(spans)
			if got := tree.Tie(1); got != tt.want {
				t.Errorf("tree tie = %s, want %s", got, tt.want)
			}
		})
	}
}

// treeShape describes a tree compactly for comparison: each root with
// its descendants in preorder as "id(tie)@depth".
func treeShape(tr *Tree) string {
	var out []string
	tr.Walk(func(n int32, depth int) bool {
		sp := tr.Span(n)
		out = append(out, fmt.Sprintf("%d(%s)@%d", int(sp.SpanID[7]), tr.Tie(n), depth))
		return true
	})
	return fmt.Sprint(out)
}

func TestTreePathological(t *testing.T) {
	linkTo := func(n int) []store.Link { return []store.Link{{TraceID: tid(1), SpanID: sid(n)}} }
	tests := []struct {
		name    string
		spans   []sp
		links   map[int][]store.Link // by index into spans
		want    string
		dropped int
	}{
		{
			name:  "children by start",
			spans: []sp{{id: 1, start: 0, end: 100}, {id: 3, parent: 1, start: 50, end: 60}, {id: 2, parent: 1, start: 10, end: 20}},
			want:  "[1(root)@0 2(child)@1 3(child)@1]",
		},
		{
			name:    "duplicate keeps the longer copy",
			spans:   []sp{{id: 1, start: 0, end: 100}, {id: 2, parent: 1, start: 10, end: 20}, {id: 2, parent: 1, start: 10, end: 200}},
			want:    "[1(root)@0 2(outlives parent)@1]",
			dropped: 1,
		},
		{
			name:    "zero span id ignored",
			spans:   []sp{{id: 1, start: 0, end: 100}, {id: 0, parent: 1, start: 10, end: 20}},
			want:    "[1(root)@0]",
			dropped: 1,
		},
		{
			name:  "true root first, then orphans by start",
			spans: []sp{{id: 5, parent: 9, start: 0, end: 10}, {id: 4, parent: 8, start: 5, end: 10}, {id: 1, start: 20, end: 30}},
			want:  "[1(root)@0 5(root)@0 4(root)@0]",
		},
		{
			name:  "two true roots: earliest first",
			spans: []sp{{id: 2, start: 10, end: 500}, {id: 1, start: 0, end: 100}},
			want:  "[1(root)@0 2(root)@0]",
		},
		{
			name:  "self parent is a root",
			spans: []sp{{id: 5, parent: 5, start: 0, end: 10}},
			want:  "[5(root)@0]",
		},
		{
			name:  "cycle broken at its earliest span",
			spans: []sp{{id: 1, start: 0, end: 100}, {id: 3, parent: 4, start: 20, end: 30}, {id: 4, parent: 3, start: 10, end: 40}},
			want:  "[1(root)@0 4(root)@0 3(child)@1]",
		},
		{
			name:  "link-only span hangs under the span it links to",
			spans: []sp{{id: 1, start: 0, end: 100}, {id: 2, parent: 1, start: 10, end: 20}, {id: 7, start: 300, end: 400}},
			links: map[int][]store.Link{2: linkTo(2)},
			want:  "[1(root)@0 2(child)@1 7(linked)@2]",
		},
		{
			name:  "a link loop is cut at the link",
			spans: []sp{{id: 1, start: 0, end: 100}, {id: 2, parent: 1, start: 10, end: 20}},
			links: map[int][]store.Link{0: linkTo(2)},
			want:  "[1(root)@0 2(child)@1]",
		},
		{
			name:  "a link to another trace is not a tie",
			spans: []sp{{id: 1, start: 0, end: 100}, {id: 7, start: 300, end: 400}},
			links: map[int][]store.Link{1: {{TraceID: tid(2), SpanID: sid(1)}}},
			want:  "[1(root)@0 7(root)@0]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spans := build(t, tt.spans...)
			for i, l := range tt.links {
				spans[i].Links = l
			}
			tr := NewTree(spans)
			if got := treeShape(tr); got != tt.want {
				t.Errorf("tree %s, want %s", got, tt.want)
			}
			if tr.Dropped() != tt.dropped {
				t.Errorf("dropped %d, want %d", tr.Dropped(), tt.dropped)
			}
			// Every node is reachable from a root exactly once.
			seen := map[int32]int{}
			tr.Walk(func(n int32, _ int) bool { seen[n]++; return true })
			if len(seen) != tr.Len() {
				t.Errorf("walk reached %d of %d nodes", len(seen), tr.Len())
			}
			for n, c := range seen {
				if c != 1 {
					t.Errorf("node %d visited %d times", n, c)
				}
			}
			// Reuse gives the same tree.
			tr.Reset(slices.Clone(spans))
			if got := treeShape(tr); got != tt.want {
				t.Errorf("after Reset: %s", got)
			}
		})
	}
}

// TestTreeOrderIndependent: shuffled input gives the same tree, on random
// traces with duplicates, orphans and cycles.
func TestTreeOrderIndependent(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for iter := range 300 {
		spans := randomTrace(r, 1+r.IntN(80))
		for range r.IntN(4) { // duplicates and re-parenting into cycles
			i, j := r.IntN(len(spans)), r.IntN(len(spans))
			switch r.IntN(3) {
			case 0:
				spans = append(spans, spans[i])
				spans[len(spans)-1].DurationNano += int64(r.IntN(3))
			case 1:
				spans[i].ParentSpanID = spans[j].SpanID
			case 2:
				spans[i].ParentSpanID = sid(9999)
			}
		}
		want := treeShape(NewTree(spans))
		shuffled := slices.Clone(spans)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := treeShape(NewTree(shuffled)); got != want {
			t.Fatalf("iter %d: tree depends on span order:\n%s\n%s", iter, want, got)
		}
		tr := NewTree(spans)
		sizes := tr.SubtreeSizes()
		total := 0
		for _, root := range tr.Roots() {
			total += sizes[root]
			if len(tr.Subtree(root)) != sizes[root] {
				t.Fatalf("iter %d: subtree size disagrees", iter)
			}
		}
		if total != tr.Len() {
			t.Fatalf("iter %d: roots cover %d of %d nodes", iter, total, tr.Len())
		}
	}
}

func TestTreeDeepChain(t *testing.T) {
	const n = 10000
	spans := make([]store.Span, n)
	for i := range spans {
		spans[i] = store.Span{TraceID: tid(1), SpanID: sid(i + 1), ParentSpanID: sid(i), StartUnixNano: int64(i), DurationNano: int64(2*n - 2*i)}
	}
	tr := NewTree(spans)
	last, _ := tr.Node(sid(n))
	if d := tr.Depth(last); d != n-1 {
		t.Fatalf("depth %d, want %d", d, n-1)
	}
	maxDepth := 0
	tr.Walk(func(_ int32, depth int) bool { maxDepth = max(maxDepth, depth); return true })
	if maxDepth != n-1 {
		t.Fatalf("walk depth %d", maxDepth)
	}
}
