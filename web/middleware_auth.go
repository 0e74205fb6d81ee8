package web

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/internal/auth"
)

// principalKey carries the request's auth.Principal in its context.
type principalKey struct{}

// principal returns who the request comes from (zero when anonymous).
func principal(r *http.Request) auth.Principal {
	p, _ := r.Context().Value(principalKey{}).(auth.Principal)
	return p
}

// guard wraps a route's handler with its access rule: the request's
// principal (API token, session, proxy header; everyone when
// authentication is off) must hold a role that allows rt.Access. A route
// without an access level is refused, so forgetting one fails closed.
func (s *Server) guard(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.Access == auth.AccessPublic {
			if p, ok, _ := s.auth.Identify(r); ok {
				r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
			}
			rt.Handler.ServeHTTP(w, r)
			return
		}
		p, ok, err := s.auth.Identify(r)
		switch {
		case err != nil:
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			s.requestError(w, r, &Error{Status: http.StatusUnauthorized, Message: err.Error()})
			return
		case !ok:
			if rt.Surface == surfacePage && r.Method == http.MethodGet && s.auth.LoginEnabled() {
				http.Redirect(w, r, "/login?"+url.Values{"next": {r.URL.RequestURI()}}.Encode(), http.StatusSeeOther)
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="tailscope"`)
			s.requestError(w, r, &Error{Status: http.StatusUnauthorized, Message: "authentication required: log in, or send Authorization: Bearer with an API token"})
			return
		case !p.Role.Allows(rt.Access):
			s.requestError(w, r, &Error{Status: http.StatusForbidden, Message: p.Name + " (" + p.Role.String() + ") may not do this: it needs " + rt.Access.String() + " access"})
			return
		}
		rt.Handler.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// allowedHost refuses requests whose Host is not tailscope's own: a page
// of rebind.evil.example whose name was re-pointed at tailscope's address
// would otherwise be same-origin with it and pass the CSRF check. Health
// probes are exempt (an orchestrator asks by pod IP; they reveal nothing).
func (s *Server) allowedHost(next http.Handler) http.Handler {
	if len(s.hosts) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || s.hosts[strings.ToLower(r.Host)] {
			next.ServeHTTP(w, r)
			return
		}
		s.requestError(w, r, &Error{Status: http.StatusMisdirectedRequest, Message: "host " + truncateText(r.Host, 80) + " is not one of tailscope's names: add it with --public-url or --allowed-hosts"})
	})
}

// hostSet lowers and indexes allowed Host values; a name without a port
// also allows it with the ports of the listen address.
func hostSet(hosts []string) map[string]bool {
	if len(hosts) == 0 {
		return nil
	}
	m := map[string]bool{}
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" {
			continue
		}
		m[h] = true
		if host, port, err := net.SplitHostPort(h); err == nil && port != "" {
			m[host] = true // a client may omit the default port
		}
	}
	return m
}

// loginRoutes are the login form and logout; public, and present only
// when built-in accounts are on.
func (s *Server) loginRoutes() []route {
	if !s.auth.LoginEnabled() {
		return nil
	}
	return []route{
		{Method: http.MethodGet, Pattern: "/login", Surface: surfacePage, Access: auth.AccessPublic, Handler: http.HandlerFunc(s.handleLoginPage)},
		{Method: http.MethodPost, Pattern: "/login", Surface: surfacePage, Access: auth.AccessPublic, Mutates: true, Handler: http.HandlerFunc(s.handleLogin)},
		{Method: http.MethodPost, Pattern: "/logout", Surface: surfacePage, Access: auth.AccessPublic, Mutates: true, Handler: http.HandlerFunc(s.handleLogout)},
	}
}

func (s *Server) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	v := components.LoginView{Next: safeNext(r.URL.Query().Get("next"))}
	s.render(w, r, http.StatusOK, s.page(r, "Log in", "", nil), components.LoginPage(v))
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	if err := parsePostForm(w, r); err != nil {
		s.pageError(w, r, err)
		return
	}
	name, next := r.PostForm.Get("name"), safeNext(r.PostForm.Get("next"))
	c, err := s.auth.Login(r.Context(), name, r.PostForm.Get("password"))
	if errors.Is(err, auth.ErrLoginBusy) {
		s.pageError(w, r, &Error{Status: http.StatusServiceUnavailable, Message: err.Error()})
		return
	}
	if err != nil {
		s.log.Info("login refused", "account", truncateText(name, 60), "remote", r.RemoteAddr)
		s.render(w, r, http.StatusUnauthorized, s.page(r, "Log in", "", nil), components.LoginPage(components.LoginView{Name: name, Next: next, Error: err.Error()}))
		return
	}
	s.log.Info("login", "account", name, "remote", r.RemoteAddr)
	http.SetCookie(w, c)
	seeOther(w, r, next)
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, s.auth.Logout(r))
	seeOther(w, r, "/login")
}

// safeNext keeps a post-login redirect on this site: a path, never
// another origin ("//evil.example", "https://…", "/\\evil").
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}
