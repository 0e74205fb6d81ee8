package chart

import (
	"math"
	"slices"
	"strings"
	"time"
)

// HoverCol is what hovering a time chart shows: the plot's column nearest
// one bucket time, with every series' value there.
type HoverCol struct {
	X, W float64
	T    time.Time
	// Lines are "p99 120 ms", one per series with a value at T.
	Lines []string
	// Partial marks a bucket still filling.
	Partial bool
}

// Text is the column's tooltip without script.
func (h HoverCol) Text() string {
	s := h.T.UTC().Format("2006-01-02 15:04:05") + " UTC"
	if h.Partial {
		s += " (still filling)"
	}
	return s + "\n" + strings.Join(h.Lines, "\n")
}

// hoverColumns splits the plot between the series' times, each column
// reaching halfway to its neighbours.
func hoverColumns(in TimeChartInput, xpos func(time.Time) float64, yf func(float64) string, plotW float64) []HoverCol {
	type at struct {
		lines   []string
		partial bool
	}
	byT := map[int64]*at{}
	for _, s := range in.Series {
		for _, p := range s.Points {
			if p.T.Before(in.From) || p.T.After(in.To) {
				continue
			}
			k := p.T.UnixNano()
			if byT[k] == nil {
				byT[k] = &at{}
			}
			byT[k].partial = byT[k].partial || p.Partial
			if !math.IsNaN(p.V) {
				byT[k].lines = append(byT[k].lines, s.Name+" "+yf(p.V))
			}
		}
	}
	times := make([]int64, 0, len(byT))
	for k := range byT {
		times = append(times, k)
	}
	slices.Sort(times)
	xs := make([]float64, len(times))
	for i, k := range times {
		xs[i] = xpos(time.Unix(0, k))
	}
	cols := make([]HoverCol, 0, len(times))
	for i, k := range times {
		lo, hi := 0.0, plotW
		if i > 0 {
			lo = (xs[i-1] + xs[i]) / 2
		}
		if i+1 < len(xs) {
			hi = (xs[i] + xs[i+1]) / 2
		}
		a := byT[k]
		if len(a.lines) == 0 || hi <= lo {
			continue
		}
		cols = append(cols, HoverCol{X: lo, W: hi - lo, T: time.Unix(0, k).UTC(), Lines: a.lines, Partial: a.partial})
	}
	return cols
}

// linePaths draws a series: complete points as one path, and the points of
// buckets still filling as another, from the last complete point, which
// pages draw dashed so a bucket with half its requests does not read as
// a drop in traffic.
func linePaths(s Series, from, to time.Time, xpos func(time.Time) float64, ypos func(float64) float64) Path {
	var b, partial strings.Builder
	pen := false
	p := Path{Name: s.Name, Class: s.Class}
	lastX, lastY, have := 0.0, 0.0, false
	for _, pt := range s.Points {
		if math.IsNaN(pt.V) || pt.T.Before(from) || pt.T.After(to) {
			pen = false
			continue
		}
		px, py := xpos(pt.T), ypos(pt.V)
		if pt.Partial {
			if partial.Len() == 0 {
				if have {
					partial.WriteString("M" + F(lastX) + " " + F(lastY) + "L")
				} else {
					partial.WriteString("M")
				}
			} else {
				partial.WriteString("L")
			}
			partial.WriteString(F(px) + " " + F(py))
		} else {
			if pen {
				b.WriteString("L")
			} else {
				b.WriteString("M")
			}
			b.WriteString(F(px) + " " + F(py))
			pen = true
			lastX, lastY, have = px, py, true
		}
		p.LastX, p.LastY = px, py
	}
	p.D, p.PartialD = b.String(), partial.String()
	return p
}
