package components

import (
	"hash/fnv"
	"math"
	"strconv"
	"strings"

	"github.com/a-h/templ"

	"github.com/tailscope/tailscope/components/chart"
	"github.com/tailscope/tailscope/internal/units"
)

// FlameGraph is the view model of a server-rendered flame graph (an icicle:
// the root on top, callees below) and its top-functions table. Frames are
// absolutely positioned HTML elements, so the page's search box (see
// FlameSearch) can highlight them and long names ellipsize in CSS.
type FlameGraph struct {
	// Label names the graph for assistive technology and the caption,
	// e.g. "CPU of span GET /v1/feed".
	Label  string
	TestID string
	// Unit of the values: "nanoseconds", "bytes" or "count".
	Unit string
	// Diff marks a differential graph: frames are coloured by how much
	// their self share grew in the outliers (red) or shrank (blue), and
	// the Baseline*/Outlier* fields hold the values. Otherwise frames are
	// coloured by package, and Self and Total hold the values.
	Diff   bool
	Total  int64 // the root's value (ordinary graphs)
	Frames []FlameFrame
	Top    []FlameFunction
	// Empty explains a graph without samples, e.g. "no CPU samples were
	// taken during this span".
	Empty string
	// Caution warns that the graph stands on few samples.
	Caution string
}

// FlameFrame is one positioned frame.
type FlameFrame struct {
	Name     string // the full function name; "" for the root ("all")
	Depth    int    // 0 for the root
	X, Width float64
	// Ordinary graphs: the frame's own and total value.
	Self, Total int64
	// Differential graphs: shares of the baseline's and of the outliers'
	// totals, in [0, 1].
	BaselineSelf, OutlierSelf, BaselineTotal, OutlierTotal float64
}

// FlameFunction is one row of the top-functions table.
type FlameFunction struct {
	Name        string
	Self, Total int64
	// Differential tables: self shares of the baseline and the outliers.
	BaselineSelf, OutlierSelf float64
}

// flameRowRem is the height of one frame row; .flame .frame in app.css is
// 1.25rem high.
const flameRowRem = 1.25

// depth is the number of rows the graph needs.
func (g FlameGraph) depth() int {
	d := 0
	for _, f := range g.Frames {
		d = max(d, f.Depth+1)
	}
	return d
}

func (g FlameGraph) heightStyle() templ.SafeCSS {
	return templ.SafeCSS("height:" + strconv.FormatFloat(float64(g.depth())*flameRowRem, 'f', 2, 64) + "rem")
}

// frameStyle positions a frame and colours it. The values are numbers and
// colours this package formats, so they are safe CSS.
func (g FlameGraph) frameStyle(f FlameFrame) templ.SafeCSS {
	var b strings.Builder
	b.WriteString("left:")
	b.WriteString(strconv.FormatFloat(f.X*100, 'f', 4, 64))
	b.WriteString("%;width:")
	b.WriteString(strconv.FormatFloat(f.Width*100, 'f', 4, 64))
	b.WriteString("%;top:")
	b.WriteString(strconv.FormatFloat(float64(f.Depth)*flameRowRem, 'f', 2, 64))
	b.WriteString("rem;background:")
	if g.Diff {
		b.WriteString(g.diffColour(f))
	} else {
		b.WriteString(packageColour(f.Name))
	}
	return templ.SafeCSS(b.String())
}

// packageColour gives every frame of one Go package the same warm or cool
// pastel, so a package's share of the graph reads at a glance; the root is
// grey.
func packageColour(name string) string {
	if name == "" {
		return "hsl(0 0% 82%)"
	}
	h := fnv.New32a()
	h.Write([]byte(packageOf(name)))
	return "hsl(" + strconv.Itoa(int(h.Sum32()%360)) + " 55% 74%)"
}

// packageOf returns the import path part of a Go function name:
// "github.com/acme/feed/rank.(*Ranker).Score" → "github.com/acme/feed/rank",
// "main.main.func1" → "main". Other names are returned whole.
func packageOf(fn string) string {
	slash := strings.LastIndexByte(fn, '/')
	if dot := strings.IndexByte(fn[slash+1:], '.'); dot > 0 {
		return fn[:slash+1+dot]
	}
	return fn
}

// diffFullScale is the self-share change that gets the strongest colour;
// smaller changes are paler. A fixed scale (rather than the largest change
// in the graph) keeps noise pale when nothing changed much.
const diffFullScale = 0.10

// diffColour is red when the frame's self share grew in the outliers,
// blue when it shrank, near white when it stayed.
func (g FlameGraph) diffColour(f FlameFrame) string {
	d := f.OutlierSelf - f.BaselineSelf
	t := math.Min(math.Abs(d)/diffFullScale, 1)
	light := strconv.FormatFloat(94-34*t, 'f', 1, 64) // 94% → 60%
	switch {
	case d > 0:
		return "hsl(0 80% " + light + "%)"
	case d < 0:
		return "hsl(215 80% " + light + "%)"
	}
	return "hsl(0 0% 92%)"
}

// frameText is the text drawn inside a frame: the name without its import
// path, and nothing for frames too narrow to hold a few characters (the
// title still names them).
func frameText(f FlameFrame) string {
	if f.Name == "" {
		return "all"
	}
	if f.Width < 0.02 {
		return ""
	}
	return shortName(f.Name)
}

// shortName drops the import path: "github.com/acme/feed/rank.Score" →
// "rank.Score".
func shortName(fn string) string {
	return fn[strings.LastIndexByte(fn, '/')+1:]
}

func displayName(name string) string {
	if name == "" {
		return "all"
	}
	return name
}

// frameTitle is the tooltip and accessible description of a frame:
// function, self, total and share.
func (g FlameGraph) frameTitle(f FlameFrame) string {
	if g.Diff {
		return displayName(f.Name) +
			" — self: baseline " + pct(f.BaselineSelf) + ", outliers " + pct(f.OutlierSelf) + " (" + signedPoints(f.OutlierSelf-f.BaselineSelf) + ")" +
			"; total: baseline " + pct(f.BaselineTotal) + ", outliers " + pct(f.OutlierTotal)
	}
	return displayName(f.Name) + " — self " + g.value(f.Self) + " (" + g.share(f.Self) + "), total " +
		g.value(f.Total) + " (" + g.share(f.Total) + ")"
}

// value formats v in the graph's unit.
func (g FlameGraph) value(v int64) string {
	switch g.Unit {
	case "nanoseconds":
		return units.Ms(float64(v) / 1e6)
	case "bytes":
		return units.Bytes(float64(v))
	default:
		return chart.FormatCount(float64(v))
	}
}

// share formats v as a share of the graph's total.
func (g FlameGraph) share(v int64) string {
	if g.Total <= 0 {
		return "–"
	}
	return pct(float64(v) / float64(g.Total))
}

// signedPoints formats a share difference in percentage points: "+12.5 pts".
func signedPoints(d float64) string {
	s := strconv.FormatFloat(math.Abs(d)*100, 'f', 1, 64) + " pts"
	if d < 0 {
		return "−" + s
	}
	return "+" + s
}

// unitWord names what the values measure, for captions.
func (g FlameGraph) unitWord() string {
	switch g.Unit {
	case "nanoseconds":
		return "time"
	case "bytes":
		return "bytes"
	default:
		return "count"
	}
}
