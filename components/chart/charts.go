package chart

import (
	"math"
	"strings"
	"time"

	"github.com/tailscope/tailscope/internal/units"
)

// Frame is a chart's size and the margins around its plot area.
type Frame struct {
	Width, Height            float64
	Left, Right, Top, Bottom float64
}

// PlotW is the plot area's width.
func (f Frame) PlotW() float64 { return f.Width - f.Left - f.Right }

// PlotH is the plot area's height.
func (f Frame) PlotH() float64 { return f.Height - f.Top - f.Bottom }

// defaultFrame leaves room for y labels on the left and x labels below.
func defaultFrame(w, h float64) Frame {
	if w <= 0 {
		w = 960
	}
	if h <= 0 {
		h = 260
	}
	return Frame{Width: w, Height: h, Left: 64, Right: 16, Top: 14, Bottom: 30}
}

// Point is one value at a time; NaN values leave a gap in the line.
// Partial marks a bucket still filling (it ends after now), drawn dashed.
type Point struct {
	T       time.Time
	V       float64
	Partial bool
}

// Series is one named line.
type Series struct {
	Name   string
	Class  string // CSS class choosing the colour, e.g. "s-p99"
	Points []Point
}

// Marker is a vertical line at a time, e.g. a deploy.
type Marker struct {
	T     time.Time
	Label string
	Href  string
	// FirstSeen draws the marker as a service's first sighting rather
	// than a deploy.
	FirstSeen bool
}

// Band shades a time range, e.g. an incident.
type Band struct {
	From, To time.Time
	Label    string
}

// TimeChartInput describes a time-series chart.
type TimeChartInput struct {
	From, To      time.Time
	Series        []Series
	Markers       []Marker
	Bands         []Band
	YLabel        string
	YFormat       func(float64) string // default units.Ms
	LogY          bool
	Width, Height float64
	Loc           *time.Location // tick labels; default UTC
}

// Path is an SVG path with its series name and class.
type Path struct {
	Name, Class, D string
	// PartialD continues D through buckets still filling.
	PartialD string
	// Last is the final point, where a direct label is drawn.
	LastX, LastY float64
}

// MarkerGeom is a positioned Marker.
type MarkerGeom struct {
	X           float64
	Label, Href string
	FirstSeen   bool
}

// BandGeom is a positioned Band.
type BandGeom struct {
	X, W  float64
	Label string
}

// TimeChart is the geometry of a time-series chart.
type TimeChart struct {
	Frame
	XTicks, YTicks []Tick
	YLabel         string
	Paths          []Path
	Markers        []MarkerGeom
	Bands          []BandGeom
	Empty          bool
	// Hover holds the values shown when hovering each bucket.
	Hover []HoverCol
}

// HasPartial reports whether a series has a bucket still filling.
func (c TimeChart) HasPartial() bool {
	for _, p := range c.Paths {
		if p.PartialD != "" {
			return true
		}
	}
	return false
}

// MarkerKinds reports whether the chart has deploy markers and first-seen
// markers, for its legend.
func (c TimeChart) MarkerKinds() (deploys, firstSeen bool) {
	for _, m := range c.Markers {
		if m.FirstSeen {
			firstSeen = true
		} else {
			deploys = true
		}
	}
	return deploys, firstSeen
}

// BuildTimeChart lays out in.
func BuildTimeChart(in TimeChartInput) TimeChart {
	f := defaultFrame(in.Width, in.Height)
	loc := in.Loc
	if loc == nil {
		loc = time.UTC
	}
	yf := in.YFormat
	if yf == nil {
		yf = units.Ms
	}
	c := TimeChart{Frame: f, YLabel: in.YLabel, Empty: true}
	span := float64(in.To.Sub(in.From))
	x := Linear{Min: 0, Max: span, Size: f.PlotW()}
	xpos := func(t time.Time) float64 { return x.Pos(float64(t.Sub(in.From))) }

	maxV, minV := 0.0, math.Inf(1)
	for _, s := range in.Series {
		for _, p := range s.Points {
			if math.IsNaN(p.V) {
				continue
			}
			c.Empty = false
			maxV = math.Max(maxV, p.V)
			if p.V > 0 {
				minV = math.Min(minV, p.V)
			}
		}
	}
	var ypos func(float64) float64
	if in.LogY && !c.Empty && maxV > 0 {
		lo := math.Pow(10, math.Floor(math.Log10(minV)))
		hi := math.Pow(10, math.Ceil(math.Log10(maxV)))
		if hi <= lo {
			hi = lo * 10
		}
		ys := Log{Min: lo, Max: hi, Size: f.PlotH(), Invert: true}
		ypos = ys.Pos
		c.YTicks = LogTicks(ys, yf)
	} else {
		ys := Linear{Min: 0, Max: NiceMax(maxV), Size: f.PlotH(), Invert: true}
		ypos = ys.Pos
		c.YTicks = LinearTicks(ys, 4, yf)
	}
	c.XTicks = TimeTicks(in.From, in.To, f.PlotW(), int(math.Max(2, f.PlotW()/110)), loc)

	for _, s := range in.Series {
		c.Paths = append(c.Paths, linePaths(s, in.From, in.To, xpos, ypos))
	}
	if !c.Empty {
		c.Hover = hoverColumns(in, xpos, yf, f.PlotW())
	}
	for _, m := range in.Markers {
		if m.T.Before(in.From) || m.T.After(in.To) {
			continue
		}
		c.Markers = append(c.Markers, MarkerGeom{X: xpos(m.T), Label: m.Label, Href: m.Href, FirstSeen: m.FirstSeen})
	}
	for _, bd := range in.Bands {
		x0, x1 := xpos(bd.From), xpos(bd.To)
		if x1 <= x0 {
			continue
		}
		c.Bands = append(c.Bands, BandGeom{X: x0, W: x1 - x0, Label: bd.Label})
	}
	return c
}

// Bar is one histogram bucket: [LoMs, HiMs) with Count values.
type Bar struct {
	LoMs, HiMs float64
	Count      int64
	// Href lists the bucket's traces.
	Href string
	// Class marks bars, e.g. "tail" for buckets at or above the threshold.
	Class string
}

// HistogramInput describes a latency histogram on a log x axis.
type HistogramInput struct {
	Bars          []Bar
	Lines         []VLine // e.g. p50, p99 at their latency
	Width, Height float64
}

// VLine is a labelled vertical line at a latency.
type VLine struct {
	Ms    float64
	Label string
	Class string
}

// BarGeom is a positioned bar.
type BarGeom struct {
	X, Y, W, H float64
	Bar
	Title string
}

// VLineGeom is a positioned VLine.
type VLineGeom struct {
	X float64
	VLine
}

// Histogram is the geometry of a latency histogram.
type Histogram struct {
	Frame
	XTicks, YTicks []Tick
	Bars           []BarGeom
	Lines          []VLineGeom
	Empty          bool
}

// BuildHistogram lays out in. Bars sit on a log latency axis because
// latency spans decades; heights are linear counts.
func BuildHistogram(in HistogramInput) Histogram {
	f := defaultFrame(in.Width, in.Height)
	h := Histogram{Frame: f, Empty: true}
	lo, hi := math.Inf(1), 0.0
	var maxC int64
	for _, b := range in.Bars {
		if b.Count == 0 || b.HiMs <= 0 {
			continue
		}
		h.Empty = false
		lo = math.Min(lo, math.Max(b.LoMs, b.HiMs/2))
		hi = math.Max(hi, b.HiMs)
		if b.Count > maxC {
			maxC = b.Count
		}
	}
	if h.Empty {
		return h
	}
	xs := Log{Min: math.Pow(10, math.Floor(math.Log10(lo))), Max: math.Pow(10, math.Ceil(math.Log10(hi))), Size: f.PlotW()}
	if xs.Max <= xs.Min {
		xs.Max = xs.Min * 10
	}
	ys := Linear{Min: 0, Max: NiceMax(float64(maxC)), Size: f.PlotH(), Invert: true}
	h.XTicks = LogTicks(xs, units.Ms)
	h.YTicks = LinearTicks(ys, 4, FormatCount)
	for _, b := range in.Bars {
		if b.Count == 0 {
			continue
		}
		x0 := xs.Pos(math.Max(b.LoMs, xs.Min))
		x1 := xs.Pos(b.HiMs)
		y := ys.Pos(float64(b.Count))
		w := math.Max(1, x1-x0-1)
		h.Bars = append(h.Bars, BarGeom{
			X: x0, Y: y, W: w, H: f.PlotH() - y, Bar: b,
			Title: FormatCount(float64(b.Count)) + " requests between " + units.Ms(b.LoMs) + " and " + units.Ms(b.HiMs),
		})
	}
	for _, l := range in.Lines {
		if l.Ms <= 0 {
			continue
		}
		h.Lines = append(h.Lines, VLineGeom{X: xs.Pos(l.Ms), VLine: l})
	}
	return h
}

// Cell is one heatmap cell: a time bucket × latency bucket count.
type Cell struct {
	From, To   time.Time
	LoMs, HiMs float64
	Count      int64
	Href       string
}

// HeatmapInput describes a latency heatmap.
type HeatmapInput struct {
	From, To      time.Time
	Cells         []Cell
	Width, Height float64
	Loc           *time.Location
}

// CellGeom is a positioned cell with its colour level (1..9).
type CellGeom struct {
	X, Y, W, H float64
	Level      int
	Cell
	Title string
}

// Heatmap is the geometry of a heatmap.
type Heatmap struct {
	Frame
	XTicks, YTicks []Tick
	Cells          []CellGeom
	MaxCount       int64
	Empty          bool
}

// BuildHeatmap lays out in: time across, log latency up, colour levels on a
// log count scale so a few slow requests still show next to thousands of
// fast ones.
func BuildHeatmap(in HeatmapInput) Heatmap {
	f := defaultFrame(in.Width, in.Height)
	loc := in.Loc
	if loc == nil {
		loc = time.UTC
	}
	hm := Heatmap{Frame: f, Empty: true}
	lo, hi := math.Inf(1), 0.0
	for _, c := range in.Cells {
		if c.Count == 0 {
			continue
		}
		hm.Empty = false
		lo = math.Min(lo, math.Max(c.LoMs, c.HiMs/2))
		hi = math.Max(hi, c.HiMs)
		if c.Count > hm.MaxCount {
			hm.MaxCount = c.Count
		}
	}
	if hm.Empty {
		return hm
	}
	xs := Linear{Min: 0, Max: float64(in.To.Sub(in.From)), Size: f.PlotW()}
	ys := Log{Min: math.Pow(10, math.Floor(math.Log10(lo))), Max: math.Pow(10, math.Ceil(math.Log10(hi))), Size: f.PlotH(), Invert: true}
	if ys.Max <= ys.Min {
		ys.Max = ys.Min * 10
	}
	hm.XTicks = TimeTicks(in.From, in.To, f.PlotW(), int(math.Max(2, f.PlotW()/110)), loc)
	hm.YTicks = LogTicks(ys, units.Ms)
	logMax := math.Log1p(float64(hm.MaxCount))
	for _, c := range in.Cells {
		if c.Count == 0 {
			continue
		}
		x0 := xs.Pos(float64(c.From.Sub(in.From)))
		x1 := xs.Pos(float64(c.To.Sub(in.From)))
		y0 := ys.Pos(c.HiMs)
		y1 := ys.Pos(math.Max(c.LoMs, ys.Min))
		level := 1 + int(8*math.Log1p(float64(c.Count))/logMax)
		if level > 9 {
			level = 9
		}
		hm.Cells = append(hm.Cells, CellGeom{
			X: x0, Y: y0, W: math.Max(1, x1-x0), H: math.Max(1, y1-y0), Level: level, Cell: c,
			Title: FormatCount(float64(c.Count)) + " requests, " + units.Ms(c.LoMs) + "–" + units.Ms(c.HiMs) + ", " +
				c.From.In(loc).Format("15:04:05") + "–" + c.To.In(loc).Format("15:04:05 MST"),
		})
	}
	return hm
}

// Dot is one scatter point: a trace's start and duration.
type Dot struct {
	T     time.Time
	Ms    float64
	Error bool
	Href  string
	Title string
}

// ScatterInput describes a duration-over-time scatter plot.
type ScatterInput struct {
	From, To      time.Time
	Dots          []Dot
	Width, Height float64
	Loc           *time.Location
}

// DotGeom is a positioned Dot.
type DotGeom struct {
	X, Y float64
	Dot
}

// Scatter is the geometry of a scatter plot.
type Scatter struct {
	Frame
	XTicks, YTicks []Tick
	Dots           []DotGeom
	Empty          bool
}

// BuildScatter lays out in with a log duration axis.
func BuildScatter(in ScatterInput) Scatter {
	f := defaultFrame(in.Width, in.Height)
	loc := in.Loc
	if loc == nil {
		loc = time.UTC
	}
	sc := Scatter{Frame: f, Empty: len(in.Dots) == 0}
	if sc.Empty {
		return sc
	}
	lo, hi := math.Inf(1), 0.0
	for _, d := range in.Dots {
		if d.Ms > 0 {
			lo = math.Min(lo, d.Ms)
			hi = math.Max(hi, d.Ms)
		}
	}
	if hi == 0 {
		lo, hi = 0.1, 1
	}
	ys := Log{Min: math.Pow(10, math.Floor(math.Log10(lo))), Max: math.Pow(10, math.Ceil(math.Log10(hi))), Size: f.PlotH(), Invert: true}
	if ys.Max <= ys.Min {
		ys.Max = ys.Min * 10
	}
	xs := Linear{Min: 0, Max: float64(in.To.Sub(in.From)), Size: f.PlotW()}
	sc.XTicks = TimeTicks(in.From, in.To, f.PlotW(), int(math.Max(2, f.PlotW()/110)), loc)
	sc.YTicks = LogTicks(ys, units.Ms)
	for _, d := range in.Dots {
		sc.Dots = append(sc.Dots, DotGeom{X: xs.Pos(float64(d.T.Sub(in.From))), Y: ys.Pos(math.Max(d.Ms, ys.Min)), Dot: d})
	}
	return sc
}

// Sparkline is a tiny line without axes.
type Sparkline struct {
	Width, Height float64
	D             string
	Max           float64
	Empty         bool
}

// BuildSparkline draws values evenly spaced; NaN values are gaps.
func BuildSparkline(values []float64, width, height float64) Sparkline {
	sp := Sparkline{Width: width, Height: height, Empty: true}
	for _, v := range values {
		if !math.IsNaN(v) {
			sp.Max = math.Max(sp.Max, v)
			sp.Empty = false
		}
	}
	if sp.Empty || len(values) < 2 {
		sp.Empty = true
		return sp
	}
	ys := Linear{Min: 0, Max: sp.Max * 1.05, Size: height - 2, Invert: true}
	var b strings.Builder
	pen := false
	for i, v := range values {
		if math.IsNaN(v) {
			pen = false
			continue
		}
		x := float64(i) / float64(len(values)-1) * width
		if pen {
			b.WriteString("L")
		} else {
			b.WriteString("M")
		}
		b.WriteString(F(x) + " " + F(ys.Pos(v)+1))
		// An isolated value gets a tiny stroke so the round cap shows it
		// as a dot instead of nothing.
		if !pen && (i+1 >= len(values) || math.IsNaN(values[i+1])) {
			b.WriteString("l0.1 0")
		}
		pen = true
	}
	sp.D = b.String()
	return sp
}

// CDFInput describes cumulative distributions to overlay, e.g. before and
// after a deploy.
type CDFInput struct {
	Series        []CDFSeries
	Width, Height float64
}

// CDFSeries is one distribution as sorted (latency ms, cumulative fraction)
// points.
type CDFSeries struct {
	Name, Class string
	Ms          []float64 // ascending
	Frac        []float64 // cumulative fraction in [0, 1], same length
}

// CDF is the geometry of a CDF overlay.
type CDF struct {
	Frame
	XTicks, YTicks []Tick
	Paths          []Path
	Empty          bool
}

// BuildCDF lays out in with a log latency axis.
func BuildCDF(in CDFInput) CDF {
	f := defaultFrame(in.Width, in.Height)
	c := CDF{Frame: f, Empty: true}
	lo, hi := math.Inf(1), 0.0
	for _, s := range in.Series {
		for _, v := range s.Ms {
			if v > 0 {
				c.Empty = false
				lo = math.Min(lo, v)
				hi = math.Max(hi, v)
			}
		}
	}
	if c.Empty {
		return c
	}
	xs := Log{Min: math.Pow(10, math.Floor(math.Log10(lo))), Max: math.Pow(10, math.Ceil(math.Log10(hi))), Size: f.PlotW()}
	if xs.Max <= xs.Min {
		xs.Max = xs.Min * 10
	}
	ys := Linear{Min: 0, Max: 1, Size: f.PlotH(), Invert: true}
	c.XTicks = LogTicks(xs, units.Ms)
	c.YTicks = LinearTicks(ys, 4, FormatPercent)
	for _, s := range in.Series {
		var b strings.Builder
		p := Path{Name: s.Name, Class: s.Class}
		for i := range s.Ms {
			if i >= len(s.Frac) {
				break
			}
			px, py := xs.Pos(math.Max(s.Ms[i], xs.Min)), ys.Pos(s.Frac[i])
			if i == 0 {
				b.WriteString("M")
			} else {
				b.WriteString("L")
			}
			b.WriteString(F(px) + " " + F(py))
			p.LastX, p.LastY = px, py
		}
		p.D = b.String()
		c.Paths = append(c.Paths, p)
	}
	return c
}
