package chart

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tailscope/tailscope/internal/units"
)

func TestFormatOthers(t *testing.T) {
	tests := []struct{ got, want string }{
		{FormatCount(950), "950"},
		{FormatCount(12_300), "12.3k"},
		{FormatCount(4_100_000), "4.1M"},
		{FormatPercent(0.123), "12%"},
		{FormatPercent(0.0123), "1.2%"},
		{FormatPercent(0.000123), "0.01%"},
		{FormatPercent(0), "0%"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestNiceMax(t *testing.T) {
	for _, tt := range []struct{ in, want float64 }{
		{0, 1}, {0.7, 1}, {1, 1}, {1.3, 2}, {2.2, 2.5}, {3, 5}, {7, 10}, {420, 500}, {1800, 2000}, {2600, 5000},
	} {
		if got := NiceMax(tt.in); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("NiceMax(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestLinearTicksAreRoundAndInside(t *testing.T) {
	s := Linear{Min: 0, Max: 500, Size: 200, Invert: true}
	ticks := LinearTicks(s, 4, units.Ms)
	want := []string{"0 ms", "100 ms", "200 ms", "300 ms", "400 ms", "500 ms"}
	if len(ticks) != len(want) {
		t.Fatalf("got %d ticks %v, want %v", len(ticks), ticks, want)
	}
	for i, tk := range ticks {
		if tk.Label != want[i] {
			t.Errorf("tick %d = %q, want %q", i, tk.Label, want[i])
		}
		if tk.Pos < 0 || tk.Pos > 200 {
			t.Errorf("tick %q at %v outside the axis", tk.Label, tk.Pos)
		}
	}
	if ticks[0].Pos != 200 || ticks[len(ticks)-1].Pos != 0 {
		t.Errorf("inverted axis: 0 at %v, max at %v; want 200 and 0", ticks[0].Pos, ticks[len(ticks)-1].Pos)
	}
}

func TestLogTicks(t *testing.T) {
	s := Log{Min: 1, Max: 1000, Size: 300}
	var labels []string
	for _, tk := range LogTicks(s, units.Ms) {
		labels = append(labels, tk.Label)
	}
	got := strings.Join(labels, ",")
	want := "1 ms,2 ms,5 ms,10 ms,20 ms,50 ms,100 ms,200 ms,500 ms,1 s"
	if got != want {
		t.Errorf("log ticks = %s, want %s", got, want)
	}
	if p := s.Pos(10); math.Abs(p-100) > 1e-9 {
		t.Errorf("Pos(10) on 1..1000 over 300px = %v, want 100", p)
	}
}

func TestTimeTicks(t *testing.T) {
	from := time.Date(2026, 11, 23, 14, 2, 0, 0, time.UTC)
	to := from.Add(time.Hour)
	ticks := TimeTicks(from, to, 600, 6, time.UTC)
	if len(ticks) < 3 || len(ticks) > 7 {
		t.Fatalf("got %d ticks for an hour at ~6 ticks", len(ticks))
	}
	for _, tk := range ticks {
		if tk.Pos < 0 || tk.Pos > 600 {
			t.Errorf("tick %q at %v outside the axis", tk.Label, tk.Pos)
		}
	}
	// 10-minute steps aligned to the clock: the first tick is 14:10.
	if ticks[0].Label != "Nov 23 14:10" && ticks[0].Label != "14:10" {
		t.Errorf("first tick %q, want 14:10", ticks[0].Label)
	}
}

func TestBuildTimeChartGapsAndMarkers(t *testing.T) {
	from := time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)
	to := from.Add(10 * time.Minute)
	pts := []Point{
		{T: from.Add(1 * time.Minute), V: 100},
		{T: from.Add(2 * time.Minute), V: 200},
		{T: from.Add(3 * time.Minute), V: math.NaN()},
		{T: from.Add(4 * time.Minute), V: 150},
	}
	c := BuildTimeChart(TimeChartInput{
		From: from, To: to,
		Series:  []Series{{Name: "p99", Class: "s-p99", Points: pts}},
		Markers: []Marker{{T: from.Add(5 * time.Minute), Label: "v2"}, {T: to.Add(time.Hour), Label: "outside"}},
	})
	if c.Empty {
		t.Fatal("chart with points reported empty")
	}
	if got := strings.Count(c.Paths[0].D, "M"); got != 2 {
		t.Errorf("path %q has %d segments, want 2 (NaN breaks the line)", c.Paths[0].D, got)
	}
	if len(c.Markers) != 1 || c.Markers[0].Label != "v2" {
		t.Errorf("markers = %+v, want only v2 (the other is outside the window)", c.Markers)
	}
	if x := c.Markers[0].X; math.Abs(x-c.PlotW()/2) > 0.5 {
		t.Errorf("marker at the middle of the window drawn at %v of %v", x, c.PlotW())
	}
}

func TestBuildHeatmapLevels(t *testing.T) {
	from := time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)
	hm := BuildHeatmap(HeatmapInput{From: from, To: from.Add(2 * time.Minute), Cells: []Cell{
		{From: from, To: from.Add(time.Minute), LoMs: 10, HiMs: 20, Count: 1000},
		{From: from, To: from.Add(time.Minute), LoMs: 1000, HiMs: 2000, Count: 1},
		{From: from.Add(time.Minute), To: from.Add(2 * time.Minute), LoMs: 10, HiMs: 20, Count: 0},
	}})
	if len(hm.Cells) != 2 {
		t.Fatalf("got %d cells, want 2 (zero counts are not drawn)", len(hm.Cells))
	}
	if hm.Cells[0].Level != 9 || hm.Cells[1].Level < 1 || hm.Cells[1].Level >= 9 {
		t.Errorf("levels = %d and %d; want 9 for the max and a visible low level for one request", hm.Cells[0].Level, hm.Cells[1].Level)
	}
	if hm.Cells[1].Y >= hm.Cells[0].Y {
		t.Error("the slow cell is not drawn above the fast one")
	}
}

func TestBuildSparkline(t *testing.T) {
	if sp := BuildSparkline([]float64{math.NaN(), math.NaN()}, 100, 20); !sp.Empty {
		t.Error("all-NaN sparkline not empty")
	}
	sp := BuildSparkline([]float64{1, 2, 3}, 100, 20)
	if sp.Empty || !strings.HasPrefix(sp.D, "M0.0 ") || !strings.Contains(sp.D, "L100.0 ") {
		t.Errorf("sparkline path %q does not span the width", sp.D)
	}
}
