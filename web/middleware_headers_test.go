package web

import (
	"net/http"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// routeTarget turns a route pattern into a URL a request can reach, with
// a plausible value for each parameter (the handler may still answer 400
// or 404: the headers must be there whatever it answers).
func routeTarget(pattern string) string {
	r := strings.NewReplacer("{traceID}", "0123456789abcdef0123456789abcdef", "{spanID}", "0123456789abcdef", "*", "x")
	out := r.Replace(pattern)
	for strings.Contains(out, "{") {
		i := strings.Index(out, "{")
		j := strings.Index(out[i:], "}")
		out = out[:i] + "1" + out[i+j+1:]
	}
	return out
}

// routeRequest is routeTarget with the query a route needs to answer
// quickly: the profiler samples for 30 s unless told otherwise.
func routeRequest(pattern string) string {
	t := routeTarget(pattern)
	if pattern == "/debug/pprof/profile" || pattern == "/debug/pprof/trace" {
		t += "?seconds=1"
	}
	return t
}

// walkRoutes lists every method and pattern the router serves, so a test
// over it covers a route added later without being told.
func walkRoutes(t testing.TB, h http.Handler) [][2]string {
	t.Helper()
	routes, ok := h.(chi.Routes)
	if !ok {
		t.Fatalf("handler %T is not a chi router", h)
	}
	var out [][2]string
	err := chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		out = append(out, [2]string{method, route})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 30 {
		t.Fatalf("walked %d routes; the router has more", len(out))
	}
	return out
}

// TestSecurityHeadersOnEveryRoute requests every route of the router, and
// a path that is none, and checks each answer (page, JSON, asset, error)
// forbids framing and sniffing and carries the strict policy.
func TestSecurityHeadersOnEveryRoute(t *testing.T) {
	h, _ := newWritableServer(t)
	routes := append(walkRoutes(t, h), [2]string{"GET", "/no/such/page"}, [2]string{"GET", "/api/v1/no-such-route"})
	want := map[string]string{
		"X-Frame-Options":        "DENY",
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "same-origin",
	}
	for _, rt := range routes {
		method, target := rt[0], routeRequest(rt[1])
		t.Run(method+" "+rt[1], func(t *testing.T) {
			w := serve(t, h, method, target, "")
			for k, v := range want {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s %s (%d): %s = %q, want %q", method, target, w.Code, k, got, v)
				}
			}
			csp := w.Header().Get("Content-Security-Policy")
			for _, d := range []string{"frame-ancestors 'none'", "default-src 'none'"} {
				if !strings.Contains(csp, d) {
					t.Errorf("%s %s (%d): CSP %q lacks %q", method, target, w.Code, csp, d)
				}
			}
			for _, d := range strings.Split(csp, ";") {
				if d = strings.TrimSpace(d); strings.HasPrefix(d, "script-src") && strings.Contains(d, "unsafe") {
					t.Errorf("CSP directive %q allows unsafe script", d)
				}
			}
		})
	}
}
