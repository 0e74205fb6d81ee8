package web

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tailscope/tailscope/internal/browsertest"
	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/sqlite"
)

// TestEndpointListsAreBounded: a service whose span names carry ids has
// an endpoint per request. The Services page lists its busiest endpoints
// and one row for the rest (with where to see them); the pickers suggest
// the busiest and take any name. A service of a few endpoints keeps its
// choice list (TestPagesRender).
func TestEndpointListsAreBounded(t *testing.T) {
	srv, db := newEmptyServer(t, Config{})
	h := srv.Handler()
	ctx := context.Background()
	const ids = 600
	writeRawPathEndpoints(t, db, ids)
	d, err := db.RecordDeploy(ctx, store.Deploy{Service: "api", Version: "v2", At: fixtureNow().Add(-15 * time.Minute), Source: store.DeploySourceAuto})
	if err != nil {
		t.Fatal(err)
	}
	options := regexp.MustCompile(`<option value="GET /users/`)

	page := serve(t, h, http.MethodGet, "/?from=now-1h", "").Body.String()
	rows := strings.Count(page, `data-testid="endpoint-row"`)
	if rows != overviewEndpoints || !strings.Contains(page, `data-endpoint="GET /users/{id}"`) {
		t.Errorf("services page: %d endpoint rows, want the %d busiest, GET /users/{id} among them", rows, overviewEndpoints)
	}
	more := ids + 1 - overviewEndpoints
	if !strings.Contains(page, `data-testid="more-endpoints"`) || !strings.Contains(page, fmt.Sprintf("and %d more endpoints", more)) ||
		!strings.Contains(page, `href="/operations?from=now-1h&amp;service=api&amp;to=now"`) {
		t.Errorf("services page: no row saying %d more endpoints with a link to the service's operations", more)
	}
	if !strings.Contains(page, `data-testid="many-names"`) || !strings.Contains(page, fmt.Sprintf("%d names: span names that carry ids", ids+1)) {
		t.Errorf("services page: %d endpoint names and no word on names that carry values", ids+1)
	}
	// A service with a few more endpoints than the page lists is not
	// told its names carry values.
	few, fewDB := newEmptyServer(t, Config{})
	writeRawPathEndpoints(t, fewDB, overviewEndpoints+10)
	if p := serve(t, few.Handler(), http.MethodGet, "/?from=now-1h", "").Body.String(); !strings.Contains(p, `data-testid="more-endpoints"`) ||
		strings.Contains(p, `data-testid="many-names"`) {
		t.Errorf("services page, %d endpoints: want the more-endpoints row without the word on names", overviewEndpoints+11)
	}

	for _, target := range []string{"/latency?service=api&from=now-1h", "/outliers?service=api&from=now-1h", "/search?service=api&from=now-1h",
		"/budgets/new?service=api", fmt.Sprintf("/deploys/%d?window=30m", d.ID)} {
		w := serve(t, h, http.MethodGet, target, "")
		body := w.Body.String()
		if n := len(options.FindAllString(body, -1)); w.Code != http.StatusOK || n == 0 || n > choiceEndpoints+1 {
			t.Errorf("GET %s: %d, %d endpoint options, want 200 and at most %d", target, w.Code, n, choiceEndpoints+1)
		}
	}
	for _, target := range []string{"/latency?service=api&endpoint=GET+/users/7&from=now-1h", fmt.Sprintf("/deploys/%d?window=30m", d.ID)} {
		body := serve(t, h, http.MethodGet, target, "").Body.String()
		if !strings.Contains(body, `data-testid="endpoint-field"`) || !strings.Contains(body, fmt.Sprintf("busiest of %d; type any", ids+1)) {
			t.Errorf("GET %s: the endpoint is not a text field suggesting the busiest of %d", target, ids+1)
		}
	}
	// A name outside the suggestions is still taken.
	if body := serve(t, h, http.MethodGet, "/latency?service=api&endpoint=GET+/users/7&from=now-1h", "").Body.String(); !strings.Contains(body, `value="GET /users/7"`) {
		t.Error("latency page: the endpoint asked for, not among the suggestions, is not the field's value")
	}
}

// requestSpan is request i (its own trace, i seconds into the fixture's
// last half hour): a root server span.
func requestSpan(i int, service, name string, d time.Duration) store.Span {
	var tid store.TraceID
	binary.BigEndian.PutUint64(tid[8:], uint64(i+1))
	var sid store.SpanID
	binary.BigEndian.PutUint64(sid[:], uint64(i+1))
	return store.Span{TraceID: tid, SpanID: sid, Service: service, Name: name, Kind: store.KindServer,
		StartUnixNano: fixtureNow().Add(-30*time.Minute + time.Duration(i)*time.Second).UnixNano(), DurationNano: int64(d)}
}

// writeRawPathEndpoints writes, for service "api" in the fixture's last
// half hour, one request to each of ids endpoints named after the raw path
// (GET /users/0, ...) and 40 to GET /users/{id}, the busiest.
func writeRawPathEndpoints(t *testing.T, db *sqlite.DB, ids int) {
	t.Helper()
	var spans []store.Span
	add := func(i int, name string) {
		spans = append(spans, requestSpan(i, "api", name, time.Duration(5+i%40)*time.Millisecond))
	}
	for i := range ids {
		add(i, fmt.Sprintf("GET /users/%d", i))
	}
	for i := range 40 {
		add(ids+i, "GET /users/{id}")
	}
	if err := db.WriteSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserMoreEndpointsRowStaysLast: sorting the Services table keeps
// the row that sums up a service's other endpoints after its endpoints.
func TestBrowserMoreEndpointsRowStaysLast(t *testing.T) {
	testenv.Chromium(t)
	s, db := newEmptyServer(t, Config{})
	writeRawPathEndpoints(t, db, overviewEndpoints+10)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	b := browsertest.New(t)
	b.Do(chromedp.Navigate(srv.URL+"/?from=now-1h"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="more-endpoints"]`)))
	last := func() string {
		return browsertest.Get(b, chromedp.Evaluate[string](`(() => { const g = document.querySelector('[data-testid="service-group"]'); return g.rows[g.rows.length - 1].dataset.testid || ""; })()`))
	}
	for _, key := range []string{"p99", "p99", "name", "requests"} {
		b.Do(chromedp.Click(chromedp.CSS(`[data-sort-key="` + key + `"]`)))
		if got := last(); got != "more-endpoints" {
			t.Errorf("sorted by %s: the group's last row is %q, want the more-endpoints row", key, got)
		}
	}
}

// TestServicesListIsBounded: a service.name that carries a pod name makes
// a service per pod. The Services page lists the busiest and every
// service with a budget, sums up the rest below the table, and lists
// every one when asked.
func TestServicesListIsBounded(t *testing.T) {
	srv, db := newEmptyServer(t, Config{})
	h := srv.Handler()
	ctx := context.Background()
	var spans []store.Span
	add := func(i int, service string) { spans = append(spans, requestSpan(i, service, "GET /", time.Millisecond)) }
	const pods = overviewServices + 20
	for i := range pods {
		add(i, fmt.Sprintf("api-%d", i))
	}
	for i := range 5 {
		add(pods+i, "busy")
	}
	add(pods+5, "zz-budgeted") // one request, last by name: listed only for its budget
	if err := db.WriteSpans(ctx, spans); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateBudget(ctx, store.Budget{Name: "zz", Service: "zz-budgeted", Endpoint: "GET /", Threshold: time.Second, Target: 0.99, Period: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	page := serve(t, h, http.MethodGet, "/?from=now-1h", "").Body.String()
	rows := strings.Count(page, `data-testid="service-row"`)
	if rows != overviewServices+1 || !strings.Contains(page, `data-service="busy"`) || !strings.Contains(page, `data-service="zz-budgeted"`) {
		t.Errorf("services page: %d service rows, want the %d busiest (busy among them) and zz-budgeted", rows, overviewServices)
	}
	if more := pods + 2 - (overviewServices + 1); !strings.Contains(page, `data-testid="more-services"`) ||
		!strings.Contains(page, fmt.Sprintf("and %d more services", more)) || !strings.Contains(page, `services=all`) {
		t.Errorf("services page: no line saying %d more services with a link listing every one", more)
	}
	all := serve(t, h, http.MethodGet, "/?from=now-1h&services=all", "").Body.String()
	if rows := strings.Count(all, `data-testid="service-row"`); rows != pods+2 || strings.Contains(all, `data-testid="more-services"`) {
		t.Errorf("services=all: %d service rows, want all %d", rows, pods+2)
	}

	// Pickers suggest the busiest services and take any name: a quiet
	// service, typed, is still shown.
	options := regexp.MustCompile(`<option value="(api-\d+|busy|zz-budgeted)"`)
	// The most service options one list (a datalist or a select) holds.
	lists := regexp.MustCompile(`(?s)<(datalist|select)[ >].*?</(datalist|select)>`)
	longest := func(body string) int {
		n := 0
		for _, l := range lists.FindAllString(body, -1) {
			n = max(n, len(options.FindAllString(l, -1)))
		}
		return n
	}
	note := fmt.Sprintf("suggesting the %d busiest of %d; type any", choiceServices, pods+2)
	for _, target := range []string{"/latency?service=api-7&from=now-1h", "/outliers?service=api-7&from=now-1h",
		"/search?service=api-7&from=now-1h", "/deploys?service=api-7", "/operations?service=api-7&from=now-1h"} {
		w := serve(t, h, http.MethodGet, target, "")
		body := w.Body.String()
		n := longest(body)
		if w.Code != http.StatusOK || n > choiceServices || !strings.Contains(body, `data-testid="service-field"`) ||
			!strings.Contains(body, note) || !strings.Contains(body, `name="service" value="api-7"`) || !strings.Contains(body, `<option value="busy">`) {
			t.Errorf("GET %s: %d, %d service options; want 200, a field holding api-7 that suggests at most %d, busy among them, and says %q",
				target, w.Code, n, choiceServices, note)
		}
	}
	for _, target := range []string{"/budgets/new", "/compare"} {
		body := serve(t, h, http.MethodGet, target, "").Body.String()
		if n := longest(body); n == 0 || n > choiceServices {
			t.Errorf("GET %s: %d service suggestions, want 1 to %d", target, n, choiceServices)
		}
	}

	// The incident form checks the busiest and the asked-for, and takes
	// any other service in a text field.
	body := serve(t, h, http.MethodGet, "/incidents/new?from=now-1h&to=now&service=api-7", "").Body.String()
	boxes := strings.Count(body, `type="checkbox" name="services"`)
	if boxes != choiceServices+1 || !strings.Contains(body, `value="api-7" checked`) || !strings.Contains(body, `data-testid="incident-service-field"`) ||
		!strings.Contains(body, fmt.Sprintf("Showing %d of %d services: the busiest, and those checked", choiceServices+1, pods+2)) {
		t.Errorf("incident form: %d service checkboxes; want the %d busiest and api-7 checked, and a field for any other", boxes, choiceServices)
	}
	form := url.Values{"title": {"pods"}, "from": {"now-1h"}, "to": {"now"}, "services": {"api-7", "", "api-9"}}
	w := rvPost(t, h, "/incidents", form)
	var id int64
	if _, err := fmt.Sscanf(w.Header().Get("Location"), "/incidents/%d", &id); w.Code != http.StatusSeeOther || err != nil {
		t.Fatalf("create with a typed service: %d %s", w.Code, rvHead(w.Body.String(), 10))
	}
	if in, err := db.IncidentByID(ctx, id); err != nil || strings.Join(in.Services, ",") != "api-7,api-9" {
		t.Errorf("incident services %v (%v), want api-7 and the typed api-9", in.Services, err)
	}
}

// TestPastedRawPathFindsItsTemplate: ingest stores a span named after its
// raw path under the path's template, so a name pasted from a log finds
// the template's requests, and the page says which name it shows.
func TestPastedRawPathFindsItsTemplate(t *testing.T) {
	srv, db := newEmptyServer(t, Config{})
	h := srv.Handler()
	var spans []store.Span
	for i := range 40 {
		spans = append(spans, requestSpan(i, "shop", "GET /orders/{id}", time.Duration(5+i)*time.Millisecond))
	}
	if err := db.WriteSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/latency", "/outliers", "/search"} {
		body := serve(t, h, http.MethodGet, target+"?service=shop&endpoint=GET+/orders/12345&from=now-1h", "").Body.String()
		if !strings.Contains(body, `data-testid="endpoint-templated"`) || !strings.Contains(body, `value="GET /orders/{id}"`) {
			t.Errorf("GET %s with a pasted raw path: no note that it shows GET /orders/{id}, or the field does not hold it", target)
		}
		if strings.Contains(body, "no requests") {
			t.Errorf("GET %s with a pasted raw path: no requests shown", target)
		}
	}
	if body := serve(t, h, http.MethodGet, "/search?service=shop&endpoint=GET+/orders/12345&from=now-1h", "").Body.String(); strings.Count(body, `data-testid="trace-row"`) != 40 {
		t.Errorf("search for a pasted raw path: %d trace rows, want the template's 40", strings.Count(body, `data-testid="trace-row"`))
	}
	// A name whose template has no requests either is shown as asked.
	if body := serve(t, h, http.MethodGet, "/search?service=shop&endpoint=GET+/carts/12345&from=now-1h", "").Body.String(); strings.Contains(body, `data-testid="endpoint-templated"`) ||
		!strings.Contains(body, `value="GET /carts/12345"`) {
		t.Error("search for an unknown raw path: not kept as typed")
	}
}

// TestNamesPastTheRollupBound: a service with more span names than its
// rollups keep (store.MaxRollupNames) still shows all its requests: the
// Services page and /api/v1/services sum the names past the bound up as
// the service's other names, the Operations page has a row for them, and
// a name past the bound is answered from its spans.
func TestNamesPastTheRollupBound(t *testing.T) {
	srv, db := newEmptyServer(t, Config{})
	h := srv.Handler()
	ctx := context.Background()
	ids := store.MaxRollupNames + 100
	// Names no template catches (letters and digits, short): each
	// request its own endpoint even after ingest, and no template for a
	// page to fall back to.
	opaque := func(i int) string { return fmt.Sprintf("GET /orders/ord_%x", i*7919) }
	var spans []store.Span
	for i := range ids {
		spans = append(spans, requestSpan(i, "api", opaque(i), time.Duration(5+i%40)*time.Millisecond))
	}
	for i := range 40 {
		spans = append(spans, requestSpan(ids+i, "api", "GET /orders", 5*time.Millisecond))
	}
	if err := db.WriteSpans(ctx, spans); err != nil {
		t.Fatal(err)
	}
	past := ""
	for i := range ids {
		name := opaque(i)
		ok, err := db.RolledUpName(ctx, "api", name)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			past = name
			break
		}
	}
	if past == "" {
		t.Fatalf("every one of %d names is rolled up, want %d", ids+1, store.MaxRollupNames)
	}
	others := ids + 1 - store.MaxRollupNames // one request each

	page := serve(t, h, http.MethodGet, "/?from=now-1h", "").Body.String()
	if !strings.Contains(page, fmt.Sprintf(`data-testid="other-names">%d requests`, others)) || !strings.Contains(page, `data-testid="many-names"`) {
		t.Errorf("services page: no summing-up row with the %d requests of the names past the bound", others)
	}

	var rep struct {
		Services []struct {
			Name       string `json:"name"`
			Count      int    `json:"count"`
			OtherNames *struct {
				Count int `json:"count"`
			} `json:"other_names"`
			EndpointsTotal int `json:"endpoints_total"`
		} `json:"services"`
	}
	w := serve(t, h, http.MethodGet, "/api/v1/services?from=now-1h&endpoints=all", "")
	decode(t, w.Code, http.StatusOK, w.Body.Bytes(), &rep)
	if len(rep.Services) != 1 || rep.Services[0].Count != ids+40 || rep.Services[0].OtherNames == nil ||
		rep.Services[0].OtherNames.Count != others || rep.Services[0].EndpointsTotal != store.MaxRollupNames {
		t.Errorf("/api/v1/services = %+v; want api with all %d requests, %d endpoints and %d other names", rep.Services, ids+40,
			store.MaxRollupNames, others)
	}

	var lat struct {
		Count  int    `json:"count"`
		Method string `json:"method"`
	}
	w = serve(t, h, http.MethodGet, "/api/v1/latency?service=api&from=now-1h&endpoint="+url.QueryEscape(past), "")
	decode(t, w.Code, http.StatusOK, w.Body.Bytes(), &lat)
	if lat.Count != 1 || lat.Method == "rollups" {
		t.Errorf("latency of %s, past the bound: %+v; want its one request, read from spans", past, lat)
	}

	if body := serve(t, h, http.MethodGet, "/latency?service=api&from=now-1h&endpoint="+url.QueryEscape(past), "").Body.String(); !strings.Contains(body, "Read from spans: api has more than") {
		t.Errorf("latency page of %s: no word on why it was read from spans", past)
	}
	b, err := db.CreateBudget(ctx, store.Budget{Name: "past", Service: "api", Endpoint: past, Threshold: time.Millisecond, Target: 0.99, Period: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var comp struct {
		Total  int    `json:"total"`
		Source string `json:"source"`
	}
	w = serve(t, h, http.MethodGet, fmt.Sprintf("/api/v1/budgets/%d/compliance?from=now-1h", b.ID), "")
	decode(t, w.Code, http.StatusOK, w.Body.Bytes(), &comp)
	if comp.Total != 1 || comp.Source == "rollups" {
		t.Errorf("budget on %s, past the bound: %+v; want its one request, read from spans", past, comp)
	}

	ops := serve(t, h, http.MethodGet, "/operations?from=now-1h&service=api", "").Body.String()
	if !strings.Contains(ops, `data-testid="other-names"`) {
		t.Error("operations page: no row for the names past the bound")
	}
}
