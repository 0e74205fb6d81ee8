package web

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tailscope/tailscope/internal/browsertest"
	"github.com/tailscope/tailscope/internal/testenv"
)

// TestBrowserChartHover: hovering a bucket of a line chart shows each
// series' value there and its time in the reader's zone.
func TestBrowserChartHover(t *testing.T) {
	testenv.Chromium(t)
	f := sharedFixture(t)
	srv := httptest.NewServer(f.handler)
	defer srv.Close()
	b := browsertest.New(t)
	b.Do(browsertest.TimeZone("Asia/Kolkata"),
		chromedp.Navigate(srv.URL+"/latency?service=feed-api&endpoint=GET+/v1/feed&from=now-2h"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="latency-series"] [data-testid="chart-hover"]`)))
	// the bucket with the most series values
	b.Do(chromedp.Evaluate[chromedp.Void](`(() => {
		const cols = [...document.querySelectorAll('[data-testid="latency-series"] rect.hover-col')];
		const col = cols.reduce((a, c) => c.dataset.lines.split("\n").length > a.dataset.lines.split("\n").length ? c : a);
		col.dataset.picked = "1";
		const r = col.getBoundingClientRect();
		const at = {clientX: r.left + r.width / 2, clientY: r.top + r.height / 2, bubbles: true};
		col.dispatchEvent(new MouseEvent("mouseover", at));
		col.dispatchEvent(new MouseEvent("mousemove", at));
	})()`))
	tip := browsertest.Get(b, chromedp.Evaluate[string](`(() => { const t = document.querySelector('[data-testid="chart-tip"]'); return t.hidden ? "" : t.innerText; })()`))
	iso := browsertest.Get(b, chromedp.Evaluate[string](`document.querySelector('rect.hover-col[data-picked]').dataset.t`))
	for _, want := range []string{"p50 ", "p95 ", "p99 ", " ms"} {
		if !strings.Contains(tip, want) {
			t.Errorf("tooltip %q lacks %q", tip, want)
		}
	}
	at, err := time.Parse(time.RFC3339Nano, iso)
	if err != nil {
		t.Fatal(err)
	}
	if want := at.In(time.FixedZone("IST", 5*3600+1800)).Format("2006-01-02 15:04:05"); !strings.HasPrefix(tip, want) || strings.Contains(tip, "UTC") {
		t.Errorf("tooltip %q, want it to start with the bucket's time in Kolkata %s", tip, want)
	}
	b.Screenshot("latency-hover")
}
