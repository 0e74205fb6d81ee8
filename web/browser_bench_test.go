package web

import (
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tailscope/tailscope/internal/browsertest"
	"github.com/tailscope/tailscope/store"
)

// BenchmarkBrowserWaterfall50k loads the page of wide and deep
// 50,000-span traces in headless Chromium and reports what issue 19 asks
// of them: bytes transferred before the first paint, DOM nodes, ms to the
// first paint and to interactive (every row fetched and the visible ones
// rendered by waterfall.js), and the time from an action to the frame
// after it for scrolling, find/next and expand/collapse all.
func BenchmarkBrowserWaterfall50k(b *testing.B) {
	for _, shape := range []struct {
		name  string
		spans []store.Span
	}{{"wide", wideTrace(50_000)}, {"deep", deepTrace(50_000)}} {
		b.Run(shape.name, func(b *testing.B) {
			srv, _ := benchServer(b, shape.spans)
			ts := httptest.NewServer(srv.Handler())
			defer ts.Close()
			br := browsertest.New(b)
			url := ts.URL + "/traces/" + shape.spans[0].TraceID.String()
			sum := map[string]float64{}
			b.ResetTimer()
			for b.Loop() {
				br.Do(chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`[data-waterfall][data-ready]`)))
				m := browsertest.Get(br, chromedp.Evaluate[map[string]float64](waterfallMetricsJS, chromedp.EvalAwaitPromise))
				for k, v := range m {
					sum[k] += v
				}
			}
			for _, k := range []string{"bytes-before-paint", "dom-nodes", "ms-first-paint", "ms-interactive", "ms-scroll", "ms-find-next", "ms-expand-all", "ms-collapse-all"} {
				b.ReportMetric(sum[k]/float64(b.N), k)
			}
		})
	}
}

// waterfallMetricsJS measures a loaded waterfall page. An action's time is
// the work of the frame that shows its result: the script's handlers (run
// in the frame's animation callbacks for a scroll, in the click's task for
// buttons) plus the style and layout they cause, forced before the clock
// stops; painting and compositing are left out.
const waterfallMetricsJS = `(async () => {
  const settle = () => document.querySelector(".wf-rows").getBoundingClientRect().height + document.body.offsetHeight;
  const time = async (f) => { const t = performance.now(); f(); await null; await null; settle(); return performance.now() - t; };
  const timeFrame = (f) => new Promise((done) => {
    let t;
    requestAnimationFrame(() => { t = performance.now(); });
    f(); // its scroll handler asks for the next frame after the one above
    requestAnimationFrame(() => { settle(); done(performance.now() - t); });
  });
  const out = {};
  out["bytes-before-paint"] = ` + firstPaintBytesJS + `;
  out["dom-nodes"] = document.getElementsByTagName("*").length;
  out["ms-first-paint"] = performance.getEntriesByName("first-contentful-paint")[0].startTime;
  out["ms-interactive"] = performance.getEntriesByName("waterfall-ready")[0].startTime;
  const rows = document.querySelector(".wf-rows");
  out["ms-scroll"] = await timeFrame(() => { rows.scrollTop += rows.clientHeight * 3; rows.dispatchEvent(new Event("scroll")); });
  const find = document.querySelector("[data-span-search]");
  find.value = "` + needleName + `";
  // Enter in Find searches every span, then opens and scrolls to the first match.
  out["ms-find-next"] = await time(() => find.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true })));
  if (!document.querySelector(".wf-row.current")) throw new Error("find did not reach the needle");
  out["ms-expand-all"] = await time(() => document.querySelector("[data-expand-all]").click());
  out["ms-collapse-all"] = await time(() => document.querySelector("[data-collapse-all]").click());
  return out;
})()`
