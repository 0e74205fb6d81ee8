// Package chart computes the geometry of tailscope's server-rendered SVG
// charts: scales, "nice" ticks with labels and units, paths and cells. The
// templ components in package components only draw what it computes, so
// every number on a chart is testable without a browser.
package chart

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/tailscope/tailscope/internal/units"
)

// Tick is one labelled axis position, in pixels from the axis origin.
type Tick struct {
	Pos   float64
	Label string
	// At and Fmt are set on time ticks: the tick's instant and the form of
	// its label (TimeFmt*), so a page can rewrite the label in the
	// reader's time zone; Label is the server's, in the axis location.
	At  time.Time
	Fmt string
}

// Forms of a time tick's label.
const (
	TimeFmtDate     = "date"     // Jan 2
	TimeFmtDateTime = "datetime" // Jan 2 15:04
	TimeFmtClock    = "clock"    // 15:04
	TimeFmtClockSec = "clock-s"  // 15:04:05
)

// Linear maps [Min, Max] onto [0, Size] pixels.
type Linear struct {
	Min, Max float64
	Size     float64
	Invert   bool // true for y axes: Min at the bottom
}

// Pos returns the pixel position of v, clamped to the axis.
func (s Linear) Pos(v float64) float64 {
	if s.Max <= s.Min {
		return 0
	}
	f := (v - s.Min) / (s.Max - s.Min)
	f = math.Max(0, math.Min(1, f))
	if s.Invert {
		f = 1 - f
	}
	return f * s.Size
}

// Log maps [Min, Max] (both > 0) onto [0, Size] pixels logarithmically.
type Log struct {
	Min, Max float64
	Size     float64
	Invert   bool
}

// Pos returns the pixel position of v, clamped to the axis.
func (s Log) Pos(v float64) float64 {
	if s.Min <= 0 || s.Max <= s.Min {
		return 0
	}
	if v < s.Min {
		v = s.Min
	}
	f := (math.Log(v) - math.Log(s.Min)) / (math.Log(s.Max) - math.Log(s.Min))
	f = math.Max(0, math.Min(1, f))
	if s.Invert {
		f = 1 - f
	}
	return f * s.Size
}

// NiceMax rounds v up to 1, 2, 2.5 or 5 times a power of ten, so a linear
// axis from 0 ends on a round number.
func NiceMax(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	exp := math.Floor(math.Log10(v))
	base := math.Pow(10, exp)
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*base*(1+1e-9) {
			return m * base
		}
	}
	return 10 * base
}

// LinearTicks returns about n ticks on round values across s, labelled by
// format.
func LinearTicks(s Linear, n int, format func(float64) string) []Tick {
	if s.Max <= s.Min || n < 1 {
		return nil
	}
	step := niceStep((s.Max - s.Min) / float64(n))
	var ticks []Tick
	for v := math.Ceil(s.Min/step) * step; v <= s.Max+step*1e-9; v += step {
		ticks = append(ticks, Tick{Pos: s.Pos(v), Label: format(v)})
	}
	return ticks
}

// niceStep returns the round step (1, 2, 2.5 or 5 times a power of ten)
// closest to raw.
func niceStep(raw float64) float64 {
	base := math.Pow(10, math.Floor(math.Log10(raw)))
	best := base
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if math.Abs(m*base-raw) < math.Abs(best-raw) {
			best = m * base
		}
	}
	return best
}

// LogTicks returns ticks at 1, 2 and 5 times powers of ten across s (only
// powers of ten when the axis spans many decades), labelled by format.
func LogTicks(s Log, format func(float64) string) []Tick {
	if s.Min <= 0 || s.Max <= s.Min {
		return nil
	}
	decades := math.Log10(s.Max / s.Min)
	mults := []float64{1, 2, 5}
	if decades > 3 {
		mults = []float64{1}
	}
	var ticks []Tick
	for e := math.Floor(math.Log10(s.Min)); math.Pow(10, e) <= s.Max; e++ {
		for _, m := range mults {
			v := m * math.Pow(10, e)
			if v < s.Min*(1-1e-9) || v > s.Max*(1+1e-9) {
				continue
			}
			ticks = append(ticks, Tick{Pos: s.Pos(v), Label: format(v)})
		}
	}
	return ticks
}

// timeSteps are the tick spacings a time axis may use.
var timeSteps = []time.Duration{
	time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour,
}

// TimeTicks returns about n ticks on round times (in loc) between from and
// to, mapped onto [0, size]. Labels show the date only where it changes.
func TimeTicks(from, to time.Time, size float64, n int, loc *time.Location) []Tick {
	span := to.Sub(from)
	if span <= 0 || n < 1 {
		return nil
	}
	step := timeSteps[len(timeSteps)-1]
	for _, st := range timeSteps {
		if span/st <= time.Duration(n) {
			step = st
			break
		}
	}
	s := Linear{Min: 0, Max: float64(span), Size: size}
	var ticks []Tick
	t := from.In(loc).Truncate(step)
	if step >= 24*time.Hour {
		y, m, d := from.In(loc).Date()
		t = time.Date(y, m, d, 0, 0, 0, 0, loc)
	}
	for ; !t.After(to); t = t.Add(step) {
		if t.Before(from) {
			continue
		}
		f := timeFmt(t, step, len(ticks) == 0)
		ticks = append(ticks, Tick{Pos: s.Pos(float64(t.Sub(from))), Label: t.Format(timeLayouts[f]), At: t.UTC(), Fmt: f})
	}
	return ticks
}

var timeLayouts = map[string]string{
	TimeFmtDate: "Jan 2", TimeFmtDateTime: "Jan 2 15:04", TimeFmtClock: "15:04", TimeFmtClockSec: "15:04:05",
}

func timeFmt(t time.Time, step time.Duration, first bool) string {
	switch {
	case step >= 24*time.Hour:
		return TimeFmtDate
	case t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 && step >= time.Hour, first && step >= time.Hour:
		return TimeFmtDateTime
	case step < time.Minute:
		return TimeFmtClockSec
	default:
		return TimeFmtClock
	}
}

// FormatCount formats a count compactly: 950, 12.3k, 4.1M.
func FormatCount(v float64) string {
	switch {
	case math.Abs(v) >= 1e9:
		return units.Significant(v/1e9, 3) + "G"
	case math.Abs(v) >= 1e6:
		return units.Significant(v/1e6, 3) + "M"
	case math.Abs(v) >= 1e4:
		return units.Significant(v/1e3, 3) + "k"
	default:
		return units.Significant(v, 3)
	}
}

// FormatPercent formats a fraction as a percentage: 0.123 → "12.3%".
func FormatPercent(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "–"
	}
	p := f * 100
	switch {
	case p == 0:
		return "0%"
	case math.Abs(p) < 0.1:
		return strconv.FormatFloat(p, 'f', 2, 64) + "%"
	case math.Abs(p) < 10:
		return strconv.FormatFloat(p, 'f', 1, 64) + "%"
	default:
		return strconv.FormatFloat(p, 'f', 0, 64) + "%"
	}
}

// F formats a pixel coordinate for SVG attributes with one decimal.
func F(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// Sprintf is fmt.Sprintf, re-exported for templates.
func Sprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }
