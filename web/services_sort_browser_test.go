package web

import (
	"net/http/httptest"
	"slices"
	"sort"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tailscope/tailscope/internal/browsertest"
	"github.com/tailscope/tailscope/internal/testenv"
)

// TestBrowserServicesSort: every data column of Services sorts without a
// reload, from the keyboard, with aria-sort on its heading; endpoints sort
// within their service; the order survives a reload through the URL.
func TestBrowserServicesSort(t *testing.T) {
	testenv.Chromium(t)
	f := sharedFixture(t)
	srv := httptest.NewServer(f.handler)
	defer srv.Close()
	b := browsertest.New(t)
	b.Do(chromedp.Navigate(srv.URL+"/?from=now-1h"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="services-table"]`)))
	b.Do(chromedp.Evaluate[chromedp.Void](`window.__notReloaded = true`))

	// column values per service row, and per endpoint row within each group
	read := func(key string) (services []float64, endpoints [][]float64, names []string) {
		type state struct {
			Services  []float64   `json:"services"`
			Endpoints [][]float64 `json:"endpoints"`
			Names     []string    `json:"names"`
		}
		s := browsertest.Get(b, chromedp.Evaluate[state](`(() => {
			const col = [...document.querySelector('[data-testid="services-table"] thead tr').cells].findIndex(th => th.querySelector('[data-sort-key="`+key+`"]'));
			const groups = [...document.querySelectorAll('[data-testid="service-group"]')];
			return {
				services: groups.map(g => Number(g.rows[0].cells[col].dataset.sort)),
				endpoints: groups.map(g => [...g.rows].slice(1).map(r => Number(r.cells[col].dataset.sort))),
				names: groups.map(g => g.rows[0].dataset.service),
			};
		})()`))
		return s.Services, s.Endpoints, s.Names
	}
	ariaSort := func(key string) string {
		return browsertest.Get(b, chromedp.Evaluate[string](`document.querySelector('[data-sort-key="`+key+`"]').closest("th").getAttribute("aria-sort") || ""`))
	}
	desc := func(v []float64) bool { return sort.SliceIsSorted(v, func(i, j int) bool { return v[i] > v[j] }) }
	asc := func(v []float64) bool { return sort.Float64sAreSorted(v) }

	for _, key := range []string{"requests", "rate", "errors", "p50", "p95", "p99", "budget"} {
		b.Do(chromedp.Click(chromedp.CSS(`[data-sort-key="` + key + `"]`)))
		svc, eps, _ := read(key)
		if len(svc) < 3 {
			t.Fatalf("%s: %d services on the page", key, len(svc))
		}
		if !desc(svc) || ariaSort(key) != "descending" {
			t.Errorf("%s, first press: services %v, aria-sort %q; want descending", key, svc, ariaSort(key))
		}
		for i, e := range eps {
			if !desc(e) {
				t.Errorf("%s: endpoints of group %d not descending: %v", key, i, e)
			}
		}
		b.Do(chromedp.Click(chromedp.CSS(`[data-sort-key="` + key + `"]`)))
		if svc, _, _ := read(key); !asc(svc) || ariaSort(key) != "ascending" {
			t.Errorf("%s, second press: services %v, aria-sort %q; want ascending", key, svc, ariaSort(key))
		}
	}
	if p10 := browsertest.Get(b, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="services-table"] th[aria-sort]').length`)); p10 != 1 {
		t.Errorf("%d headings carry aria-sort, want the one sorted by", p10)
	}

	// From the keyboard: focus the name heading's button and press Enter.
	b.Do(chromedp.Focus(chromedp.CSS(`[data-sort-key="name"]`)), chromedp.KeyEvent("\r"))
	_, _, names := read("name")
	if !slices.IsSorted(names) || ariaSort("name") != "ascending" {
		t.Errorf("Enter on Service: %v (aria-sort %q), want A to Z", names, ariaSort("name"))
	}
	if !browsertest.Get(b, chromedp.Evaluate[bool](`window.__notReloaded === true`)) {
		t.Error("sorting reloaded the page")
	}

	// The order is in the URL: a reload shows the same order.
	b.Do(chromedp.Click(chromedp.CSS(`[data-sort-key="p99"]`)))
	loc := browsertest.Get(b, chromedp.Location())
	b.Do(chromedp.Navigate(loc), chromedp.WaitVisible(chromedp.CSS(`[data-testid="services-table"]`)))
	if svc, _, _ := read("p99"); !desc(svc) || ariaSort("p99") != "descending" {
		t.Errorf("after reloading %s: p99 %v, aria-sort %q", loc, svc, ariaSort("p99"))
	}
	b.Screenshot("services-sorted")
}
