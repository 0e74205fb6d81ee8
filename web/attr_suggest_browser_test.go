package web

import (
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tailscope/tailscope/internal/browsertest"
	"github.com/tailscope/tailscope/internal/testenv"
)

// TestBrowserAttributeAutocomplete: typing in search's attribute box
// offers the store's keys, then the chosen key's values.
func TestBrowserAttributeAutocomplete(t *testing.T) {
	testenv.Chromium(t)
	f := sharedFixture(t)
	srv := httptest.NewServer(f.handler)
	defer srv.Close()
	b := browsertest.New(t)
	b.Do(chromedp.Navigate(srv.URL+"/search?service=feed-api&from=now-1h"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="attr-input"]`)))
	options := func(want string) []string {
		t.Helper()
		b.Do(chromedp.Poll[chromedp.Void](`[...document.querySelectorAll('#attr-suggestions option')].some(o => o.value === "` + want + `")`))
		return browsertest.Get(b, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#attr-suggestions option')].map(o => o.value)`))
	}
	b.Do(chromedp.Click(chromedp.CSS(`[data-testid="attr-input"]`)), chromedp.SendKeys(chromedp.CSS(`[data-testid="attr-input"]`), "tenant"))
	if keys := options("tenant.id="); !slices.Contains(keys, "tenant.id=") {
		t.Errorf("key suggestions %v", keys)
	}
	b.Do(chromedp.SendKeys(chromedp.CSS(`[data-testid="attr-input"]`), ".id="))
	if vals := options("tenant.id=acme"); len(vals) == 0 {
		t.Errorf("value suggestions %v", vals)
	}
	b.Screenshot("search-attribute-autocomplete")
}
