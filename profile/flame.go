package profile

import (
	"cmp"
	"math"
	"slices"
	"strings"

	"github.com/tailscope/tailscope/store"
)

// Node is one frame of a flame graph: a function at one position of the
// call tree. The same function called along two paths is two nodes.
type Node struct {
	Name  string
	Self  int64 // value spent in the function itself, along this path
	Total int64 // Self plus every descendant's Self
	// Children are ordered by name, as flame graphs draw them: the layout
	// stays put when values change, and two trees line up for a diff.
	Children []*Node

	index map[string]*Node // children by name, only while building
}

// foldedLeaf reports leaf frames whose time belongs to their caller:
// runtime.asyncPreempt, where the runtime parks a goroutine it preempts
// (the sample was spent in the caller's loop), and the race detector's
// instrumentation (ThreadSanitizer's C++ runtime and the runtime's race
// hooks), which charges a -race binary's memory accesses to the code
// making them. Without this, a CPU-bound function's time shows up under
// those names instead of its own.
func foldedLeaf(f string) bool {
	if f == "runtime.asyncPreempt" {
		return true
	}
	for _, p := range []string{"__tsan", "_ZN6__tsan", "__sanitizer", "_ZN11__sanitizer", "runtime.race", "racecall", "racefunc", "racewrite", "raceread"} {
		if strings.HasPrefix(f, p) {
			return true
		}
	}
	return false
}

// Tree merges stacks (root first, as store.Stacks returns them) into a call
// tree. The root is synthetic: its Name is "" and its Total the sum of
// every stack's value. Stacks with a value ≤ 0 or without frames are
// ignored, and leaf preemption and race-detector frames count for their
// caller (see foldedLeaf).
func Tree(stacks []store.StackValue) *Node {
	root := &Node{}
	for _, s := range stacks {
		if s.Value <= 0 || len(s.Frames) == 0 {
			continue
		}
		frames := s.Frames
		for len(frames) > 1 && foldedLeaf(frames[len(frames)-1]) {
			frames = frames[:len(frames)-1]
		}
		n := root
		n.Total = satAdd(n.Total, s.Value)
		for _, f := range frames {
			n = n.child(f)
			n.Total = satAdd(n.Total, s.Value)
		}
		n.Self = satAdd(n.Self, s.Value)
	}
	root.finish()
	return root
}

func (n *Node) child(name string) *Node {
	if c, ok := n.index[name]; ok {
		return c
	}
	if n.index == nil {
		n.index = map[string]*Node{}
	}
	c := &Node{Name: name}
	n.index[name] = c
	n.Children = append(n.Children, c)
	return c
}

// finish sorts children by name and drops the build indexes.
func (n *Node) finish() {
	stack := []*Node{n}
	for len(stack) > 0 {
		m := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		m.index = nil
		slices.SortFunc(m.Children, func(a, b *Node) int { return cmp.Compare(a.Name, b.Name) })
		stack = append(stack, m.Children...)
	}
}

// FunctionStat is one function's cost over a whole tree.
type FunctionStat struct {
	Name string
	// Self is the value spent in the function itself, along every path.
	Self int64
	// Total is the value of every stack the function is on, counted once
	// per stack even when it recurses.
	Total int64
}

// TopOrder chooses what TopFunctions sorts by.
type TopOrder int

// Orders for TopFunctions.
const (
	BySelf  TopOrder = iota // where the time went: the functions that ran
	ByTotal                 // which calls were expensive, callees included
)

// TopFunctions lists the functions of a tree, the costliest first by the
// given order (ties by the other value, then name), at most n of them
// (n ≤ 0: all). The synthetic root is not a function and is left out.
func TopFunctions(root *Node, n int, order TopOrder) []FunctionStat {
	stats := map[string]*FunctionStat{}
	onPath := map[string]int{} // how often each name is on the current path
	var walk func(nd *Node)
	walk = func(nd *Node) {
		st := stats[nd.Name]
		if st == nil {
			st = &FunctionStat{Name: nd.Name}
			stats[nd.Name] = st
		}
		st.Self = satAdd(st.Self, nd.Self)
		if onPath[nd.Name] == 0 {
			// The outermost occurrence on a path already counts every
			// stack below it; a recursive call inside must not again.
			st.Total = satAdd(st.Total, nd.Total)
		}
		onPath[nd.Name]++
		for _, c := range nd.Children {
			walk(c)
		}
		onPath[nd.Name]--
	}
	for _, c := range root.Children {
		walk(c)
	}
	out := make([]FunctionStat, 0, len(stats))
	for _, st := range stats {
		out = append(out, *st)
	}
	slices.SortFunc(out, func(a, b FunctionStat) int {
		if order == ByTotal {
			return cmp.Or(cmp.Compare(b.Total, a.Total), cmp.Compare(b.Self, a.Self), cmp.Compare(a.Name, b.Name))
		}
		return cmp.Or(cmp.Compare(b.Self, a.Self), cmp.Compare(b.Total, a.Total), cmp.Compare(a.Name, b.Name))
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// DiffNode is one frame of a differential flame graph: a call path present
// in a baseline tree, an outlier tree, or both. Values are also given as
// shares of their tree's total, because the two trees hold different
// amounts of samples (a hundred outlier requests against thousands of
// baseline ones): a function "got hot in the tail" when its share grew.
type DiffNode struct {
	Name                        string
	BaselineSelf, OutlierSelf   int64
	BaselineTotal, OutlierTotal int64
	// Shares of the baseline's and the outlier's root totals, in [0, 1];
	// 0 when a tree is empty.
	BaselineSelfShare, OutlierSelfShare   float64
	BaselineTotalShare, OutlierTotalShare float64
	Children                              []*DiffNode // ordered by name
}

// SelfDelta is how much the function's own share grew in the outliers
// (negative: it shrank), in share points: 0.25 means a quarter more of all
// outlier time than of all baseline time was spent in it.
func (d *DiffNode) SelfDelta() float64 { return d.OutlierSelfShare - d.BaselineSelfShare }

// TotalDelta is SelfDelta including callees.
func (d *DiffNode) TotalDelta() float64 { return d.OutlierTotalShare - d.BaselineTotalShare }

// Diff aligns two trees (from Tree) path by path. The result's root is
// synthetic, like Tree's.
func Diff(baseline, outlier *Node) *DiffNode {
	bt, ot := float64(baseline.Total), float64(outlier.Total)
	share := func(v int64, total float64) float64 {
		if total <= 0 {
			return 0
		}
		return float64(v) / total
	}
	var merge func(b, o *Node) *DiffNode
	merge = func(b, o *Node) *DiffNode {
		d := &DiffNode{}
		if b != nil {
			d.Name, d.BaselineSelf, d.BaselineTotal = b.Name, b.Self, b.Total
		}
		if o != nil {
			d.Name, d.OutlierSelf, d.OutlierTotal = o.Name, o.Self, o.Total
		}
		d.BaselineSelfShare, d.BaselineTotalShare = share(d.BaselineSelf, bt), share(d.BaselineTotal, bt)
		d.OutlierSelfShare, d.OutlierTotalShare = share(d.OutlierSelf, ot), share(d.OutlierTotal, ot)
		var bc, oc []*Node
		if b != nil {
			bc = b.Children
		}
		if o != nil {
			oc = o.Children
		}
		// Both child lists are sorted by name: merge them in one pass.
		for i, j := 0, 0; i < len(bc) || j < len(oc); {
			switch {
			case j == len(oc) || (i < len(bc) && bc[i].Name < oc[j].Name):
				d.Children = append(d.Children, merge(bc[i], nil))
				i++
			case i == len(bc) || oc[j].Name < bc[i].Name:
				d.Children = append(d.Children, merge(nil, oc[j]))
				j++
			default:
				d.Children = append(d.Children, merge(bc[i], oc[j]))
				i++
				j++
			}
		}
		return d
	}
	return merge(baseline, outlier)
}

// Rect is one frame placed in a flame graph. The root is at depth 0 and
// spans the whole width; each frame sits below its parent (or above it,
// as the renderer chooses), children left to right in name order.
type Rect struct {
	Name  string // "" for the synthetic root
	Depth int
	// X and Width are fractions of the graph's width, in [0, 1].
	X, Width    float64
	Self, Total int64
}

// LayoutOptions bound what a layout keeps.
type LayoutOptions struct {
	// MinWidth drops frames narrower than this fraction of the width, and
	// everything above them: they would be too thin to see or to label,
	// and there can be many. 0 keeps every frame.
	MinWidth float64
	// MaxDepth drops frames deeper than this (0 = no limit).
	MaxDepth int
}

// Layout places the frames of a tree, parents before children (pre-order).
// A frame's width is its share of the root's total.
func Layout(root *Node, opt LayoutOptions) []Rect {
	var out []Rect
	if root.Total <= 0 {
		return out
	}
	total := float64(root.Total)
	var place func(n *Node, depth int, x float64)
	place = func(n *Node, depth int, x float64) {
		w := float64(n.Total) / total
		if (depth > 0 && w < opt.MinWidth) || (opt.MaxDepth > 0 && depth > opt.MaxDepth) {
			return
		}
		out = append(out, Rect{Name: n.Name, Depth: depth, X: x, Width: w, Self: n.Self, Total: n.Total})
		for _, c := range n.Children {
			place(c, depth+1, x)
			x += float64(c.Total) / total
		}
	}
	place(root, 0, 0)
	return out
}

// DiffRect is one frame placed in a differential flame graph.
type DiffRect struct {
	Rect
	Node *DiffNode // the frame's values; Rect.Self and Total are unset
}

// LayoutDiff places the frames of a diff. A frame's width is the mean of
// its baseline and outlier total shares, so a function present on only one
// side is still visible, and the root spans the whole width.
func LayoutDiff(root *DiffNode, opt LayoutOptions) []DiffRect {
	var out []DiffRect
	weight := func(d *DiffNode) float64 { return (d.BaselineTotalShare + d.OutlierTotalShare) / 2 }
	rootW := weight(root)
	if rootW <= 0 {
		return out
	}
	var place func(d *DiffNode, depth int, x float64)
	place = func(d *DiffNode, depth int, x float64) {
		w := weight(d) / rootW
		if (depth > 0 && w < opt.MinWidth) || (opt.MaxDepth > 0 && depth > opt.MaxDepth) {
			return
		}
		out = append(out, DiffRect{Rect: Rect{Name: d.Name, Depth: depth, X: x, Width: w}, Node: d})
		for _, c := range d.Children {
			place(c, depth+1, x)
			x += weight(c) / rootW
		}
	}
	place(root, 0, 0)
	return out
}

// FunctionDiff is how one function's own share changed between a baseline
// and outliers, summed over every path it is on.
type FunctionDiff struct {
	Name                      string
	BaselineSelf, OutlierSelf float64 // shares of each tree's total
}

// Delta is the change of the function's share, in share points.
func (f FunctionDiff) Delta() float64 { return f.OutlierSelf - f.BaselineSelf }

// DiffFunctions lists the functions of a diff whose own share changed
// most, either way, first (ties by name), at most n (n ≤ 0: all). It is the
// table beside a differential flame graph: the function that got hot in the
// tail comes first.
func DiffFunctions(root *DiffNode, n int) []FunctionDiff {
	byName := map[string]*FunctionDiff{}
	var walk func(d *DiffNode)
	walk = func(d *DiffNode) {
		f := byName[d.Name]
		if f == nil {
			f = &FunctionDiff{Name: d.Name}
			byName[d.Name] = f
		}
		f.BaselineSelf += d.BaselineSelfShare
		f.OutlierSelf += d.OutlierSelfShare
		for _, c := range d.Children {
			walk(c)
		}
	}
	for _, c := range root.Children {
		walk(c)
	}
	out := make([]FunctionDiff, 0, len(byName))
	for _, f := range byName {
		out = append(out, *f)
	}
	slices.SortFunc(out, func(a, b FunctionDiff) int {
		return cmp.Or(cmp.Compare(math.Abs(b.Delta()), math.Abs(a.Delta())), cmp.Compare(a.Name, b.Name))
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}
