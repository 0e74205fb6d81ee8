package web

import (
	"net/http"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/tailscope/tailscope/static"
)

// TestRouteTableIsWhatChiServes checks the table is the single source of the
// routes: every row is registered once, chi serves nothing that is not in
// the table, and the Mutates and Surface columns agree with method and path
// (another check, such as an access matrix, can then trust them).
func TestRouteTableIsWhatChiServes(t *testing.T) {
	s, _ := newEmptyServer(t, Config{Metrics: http.NotFoundHandler()})

	table := map[string]route{}
	for _, rt := range s.routes() {
		key := rt.Method + " " + rt.Pattern
		if _, dup := table[key]; dup {
			t.Errorf("route %s appears twice in the table", key)
		}
		table[key] = rt
		if rt.Handler == nil {
			t.Errorf("route %s has no handler", key)
		}
		if want := rt.Method != http.MethodGet; rt.Mutates != want {
			t.Errorf("route %s: Mutates = %v, want %v (only GET routes leave state alone)", key, rt.Mutates, want)
		}
		if isAPI := strings.HasPrefix(rt.Pattern, apiPrefix+"/"); isAPI != (rt.Surface == surfaceAPI) {
			t.Errorf("route %s: surface %s does not match its path", key, rt.Surface)
		}
	}
	for _, want := range []string{"GET /healthz", "GET /metrics", "GET " + static.Prefix + "*", "GET /", "POST /budgets/{id}/delete", "DELETE /api/v1/incidents/{id}"} {
		if _, ok := table[want]; !ok {
			t.Errorf("route %s missing from the table", want)
		}
	}

	served := map[string]bool{}
	err := chi.Walk(s.Handler().(chi.Routes), func(method, pattern string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		served[method+" "+pattern] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for key := range served {
		if _, ok := table[key]; !ok {
			t.Errorf("chi serves %s, which is not in the route table", key)
		}
	}
	for key := range table {
		if !served[key] {
			t.Errorf("route %s is in the table but chi does not serve it", key)
		}
	}
}
