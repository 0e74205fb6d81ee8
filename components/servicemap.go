package components

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// ServiceMapView is the service map page: the graph and its edges as a
// table (the same numbers, readable without the drawing).
type ServiceMapView struct {
	Window  string
	Sampled string // "400 typical and 4 slow traces"
	APIHref string
	Width   int
	Height  int
	Nodes   []MapNodeView
	Edges   []MapEdgeView
}

// MapNodeView is one node: its place in the layout and where it links.
type MapNodeView struct {
	ID, Name, Kind string
	Entry          bool
	Layer, Row     int
	Detail         string // "12/s · p99 40 ms"
	Title          string // tooltip and accessible name
	Href           string // latency page
	X, Y           int
}

// MapEdgeView is one edge: its numbers, links and drawn path.
type MapEdgeView struct {
	From, To         string // node ids
	FromName, ToName string
	Kind             string
	RatePerS         float64
	ErrorRate        float64
	P50Ms, P99Ms     float64
	TailShare        float64
	TypicalShare     float64
	Hot              bool
	Title            string
	Href             string // latency page
	OutliersHref     string
	Path             string // SVG path data
	LabelX, LabelY   int
	Width            float64 // stroke width
}

// Geometry of the drawing, in SVG user units (CSS pixels at 100%).
const (
	mapNodeW  = 176
	mapNodeH  = 42
	mapColGap = 120
	mapRowGap = 24
	mapPad    = 16
	// mapNameMax keeps a node's name inside its box.
	mapNameMax = 22
)

// PlaceServiceMap computes node boxes and edge paths from each node's
// layer and row: columns left to right, edges from a node's right side to
// the next node's left side as a curve; an edge that points back (a call
// into an entry service, a cycle) loops under the boxes.
func PlaceServiceMap(v *ServiceMapView) {
	layers, rows := 0, 0
	pos := make(map[string]*MapNodeView, len(v.Nodes))
	for i := range v.Nodes {
		n := &v.Nodes[i]
		n.X = mapPad + n.Layer*(mapNodeW+mapColGap)
		n.Y = mapPad + n.Row*(mapNodeH+mapRowGap)
		layers, rows = max(layers, n.Layer+1), max(rows, n.Row+1)
		pos[n.ID] = n
	}
	v.Width = 2*mapPad + layers*mapNodeW + max(layers-1, 0)*mapColGap
	v.Height = 2*mapPad + rows*(mapNodeH+mapRowGap) - mapRowGap + 60 // room for back edges
	for i := range v.Edges {
		e := &v.Edges[i]
		f, t := pos[e.From], pos[e.To]
		if f == nil || t == nil {
			continue
		}
		e.Width = 1.2 + math.Min(3.5, math.Log10(1+e.RatePerS))
		if t.Layer > f.Layer {
			x1, y1 := f.X+mapNodeW, f.Y+mapNodeH/2
			x2, y2 := t.X-4, t.Y+mapNodeH/2
			mx := (x1 + x2) / 2
			e.Path = "M" + pt(x1, y1) + " C" + pt(mx, y1) + " " + pt(mx, y2) + " " + pt(x2, y2)
			e.LabelX, e.LabelY = mx, (y1+y2)/2-4
			continue
		}
		x1, y1 := f.X+mapNodeW/2, f.Y+mapNodeH
		x2, y2 := t.X+mapNodeW/2, t.Y+mapNodeH+4
		dip := max(y1, y2) + 40
		e.Path = "M" + pt(x1, y1) + " C" + pt(x1, dip) + " " + pt(x2, dip) + " " + pt(x2, y2)
		e.LabelX, e.LabelY = (x1+x2)/2, dip-6
	}
}

func pt(x, y int) string { return strconv.Itoa(x) + "," + strconv.Itoa(y) }

// mapName keeps a node name inside its box.
func mapName(s string) string {
	if utf8.RuneCountInString(s) <= mapNameMax {
		return s
	}
	r := []rune(s)
	return string(r[:mapNameMax-1]) + "…"
}

func (e MapEdgeView) label() string {
	s := f2(e.RatePerS) + "/s · p99 " + ms(e.P99Ms)
	if e.ErrorRate > 0 {
		s += " · " + pct(e.ErrorRate) + " err"
	}
	return s
}

// showLabel: at 30+ nodes every edge's numbers on the drawing overlap, so
// only the edges that need attention carry them (hot, or failing over 1%).
func (e MapEdgeView) showLabel() bool { return e.Hot || e.ErrorRate > 0.01 }

func (e MapEdgeView) class() string {
	if e.Hot {
		return "map-edge hot"
	}
	return "map-edge"
}

// marker is the arrow head: an attribute, not CSS, because the stylesheet
// is inlined into self-contained reports, which must hold no url().
func (e MapEdgeView) marker() string {
	if e.Hot {
		return "url(#map-arrow-hot)"
	}
	return "url(#map-arrow)"
}

func (n MapNodeView) class() string {
	c := "map-node kind-" + n.Kind
	if n.Entry {
		c += " entry"
	}
	return c
}

func widthAttr(w float64) string { return strconv.FormatFloat(w, 'f', 1, 64) }
