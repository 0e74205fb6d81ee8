package web

import (
	"cmp"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tailscope/tailscope/internal/auth"
	"github.com/tailscope/tailscope/static"
)

// authServer is a server with built-in accounts alice (editor) and bob
// (reader), API tokens for a CI deploy job and a reader, and an ingest
// token, answering only to the given Host names (any when none).
func authServer(t *testing.T, hosts ...string) (*Server, http.Handler) {
	t.Helper()
	_, db := newWritableServer(t)
	hash := func(pw string) string {
		h, err := auth.HashPassword(pw)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	file := auth.File{
		Accounts: []auth.Account{
			{Name: "alice", PasswordHash: hash("alice-pw"), Role: "editor"},
			{Name: "bob", PasswordHash: hash("bob-pw"), Role: "reader"},
		},
		APITokens: []auth.APIToken{
			{Name: "ci", SHA256: auth.TokenHash("deploy-token"), Role: "deploy"},
			{Name: "grafana", SHA256: auth.TokenHash("reader-token"), Role: "reader"},
		},
		IngestTokens: []auth.IngestToken{{Name: "collector", SHA256: auth.TokenHash("ingest-token")}},
	}
	b, err := json.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Config{Mode: auth.ModeAccounts, File: path})
	if err != nil {
		t.Fatal(err)
	}
	assets, err := static.Load()
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Store: db, Now: fixtureNow, Assets: assets, Version: "test", Auth: a,
		AllowedHosts: hosts, Metrics: http.NotFoundHandler()})
	return s, s.Handler()
}

// login posts the login form and returns the session cookie.
func login(t *testing.T, h http.Handler, name, pw string) *http.Cookie {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "http://tailscope.test/login", strings.NewReader("name="+name+"&password="+pw+"&next=/budgets"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/budgets" {
		t.Fatalf("login %s: %d to %q, want 303 to /budgets", name, w.Code, w.Header().Get("Location"))
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == auth.SessionCookie && c.HttpOnly && c.SameSite == http.SameSiteLaxMode {
			return c
		}
	}
	t.Fatalf("login %s set no HttpOnly SameSite session cookie", name)
	return nil
}

// TestAuthMatrix calls every route of the route table as each kind of
// caller and checks the route's access level decides: allowed callers get
// past authentication (whatever the handler then answers), others get
// 401, 403 or the login page. The table is the source, so a route added
// later is in the matrix without being listed.
func TestAuthMatrix(t *testing.T) {
	s, h := authServer(t, "tailscope.test")
	editor := login(t, h, "alice", "alice-pw")
	reader := login(t, h, "bob", "bob-pw")

	type caller struct {
		name   string
		role   auth.Role // what it may do; RoleNone: nothing but public
		host   string
		header []string
		cookie *http.Cookie
		badKey bool // a credential that matches nothing: 401 even on reads
	}
	callers := []caller{
		{name: "anonymous"},
		{name: "reader session", role: auth.RoleReader, cookie: reader},
		{name: "editor session", role: auth.RoleEditor, cookie: editor},
		{name: "reader token", role: auth.RoleReader, header: []string{"Authorization", "Bearer reader-token"}},
		{name: "deploy token", role: auth.RoleDeploy, header: []string{"Authorization", "Bearer deploy-token"}},
		{name: "ingest token", header: []string{"Authorization", "Bearer ingest-token"}, badKey: true},
		{name: "wrong token", header: []string{"Authorization", "Bearer nope"}, badKey: true},
		{name: "rebinding host", role: auth.RoleEditor, cookie: editor, host: "rebind.evil.example"},
	}
	routes := s.routes()
	// Log out last: it ends the session the other rows use.
	slices.SortStableFunc(routes, func(a, b route) int {
		la, lb := a.Pattern == "/logout", b.Pattern == "/logout"
		switch {
		case la && !lb:
			return 1
		case lb && !la:
			return -1
		}
		return 0
	})
	for _, rt := range routes {
		if rt.Access == auth.AccessUnset {
			t.Errorf("route %s %s has no access level", rt.Method, rt.Pattern)
		}
	}
	for _, c := range callers {
		for _, rt := range routes {
			host := cmp.Or(c.host, "tailscope.test")
			target := "http://" + host + routeRequest(rt.Pattern)
			r := httptest.NewRequest(rt.Method, target, strings.NewReader("{}"))
			for i := 0; i+1 < len(c.header); i += 2 {
				r.Header.Set(c.header[i], c.header[i+1])
			}
			if c.cookie != nil {
				r.AddCookie(c.cookie)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			// The guard's refusals: 401 with a challenge, 403, 421, or the
			// login page with where to go next (the login form's own 401
			// and logout's redirect to /login are the handlers' answers).
			refused := (w.Code == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") != "") ||
				w.Code == http.StatusForbidden || w.Code == http.StatusMisdirectedRequest ||
				(w.Code == http.StatusSeeOther && strings.HasPrefix(w.Header().Get("Location"), "/login?next="))
			probe := rt.Pattern == "/healthz" || rt.Pattern == "/readyz"
			var allowed bool
			switch {
			case c.host != "" && !probe:
				allowed = false // a rebound name is refused before anything else
			case rt.Access == auth.AccessPublic:
				allowed = true
			case c.badKey:
				allowed = false
			default:
				allowed = c.role.Allows(rt.Access)
			}
			if allowed == refused {
				t.Errorf("%s: %s %s (needs %s) answered %d (Location %q); want allowed=%v",
					c.name, rt.Method, rt.Pattern, rt.Access, w.Code, w.Header().Get("Location"), allowed)
			}
		}
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{"/budgets?x=1": "/budgets?x=1", "//evil.example/": "/", "https://evil.example": "/", `/\evil.example`: "/", "": "/"} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}
