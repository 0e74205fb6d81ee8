package chart

import (
	"math"
	"strings"
	"testing"
	"time"
)

// The last bucket, still filling, continues the line dashed from the last
// complete point instead of being part of it; gaps stay gaps.
func TestTimeChartPartialBucket(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)
	pt := func(min int, v float64, partial bool) Point {
		return Point{T: t0.Add(time.Duration(min) * time.Minute), V: v, Partial: partial}
	}
	c := BuildTimeChart(TimeChartInput{From: t0, To: t0.Add(4 * time.Minute), Width: 464, Height: 144, Series: []Series{
		{Name: "rate", Points: []Point{pt(0, 10, false), pt(1, math.NaN(), false), pt(2, 10, false), pt(3, 10, false), pt(4, 2, true)}},
		{Name: "whole", Points: []Point{pt(0, 10, false), pt(4, 10, false)}},
	}})
	// plot 384 × 100, y 0..10 → 0 at the top, x 96 per minute
	rate := c.Paths[0]
	if rate.D != "M0.0 0.0M192.0 0.0L288.0 0.0" {
		t.Errorf("complete line %q", rate.D)
	}
	if rate.PartialD != "M288.0 0.0L384.0 80.0" {
		t.Errorf("partial line %q, want from the last complete point to the filling bucket", rate.PartialD)
	}
	if c.Paths[1].PartialD != "" || !c.HasPartial() {
		t.Errorf("whole series partial %q; chart HasPartial %v", c.Paths[1].PartialD, c.HasPartial())
	}
}

// Hovering a chart shows every series' value at the nearest bucket time;
// columns tile the plot halfway between neighbours.
func TestTimeChartHoverColumns(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	c := BuildTimeChart(TimeChartInput{From: t0, To: at(4), Width: 464, Height: 144, Series: []Series{
		{Name: "p50", Points: []Point{{T: at(0), V: 5}, {T: at(2), V: 6}, {T: at(4), V: 7, Partial: true}}},
		{Name: "p99", Points: []Point{{T: at(0), V: 50}, {T: at(2), V: math.NaN()}, {T: at(4), V: 70, Partial: true}}},
	}})
	if len(c.Hover) != 3 {
		t.Fatalf("%d columns, want one per bucket time", len(c.Hover))
	}
	var got []string
	for _, h := range c.Hover {
		got = append(got, F(h.X)+"+"+F(h.W)+" "+h.T.Format("15:04")+" "+strings.Join(h.Lines, ", "))
	}
	want := []string{"0.0+96.0 14:00 p50 5 ms, p99 50 ms", "96.0+192.0 14:02 p50 6 ms", "288.0+96.0 14:04 p50 7 ms, p99 70 ms"}
	if strings.Join(got, " | ") != strings.Join(want, " | ") {
		t.Errorf("columns\n got %v\nwant %v", got, want)
	}
	if !c.Hover[2].Partial || c.Hover[0].Partial || !strings.Contains(c.Hover[2].Text(), "still filling") {
		t.Errorf("partial flags %v %v, text %q", c.Hover[0].Partial, c.Hover[2].Partial, c.Hover[2].Text())
	}
	if empty := BuildTimeChart(TimeChartInput{From: t0, To: at(4)}); len(empty.Hover) != 0 {
		t.Errorf("an empty chart has %d hover columns", len(empty.Hover))
	}
}
