package web

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tailscope/tailscope/internal/browsertest"
	"github.com/tailscope/tailscope/internal/testenv"
)

// TestBrowserFirstSeen: on the deploys page a new service's first version
// reads "first seen" (its own column, not the deploy link), and its page
// says there is no baseline instead of comparing against nothing; in
// both themes.
func TestBrowserFirstSeen(t *testing.T) {
	testenv.Chromium(t)
	d := newServiceFixture(t)
	srv := httptest.NewServer(d.h)
	defer srv.Close()
	b := browsertest.New(t)
	for _, scheme := range []string{"light", "dark"} {
		b.Do(browsertest.ColorScheme(scheme), chromedp.Navigate(srv.URL+"/deploys"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="deploys-table"]`)))
		kinds := browsertest.Get(b, chromedp.Evaluate[map[string]string](`Object.fromEntries([...document.querySelectorAll('[data-testid="deploy-row"]')].map(r => [r.dataset.version, r.querySelector('td:nth-of-type(3)').innerText.trim()]))`))
		if kinds["v1"] != "first seen" || kinds["v2"] != "deploy" {
			t.Errorf("%s: kind column %v, want v1 first seen and v2 deploy", scheme, kinds)
		}
		// The first-seen pill is told apart by more than its text.
		border := browsertest.Get(b, chromedp.Evaluate[string](`getComputedStyle(document.querySelector('[data-testid="deploy-row"] [data-testid="first-seen"]')).boxShadow`))
		if border == "none" || border == "" {
			t.Errorf("%s: the first-seen pill has no outline", scheme)
		}
		b.Screenshot("deploys-first-seen-" + scheme)
		b.Do(chromedp.Click(chromedp.CSS(`[data-testid="first-seen-link"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="verdict"]`)))
		if v := browsertest.Get(b, chromedp.Text(chromedp.CSS(`[data-testid="verdict"]`))); !strings.HasPrefix(v, "New — no baseline:") || strings.Contains(v, "0 ms →") {
			t.Errorf("%s: verdict on the first-seen marker %q", scheme, v)
		}
		if n := browsertest.Get(b, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="percentile-deltas"]').length`)); n != 0 {
			t.Errorf("%s: the first-seen page shows %d percentile tables", scheme, n)
		}
		b.Screenshot("deploy-first-seen-" + scheme)
	}
	// The Services page says the new service's rate is since it began.
	b.Do(browsertest.ColorScheme("light"), chromedp.Navigate(srv.URL+"/?from=now-1h"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="services-table"]`)))
	since := browsertest.Get(b, chromedp.Evaluate[string](`(document.querySelector('[data-service="feed-api"] [data-testid="rate-since"]') || {}).innerText || ""`))
	if want := "since " + d.first.Format("15:04"); since != want {
		t.Errorf("feed-api rate note %q, want %q", since, want)
	}
	b.Screenshot("services-first-seen")
}
