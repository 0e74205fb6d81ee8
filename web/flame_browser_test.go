package web

import (
	"context"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tailscope/tailscope/internal/browsertest"
	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/store"
)

// TestBrowserFlameZoom: a click on a frame zooms the flame graph into its
// subtree (its callees fill the width, other branches hide); Escape zooms
// back out. Search still highlights frames.
func TestBrowserFlameZoom(t *testing.T) {
	testenv.Chromium(t)
	h, db := newWritableServer(t)
	f := sharedFixture(t)
	ctx := context.Background()
	if err := db.WriteSpans(ctx, f.v1.Spans[:2000]); err != nil {
		t.Fatal(err)
	}
	var ids []store.SpanID
	for _, sp := range f.v1.Spans[:200] {
		ids = append(ids, sp.SpanID)
	}
	writeProfiles(t, db, ids[:100], ids[100:])
	srv := httptest.NewServer(h)
	defer srv.Close()
	b := browsertest.New(t)
	q := url.Values{"from": {fixtureStart.Format(time.RFC3339)}, "to": {fixtureStart.Add(time.Hour).Format(time.RFC3339)}}
	b.Do(chromedp.Navigate(srv.URL+"/profiles?"+q.Encode()), chromedp.WaitVisible(chromedp.CSS(`[data-testid="service-flame"] .flame`)))
	frame := func(name string) string { return `[data-testid="service-flame"] .frame[data-name$="` + name + `"]` }
	width := func(name string) float64 {
		return browsertest.Get(b, chromedp.Evaluate[float64](`(() => { const f = document.querySelector('`+frame(name)+`'); return f.hidden ? -1 : f.getBoundingClientRect().width / f.parentElement.getBoundingClientRect().width; })()`))
	}
	score0, json0 := width("ranking.Score"), width("json.Marshal")
	if score0 <= 0 || score0 > 0.9 || json0 <= 0 {
		t.Fatalf("before zoom: Score %.2f, json.Marshal %.2f of the width", score0, json0)
	}
	b.Do(chromedp.Click(chromedp.CSS(frame("ranking.Score"))))
	if w := width("ranking.Score"); w < 0.99 {
		t.Errorf("zoomed Score fills %.2f of the width, want all", w)
	}
	if hot, cool := width("hotScoring"), width("coolScoring"); hot <= 0 || cool <= 0 || hot+cool < 0.98 {
		t.Errorf("Score's callees fill %.2f + %.2f, want all of the width", hot, cool)
	}
	if w := width("json.Marshal"); w != -1 {
		t.Errorf("json.Marshal, another branch, still shown at %.2f", w)
	}
	b.Screenshot("flame-zoomed")
	b.Do(chromedp.KeyEvent("\x1b")) // Escape
	if s, j := width("ranking.Score"), width("json.Marshal"); abs(s-score0) > 0.01 || abs(j-json0) > 0.01 {
		t.Errorf("after Escape: Score %.2f, json %.2f; want %.2f, %.2f", s, j, score0, json0)
	}
	// Enter on a focused frame zooms too.
	b.Do(chromedp.Focus(chromedp.CSS(frame("json.Marshal"))), chromedp.KeyEvent("\r"))
	if w := width("json.Marshal"); w < 0.99 {
		t.Errorf("Enter on json.Marshal: it fills %.2f", w)
	}
	b.Do(chromedp.SendKeys(chromedp.CSS(`[data-flame-search]`), "Marshal"))
	if !strings.Contains(browsertest.Get(b, chromedp.Evaluate[string](`document.querySelector('`+frame("json.Marshal")+`').className`)), "match") {
		t.Error("search does not highlight json.Marshal")
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// A span's CPU graph built from one sample says so above the graph.
func TestSpanProfileFewSamples(t *testing.T) {
	h, db := newWritableServer(t)
	f := sharedFixture(t)
	ctx := context.Background()
	root := f.v1.Spans[0]
	for _, sp := range f.v1.Spans {
		if sp.IsRoot() {
			root = sp
			break
		}
	}
	var trace []store.Span
	for _, sp := range f.v1.Spans {
		if sp.TraceID == root.TraceID {
			trace = append(trace, sp)
		}
	}
	if err := db.WriteSpans(ctx, trace); err != nil {
		t.Fatal(err)
	}
	stack := []string{"runtime.main", "feedsvc/ranking.Score"}
	p := store.Profile{Service: "feedsvc", Type: store.ProfileCPU, Unit: store.UnitNanoseconds, Start: fixtureStart, End: fixtureStart.Add(time.Hour),
		Samples: []store.ProfileSample{{StackID: store.StackID(stack), SpanID: root.SpanID, SpanName: root.Name, Value: int64(10 * time.Millisecond)}}}
	if err := db.WriteProfiles(ctx, store.ProfileBatch{Stacks: []store.Stack{{ID: store.StackID(stack), Frames: stack}}, Profiles: []store.Profile{p}}); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/traces/" + root.TraceID.String() + "/profile", "/traces/" + root.TraceID.String() + "/profile?fragment=1"} {
		w := serve(t, h, "GET", target, "")
		body := w.Body.String()
		if w.Code != 200 || !strings.Contains(body, `data-testid="flame-few-samples"`) || !strings.Contains(body, "One CPU sample (10 ms)") {
			t.Errorf("%s: status %d, no few-samples caution: %.300s", target, w.Code, body)
		}
	}
}
