package web

import (
	"fmt"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tailscope/tailscope/internal/browsertest"
	"github.com/tailscope/tailscope/internal/testenv"
)

// TestBrowserReview goes through the review pages in headless Chromium as
// a reviewer would: define a budget through its form (first with a
// mistake), open a deploy's comparison, create an incident from its
// window, export the report, delete the incident after confirming. With
// TAILSCOPE_SCREENSHOTS set (`make screenshots`) it saves each page.
func TestBrowserReview(t *testing.T) {
	testenv.Chromium(t) // skip or fail before building data
	f := newRVFixture(t)
	srv := httptest.NewServer(f.handler)
	defer srv.Close()
	b := browsertest.New(t)
	b.Do(browsertest.ColorScheme("light"))
	base := srv.URL
	text := func(sel string) string { return browsertest.Get(b, chromedp.Text(chromedp.CSS(sel))) }
	location := func() string { return browsertest.Get(b, chromedp.Location()) }

	t.Run("budget form", func(t *testing.T) {
		b.Do(chromedp.Navigate(base+"/budgets/new?service=feed-api&endpoint=GET+/v1/feed"),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="budget-form"]`)),
			chromedp.SetValue(chromedp.CSS(`#budget-name`), "feed p95 from the browser"),
			chromedp.SetValue(chromedp.CSS(`#budget-threshold`), "-300"),
			chromedp.SetValue(chromedp.CSS(`#budget-target`), "95"),
			chromedp.SetValue(chromedp.CSS(`#budget-period`), "7d"),
			chromedp.SendKeys(chromedp.CSS(`[data-testid="hop-form-row"]:nth-child(1) input[name="hop_service"]`), "candidate-svc"),
			chromedp.SendKeys(chromedp.CSS(`[data-testid="hop-form-row"]:nth-child(1) input[name="hop_dependency"]`), "postgresql"),
			chromedp.SendKeys(chromedp.CSS(`[data-testid="hop-form-row"]:nth-child(1) input[name="hop_allocation_ms"]`), "100"),
			chromedp.Click(chromedp.CSS(`[data-testid="budget-submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-field="threshold_ms"]`)))
		if msg := text(`[data-field="threshold_ms"]`); !strings.Contains(msg, "positive") {
			t.Errorf("message next to the threshold: %q", msg)
		}
		// The form came back as sent, so fixing one field is enough.
		if v := browsertest.Get(b, chromedp.Value(chromedp.CSS(`[data-testid="hop-form-row"]:nth-child(1) input[name="hop_dependency"]`))); v != "postgresql" {
			t.Errorf("hop row after the error: %q", v)
		}
		b.Screenshot("budget-form-error")
		b.Do(chromedp.SetValue(chromedp.CSS(`#budget-threshold`), "300"),
			chromedp.Click(chromedp.CSS(`[data-testid="budget-submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="hop-table"]`)))
		if loc := location(); !regexp.MustCompile(`/budgets/\d+$`).MatchString(loc) {
			t.Errorf("after saving: %s, want the budget's page", loc)
		}
		if hop := text(`[data-testid="hop-row"] th`); !strings.Contains(hop, "candidate-svc → postgresql") {
			t.Errorf("hop table %q", hop)
		}
		b.Screenshot("budget")
		b.Do(chromedp.Navigate(base+"/budgets"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="budgets-table"]`)))
		names := browsertest.Get(b, chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-testid="budget-row"]')].map(r => r.dataset.budget)`))
		if !contains(names, "feed p95 from the browser") || !contains(names, "feed p99") {
			t.Errorf("budgets listed: %v", names)
		}
		b.Screenshot("budgets")
	})

	t.Run("deploy comparison", func(t *testing.T) {
		b.Do(chromedp.Navigate(base+"/deploys"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="deploys-table"]`)))
		if curl := text(`[data-testid="curl-oneliner"]`); !strings.HasPrefix(curl, "curl -sf -X POST "+base+"/api/v1/deploys") {
			t.Errorf("curl line %q", curl)
		}
		b.Screenshot("deploys")
		b.Do(chromedp.Click(chromedp.CSS(`[data-testid="deploy-compare-link"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="verdict"]`)))
		if v := text(`[data-testid="verdict"]`); !strings.HasPrefix(v, "Regression:") || !strings.Contains(v, "candidate-svc → postgresql") {
			t.Errorf("verdict %q", v)
		}
		if n := browsertest.Get(b, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="cdf-overlay"] path.line').length`)); n != 2 {
			t.Errorf("%d lines on the distribution overlay, want before and after", n)
		}
		b.Screenshot("deploy-comparison")
	})

	var incident string
	t.Run("incident from the window", func(t *testing.T) {
		b.Do(chromedp.Click(chromedp.CSS(`.comparison [data-testid="create-incident"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="incident-form"]`)))
		if from := browsertest.Get(b, chromedp.Value(chromedp.CSS(`#incident-from`))); from != "2026-11-23T14:30:00Z" {
			t.Errorf("from prefilled with %q, want the deploy's after window", from)
		}
		b.Do(chromedp.SendKeys(chromedp.CSS(`#incident-title`), "Feed slower after v2 (browser)"),
			chromedp.SendKeys(chromedp.CSS(`#incident-notes`), "Rolled back at **14:55**."),
			chromedp.Click(chromedp.CSS(`[data-testid="incident-submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="incident-summary"]`)))
		incident = location()
		if !regexp.MustCompile(`/incidents/\d+$`).MatchString(incident) {
			t.Fatalf("after creating: %s", incident)
		}
		if notes := browsertest.Get(b, chromedp.Evaluate[string](`document.querySelector('[data-testid="incident-notes"] strong').textContent`)); notes != "14:55" {
			t.Errorf("rendered notes: %q", notes)
		}
		if n := browsertest.Get(b, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="exemplar"]').length`)); n == 0 {
			t.Error("no exemplar traces")
		}
		b.Screenshot("incident")
		b.Do(browsertest.ColorScheme("dark"), chromedp.Navigate(incident), chromedp.WaitVisible(chromedp.CSS(`[data-testid="incident-summary"]`)))
		b.Screenshot("incident-dark")
		b.Do(browsertest.ColorScheme("light"), chromedp.Navigate(base+"/incidents"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="incidents-table"]`)))
		if list := text(`[data-testid="incidents-table"]`); !strings.Contains(list, "Feed slower after v2 (browser)") {
			t.Errorf("incident list: %.200s", list)
		}
		b.Screenshot("incidents")
	})

	t.Run("export", func(t *testing.T) {
		if incident == "" {
			t.Skip("no incident was created")
		}
		b.Do(chromedp.Navigate(incident), chromedp.WaitVisible(chromedp.CSS(`[data-testid="export-html"]`)),
			chromedp.Click(chromedp.CSS(`[data-testid="export-html"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="incident-summary"]`)))
		if loc := location(); !strings.HasSuffix(loc, "/report.html") {
			t.Errorf("export link went to %s", loc)
		}
		if forms := browsertest.Get(b, chromedp.Evaluate[int](`document.forms.length`)); forms != 0 {
			t.Errorf("report.html has %d forms", forms)
		}
		b.Screenshot("incident-report")
		// report.html's CSP forbids requests, so fetch from the page.
		b.Do(chromedp.Navigate(incident), chromedp.WaitVisible(chromedp.CSS(`[data-testid="export-md"]`)))
		md := browsertest.Get(b, chromedp.Evaluate[string](fmt.Sprintf(`fetch(%q).then(r => r.text())`, incident+"/report.md"), chromedp.EvalAwaitPromise))
		if !strings.HasPrefix(md, "# Postmortem: Feed slower after v2 (browser)") || !strings.Contains(md, "Rolled back at **14:55**.") {
			t.Errorf("report.md starts %.120q", md)
		}
	})

	t.Run("delete after confirming", func(t *testing.T) {
		if incident == "" {
			t.Skip("no incident was created")
		}
		b.Do(chromedp.Navigate(incident), chromedp.WaitVisible(chromedp.CSS(`[data-testid="incident-delete"]`)),
			chromedp.Click(chromedp.CSS(`[data-testid="incident-delete"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="confirm-delete"]`)))
		b.Screenshot("incident-delete")
		b.Do(chromedp.Click(chromedp.CSS(`[data-testid="confirm-delete-button"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="incidents-table"]`)))
		if list := text(`[data-testid="incidents-table"]`); strings.Contains(list, "Feed slower after v2 (browser)") {
			t.Error("the incident is still listed after deleting it")
		}
	})
}
