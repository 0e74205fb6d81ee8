package web

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tailscope/tailscope/internal/browsertest"
	"github.com/tailscope/tailscope/internal/testenv"
)

// TestBrowserTime: times read in the reader's zone by default, in UTC
// after the toggle (remembered across pages), the date-time picker writes
// the range in the zone shown, zoom buttons change the window, and a
// range that does not parse is fixed on the same form.
func TestBrowserTime(t *testing.T) {
	testenv.Chromium(t)
	f := sharedFixture(t)
	srv := httptest.NewServer(f.handler)
	defer srv.Close()
	b := browsertest.New(t)
	// Kolkata is UTC+05:30 all year: a zone no CI machine runs in, with
	// minutes that a wrong conversion cannot hide.
	ist := time.FixedZone("IST", 5*3600+1800)
	b.Do(browsertest.TimeZone("Asia/Kolkata"))
	from, to := "2026-11-23T10:00:00Z", "2026-11-23T11:00:00Z"
	page := srv.URL + "/search?" + url.Values{"service": {"feed-api"}, "from": {from}, "to": {to}}.Encode()
	resolved := `[...document.querySelectorAll('[data-testid="range-resolved"] time')].map(e => e.textContent)`
	toggle := `document.querySelector('[data-testid="tz-toggle"]')`

	t.Run("local by default", func(t *testing.T) {
		b.Do(chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(`[data-testid="range-resolved"]`)))
		got := browsertest.Get(b, chromedp.Evaluate[[]string](resolved))
		want := []string{"2026-11-23 15:30:00", "2026-11-23 16:30:00"}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("resolved window %v, want %v (Kolkata)", got, want)
		}
		if label := browsertest.Get(b, chromedp.Evaluate[string](toggle+`.textContent`)); label != "Local time" {
			t.Errorf("toggle reads %q, want Local time", label)
		}
	})

	// Chart axes follow the same zone: every time tick's label is its
	// instant in the zone shown, in the tick's form.
	ticks := func(t *testing.T, loc *time.Location) {
		t.Helper()
		b.Do(chromedp.Navigate(srv.URL+"/search?from=now-1h"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="trace-scatter"] svg text[data-t]`)))
		type tick struct{ T, Fmt, Text string }
		got := browsertest.Get(b, chromedp.Evaluate[[]tick](`[...document.querySelectorAll('svg text[data-t]')].map(e => ({T: e.dataset.t, Fmt: e.dataset.tick, Text: e.textContent}))`))
		if len(got) < 2 {
			t.Fatalf("%d time ticks on the chart, want several", len(got))
		}
		layout := map[string]string{"date": "Jan 2", "datetime": "Jan 2 15:04", "clock": "15:04", "clock-s": "15:04:05"}
		for _, tk := range got {
			at, err := time.Parse(time.RFC3339Nano, tk.T)
			if err != nil {
				t.Fatal(err)
			}
			if want := at.In(loc).Format(layout[tk.Fmt]); tk.Text != want {
				t.Errorf("tick at %s (%s) reads %q, want %q", tk.T, tk.Fmt, tk.Text, want)
			}
		}
	}
	t.Run("the date-time picker writes UTC from local time", func(t *testing.T) {
		v := browsertest.Get(b, chromedp.Evaluate[string](`document.querySelector('[data-range-pick="from"]').value`))
		// Chromium drops zero seconds from the value it reports.
		if v != "2026-11-23T15:30:00" && v != "2026-11-23T15:30" {
			t.Errorf("from picker shows %q, want the window's start in Kolkata", v)
		}
		b.Do(chromedp.Evaluate[chromedp.Void](`(() => { const p = document.querySelector('[data-range-pick="from"]');
			p.value = "2026-11-23T15:00:00"; p.dispatchEvent(new Event("change", {bubbles: true})); })()`))
		if got := browsertest.Get(b, chromedp.Evaluate[string](`document.querySelector('[data-testid="range-from"]').value`)); got != "2026-11-23T09:30:00Z" {
			t.Errorf("from input %q after picking 15:00 in Kolkata, want 2026-11-23T09:30:00Z", got)
		}
		// What Apply submits (a click's navigation races the next step).
		q, err := url.ParseQuery(browsertest.Get(b, chromedp.Evaluate[string](`new URLSearchParams(new FormData(document.querySelector("form[data-range-form]"))).toString()`)))
		if err != nil || q.Get("from") != "2026-11-23T09:30:00Z" || q.Get("service") != "feed-api" {
			t.Errorf("Apply submits %v (%v), want from=2026-11-23T09:30:00Z keeping service", q, err)
		}
	})

	t.Run("chart ticks in local time", func(t *testing.T) { ticks(t, ist) })

	t.Run("UTC toggle is remembered", func(t *testing.T) {
		b.Do(chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(`[data-testid="range-resolved"]`)),
			chromedp.Click(chromedp.CSS(`[data-testid="tz-toggle"]`)))
		if got := browsertest.Get(b, chromedp.Evaluate[[]string](resolved)); len(got) != 2 || got[0] != "2026-11-23 10:00:00 UTC" {
			t.Errorf("after the toggle %v, want UTC", got)
		}
		b.Do(chromedp.Navigate(srv.URL+"/?"+url.Values{"from": {from}, "to": {to}}.Encode()), chromedp.WaitVisible(chromedp.CSS(`[data-testid="range-resolved"]`)))
		if got := browsertest.Get(b, chromedp.Evaluate[[]string](resolved)); len(got) != 2 || got[1] != "2026-11-23 11:00:00 UTC" {
			t.Errorf("on the next page %v, want UTC still", got)
		}
		if p := browsertest.Get(b, chromedp.Evaluate[string](toggle+`.getAttribute("aria-pressed")`)); p != "true" {
			t.Errorf("toggle aria-pressed %q in UTC", p)
		}
		ticks(t, time.UTC)
		b.Do(chromedp.Click(chromedp.CSS(`[data-testid="tz-toggle"]`)))
	})

	t.Run("search rows in local time", func(t *testing.T) {
		b.Do(chromedp.Navigate(srv.URL+"/search?from=now-1h"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="trace-row"]`)))
		iso := browsertest.Get(b, chromedp.Evaluate[string](`document.querySelector('[data-testid="trace-row"] time').getAttribute("datetime")`))
		text := browsertest.Get(b, chromedp.Evaluate[string](`document.querySelector('[data-testid="trace-row"] time').textContent`))
		at, err := time.Parse(time.RFC3339Nano, iso)
		if err != nil {
			t.Fatal(err)
		}
		if want := at.In(ist).Format("2006-01-02 15:04:05.000"); text != want {
			t.Errorf("row start %q, want %q", text, want)
		}
	})

	// Tables of deploys, incidents and a comparison's sides write <time>
	// elements too: each reads its instant in the reader's zone, an
	// interval's end its clock alone when it falls on the start's day.
	pageTimes := func(t *testing.T, u string, want int) {
		t.Helper()
		b.Do(chromedp.Navigate(u), chromedp.WaitVisible(chromedp.CSS(`main`)))
		type el struct{ T, Fmt, From, Text string }
		got := browsertest.Get(b, chromedp.Evaluate[[]el](`[...document.querySelectorAll('main time[datetime]')].map(e => ({T: e.getAttribute("datetime"), Fmt: e.dataset.fmt || "", From: e.dataset.from || "", Text: e.textContent}))`))
		if len(got) < want {
			t.Fatalf("%s: %d times %v, want at least %d", u, len(got), got, want)
		}
		layout := map[string]string{"datetime": "2006-01-02 15:04:05", "datetime-ms": "2006-01-02 15:04:05.000", "time": "15:04:05"}
		for _, e := range got {
			at, err := time.Parse(time.RFC3339Nano, e.T)
			if err != nil {
				t.Fatal(err)
			}
			fmt := e.Fmt
			if fmt == "end" {
				start, err := time.Parse(time.RFC3339Nano, e.From)
				if err != nil {
					t.Fatalf("interval end %s without its start: %v", e.T, err)
				}
				fmt = "datetime"
				if start.In(ist).Format(time.DateOnly) == at.In(ist).Format(time.DateOnly) {
					fmt = "time"
				}
			}
			if want := at.In(ist).Format(layout[fmt]); e.Text != want {
				t.Errorf("%s: time %s (%s) reads %q, want %q (Kolkata)", u, e.T, e.Fmt, e.Text, want)
			}
		}
	}
	t.Run("deploy and comparison tables in local time", func(t *testing.T) {
		pageTimes(t, srv.URL+"/deploys?"+url.Values{"from": {fixtureStart.Format(time.RFC3339)}, "to": {fixtureStart.Add(time.Hour).Format(time.RFC3339)}}.Encode(), 3) // the resolved range and a deploy
		if n := browsertest.Get(b, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="deploy-row"] time').length`)); n == 0 {
			t.Fatal("deploy rows show no <time>")
		}
		href := browsertest.Get(b, chromedp.Evaluate[string](`document.querySelector('[data-testid="deploy-compare-link"]').href`))
		pageTimes(t, href, 5) // the deploy and both sides' windows
		if n := browsertest.Get(b, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="compare-sides"] time[data-fmt="end"]').length`)); n != 2 {
			t.Errorf("comparison sides show %d interval ends, want 2", n)
		}
	})

	t.Run("zoom out", func(t *testing.T) {
		b.Do(chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(`[data-testid="zoom-out"]`)))
		u, _ := url.Parse(browsertest.Get(b, chromedp.Evaluate[string](`document.querySelector('[data-testid="zoom-out"]').href`)))
		if q := u.Query(); q.Get("from") != "2026-11-23T09:30:00Z" || q.Get("to") != "2026-11-23T11:30:00Z" || q.Get("service") != "feed-api" {
			t.Errorf("zoom out goes to %s, want 09:30–11:30 keeping service", u.RawQuery)
		}
		b.Do(chromedp.Navigate(u.String()), chromedp.WaitVisible(chromedp.CSS(`[data-testid="trace-scatter"]`)))
	})

	t.Run("a bad range is fixed on the same form", func(t *testing.T) {
		b.Do(chromedp.Navigate(srv.URL+"/?from=2026-11-3T14:00&to=now"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="range-error"]`)))
		if v := browsertest.Get(b, chromedp.Evaluate[string](`document.querySelector('[data-testid="range-from"]').value`)); v != "2026-11-3T14:00" {
			t.Errorf("from input %q, want what was typed", v)
		}
		b.Screenshot("range-error")
		b.Do(chromedp.SetValue(chromedp.CSS(`[data-testid="range-from"]`), "now-1h"),
			chromedp.Click(chromedp.CSS(`form[data-range-form] button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="services-table"]`)))
	})
}
