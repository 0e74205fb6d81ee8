package web

import (
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tailscope/tailscope/internal/browsertest"
	"github.com/tailscope/tailscope/internal/testenv"
)

// dragJS drags the mouse over the chart in the [data-chart-select] box
// sel, across the bounding box of the marks chosen by pick (a JavaScript
// function of the marks returning some of them).
func dragJS(sel, pick string) string {
	return `(() => {
		const box = document.querySelector('` + sel + `');
		const svg = box.querySelector("svg");
		const marks = (` + pick + `)([...svg.querySelectorAll("rect[data-lo]")]);
		const rs = marks.map(m => m.getBoundingClientRect());
		const x0 = Math.min(...rs.map(r => r.left)) + 1, x1 = Math.max(...rs.map(r => r.right)) - 1;
		const y0 = Math.min(...rs.map(r => r.top)) + 1, y1 = Math.max(...rs.map(r => r.bottom)) - 1;
		const ev = (type, x, y, target) => target.dispatchEvent(new MouseEvent(type, {clientX: x, clientY: y, button: 0, bubbles: true}));
		ev("mousedown", x0, y0, svg);
		ev("mousemove", (x0 + x1) / 2, (y0 + y1) / 2, svg);
		ev("mouseup", x1, y1, svg);
		return marks.length;
	})()`
}

// TestBrowserChartSelections: dragging across the latency heatmap or
// histogram offers the outliers view of that selection ("what do these
// share?"), whose link carries the selection's window and threshold and
// opens an analysis of exactly those.
func TestBrowserChartSelections(t *testing.T) {
	testenv.Chromium(t)
	f := sharedFixture(t)
	srv := httptest.NewServer(f.handler)
	defer srv.Close()
	b := browsertest.New(t)
	page := srv.URL + "/latency?service=feed-api&endpoint=GET+/v1/feed&from=now-2h"

	outliersLink := func(t *testing.T) url.Values {
		t.Helper()
		b.Do(chromedp.WaitVisible(chromedp.CSS(`[data-testid="chart-selection"]`)))
		raw := browsertest.Get(b, chromedp.Evaluate[string](`document.querySelector('[data-testid="selection-outliers"]').getAttribute("href")`))
		if focused := browsertest.Get(b, chromedp.Evaluate[string](`document.activeElement.dataset.testid || ""`)); focused != "selection-outliers" {
			t.Errorf("focus on %q after the selection, want its outliers link", focused)
		}
		u, err := url.Parse(raw)
		if err != nil || u.Path != "/outliers" {
			t.Fatalf("selection links to %q", raw)
		}
		q := u.Query()
		if q.Get("service") != "feed-api" || q.Get("endpoint") != "GET /v1/feed" {
			t.Errorf("outliers link %s lost the endpoint", raw)
		}
		return q
	}
	opens := func(t *testing.T, q url.Values, threshold float64) {
		t.Helper()
		b.Do(chromedp.Navigate(srv.URL+"/outliers?"+q.Encode()), chromedp.WaitVisible(chromedp.CSS(`h1`)))
		body := browsertest.Get(b, chromedp.Evaluate[string](`document.body.innerText`))
		if strings.Contains(body, "That request does not work") {
			t.Fatalf("outliers of the selection: %s", body[:min(len(body), 400)])
		}
		got := browsertest.Get(b, chromedp.Evaluate[string](`(document.querySelector('input[name="threshold_ms"]') || {}).value || ""`))
		if v, _ := strconv.ParseFloat(got, 64); v != threshold {
			t.Errorf("outliers page threshold %q, want %g", got, threshold)
		}
	}

	t.Run("heatmap region", func(t *testing.T) {
		b.Do(chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(`[data-testid="latency-heatmap"]`)))
		// the slowest row's cells: the region an engineer drags around
		n := browsertest.Get(b, chromedp.Evaluate[int](dragJS(`[data-chart-select="xy"]`,
			`ms => { const top = Math.max(...ms.map(m => Number(m.dataset.lo))); return ms.filter(m => Number(m.dataset.lo) === top); }`)))
		if n == 0 {
			t.Fatal("no heatmap cells")
		}
		q := outliersLink(t)
		top := browsertest.Get(b, chromedp.Evaluate[float64](`Math.max(...[...document.querySelectorAll('[data-chart-select="xy"] rect[data-lo]')].map(m => Number(m.dataset.lo)))`))
		if th, _ := strconv.ParseFloat(q.Get("threshold_ms"), 64); th != top {
			t.Errorf("threshold_ms %q, want the slowest row's lower bound %g", q.Get("threshold_ms"), top)
		}
		if q.Get("from") == "now-2h" || q.Get("from") == "" || q.Get("to") == "" {
			t.Errorf("window %s–%s, want the selected cells' own times", q.Get("from"), q.Get("to"))
		}
		b.Screenshot("latency-heatmap-selection")
		opens(t, q, top)
	})

	t.Run("histogram band", func(t *testing.T) {
		b.Do(chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(`[data-testid="latency-histogram"]`)))
		// the slowest half of the bars
		browsertest.Get(b, chromedp.Evaluate[int](dragJS(`[data-chart-select="x"]`,
			`ms => ms.sort((a, b) => Number(a.dataset.lo) - Number(b.dataset.lo)).slice(Math.floor(ms.length / 2))`)))
		q := outliersLink(t)
		lo := browsertest.Get(b, chromedp.Evaluate[float64](`(() => { const ms = [...document.querySelectorAll('[data-chart-select="x"] rect[data-lo]')].map(m => Number(m.dataset.lo)).sort((a, b) => a - b); return ms[Math.floor(ms.length / 2)]; })()`))
		if th, _ := strconv.ParseFloat(q.Get("threshold_ms"), 64); th != lo {
			t.Errorf("threshold_ms %q, want the band's lower bound %g", q.Get("threshold_ms"), lo)
		}
		if q.Get("from") != "now-2h" || q.Get("to") != "now" {
			t.Errorf("window %s–%s, want the page's", q.Get("from"), q.Get("to"))
		}
		opens(t, q, lo)
	})
}
