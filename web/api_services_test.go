package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// TestAPIServicesIsBounded: /api/v1/services lists a service's busiest
// endpoints and the busiest services, as the Services page does, and sums
// up the rest so the totals still add up; all lists every one.
func TestAPIServicesIsBounded(t *testing.T) {
	srv, db := newEmptyServer(t, Config{})
	h := srv.Handler()
	const ids = 600
	writeRawPathEndpoints(t, db, ids) // service api: 601 endpoints, 640 requests
	var spans []store.Span
	for i := range 3 {
		for j := range i + 1 {
			spans = append(spans, requestSpan(700+10*i+j, fmt.Sprintf("svc-%d", i), "GET /", time.Millisecond))
		}
	}
	spans = append(spans, requestSpan(800, "svc-3", "GET /", time.Millisecond))
	spans[len(spans)-1].StatusCode = store.StatusError
	if err := db.WriteSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	type list struct {
		Services []struct {
			Name           string `json:"name"`
			Count          int    `json:"count"`
			Errors         int    `json:"errors"`
			EndpointsTotal int    `json:"endpoints_total"`
			Endpoints      []struct {
				Name  string `json:"name"`
				Count int    `json:"count"`
			} `json:"endpoints"`
			OtherEndpoints *notListed `json:"other_endpoints"`
		} `json:"services"`
		ServicesTotal int        `json:"services_total"`
		OtherServices *notListed `json:"other_services"`
	}
	get := func(query string) list {
		t.Helper()
		w := serve(t, h, http.MethodGet, "/api/v1/services?from=now-1h"+query, "")
		var l list
		decode(t, w.Code, http.StatusOK, w.Body.Bytes(), &l)
		return l
	}

	l := get("")
	if len(l.Services) != 5 || l.ServicesTotal != 5 || l.OtherServices != nil {
		t.Fatalf("default: %d services of %d, other %+v; want all 5 listed", len(l.Services), l.ServicesTotal, l.OtherServices)
	}
	api := l.Services[0]
	listed := 0
	for _, e := range api.Endpoints {
		listed += e.Count
	}
	if api.Name != "api" || len(api.Endpoints) != apiEndpoints || api.EndpointsTotal != ids+1 ||
		!strings.Contains(fmt.Sprint(api.Endpoints), "GET /users/{id} 40") {
		t.Fatalf("api: %d endpoints of %d; want the %d busiest of %d, GET /users/{id} (40 requests) among them",
			len(api.Endpoints), api.EndpointsTotal, apiEndpoints, ids+1)
	}
	if o := api.OtherEndpoints; o == nil || o.N != ids+1-apiEndpoints || listed+o.Count != api.Count {
		t.Errorf("api: other endpoints %+v, listed %d requests of %d; want %d more endpoints with the rest", o, listed, api.Count, ids+1-apiEndpoints)
	}
	if s := l.Services[1]; s.Name != "svc-0" || s.EndpointsTotal != 1 || s.OtherEndpoints != nil {
		t.Errorf("svc-0 = %+v; want its one endpoint and nothing left out", s)
	}

	if l := get("&endpoints=all"); len(l.Services[0].Endpoints) != ids+1 || l.Services[0].OtherEndpoints != nil {
		t.Errorf("endpoints=all: api lists %d endpoints, other %+v; want all %d", len(l.Services[0].Endpoints), l.Services[0].OtherEndpoints, ids+1)
	}
	if l := get("&endpoints=3"); len(l.Services[0].Endpoints) != 3 || l.Services[0].OtherEndpoints.N != ids+1-3 {
		t.Errorf("endpoints=3: api lists %d endpoints", len(l.Services[0].Endpoints))
	}
	// The two busiest services: api (640) and svc-2 (3), in name order;
	// the others summed up, svc-3's error with them.
	l = get("&services=2")
	if len(l.Services) != 2 || l.Services[0].Name != "api" || l.Services[1].Name != "svc-2" || l.ServicesTotal != 5 {
		t.Fatalf("services=2: %+v of %d; want api and svc-2 of 5", l.Services, l.ServicesTotal)
	}
	if o := l.OtherServices; o == nil || *o != (notListed{N: 3, Count: 1 + 2 + 1, Errors: 1}) {
		t.Errorf("services=2: other services %+v; want 3 services, 4 requests, 1 error", o)
	}

	for _, q := range []string{"endpoints=0", "endpoints=x", "services=-1", "services=100001", "endpoints=1.5"} {
		w := serve(t, h, http.MethodGet, "/api/v1/services?from=now-1h&"+q, "")
		name, _, _ := strings.Cut(q, "=")
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), name+" must be all or a whole number") {
			t.Errorf("%s: %d %s; want 400 saying what %s takes", q, w.Code, w.Body, name)
		}
	}
}
