package browsertest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestReportsCSPViolations checks the reporter hears a blocked inline
// script, so a browser test that shows no violation really had none.
func TestReportsCSPViolations(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'")
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<!doctype html><p id=p>x</p><script>document.title="ran"</script>`))
	}))
	defer srv.Close()
	b := New(t)
	b.Do(chromedp.Navigate(srv.URL), chromedp.WaitVisible(chromedp.CSS("#p")))
	if title := Get(b, chromedp.Evaluate[string](`document.title`)); title == "ran" {
		t.Fatal("the inline script ran despite the policy")
	}
	got := b.Problems()
	if len(got) == 0 || !strings.Contains(got[0], "script-src") {
		t.Fatalf("problems %q, want the blocked inline script", got)
	}
	b.mu.Lock()
	b.problems = nil // seen on purpose: do not fail the test at its end
	b.mu.Unlock()
}
