package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxQueryValue bounds one query parameter (a service, endpoint, tenant,
// attribute filter, time). Names people give things are far shorter; a
// longer value is a mistake or a probe, and it would reach the store.
const maxQueryValue = 2048

// checkText says what is wrong with text a request gives, or "" when it is
// fine: valid UTF-8 without NUL or other control characters (tab and line
// breaks only where multiline is true), at most max bytes. The store
// contract is the one ingest enforces (valid UTF-8, no NUL): PostgreSQL
// refuses anything else, which used to surface as a 500.
func checkText(v string, max int, multiline bool) string {
	if len(v) > max {
		return "is over " + strconv.Itoa(max) + " bytes"
	}
	if !utf8.ValidString(v) {
		return "is not valid UTF-8"
	}
	for _, c := range v {
		switch {
		case c == 0:
			return "holds a NUL character"
		case c == '\t' || c == '\n' || c == '\r':
			if !multiline {
				return "holds a tab or line break"
			}
		case c < 0x20 || c == 0x7f:
			return "holds a control character"
		}
	}
	return ""
}

// validQuery refuses, with a 400 naming the parameter, a query string that
// does not parse or whose names or values fail checkText, before any
// handler reads it. One check at the edge covers every parameter of every
// route, present and future.
func (s *Server) validQuery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := queryError(r.URL.RawQuery); err != nil {
			s.requestError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// queryError checks a raw query string.
func queryError(raw string) error {
	if raw == "" {
		return nil
	}
	values, err := url.ParseQuery(raw)
	// A raw ";" is an error to ParseQuery, and handlers (r.URL.Query)
	// skip such pairs as net/http does: not worth refusing the request.
	if err != nil && !strings.Contains(err.Error(), "semicolon") {
		return badRequest("the query string is malformed: %s", strings.TrimPrefix(err.Error(), "invalid URL escape "))
	}
	for name, vs := range values {
		if msg := checkText(name, 100, false); msg != "" {
			return badRequest("a query parameter name %s", msg)
		}
		for _, v := range vs {
			if msg := checkText(v, maxQueryValue, false); msg != "" {
				return badRequest("query parameter %s %s", name, msg)
			}
		}
	}
	return nil
}

// formError checks the values of a parsed form: notes may span lines.
func formError(form url.Values) error {
	for name, vs := range form {
		if msg := checkText(name, 100, false); msg != "" {
			return badRequest("a form field name %s", msg)
		}
		for _, v := range vs {
			if msg := checkText(v, maxFormBody, true); msg != "" {
				return badRequest("form field %s %s", name, msg)
			}
		}
	}
	return nil
}

// requestError answers err as JSON under /api/ and as a page elsewhere.
func (s *Server) requestError(w http.ResponseWriter, r *http.Request, err error) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		s.apiError(w, r, err)
		return
	}
	s.pageError(w, r, err)
}
