package web

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/report"
	"github.com/tailscope/tailscope/store"
)

// TestReviewPagesRender renders every review page of the fixture, then
// checks the budget page ranks the hop that breaks the budget first.
func TestReviewPagesRender(t *testing.T) {
	f := newRVFixture(t)
	b, d, in := f.budget.ID, f.deploy.ID, f.incident.ID
	tests := []struct {
		name, target string
		want         []string
	}{
		{"budgets", "/budgets", []string{`data-testid="budgets-table"`, `data-budget="feed p99"`, `data-testid="budget-form"`, "99% under 500 ms over 30d"}},
		{"new budget", "/budgets/new?service=feed-api&endpoint=GET+/v1/feed", []string{`data-testid="budget-form"`, `name="hop_service"`, `value="feed-api"`, `<option value="GET /v1/feed">`}},
		{"budget", fmt.Sprintf("/budgets/%d?from=now-1h&to=now", b), []string{`data-testid="burn-rates"`, `data-window="1h"`, `data-window="24h"`, `data-testid="budget-chart"`, `data-testid="hop-table"`, `data-testid="hop-examples"`, "create-incident"}},
		{"budget default period", fmt.Sprintf("/budgets/%d", b), []string{`value="now-30d"`, `data-testid="hop-table"`}},
		{"edit budget", fmt.Sprintf("/budgets/%d/edit", b), []string{`value="500"`, `value="99"`, `value="30d"`, `value="profile-svc"`, `value="150"`}},
		{"delete budget", fmt.Sprintf("/budgets/%d/delete", b), []string{`data-testid="confirm-delete"`, fmt.Sprintf(`action="/budgets/%d/delete"`, b)}},
		{"deploys", "/deploys", []string{`data-testid="deploys-table"`, `data-version="v2"`, `data-testid="curl-oneliner"`, "/api/v1/deploys", `data-testid="compare-form"`}},
		{"deploy comparison", fmt.Sprintf("/deploys/%d", d), []string{`data-testid="verdict" data-verdict="regressed"`, `data-testid="percentile-deltas"`, `data-testid="cdf-overlay"`, `data-testid="dependency-deltas"`, `data-testid="error-rate-change"`, `data-hop="candidate-svc → postgresql"`}},
		{"canary comparison", "/compare?service=feed-api&version_a=v1&version_b=v2&from=now-1h&to=now", []string{`data-testid="comparison"`, `data-testid="cdf-overlay"`, "v1", "v2"}},
		{"compare form", "/compare", []string{`data-testid="compare-form"`, `data-testid="compare-note"`}},
		{"incidents", "/incidents", []string{`data-testid="incidents-table"`, "Feed p99 regression after v2"}},
		{"new incident", "/incidents/new?from=now-30m&to=now&service=feed-api", []string{`value="2026-11-23T14:30:00Z"`, `value="2026-11-23T15:00:00Z"`, `value="feed-api" checked`}},
		{"incident", fmt.Sprintf("/incidents/%d", in), []string{`data-testid="incident-timeline"`, `data-testid="incident-latency"`, `data-testid="incident-throughput"`, `data-testid="incident-errors"`, `class="band"`, `class="marker"`, `data-testid="outlier-group"`, `data-testid="incident-budget"`, `data-testid="incident-deploy"`, `data-testid="exemplar"`, `data-testid="pin-form"`, "<table>", `data-testid="export-md"`}},
		{"edit incident", fmt.Sprintf("/incidents/%d/edit", in), []string{`value="Feed p99 regression after v2"`, `value="2026-11-23T14:30:00Z"`, "## What we saw"}},
		{"delete incident", fmt.Sprintf("/incidents/%d/delete", in), []string{`data-testid="confirm-delete"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := rvGet(t, f.handler, tt.target)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, rvHead(w.Body.String(), 30))
			}
			body := html.UnescapeString(w.Body.String())
			for _, s := range tt.want {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %q", s)
				}
			}
		})
	}
	t.Run("budget hop ranking", func(t *testing.T) { checkBudgetHopRanking(t, f) })
}

func checkBudgetHopRanking(t *testing.T, f *rvFixture) {
	w := rvGet(t, f.handler, fmt.Sprintf("/budgets/%d?from=now-1h&to=now", f.budget.ID))
	body := html.UnescapeString(w.Body.String())
	rows := regexp.MustCompile(`data-testid="hop-row" data-hop="([^"]+)"( class="worst")?`).FindAllStringSubmatch(body, -1)
	if len(rows) != 3 {
		t.Fatalf("%d hop rows, want the budget's 3", len(rows))
	}
	// v2's slow candidate query overruns candidate-svc → postgresql in a
	// fifth of the second half hour; nothing else overruns that often.
	if rows[0][1] != "candidate-svc → postgresql" || rows[0][2] == "" {
		t.Errorf("first hop row %q (worst marked: %v), want candidate-svc → postgresql marked worst", rows[0][1], rows[0][2] != "")
	}
	ex := regexp.MustCompile(`(?s)data-hop="candidate-svc → postgresql".*?data-testid="hop-examples">(.*?)</td>`).FindStringSubmatch(body)
	if ex == nil {
		t.Fatal("no example cell for the worst hop")
	}
	links := regexp.MustCompile(`href="(/traces/[0-9a-f]{32})"`).FindAllStringSubmatch(ex[1], -1)
	if len(links) == 0 {
		t.Fatal("the worst hop lists no example traces")
	}
	for _, l := range links {
		if w := rvGet(t, f.handler, l[1]); w.Code != http.StatusOK {
			t.Errorf("example %s: status %d", l[1], w.Code)
		}
		id, _ := store.ParseTraceID(strings.TrimPrefix(l[1], "/traces/"))
		spans, err := f.db.Trace(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		var query int64
		for _, sp := range spans {
			if sp.Service == analysistest.CandidateSvc && sp.Dependency == analysistest.Postgres {
				query = max(query, sp.DurationNano)
			}
		}
		if query <= int64(f.budget.Hops[2].Allocation) {
			t.Errorf("example %s: its postgres call took %d ns, within the 100 ms allocation", id, query)
		}
	}
}

// budgetForm is a valid budget form; tests change one field at a time.
func budgetForm() url.Values {
	return url.Values{
		"name": {"checkout p99"}, "service": {"feed-api"}, "endpoint": {"GET /v1/feed"},
		"threshold_ms": {"400"}, "target_pct": {"99.9"}, "period": {"7d"},
		"hop_service":       {"feed-api", "candidate-svc", ""},
		"hop_dependency":    {"profile-svc", "postgresql", ""},
		"hop_allocation_ms": {"150", "100", ""},
	}
}

func TestBudgetFormCreateEditDelete(t *testing.T) {
	f := newRVFixtureSmall(t)
	ctx := context.Background()
	w := rvPost(t, f.handler, "/budgets", budgetForm())
	if w.Code != http.StatusSeeOther {
		t.Fatalf("create: status %d, want 303: %s", w.Code, rvHead(w.Body.String(), 20))
	}
	loc := w.Header().Get("Location")
	var id int64
	if _, err := fmt.Sscanf(loc, "/budgets/%d", &id); err != nil {
		t.Fatalf("Location %q: %v", loc, err)
	}
	b, err := f.db.BudgetByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if b.Target != 0.999 || b.Threshold.Milliseconds() != 400 || len(b.Hops) != 2 || b.Hops[1].Dependency != "postgresql" || b.HopMeasure != store.HopWholeCall {
		t.Errorf("stored %+v (a form without a hop measure gets the default, whole calls)", b)
	}
	if body := rvGet(t, f.handler, "/budgets").Body.String(); !strings.Contains(body, `data-budget="checkout p99"`) || !strings.Contains(body, "99.9% under 400 ms over 7d") {
		t.Error("the new budget is not listed with its objective")
	}
	if w := rvGet(t, f.handler, loc); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `data-testid="hop-table"`) {
		t.Errorf("budget page: %d", w.Code)
	}

	edit := budgetForm()
	edit.Set("threshold_ms", "450")
	edit.Set("hop_measure", "own_time")
	edit["hop_service"] = []string{"feed-api", "", ""}
	edit["hop_dependency"] = []string{"profile-svc", "", ""}
	edit["hop_allocation_ms"] = []string{"200", "", ""}
	if w := rvPost(t, f.handler, loc, edit); w.Code != http.StatusSeeOther || w.Header().Get("Location") != loc {
		t.Fatalf("update: status %d, Location %q", w.Code, w.Header().Get("Location"))
	}
	if b, _ = f.db.BudgetByID(ctx, id); b.Threshold.Milliseconds() != 450 || len(b.Hops) != 1 || b.HopMeasure != store.HopOwnTime {
		t.Errorf("after update %+v", b)
	}
	if body := rvGet(t, f.handler, loc+"/edit").Body.String(); !strings.Contains(body, `<option value="own_time" selected>`) {
		t.Error("the edit form does not show the budget's hop measure")
	}
	if body := rvGet(t, f.handler, loc).Body.String(); !strings.Contains(body, "counts only the client span&#39;s own time") {
		t.Error("the budget page does not say its call hops count own time")
	}

	// Deleting asks first: the confirmation page deletes nothing.
	if w := rvGet(t, f.handler, loc+"/delete"); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "Delete budget") {
		t.Fatalf("confirmation page: %d", w.Code)
	}
	if _, err := f.db.BudgetByID(ctx, id); err != nil {
		t.Fatalf("the confirmation page deleted the budget: %v", err)
	}
	if w := rvPost(t, f.handler, loc+"/delete", url.Values{}); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/budgets" {
		t.Fatalf("delete: status %d, Location %q", w.Code, w.Header().Get("Location"))
	}
	if w := rvGet(t, f.handler, loc); w.Code != http.StatusNotFound {
		t.Errorf("deleted budget page: %d, want 404", w.Code)
	}
}

func TestBudgetFormBadInput(t *testing.T) {
	f := newRVFixtureSmall(t)
	tests := []struct {
		name         string
		change       func(url.Values)
		field, want  string
		keep         string // the user's input, shown again
		wantNoneElse bool
	}{
		{"negative threshold", func(v url.Values) { v.Set("threshold_ms", "-5") }, "threshold_ms", "must be positive", `value="-5"`, true},
		{"threshold not a number", func(v url.Values) { v.Set("threshold_ms", "fast") }, "threshold_ms", "not a number", `value="fast"`, true},
		{"target over 100%", func(v url.Values) { v.Set("target_pct", "150") }, "target_pct", "outside 0–100%", `value="150"`, true},
		{"unknown period", func(v url.Values) { v.Set("period", "forever") }, "period", "period", `value="forever"`, true},
		{"no service", func(v url.Values) { v.Set("service", " ") }, "service", "service is required", `value="checkout p99"`, true},
		{"hops over the threshold", func(v url.Values) { v["hop_allocation_ms"] = []string{"300", "200", ""} }, "hops", "add up to", `value="300"`, true},
		{"negative hop", func(v url.Values) { v["hop_allocation_ms"] = []string{"-1", "100", ""} }, "hops", "allocation must be positive", `value="-1"`, true},
		{"hop without allocation", func(v url.Values) { v["hop_allocation_ms"] = []string{"", "100", ""} }, "hops", "Hop row 1: the allocation is required", `value="profile-svc"`, true},
		{"hop without service", func(v url.Values) { v["hop_service"] = []string{"", "candidate-svc", ""} }, "hops", "Hop row 1: service is required", `value="profile-svc"`, true},
		{"second hop negative, after an empty row", func(v url.Values) {
			v["hop_service"], v["hop_dependency"], v["hop_allocation_ms"] = []string{"feed-api", "", "candidate-svc"}, []string{"profile-svc", "", "postgresql"}, []string{"150", "", "-3"}
		}, "hops", "Hop row 2: allocation must be positive (got -3ms)", `value="-3"`, true},
		{"unknown hop measure", func(v url.Values) { v.Set("hop_measure", "wall clock") }, "hop_measure", `hop measure "wall clock"`, `value="checkout p99"`, true},
	}
	before, _ := f.db.Budgets(context.Background())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := budgetForm()
			tt.change(form)
			w := rvPost(t, f.handler, "/budgets", form)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", w.Code)
			}
			body := html.UnescapeString(w.Body.String())
			msg := fieldError(body, tt.field)
			if !containsFold(msg, tt.want) {
				t.Errorf("message next to %s: %q, want it to say %q", tt.field, msg, tt.want)
			}
			if !strings.Contains(body, tt.keep) {
				t.Errorf("the form lost the user's input %s", tt.keep)
			}
			if !strings.Contains(body, `data-testid="form-errors"`) {
				t.Error("no summary saying nothing was saved")
			}
			if tt.wantNoneElse {
				for _, other := range []string{"name", "service", "endpoint", "threshold_ms", "target_pct", "period", "hop_measure", "hops"} {
					if other != tt.field && fieldError(body, other) != "" {
						t.Errorf("unexpected message on %s: %q", other, fieldError(body, other))
					}
				}
			}
		})
	}
	after, _ := f.db.Budgets(context.Background())
	if len(after) != len(before) {
		t.Errorf("%d budgets after only bad forms, want %d: a rejected form stored something", len(after), len(before))
	}
	// The edit form reports the same way and leaves the budget alone.
	form := budgetForm()
	form.Set("threshold_ms", "-5")
	w := rvPost(t, f.handler, fmt.Sprintf("/budgets/%d", f.budget.ID), form)
	if w.Code != http.StatusBadRequest || !strings.Contains(fieldError(w.Body.String(), "threshold_ms"), "positive") {
		t.Errorf("edit with a negative threshold: %d", w.Code)
	}
	if b, _ := f.db.BudgetByID(context.Background(), f.budget.ID); b.Threshold != f.budget.Threshold || b.Name != f.budget.Name {
		t.Errorf("a rejected edit changed the budget: %+v", b)
	}
}

// fieldError returns the text of the message shown next to a form field.
func fieldError(body, field string) string {
	m := regexp.MustCompile(`(?s)data-testid="field-error" data-field="` + regexp.QuoteMeta(field) + `"[^>]*>(.*?)</div>\s*(?:</div>|<)`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(m[1], " "))
}

func TestReviewFormsRefuseCrossOriginPosts(t *testing.T) {
	f := newRVFixtureSmall(t)
	r := incidentFormValues().Encode()
	for _, target := range []string{"/incidents", "/budgets", fmt.Sprintf("/incidents/%d/delete", f.incident.ID), fmt.Sprintf("/budgets/%d/delete", f.budget.ID)} {
		w := rvDo(t, f.handler, "POST", target, r, "Content-Type", "application/x-www-form-urlencoded",
			"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
		if w.Code != http.StatusForbidden {
			t.Errorf("cross-site POST %s: %d, want 403", target, w.Code)
		}
	}
	if list, _ := f.db.Incidents(context.Background()); len(list) != 1 {
		t.Errorf("%d incidents after refused posts", len(list))
	}
	if _, err := f.db.BudgetByID(context.Background(), f.budget.ID); err != nil {
		t.Errorf("a refused post deleted the budget: %v", err)
	}
}

func TestReviewPagesEscapeUserText(t *testing.T) {
	f := newRVFixtureSmall(t)
	evil := `<img src=x onerror=alert(1)>`
	form := incidentFormValues()
	form.Set("title", evil)
	form.Set("notes", "hello "+evil+"\n\n[click](javascript:alert(2)) <script>alert(3)</script>")
	w := rvPost(t, f.handler, "/incidents", form)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("create: %d", w.Code)
	}
	loc := w.Header().Get("Location")
	for _, target := range []string{loc, "/incidents", loc + "/edit", loc + "/report.html"} {
		body := rvGet(t, f.handler, target).Body.String()
		// As text the payload is harmless; as markup it must never appear.
		for _, bad := range []string{evil, "<img", "<script>alert", `href="javascript:`} {
			if strings.Contains(body, bad) {
				t.Errorf("%s: %q reached the page unescaped", target, bad)
			}
		}
	}
	bf := budgetForm()
	bf.Set("name", evil)
	if w := rvPost(t, f.handler, "/budgets", bf); w.Code != http.StatusSeeOther {
		t.Fatalf("budget: %d", w.Code)
	}
	if body := rvGet(t, f.handler, "/budgets").Body.String(); strings.Contains(body, evil) {
		t.Error("budget name reached the list unescaped")
	}
}

func TestNotesMarkdown(t *testing.T) {
	tests := []struct {
		name, md      string
		want, notWant []string
	}{
		{"emphasis and lists", "**bold** and _it_\n\n- one\n- two", []string{"<strong>bold</strong>", "<em>it</em>", "<li>one</li>"}, nil},
		{"table", "| a | b |\n| - | - |\n| 1 | 2 |", []string{"<table>", "<td>1</td>"}, nil},
		{"links get nofollow", "[x](https://example.com/a)", []string{`href="https://example.com/a"`, `rel="nofollow"`}, nil},
		{"raw html dropped", "<script>alert(1)</script>\n\n<div onclick=\"x()\">hi</div>", nil, []string{"<script", "onclick", "alert(1)"}},
		{"javascript links dropped", "[x](javascript:alert(1))", nil, []string{"javascript:"}},
		{"empty", "  \n", nil, []string{"<p>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := report.RenderNotes(tt.md)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("%q lacks %q", got, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(got, w) {
					t.Errorf("%q contains %q", got, w)
				}
			}
		})
	}
}

func TestDeployPages(t *testing.T) {
	f := newRVFixture(t)
	t.Run("curl line is safe to paste", func(t *testing.T) {
		body := html.UnescapeString(rvGet(t, f.handler, "/deploys?service=x';rm+-rf+~;'").Body.String())
		curl := regexp.MustCompile(`(?s)data-testid="curl-oneliner"><code>(.*?)</code>`).FindStringSubmatch(body)
		if curl == nil {
			t.Fatal("no curl line")
		}
		if strings.Contains(curl[1], "rm -rf") || !strings.HasPrefix(curl[1], "curl -sf -X POST http://example.com/api/v1/deploys") {
			t.Errorf("curl line %q", curl[1])
		}
	})
	t.Run("the documented curl body is accepted by the API", func(t *testing.T) {
		body := html.UnescapeString(rvGet(t, f.handler, "/deploys?service=feed-api").Body.String())
		curl := regexp.MustCompile(`-d '(.*)'</code>`).FindStringSubmatch(body)
		if curl == nil {
			t.Fatal("no request body in the curl line")
		}
		// What the shell makes of the quoting, with the CI variables set.
		payload := strings.NewReplacer(`'"$GIT_SHA"'`, "abc123", `'"$CI_PIPELINE_ID"'`, "77").Replace(curl[1])
		w := rvDo(t, f.handler, "POST", "/api/v1/deploys", payload, "Content-Type", "application/json")
		if w.Code != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", payload, w.Code, w.Body.String())
		}
		if !strings.Contains(rvGet(t, f.handler, "/deploys").Body.String(), `data-version="abc123"`) {
			t.Error("the posted marker is not listed")
		}
	})
	t.Run("verdict in plain words", func(t *testing.T) {
		body := html.UnescapeString(rvGet(t, f.handler, fmt.Sprintf("/deploys/%d", f.deploy.ID)).Body.String())
		v := regexp.MustCompile(`(?s)data-testid="verdict"[^>]*>(.*?)</p>`).FindStringSubmatch(body)
		if v == nil {
			t.Fatal("no verdict")
		}
		text := regexp.MustCompile(`<[^>]+>`).ReplaceAllString(v[1], "")
		for _, want := range []string{"Regression", "p99", "→", "CI", "candidate-svc → postgresql"} {
			if !strings.Contains(text, want) {
				t.Errorf("verdict %q lacks %q", text, want)
			}
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, tt := range []struct {
			target string
			status int
			want   string
		}{
			{fmt.Sprintf("/deploys/%d?window=forever", f.deploy.ID), 400, "window"},
			{"/deploys/999", 404, "not found"},
			{"/deploys/x", 400, "deploy id"},
			{"/compare?service=feed-api&version_a=v1&version_b=v1", 400, "the same"},
			{"/compare?service=ghost&version_a=v1&version_b=v2", 404, "no requests"},
			{"/deploys?from=now&to=now-1h", 400, "must be before"},
		} {
			w := rvGet(t, f.handler, tt.target)
			if w.Code != tt.status || !containsFold(html.UnescapeString(w.Body.String()), tt.want) {
				t.Errorf("%s: %d, want %d saying %q", tt.target, w.Code, tt.status, tt.want)
			}
		}
	})
	t.Run("deploys without traffic", func(t *testing.T) {
		d, err := f.db.RecordDeploy(context.Background(), store.Deploy{Service: "feed-api", Version: "v3", At: rvNow(), Source: store.DeploySourceAPI})
		if err != nil {
			t.Fatal(err)
		}
		ghost, err := f.db.RecordDeploy(context.Background(), store.Deploy{Service: "ghost-svc", Version: "v1", At: rvStart, Source: store.DeploySourceAPI})
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			d    store.Deploy
			want string
		}{{d, "no requests after it yet"}, {ghost, "no requests to service"}} {
			w := rvGet(t, f.handler, fmt.Sprintf("/deploys/%d", tt.d.ID))
			if w.Code != http.StatusOK || !containsFold(html.UnescapeString(w.Body.String()), tt.want) {
				t.Errorf("deploy %s %s: %d, want 200 with a note saying %q", tt.d.Service, tt.d.Version, w.Code, tt.want)
			}
		}
	})
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
