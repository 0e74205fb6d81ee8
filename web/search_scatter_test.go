package web

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The search scatter's time axis is its results' span: over a window much
// longer than the data (a day here) the dots still spread across the plot
// instead of piling up at one edge.
func TestSearchScatterFitsResults(t *testing.T) {
	f := sharedFixture(t)
	w := serve(t, f.handler, "GET", "/search?from=now-24h&limit=100", "")
	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	body := w.Body.String()
	var xs []float64
	for _, m := range regexp.MustCompile(`<circle class="dot[^"]*" cx="([0-9.]+)"`).FindAllStringSubmatch(body, -1) {
		x, _ := strconv.ParseFloat(m[1], 64)
		xs = append(xs, x)
	}
	if len(xs) < 10 {
		t.Fatalf("%d dots", len(xs))
	}
	lo, hi := xs[0], xs[0]
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	// The plot is 960 − 64 − 16 = 880 wide; the results' span with its 5%
	// margins covers ~90% of it.
	if hi-lo < 700 {
		t.Errorf("dots span x %.0f–%.0f of an 880-wide plot, want the results' span to fill it", lo, hi)
	}
	if !strings.Contains(body, `data-testid="scatter-fit"`) {
		t.Error("the page does not say the axis spans the results")
	}
}
