package web

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tailscope/tailscope/internal/browsertest"
	"github.com/tailscope/tailscope/internal/testenv"
)

// TestBrowserLoginLogout walks the login flow in Chromium: a page asks
// for the login form, a wrong password is refused there, the right one
// lands on the page first asked for with the account named in the header,
// and logging out ends the session.
func TestBrowserLoginLogout(t *testing.T) {
	testenv.Chromium(t)
	_, h := authServer(t)
	srv := httptest.NewServer(h)
	defer srv.Close()
	b := browsertest.New(t)
	text := func(sel string) string {
		return browsertest.Get(b, chromedp.Text(chromedp.CSS(sel)))
	}
	b.Do(chromedp.Navigate(srv.URL+"/budgets"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="login-form"]`)))
	b.Do(chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "wrong-password"),
		chromedp.Click(chromedp.CSS(`[data-testid="login-form"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="login-error"]`)))
	if got := text(`[data-testid="login-error"]`); !strings.Contains(got, "wrong account name or password") {
		t.Errorf("login error %q", got)
	}
	b.Do(chromedp.SetValue(chromedp.CSS(`input[name="password"]`), "alice-pw"),
		chromedp.Click(chromedp.CSS(`[data-testid="login-form"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="logout"]`)))
	if loc := browsertest.Get(b, chromedp.Location()); !strings.HasSuffix(loc, "/budgets") {
		t.Errorf("after login at %s, want /budgets", loc)
	}
	if got := text(`[data-testid="logout"]`); !strings.Contains(got, "alice") {
		t.Errorf("header says %q, want the account", got)
	}
	b.Do(chromedp.Click(chromedp.CSS(`[data-testid="logout"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="login-form"]`)))
	b.Do(chromedp.Navigate(srv.URL+"/budgets"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="login-form"]`)))
}
