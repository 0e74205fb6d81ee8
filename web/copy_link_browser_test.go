package web

import (
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tailscope/tailscope/internal/browsertest"
	"github.com/tailscope/tailscope/internal/testenv"
)

// TestBrowserCopyLink: "Copy link" on a page over a relative range puts
// the view at absolute times on the clipboard and says so, without
// leaving the page.
func TestBrowserCopyLink(t *testing.T) {
	testenv.Chromium(t)
	f := sharedFixture(t)
	srv := httptest.NewServer(f.handler)
	defer srv.Close()
	b := browsertest.New(t)
	b.Do(chromedp.Navigate(srv.URL+"/?from=now-1h"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="copy-link"]`)))
	// The page's clipboard, observed: headless Chromium grants no
	// clipboard permission to a page it did not focus.
	b.Do(chromedp.Evaluate[chromedp.Void](`window.__notReloaded = true;
		navigator.clipboard.writeText = (t) => { window.__copied = t; return Promise.resolve(); };`))
	b.Do(chromedp.Click(chromedp.CSS(`[data-testid="copy-link"]`)))
	var copied string
	deadline := time.Now().Add(10 * time.Second)
	for copied == "" && time.Now().Before(deadline) {
		copied = browsertest.Get(b, chromedp.Evaluate[string](`window.__copied || ""`))
		time.Sleep(50 * time.Millisecond)
	}
	u, err := url.Parse(copied)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		t.Fatalf("copied %q: want an absolute URL", copied)
	}
	for _, k := range []string{"from", "to"} {
		if _, err := time.Parse(time.RFC3339Nano, u.Query().Get(k)); err != nil {
			t.Errorf("copied %q: %s is not an absolute time", copied, k)
		}
	}
	if label := browsertest.Get(b, chromedp.Text(chromedp.CSS(`[data-testid="copy-link"]`))); label != "Copied" {
		t.Errorf("link reads %q after copying, want Copied", label)
	}
	if !browsertest.Get(b, chromedp.Evaluate[bool](`window.__notReloaded === true`)) {
		t.Error("copying left the page")
	}
}
