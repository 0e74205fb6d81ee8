package web

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tailscope/tailscope/static"
)

// exportURL finds the URLs in an export: Markdown link targets, href
// attributes and JSON strings.
var exportURL = regexp.MustCompile(`\]\(([^)\s]+)\)|href="([^"]+)"|"(https?://[^"]+)"`)

// TestReportLinksSurvive: with a public URL configured, every link in
// every export starts with it (whatever Host the request came with) and
// every time in a link is absolute, so a pasted link shows the same data
// the next day.
func TestReportLinksSurvive(t *testing.T) {
	const public = "https://tailscope.example.com"
	f := newRVFixtureSmall(t)
	assets, err := static.Load()
	if err != nil {
		t.Fatal(err)
	}
	h := New(Config{Store: rvFixedTimes{f.db}, Now: rvNow, Assets: assets, Version: "test", PublicURL: public + "/"}).Handler()
	p := fmt.Sprintf("/incidents/%d", f.incident.ID)
	for _, name := range []string{"report.md", "report.html", "report.json"} {
		t.Run(name, func(t *testing.T) {
			w := rvDo(t, h, http.MethodGet, p+"/"+name, "", "Host", "127.0.0.1:8080")
			if w.Code != http.StatusOK {
				t.Fatalf("status %d", w.Code)
			}
			n := 0
			for _, m := range exportURL.FindAllStringSubmatch(w.Body.String(), -1) {
				raw := html.UnescapeString(m[1] + m[2])
				if m[3] != "" {
					if err := json.Unmarshal([]byte(`"`+m[3]+`"`), &raw); err != nil {
						t.Fatal(err)
					}
				}
				if strings.HasPrefix(raw, "https://runbooks.example/") || strings.HasPrefix(raw, "#") {
					continue // the reviewer's own notes; in-page anchors
				}
				n++
				if !strings.HasPrefix(raw, public+"/") {
					t.Errorf("link %q does not start with the public URL", raw)
					continue
				}
				u, err := url.Parse(raw)
				if err != nil {
					t.Errorf("link %q: %v", raw, err)
					continue
				}
				for _, k := range []string{"from", "to", "before_from", "before_to", "after_from", "after_to"} {
					if v := u.Query().Get(k); v != "" {
						if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
							t.Errorf("link %q: %s=%q is not an absolute time", raw, k, v)
						}
					}
				}
			}
			if n < 10 {
				t.Errorf("found %d links, want the report's links", n)
			}
		})
	}
}

// TestFreezeThisView: a page over a relative range offers the same page at
// the absolute times it resolved to; an absolute range needs no freezing.
func TestFreezeThisView(t *testing.T) {
	f := newRVFixtureSmall(t)
	w := rvGet(t, f.handler, "/latency?service=feed-api&from=now-30m&to=now")
	want := `href="/latency?from=2026-11-23T14%3A30%3A00Z&amp;service=feed-api&amp;to=2026-11-23T15%3A00%3A00Z" data-testid="freeze-view"`
	if !strings.Contains(w.Body.String(), want) {
		t.Errorf("relative range: no freeze link %s", want)
	}
	w = rvGet(t, f.handler, "/latency?service=feed-api&from=2026-11-23T14:30:00Z&to=2026-11-23T15:00:00Z")
	if strings.Contains(w.Body.String(), `data-testid="freeze-view"`) {
		t.Errorf("absolute range offers to freeze it")
	}
}

// TestCopyLink: every ranged page offers its view as an absolute link at
// absolute times, under the public URL when one is configured.
func TestCopyLink(t *testing.T) {
	f := newRVFixtureSmall(t)
	for _, tc := range []struct {
		name string
		h    http.Handler
		base string
	}{
		{"request's host", f.handler, "http://example.com"},
		{"public URL", New(Config{Store: f.db, Now: rvNow, Assets: mustAssets(t), Version: "test", PublicURL: "https://tailscope.example.org/"}).Handler(), "https://tailscope.example.org"},
	} {
		w := rvGet(t, tc.h, "/latency?service=feed-api&from=now-30m&to=now")
		want := `href="` + tc.base + `/latency?from=2026-11-23T14%3A30%3A00Z&amp;service=feed-api&amp;to=2026-11-23T15%3A00%3A00Z" data-copy-link data-testid="copy-link"`
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("%s: no copy link %s", tc.name, want)
		}
	}
}

func mustAssets(t *testing.T) *static.Assets {
	t.Helper()
	a, err := static.Load()
	if err != nil {
		t.Fatal(err)
	}
	return a
}
