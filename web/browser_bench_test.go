package web

import (
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tailscope/tailscope/internal/browsertest"
)

// BenchmarkBrowserWaterfall10k loads the page of a 10,000-span trace in
// headless Chromium and reports the browser's own timings: parse to
// DOMContentLoaded and to the load event (style, layout and the page
// script included). Deep subtrees start collapsed, so most rows are
// display:none.
func BenchmarkBrowserWaterfall10k(b *testing.B) {
	spans := waterfallTrace(10_000)
	srv, _ := benchServer(b, spans)
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	br := browsertest.New(b)
	url := ts.URL + "/traces/" + spans[0].TraceID.String()
	var dcl, load float64
	b.ResetTimer()
	for b.Loop() {
		br.Do(chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`[data-testid="waterfall"]`)))
		t := browsertest.Get(br, chromedp.Evaluate[map[string]float64](`(() => { const n = performance.getEntriesByType("navigation")[0]; return {dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd}; })()`))
		dcl += t["dcl"]
		load += t["load"]
	}
	b.ReportMetric(dcl/float64(b.N), "ms-to-DOMContentLoaded")
	b.ReportMetric(load/float64(b.N), "ms-to-load")
}
