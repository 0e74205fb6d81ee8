package web

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/internal/browsertest"
	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/store"
)

// budgetScenarioEnd is the end of the budget scenario's period and the
// clock of its server.
var budgetScenarioEnd = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// newBudgetScenarioServer stores issue 14's budget scenario (2,000
// requests over 30 days, 20,000 in the last hour, profile-svc a second
// slower in 3% of those) and a budget on it, and serves it twice: without
// a cache and through the in-process analysis cache.
func newBudgetScenarioServer(t *testing.T) (plain, cached http.Handler, budget store.Budget) {
	t.Helper()
	db := openSpanStore(t, analysistest.GenerateBudget(analysistest.BudgetScenario{Seed: 14, End: budgetScenarioEnd}).Spans)
	budget, err := db.CreateBudget(context.Background(), store.Budget{
		Name: "feed p99", Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint,
		Threshold: 300 * time.Millisecond, Target: 0.99, Period: 30 * 24 * time.Hour,
		Hops: []store.HopBudget{
			{Service: analysistest.FeedAPI, Dependency: analysistest.CandidateSvc, Allocation: 25 * time.Millisecond},
			{Service: analysistest.FeedAPI, Dependency: analysistest.ProfileSvc, Allocation: 100 * time.Millisecond},
			{Service: analysistest.FeedAPI, Dependency: analysistest.Ranker, Allocation: 30 * time.Millisecond},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	plain, cached = newTestHandlers(t, db, func() time.Time { return budgetScenarioEnd })
	return plain, cached, budget
}

// TestBudgetSurfacesAgree: the budget list, the budget's page and the API
// name the same worst hop (the culprit, though another hop overruns more
// often), from a sample of at least 1,000 requests with an interval, with
// and without the analysis cache; in a browser the page shows the sample
// size, the intervals and the API's worst hop.
func TestBudgetSurfacesAgree(t *testing.T) {
	plain, cached, b := newBudgetScenarioServer(t)
	const culprit = "feed-api → profile-svc"
	for name, h := range map[string]http.Handler{"plain": plain, "cached": cached} {
		t.Run(name, func(t *testing.T) {
			api := budgetAPIWorst(t, h, b.ID)
			if api.WorstHop != culprit || api.SampledRequests < 1000 || api.Total != 22_000 {
				t.Fatalf("API: worst hop %q over %d sampled of %d requests; want %q over ≥ 1,000 of 22,000", api.WorstHop, api.SampledRequests, api.Total, culprit)
			}
			list := html.UnescapeString(rvGet(t, h, "/budgets").Body.String())
			m := regexp.MustCompile(`data-testid="budget-worst-hop" data-hop="([^"]*)">([^<]*)<`).FindStringSubmatch(list)
			if m == nil || m[1] != api.WorstHop || !strings.Contains(m[2], culprit+" (") {
				t.Errorf("list names %q, the API %q", m, api.WorstHop)
			}
			page := html.UnescapeString(rvGet(t, h, fmt.Sprintf("/budgets/%d", b.ID)).Body.String())
			first := regexp.MustCompile(`data-testid="hop-row" data-hop="([^"]+)" class="worst"`).FindStringSubmatch(page)
			table := regexp.MustCompile(`data-testid="hop-table" data-worst-hop="([^"]*)"`).FindStringSubmatch(page)
			if first == nil || table == nil || first[1] != api.WorstHop || table[1] != api.WorstHop {
				t.Errorf("page marks %q (table says %q), the API %q", first, table, api.WorstHop)
			}
			if want := fmt.Sprintf(`data-sampled="%d"`, api.SampledRequests); !strings.Contains(page, want) {
				t.Errorf("page does not show the sample of %d", api.SampledRequests)
			}
			// The page says where its counts came from, as the API does.
			if src := regexp.MustCompile(`data-testid="budget-source">([^<]*)<`).FindStringSubmatch(page); src == nil || !strings.Contains(src[1], "rollups") {
				t.Errorf("page's source line %q; want the rollups named", src)
			}
		})
	}

	t.Run("browser", func(t *testing.T) {
		testenv.Chromium(t)
		api := budgetAPIWorst(t, plain, b.ID)
		srv := httptest.NewServer(plain)
		defer srv.Close()
		br := browsertest.New(t)
		br.Do(browsertest.ColorScheme("light"),
			chromedp.Navigate(fmt.Sprintf("%s/budgets/%d", srv.URL, b.ID)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="hop-table"]`)))
		sample := browsertest.Get(br, chromedp.Text(chromedp.CSS(`[data-testid="hop-sample"]`)))
		if want := fmt.Sprintf("%d of the window's 22000 requests", api.SampledRequests); !strings.Contains(sample, want) || !strings.Contains(sample, "95% Wilson intervals") {
			t.Errorf("sample line %q does not say %q with its intervals", sample, want)
		}
		worst := browsertest.Get(br, chromedp.Evaluate[string](`document.querySelector('[data-testid="hop-row"].worst').dataset.hop`))
		if worst != api.WorstHop {
			t.Errorf("page marks %q worst, the API %q", worst, api.WorstHop)
		}
		rate := browsertest.Get(br, chromedp.Text(chromedp.CSS(`[data-testid="hop-row"].worst [data-testid="hop-rate"]`)))
		if !regexp.MustCompile(`\(\d+(\.\d+)?%–\d+(\.\d+)?%\)`).MatchString(rate) {
			t.Errorf("worst hop's rate %q shows no interval", rate)
		}
		br.Screenshot("budget-sampled")
		br.Do(chromedp.Navigate(srv.URL+"/budgets"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="budgets-table"]`)))
		if hop := browsertest.Get(br, chromedp.Text(chromedp.CSS(`[data-testid="budget-worst-hop"]`))); !strings.HasPrefix(hop, api.WorstHop+" (") {
			t.Errorf("list shows %q, the API %q", hop, api.WorstHop)
		}
	})
}

type budgetAPIReport struct {
	Total           int    `json:"total"`
	SampledRequests int    `json:"sampled_requests"`
	WorstHop        string `json:"worst_hop"`
}

func budgetAPIWorst(t *testing.T, h http.Handler, id int64) budgetAPIReport {
	t.Helper()
	w := rvGet(t, h, fmt.Sprintf("/api/v1/budgets/%d/compliance", id))
	var rep budgetAPIReport
	if w.Code != http.StatusOK {
		t.Fatalf("compliance API: %d %s", w.Code, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}
