package web

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tailscope/tailscope/internal/browsertest"
	"github.com/tailscope/tailscope/internal/testenv"
)

// printOverflow lists the elements of the report whose box sticks out of
// their parent's (text cut off at the page edge in a PDF), skipping chart
// internals and boxes of no size.
const printOverflow = `(() => {
  const bad = [];
  for (const el of document.querySelectorAll('.incident *')) {
    const p = el.parentElement;
    if (!p || el.closest('svg') || getComputedStyle(el).display === 'none') continue;
    const r = el.getBoundingClientRect(), pr = p.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || pr.width === 0) continue;
    if (r.right > pr.right + 1 || r.left < pr.left - 1) {
      bad.push(el.tagName.toLowerCase() + '.' + el.className + ' in ' + p.tagName.toLowerCase() + '.' + p.className +
        ': ' + Math.round(r.right - pr.right) + 'px over: ' + (el.textContent || '').trim().slice(0, 50));
    }
  }
  return bad.slice(0, 15);
})()`

// printSections lists the report's sections in document order.
const printSections = `[...document.querySelectorAll('[data-testid="incident-summary"], [data-testid="incident-factors"], [data-testid="incident-timeline"], [data-testid="incident-endpoint"], [data-testid="incident-deploys"], [data-testid="incident-budgets"], [data-testid="exemplars"], [data-testid="incident-notes"]')].map(e => e.dataset.testid)`

// TestIncidentReportPrintLayout prints report.html to PDF at A4 width and
// checks the sections come in the order a postmortem reads (contributing
// factors, timeline, evidence, exemplars, notes) and that no text sticks
// out of its box, with a long title, a long pinned-trace reason and notes
// holding an unbroken URL and a task list.
func TestIncidentReportPrintLayout(t *testing.T) {
	testenv.Chromium(t)
	f := newRVFixtureSmall(t)
	ctx := context.Background()
	in := f.incident
	in.Title = "Feed p99 regression after the v2 rollout of the candidate index and the ranking service"
	in.Notes = "## Notes\n\n## Follow-up\n\n- [ ] add an index to candidates(" + strings.Repeat("tenant_id_", 8) + ")\n- [x] roll back\n\n" +
		"See https://runbooks.example/" + strings.Repeat("very_long_path_segment_", 12) + "end\n"
	if _, err := f.db.UpdateIncident(ctx, in); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(f.handler)
	defer srv.Close()
	b := browsertest.New(t)
	b.Do(browsertest.ColorScheme("light"), browsertest.PrintPage(),
		chromedp.Navigate(fmt.Sprintf("%s/incidents/%d/report.html", srv.URL, f.incident.ID)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="incident-summary"]`)))
	got := strings.Join(dedupe(browsertest.Get(b, chromedp.Evaluate[[]string](printSections))), " ")
	want := "incident-summary incident-factors incident-timeline incident-endpoint incident-deploys incident-budgets exemplars incident-notes"
	if got != want {
		t.Errorf("sections in order %q, want %q", got, want)
	}
	if n := browsertest.Get(b, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="incident-notes"] input[type=checkbox][disabled]').length`)); n != 2 {
		t.Errorf("%d task-list checkboxes in the notes, want 2", n)
	}
	if n := browsertest.Get(b, chromedp.Evaluate[int](`document.querySelectorAll('.incident *').length`)); n < 300 {
		t.Errorf("%d elements in the report, the overflow check would not see it", n)
	}
	if bad := browsertest.Get(b, chromedp.Evaluate[[]string](printOverflow)); len(bad) > 0 {
		t.Errorf("%d boxes overflow their parent when printed:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	pdf := browsertest.Get(b, chromedp.PrintToPDF(chromedp.PDFPaper(chromedp.PaperA4), chromedp.PDFPreferCSSPageSize(), chromedp.PDFPrintBackground()))
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("printToPDF returned %d bytes that are not a PDF", len(pdf))
	}
}

// dedupe drops consecutive repeats (one section per endpoint).
func dedupe(s []string) []string {
	var out []string
	for _, x := range s {
		if len(out) == 0 || out[len(out)-1] != x {
			out = append(out, x)
		}
	}
	return out
}
