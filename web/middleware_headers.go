package web

import (
	"net/http"
	"strings"
)

// contentSecurityPolicy is the policy of every answer, pages and JSON alike.
// Scripts and stylesheets come only from tailscope's own static files; no
// page has an inline script. Style attributes stay allowed (style-src-attr):
// waterfall bars, flame frames and share bars are positioned by computed
// widths, an attribute cannot run script, and the values are numbers the
// components format themselves. frame-ancestors 'none' stops clickjacking
// (a framed delete button clicked through an overlay); X-Frame-Options
// says the same to browsers that predate it.
// The report export sets its own, stricter policy (no requests at all).
func contentSecurityPolicy() string {
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self'",
		"style-src-attr 'unsafe-inline'",
		"img-src 'self' data:",
		"font-src 'self'",
		"connect-src 'self'",
		"form-action 'self'",
		"frame-ancestors 'none'",
		"base-uri 'none'",
	}, "; ")
}

// securityHeaders sets the hardening headers on every answer before the
// handler runs, so errors, redirects and 404s carry them too.
func securityHeaders(csp string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Security-Policy", csp)
			h.Set("X-Frame-Options", "DENY")
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "same-origin")
			h.Set("Cross-Origin-Opener-Policy", "same-origin")
			next.ServeHTTP(w, r)
		})
	}
}
