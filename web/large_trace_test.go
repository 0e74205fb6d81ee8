package web

import (
	"context"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tailscope/tailscope/internal/browsertest"
)

// TestLargeTraceLoadsSubtreesOnDemand: a trace above collapseThreshold
// renders only its top levels (and the critical path); collapsed subtrees
// come from the subtree endpoint; ?find= and ?expand=all open the rest.
func TestLargeTraceLoadsSubtreesOnDemand(t *testing.T) {
	spans := waterfallTrace(3000)
	h, db := newWritableServer(t)
	if err := db.WriteSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	page := "/traces/" + spans[0].TraceID.String()
	rowRe := regexp.MustCompile(`class="wf-row[ "]`)

	w := serve(t, h, "GET", page, "")
	initial := len(rowRe.FindAllString(w.Body.String(), -1))
	if w.Code != 200 || initial == 0 || initial >= len(spans) {
		t.Fatalf("status %d, %d of %d rows rendered; want a partial page", w.Code, initial, len(spans))
	}
	lazy := regexp.MustCompile(`data-id="([0-9a-f]{16})"[^>]*data-lazy`).FindStringSubmatch(w.Body.String())
	if lazy == nil {
		t.Fatal("no lazily collapsed row")
	}
	sub := serve(t, h, "GET", page+"/subtree/"+lazy[1], "")
	if sub.Code != 200 || !strings.Contains(sub.Body.String(), `data-parent="`+lazy[1]+`"`) {
		t.Fatalf("subtree of %s: status %d, rows for its children missing", lazy[1], sub.Code)
	}
	if strings.Contains(sub.Body.String(), "<html") {
		t.Error("the subtree fragment is a whole page")
	}
	all := serve(t, h, "GET", page+"?expand=all", "")
	if n := len(rowRe.FindAllString(all.Body.String(), -1)); n != len(spans) {
		t.Errorf("?expand=all rendered %d rows, want %d", n, len(spans))
	}
	found := serve(t, h, "GET", page+"?find=op-39", "")
	if !strings.Contains(found.Body.String(), `class="wf-row match"`) {
		t.Error("?find= did not open and mark a matching span")
	}
	if w := serve(t, h, "GET", page+"/subtree/00000000000000ff", ""); w.Code != 404 {
		t.Errorf("subtree of a span not in the trace: %d, want 404", w.Code)
	}
}

func TestBrowserLargeTraceExpand(t *testing.T) {
	spans := waterfallTrace(3000)
	h, db := newWritableServer(t)
	if err := db.WriteSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	defer ts.Close()
	b := browsertest.New(t)
	b.Do(chromedp.Navigate(ts.URL+"/traces/"+spans[0].TraceID.String()), chromedp.WaitVisible(chromedp.CSS(`[data-testid="waterfall"]`)))
	before := browsertest.Get(b, chromedp.Evaluate[int](`document.querySelectorAll('.wf-row').length`))
	b.Do(chromedp.Click(chromedp.CSS(`.wf-row[data-lazy] .toggle`)),
		chromedp.WaitNotPresent(chromedp.CSS(`.wf-row[data-lazy] .toggle[disabled]`)))
	after := browsertest.Get(b, chromedp.PollFunction[int](`() => { const n = document.querySelectorAll('.wf-row').length; return n > `+strconv.Itoa(before)+` ? n : 0 }`))
	if after <= before {
		t.Fatalf("expanding a lazy row: %d rows before, %d after", before, after)
	}
	b.Screenshot("waterfall-large")
}
