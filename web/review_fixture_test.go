package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/cache"
	"github.com/tailscope/tailscope/static"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/sqlite"
)

// rvStart is the start of the review fixture's data; its clock sits an
// hour later.
var rvStart = time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)

func rvNow() time.Time { return rvStart.Add(time.Hour) }

// rvFixture is the data of the budgets, deploys and incident tests: feed
// traffic on v1 for half an hour, a deploy marker, then v2 with a slow
// candidate query on 20% of requests (the regression), and profile-svc
// slow for tenant acme throughout (the long-standing tail). A budget on
// GET /v1/feed and an incident over the regression are stored.
type rvFixture struct {
	db      *sqlite.DB
	handler http.Handler
	// cached serves the same store through an in-process analysis cache,
	// as tailscope runs by default: for read-only tests that load the
	// same analysis several times.
	cached   http.Handler
	deploy   store.Deploy
	budget   store.Budget
	incident store.Incident
}

// rvNotes are the incident's notes: Markdown with a table, a link and raw
// HTML that must not survive rendering.
const rvNotes = "## What we saw\n\nThe **v2** deploy made the candidate query slow; see the [runbook](https://runbooks.example/feed).\n\n" +
	"| step | who |\n| --- | --- |\n| rolled back | on-call |\n\n<script>alert('notes')</script>\n"

// newRVFixture builds the review fixture in a temporary directory. The
// store's created/updated times come from the wall clock, so the handler
// reads through rvFixedTimes, which pins them for golden files.
func newRVFixture(t testing.TB) *rvFixture {
	t.Helper()
	return newRVFixtureN(t, 1500)
}

// newRVFixtureSmall has the same shape with a fifth of the requests: for
// tests of forms, which need services to exist but no statistics.
func newRVFixtureSmall(t testing.TB) *rvFixture {
	t.Helper()
	return newRVFixtureN(t, 300)
}

// newRVFixtureN builds the fixture with n requests in each half hour.
func newRVFixtureN(t testing.TB, n int) *rvFixture {
	t.Helper()
	db := openSpanStore(t, rvTraffic(n)...)
	f := &rvFixture{db: db}
	f.deploy, f.budget, f.incident = rvRecords(t, db)
	f.handler, f.cached = newTestHandlers(t, rvFixedTimes{db}, rvNow)
	return f
}

// rvTraffic is the fixture's traffic: v1 with n requests in the first
// half hour, v2 with n in the second.
func rvTraffic(n int) [][]store.Span {
	acme := analysistest.Cause{Name: "slow-profile", Dependency: analysistest.ProfileSvc, Tenant: "acme", Probability: 0.1, Extra: 800 * time.Millisecond}
	query := analysistest.Cause{Name: "slow-query", Dependency: analysistest.Postgres, Probability: 0.2, Extra: time.Second}
	v1 := analysistest.Generate(analysistest.Scenario{Seed: 21, Start: rvStart, Window: 30 * time.Minute, Traces: n, Causes: []analysistest.Cause{acme}})
	v2 := analysistest.Generate(analysistest.Scenario{Seed: 22, Start: rvStart.Add(30 * time.Minute), Window: 30 * time.Minute, Traces: n,
		Parallel: true, Causes: []analysistest.Cause{acme, query}})
	return [][]store.Span{v1.Spans, v2.Spans}
}

// rvRecords stores the fixture's deploy marker, budget and incident.
func rvRecords(t testing.TB, st store.Store) (d store.Deploy, b store.Budget, in store.Incident) {
	t.Helper()
	ctx := context.Background()
	var err error
	if d, err = st.RecordDeploy(ctx, store.Deploy{Service: analysistest.FeedAPI, Version: "v2", At: rvStart.Add(30 * time.Minute), Source: store.DeploySourceAuto}); err != nil {
		t.Fatal(err)
	}
	if b, err = st.CreateBudget(ctx, store.Budget{
		Name: "feed p99", Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint,
		Threshold: 500 * time.Millisecond, Target: 0.99, Period: 30 * 24 * time.Hour,
		Hops: []store.HopBudget{
			{Service: analysistest.FeedAPI, Dependency: analysistest.ProfileSvc, Allocation: 150 * time.Millisecond},
			{Service: analysistest.FeedAPI, Dependency: analysistest.CandidateSvc, Allocation: 120 * time.Millisecond},
			{Service: analysistest.CandidateSvc, Dependency: analysistest.Postgres, Allocation: 100 * time.Millisecond},
		},
	}); err != nil {
		t.Fatal(err)
	}
	if in, err = st.CreateIncident(ctx, store.Incident{
		Title: "Feed p99 regression after v2", From: rvStart.Add(30 * time.Minute), To: rvStart.Add(50 * time.Minute),
		Services: []string{analysistest.FeedAPI}, Notes: rvNotes,
	}); err != nil {
		t.Fatal(err)
	}
	return d, b, in
}

// openSpanStore opens a SQLite store in the test's temporary directory
// holding the given spans.
func openSpanStore(t testing.TB, spans ...[]store.Span) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "spans.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	writeSpans(t, db, spans...)
	return db
}

// writeSpans writes spans in batches of 5,000.
func writeSpans(t testing.TB, w store.Writer, spans ...[]store.Span) {
	t.Helper()
	for _, ss := range spans {
		for i := 0; i < len(ss); i += 5000 {
			if err := w.WriteSpans(context.Background(), ss[i:min(i+5000, len(ss))]); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// newTestHandlers serves st at the clock now twice: without a cache, and
// through an in-process analysis cache as tailscope runs by default.
func newTestHandlers(t testing.TB, st store.Store, now func() time.Time) (plain, cached http.Handler) {
	t.Helper()
	assets, err := static.Load()
	if err != nil {
		t.Fatal(err)
	}
	mem, err := cache.NewMemory(1000)
	if err != nil {
		t.Fatal(err)
	}
	plain = New(Config{Store: st, Now: now, Assets: assets, Version: "test"}).Handler()
	cached = New(Config{Store: st, Now: now, Assets: assets, Version: "test", Cache: cache.NewAside(mem, time.Hour, 0, nil)}).Handler()
	return plain, cached
}

// rvFixedTimes pins the created/updated times the store assigns from the
// wall clock, so reports of the fixture are byte-for-byte stable.
type rvFixedTimes struct{ *sqlite.DB }

func rvPin[T any](v T, err error, set func(*T)) (T, error) {
	if err == nil {
		set(&v)
	}
	return v, err
}

func (f rvFixedTimes) IncidentByID(ctx context.Context, id int64) (store.Incident, error) {
	in, err := f.DB.IncidentByID(ctx, id)
	return rvPin(in, err, func(in *store.Incident) {
		in.CreatedAt, in.UpdatedAt = rvStart.Add(55*time.Minute), rvStart.Add(58*time.Minute)
	})
}

func (f rvFixedTimes) BudgetByID(ctx context.Context, id int64) (store.Budget, error) {
	b, err := f.DB.BudgetByID(ctx, id)
	return rvPin(b, err, func(b *store.Budget) { b.CreatedAt, b.UpdatedAt = rvStart, rvStart })
}

func (f rvFixedTimes) Budgets(ctx context.Context) ([]store.Budget, error) {
	bs, err := f.DB.Budgets(ctx)
	return rvPin(bs, err, func(bs *[]store.Budget) {
		for i := range *bs {
			(*bs)[i].CreatedAt, (*bs)[i].UpdatedAt = rvStart, rvStart
		}
	})
}

// rvGet serves a GET and returns the recorder.
func rvGet(t testing.TB, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
	return w
}

// rvPost posts a form as a browser on the same origin does.
func rvPost(t testing.TB, h http.Handler, target string, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// rvDo serves one request with headers given as name, value pairs.
func rvDo(t testing.TB, h http.Handler, method, target, body string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// rvHead is the first lines of a page, for failure messages.
func rvHead(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}
