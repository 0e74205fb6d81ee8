package web

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/tailscope/tailscope/internal/browsertest"
	"github.com/tailscope/tailscope/store"
)

// firstPaintBudget is issue 19's bound on the bytes a 50,000-span trace's
// page transfers before it first paints.
const firstPaintBudget = 300 << 10

// TestLargeTracePageAndRows: a large trace's page carries at most
// firstPaintRows rows (a wide fan-out used to render every one of its
// 6,001 rows), ?expand=all still renders every span for readers without
// JavaScript, and the waterfall JSON has every row in preorder, so each
// subtree is a contiguous run after its parent.
func TestLargeTracePageAndRows(t *testing.T) {
	spans := wideTrace(3000)
	h, db := newWritableServer(t)
	if err := db.WriteSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	page := "/traces/" + spans[0].TraceID.String()
	rowRe := regexp.MustCompile(`class="wf-row[ "]`)

	w := serve(t, h, "GET", page, "")
	if n := len(rowRe.FindAllString(w.Body.String(), -1)); w.Code != 200 || n == 0 || n > firstPaintRows {
		t.Fatalf("status %d, %d of %d rows on the page; want 1…%d", w.Code, n, len(spans), firstPaintRows)
	}
	if !strings.Contains(w.Body.String(), "data-wf-more") {
		t.Error("a truncated page does not say so")
	}
	all := serve(t, h, "GET", page+"?expand=all", "")
	if n := len(rowRe.FindAllString(all.Body.String(), -1)); n != len(spans) {
		t.Errorf("?expand=all rendered %d rows, want %d", n, len(spans))
	}
	// 29 shards' N+1 findings are one group, above a fold of a few lines.
	if n := strings.Count(w.Body.String(), `data-testid="finding"`); n == 0 || n > 3 {
		t.Errorf("%d finding groups; want the 29 N+1 findings folded into few", n)
	}
	if !regexp.MustCompile(`29 ×</span> <span class="title">SELECT rows to db-shard-\*<`).MatchString(w.Body.String()) {
		t.Error("the N+1 group does not name its pattern")
	}

	rows := serve(t, h, "GET", "/api/v1/traces/"+spans[0].TraceID.String()+"/waterfall", "", "Accept-Encoding", "gzip")
	if rows.Code != 200 || rows.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("rows: status %d, encoding %q", rows.Code, rows.Header().Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(rows.Body)
	if err != nil {
		t.Fatal(err)
	}
	var got wfRowsJSON
	if err := json.NewDecoder(zr).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if len(got.ID) != len(spans) || len(got.Parent) != len(spans) || len(got.Start) != len(spans) || !got.Collapsed {
		t.Fatalf("%d ids, %d parents, %d starts, collapsed %v; want %d rows, collapsed", len(got.ID), len(got.Parent), len(got.Start), got.Collapsed, len(spans))
	}
	byID := map[string]store.Span{}
	for _, sp := range spans {
		byID[sp.SpanID.String()] = sp
	}
	critical := 0
	for i, id := range got.ID {
		p := got.Parent[i]
		want := byID[id].ParentSpanID
		switch {
		case p < 0 && !want.IsZero(), p >= 0 && got.ID[p] != want.String():
			t.Fatalf("row %d (%s): parent row %d, want span %s", i, id, p, want)
		case p >= int32(i):
			t.Fatalf("row %d comes before its parent %d", i, p)
		case p >= 0 && got.Depth[i] != got.Depth[p]+1:
			t.Fatalf("row %d at depth %d under depth %d", i, got.Depth[i], got.Depth[p])
		}
		// Preorder: every row between a parent and its child is in the
		// parent's subtree.
		for q := i - 1; p >= 0 && int32(q) > p; q-- {
			if got.Depth[q] <= got.Depth[p] {
				t.Fatalf("row %d is not contiguous with its parent %d", i, p)
			}
		}
		if got.Flags[i]&rowCritical != 0 {
			critical++
		}
	}
	if critical == 0 || len(got.Findings) == 0 {
		t.Errorf("%d rows on the critical path, %d with findings; want some", critical, len(got.Findings))
	}
	if w := serve(t, h, "GET", page+"/spans/"+spans[5].SpanID.String(), ""); w.Code != 200 || !strings.Contains(w.Body.String(), "span_id") || strings.Contains(w.Body.String(), "<html") {
		t.Errorf("span detail fragment: status %d, %.200s", w.Code, w.Body.String())
	}
	if w := serve(t, h, "GET", page+"/spans/00000000000000ff", ""); w.Code != 404 {
		t.Errorf("detail of a span not in the trace: %d, want 404", w.Code)
	}
}

// TestBrowserWaterfall50k opens wide and deep 50,000-span traces in
// Chromium: the page paints from under 300 KB, keeps a bounded DOM, find's
// next reaches a span deep in a collapsed subtree, ?span= scrolls to and
// opens a span, the keyboard moves and expands, and ? shows the shortcuts.
// Timings are in BenchmarkBrowserWaterfall50k, not here.
func TestBrowserWaterfall50k(t *testing.T) {
	for _, shape := range []struct {
		name  string
		spans []store.Span
	}{{"wide", wideTrace(50_000)}, {"deep", deepTrace(50_000)}} {
		t.Run(shape.name, func(t *testing.T) {
			h, db := newWritableServer(t)
			if err := db.WriteSpans(context.Background(), shape.spans); err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(h)
			defer ts.Close()
			needle := shape.spans[len(shape.spans)-1].SpanID.String()
			page := ts.URL + "/traces/" + shape.spans[0].TraceID.String()
			b := browsertest.New(t)

			b.Do(chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(`[data-waterfall][data-ready]`)))
			if n := browsertest.Get(b, chromedp.Evaluate[float64](firstPaintBytesJS)); n <= 0 || n > firstPaintBudget {
				t.Errorf("%.0f bytes before first paint; want 1…%d", n, firstPaintBudget)
			}
			if n := browsertest.Get(b, chromedp.Evaluate[int](`document.getElementsByTagName('*').length`)); n > maxWaterfallNodes {
				t.Errorf("%d DOM nodes; want at most %d", n, maxWaterfallNodes)
			}
			if browsertest.Get(b, chromedp.Evaluate[bool](`!!document.querySelector('.wf-row[data-id="`+needle+`"]')`)) {
				t.Fatal("the needle's row is on the page before anything opened it")
			}
			b.ScreenshotViewport("waterfall-50k-" + shape.name)

			// Find, then next: the needle's collapsed ancestors open and its
			// row is on screen, marked as the current match.
			b.Do(chromedp.SendKeys(chromedp.CSS(`[data-span-search]`), needleName),
				chromedp.Click(chromedp.CSS(`[data-find-next]`)),
				chromedp.WaitVisible(chromedp.CSS(`.wf-row.current[data-id="`+needle+`"]`)))
			if count := browsertest.Get(b, chromedp.Text(chromedp.CSS(`[data-span-search-count]`))); !strings.Contains(count, "1 matching span") {
				t.Errorf("find count %q", count)
			}
			if !browsertest.Get(b, chromedp.Evaluate[bool](inViewJS(needle))) {
				t.Error("find/next did not scroll the needle into view")
			}

			// ?span= opens the span's details and scrolls to its row.
			b.Do(chromedp.Navigate(page+"?span="+needle), chromedp.WaitVisible(chromedp.CSS(`[data-waterfall][data-ready]`)),
				chromedp.WaitVisible(chromedp.CSS(`.wf-row.selected[data-id="`+needle+`"]`)))
			if !browsertest.Get(b, chromedp.Evaluate[bool](inViewJS(needle))) {
				t.Error("?span= did not scroll to the span's row")
			}
			if d := browsertest.Get(b, chromedp.Text(chromedp.CSS(`[data-span-detail]`))); !strings.Contains(d, needleName) {
				t.Errorf("?span= detail panel %.120q does not show the span", d)
			}

			// Keyboard: ↓ moves to the next row, ← goes to the parent,
			// ← again collapses it and → opens it.
			b.Do(chromedp.Evaluate[chromedp.Void](`document.querySelector('.wf-row[data-id="` + needle + `"] a.span-link').focus()`))
			parent := browsertest.Get(b, chromedp.Evaluate[string](`document.querySelector('.wf-row[data-id="`+needle+`"]').dataset.parent`))
			b.Do(chromedp.KeyEvent(kb.ArrowLeft))
			if got := browsertest.Get(b, chromedp.Evaluate[string](focusedRowJS)); got != parent {
				t.Fatalf("← from the needle focused %q, want its parent %q", got, parent)
			}
			b.Do(chromedp.KeyEvent(kb.ArrowLeft))
			if got := browsertest.Get(b, chromedp.Evaluate[string](`document.querySelector('.wf-row[data-id="`+parent+`"]').getAttribute('aria-expanded')`)); got != "false" {
				t.Errorf("← on an open span left aria-expanded=%q", got)
			}
			b.Do(chromedp.KeyEvent(kb.ArrowRight), chromedp.KeyEvent(kb.ArrowDown))
			if got := browsertest.Get(b, chromedp.Evaluate[string](focusedRowJS)); got == parent || got == "" {
				t.Errorf("→ then ↓ focused %q; want the row after %s", got, parent)
			}
			b.Do(chromedp.KeyEvent("?"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="wf-help"]`)),
				chromedp.KeyEvent(kb.Escape), chromedp.WaitNotVisible(chromedp.CSS(`[data-testid="wf-help"]`)))
			if shape.name == "wide" {
				b.Do(chromedp.Navigate(page+"?span="+shape.spans[3].SpanID.String()), chromedp.WaitVisible(chromedp.CSS(`[data-waterfall][data-ready]`)))
				b.ScreenshotViewport("waterfall-50k-minimap")
				b.Do(browsertest.ColorScheme("dark"), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`[data-waterfall][data-ready]`)))
				b.ScreenshotViewport("waterfall-50k-dark")
			}
		})
	}
}

// maxWaterfallNodes bounds the DOM of a waterfall page, whatever the
// trace's size: the rows on screen, the page around them.
const maxWaterfallNodes = 4000

// firstPaintBytesJS sums what the page transferred (document, styles,
// scripts) before its first contentful paint.
const firstPaintBytesJS = `(() => {
  const fcp = performance.getEntriesByName("first-contentful-paint")[0];
  const t = fcp ? fcp.startTime : Infinity;
  const nav = performance.getEntriesByType("navigation")[0];
  let n = nav.transferSize || nav.encodedBodySize;
  for (const r of performance.getEntriesByType("resource")) if (r.responseEnd <= t) n += r.transferSize || r.encodedBodySize;
  return n;
})()`

const focusedRowJS = `(() => { const r = document.activeElement && document.activeElement.closest('.wf-row'); return r ? r.dataset.id : ""; })()`

// inViewJS says a span's row is inside the scrolled rows' box and the
// window.
func inViewJS(id string) string {
	return `(() => {
  const row = document.querySelector('.wf-row[data-id="` + id + `"]');
  if (!row) return false;
  const r = row.getBoundingClientRect(), box = document.querySelector('.wf-rows').getBoundingClientRect();
  return r.top >= box.top && r.bottom <= box.bottom && r.top >= 0 && r.bottom <= innerHeight;
})()`
}
