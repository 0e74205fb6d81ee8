package web

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
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
	var spans []store.Span
	add := func(i int, name string) {
		var tid store.TraceID
		binary.BigEndian.PutUint64(tid[8:], uint64(i+1))
		var sid store.SpanID
		binary.BigEndian.PutUint64(sid[:], uint64(i+1))
		spans = append(spans, store.Span{TraceID: tid, SpanID: sid, Service: "api", Name: name, Kind: store.KindServer,
			StartUnixNano: fixtureNow().Add(-30*time.Minute + time.Duration(i)*time.Second).UnixNano(), DurationNano: int64(5+i%40) * int64(time.Millisecond)})
	}
	for i := range ids {
		add(i, fmt.Sprintf("GET /users/%d", i))
	}
	for i := range 40 { // the busiest endpoint: 41 requests
		add(ids+i, "GET /users/{id}")
	}
	if err := db.WriteSpans(ctx, spans); err != nil {
		t.Fatal(err)
	}
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
