// Package flameview turns profile trees into the flame graph view models of
// package components, so handlers render a span's, a service's or an
// outlier group's profile in two calls:
//
//	root := profile.Tree(stacks)
//	g := flameview.Graph(root, flameview.Options{Label: "CPU of GET /v1/feed", Unit: store.UnitNanoseconds})
//	return components.FlameGraphView(g)
package flameview

import (
	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/profile"
)

// Options describe one rendered graph.
type Options struct {
	Label  string // accessible name and caption
	TestID string
	Unit   string // store.UnitNanoseconds, UnitBytes or UnitCount
	// Empty is shown instead of the graph when there are no samples.
	Empty string
	// MinWidth drops frames narrower than this fraction of the width
	// (default 0.002: at most ~500 frames per row, and no frame narrower
	// than about two pixels on a 1000-pixel page).
	MinWidth float64
	// MaxDepth drops deeper frames (0 = no limit).
	MaxDepth int
	// TopN is the rows of the functions table (default 20).
	TopN int
}

func (o Options) withDefaults() Options {
	if o.MinWidth <= 0 {
		o.MinWidth = 0.002
	}
	if o.TopN <= 0 {
		o.TopN = 20
	}
	return o
}

// Graph is the view of an ordinary flame graph: frames coloured by
// package, the top functions by self value.
func Graph(root *profile.Node, o Options) components.FlameGraph {
	o = o.withDefaults()
	g := components.FlameGraph{Label: o.Label, TestID: o.TestID, Unit: o.Unit, Total: root.Total, Empty: o.Empty}
	if root.Total <= 0 {
		return g
	}
	for _, r := range profile.Layout(root, profile.LayoutOptions{MinWidth: o.MinWidth, MaxDepth: o.MaxDepth}) {
		g.Frames = append(g.Frames, components.FlameFrame{
			Name: r.Name, Depth: r.Depth, X: r.X, Width: r.Width, Self: r.Self, Total: r.Total,
		})
	}
	for _, f := range profile.TopFunctions(root, o.TopN, profile.BySelf) {
		g.Top = append(g.Top, components.FlameFunction{Name: f.Name, Self: f.Self, Total: f.Total})
	}
	g.Empty = ""
	return g
}

// Diff is the view of a differential flame graph (outliers against
// baseline): frames coloured by the change of their self share, the
// functions table ordered by the size of that change.
func Diff(d *profile.DiffNode, o Options) components.FlameGraph {
	o = o.withDefaults()
	g := components.FlameGraph{Label: o.Label, TestID: o.TestID, Unit: o.Unit, Diff: true, Empty: o.Empty}
	rects := profile.LayoutDiff(d, profile.LayoutOptions{MinWidth: o.MinWidth, MaxDepth: o.MaxDepth})
	if len(rects) == 0 {
		return g
	}
	for _, r := range rects {
		g.Frames = append(g.Frames, components.FlameFrame{
			Name: r.Name, Depth: r.Depth, X: r.X, Width: r.Width,
			BaselineSelf: r.Node.BaselineSelfShare, OutlierSelf: r.Node.OutlierSelfShare,
			BaselineTotal: r.Node.BaselineTotalShare, OutlierTotal: r.Node.OutlierTotalShare,
		})
	}
	for _, f := range profile.DiffFunctions(d, o.TopN) {
		g.Top = append(g.Top, components.FlameFunction{Name: f.Name, BaselineSelf: f.BaselineSelf, OutlierSelf: f.OutlierSelf})
	}
	g.Empty = ""
	return g
}
