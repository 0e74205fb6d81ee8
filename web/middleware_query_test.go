package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailscope/tailscope/static"
	"github.com/tailscope/tailscope/store/sqlite"
)

// TestPoisonQueryText sends text no store keeps (NUL, invalid UTF-8,
// control characters, a huge value) in each filter the issue named, and in
// an unknown parameter, to every GET route: each must answer 400 saying
// which parameter, never reach the store (PostgreSQL answered 500).
func TestPoisonQueryText(t *testing.T) {
	h, _ := newWritableServer(t)
	bad := map[string]string{
		"NUL":            "%00",
		"invalid UTF-8":  "%ff",
		"control":        "a%01b",
		"line break":     "a%0Ab",
		"over the limit": strings.Repeat("x", maxQueryValue+1),
		"bad escape":     "%zz",
	}
	params := []string{"service", "tenant", "endpoint", "version", "attr", "from", "unknown_param"}
	for _, rt := range walkRoutes(t, h) {
		if rt[0] != http.MethodGet {
			continue
		}
		for name, v := range bad {
			for _, p := range params {
				target := routeTarget(rt[1]) + "?" + p + "=" + v
				w := serve(t, h, http.MethodGet, target, "")
				if w.Code != http.StatusBadRequest {
					t.Errorf("GET %s (%s): %d, want 400", truncateText(target, 80), name, w.Code)
					continue
				}
				if name != "bad escape" && !strings.Contains(w.Body.String(), p) {
					t.Errorf("GET %s (%s): the message does not name %s: %s", truncateText(target, 80), name, p, truncateText(w.Body.String(), 200))
				}
			}
		}
	}
	// Text that is merely unusual passes: accents, emoji, spaces.
	if w := serve(t, h, http.MethodGet, "/api/v1/traces?service=caf%C3%A9+%F0%9F%9A%80", ""); w.Code != http.StatusOK {
		t.Errorf("unicode service: %d %s", w.Code, w.Body.String())
	}
}

// TestRequestsRefusedClearly covers the smaller holes of issue 17: each
// answers 4xx with a message that names the problem, not the backend.
func TestRequestsRefusedClearly(t *testing.T) {
	h, _ := newWritableServer(t)
	tests := []struct {
		name, method, target, body string
		status                     int
		want                       string
	}{
		{"min_ms NaN", "GET", "/api/v1/traces?min_ms=NaN", "", 400, "min_ms"},
		{"max_ms Inf", "GET", "/api/v1/traces?max_ms=Inf", "", 400, "max_ms"},
		{"min_ms NaN page", "GET", "/search?min_ms=NaN", "", 400, "min_ms"},
		{"percentile NaN", "GET", "/api/v1/outliers?service=a&endpoint=b&percentile=NaN", "", 400, "percentile"},
		{"threshold Inf", "GET", "/api/v1/outliers?service=a&endpoint=b&threshold_ms=%2BInf", "", 400, "threshold_ms"},
		{"delete missing budget", "DELETE", "/api/v1/budgets/17", "", 404, "budget 17 not found"},
		{"missing incident", "GET", "/api/v1/incidents/17", "", 404, "incident 17 not found"},
		{"missing deploy", "GET", "/api/v1/deploys/17", "", 404, "deploy 17 not found"},
		{"missing trace", "GET", "/api/v1/traces/0123456789abcdef0123456789abcdef", "", 404, "not found"},
		{"json null", "POST", "/api/v1/deploys", "null", 400, "want a JSON object"},
		{"json array", "POST", "/api/v1/budgets", "[]", 400, "want a JSON object"},
		{"json NUL", "POST", "/api/v1/deploys", `{"service":"a\u0000b","version":"v1"}`, 400, "NUL"},
		{"form NUL", "POST", "/incidents", "title=a%00b&from=now-1h&to=now", 400, "title"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var headers []string
			if tt.method == "POST" && strings.HasPrefix(tt.target, "/api/") {
				headers = []string{"Content-Type", "application/json"}
			} else if tt.method == "POST" {
				headers = []string{"Content-Type", "application/x-www-form-urlencoded"}
			}
			w := serve(t, h, tt.method, tt.target, tt.body, headers...)
			if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.want) {
				t.Fatalf("%s %s: %d %s, want %d naming %q", tt.method, tt.target, w.Code, truncateText(w.Body.String(), 300), tt.status, tt.want)
			}
			for _, backend := range []string{"sqlite", "postgres"} {
				if strings.Contains(w.Body.String(), backend) {
					t.Errorf("the message names the backend: %s", w.Body.String())
				}
			}
		})
	}
}

// FuzzQueryParameters sends any query string to every GET route without
// path parameters over an empty store: the parsers must answer 2xx or 4xx
// and never panic or fail with 500.
func FuzzQueryParameters(f *testing.F) {
	for _, s := range []string{
		"service=a&endpoint=b&from=now-1h&to=now", "min_ms=NaN", "min_ms=1e308&max_ms=-0", "from=now-99999d",
		"from=2026-11-23T14:00:00Z&to=2026-11-23T13:00:00Z", "attr=a%3Db&attr==", "percentile=100&threshold_ms=0",
		"limit=-1&sort=x", "step=0s", "window=1h&equal_counts=true", "service=%00", "from=now-1d12h",
		"version_a=v1&version_b=v2&service=a", "fragment=1&group=-5", "span=zz",
	} {
		f.Add(s)
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(f.TempDir(), "fuzz.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	assets, err := static.Load()
	if err != nil {
		f.Fatal(err)
	}
	h := New(Config{Store: db, Now: fixtureNow, Assets: assets, Version: "test"}).Handler()
	var targets []string
	for _, rt := range walkRoutes(f, h) {
		// The profiler is left out: it samples for as long as it is asked.
		if rt[0] == http.MethodGet && !strings.ContainsAny(rt[1], "{*") && !strings.HasPrefix(rt[1], "/debug/") {
			targets = append(targets, rt[1])
		}
	}
	f.Fuzz(func(t *testing.T, query string) {
		for _, target := range targets {
			// The raw query is set after parsing the target, as a server
			// receives whatever bytes the client put there.
			r := httptest.NewRequest(http.MethodGet, target, nil)
			r.URL.RawQuery = query
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code >= 500 {
				t.Fatalf("GET %s?%s: %d %s", target, query, w.Code, truncateText(w.Body.String(), 300))
			}
			if strings.HasPrefix(target, "/api/") && w.Code >= 400 {
				var e struct{ Error string }
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
					t.Fatalf("GET %s?%s: %d without a JSON error: %s", target, query, w.Code, truncateText(w.Body.String(), 300))
				}
			}
		}
	})
}
