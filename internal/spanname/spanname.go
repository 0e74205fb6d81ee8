// Package spanname stores span names that carry values as their
// template. An endpoint is the name of an entry span (docs/DESIGN.md
// "Endpoints"), and a name is a rollup key, a picker entry and an index
// key. Instrumentations that name a server span after the raw request
// path ("GET /users/12345?page=2") make every request its own endpoint: no
// endpoint then has a tail to analyse, the rollups grow as fast as the
// spans, and the ids in the name bypass redaction. Append gives such a
// name's template, the way the OpenTelemetry conventions name these spans
// ("{method} {http.route}"):
//
//   - a span whose name is its HTTP method alone ("GET", "HTTP GET": an
//     instrumentation that named the span before the router matched) or a
//     path takes its path template when it has one (the caller passes
//     http.route for a server span, url.template for a client span);
//   - otherwise a path ("/…", or an absolute http(s) URL, after an optional
//     method) loses its query, fragment and user:password, and each
//     segment that reads as a value (IDSegment) becomes "{id}".
//
// Names that are not paths are kept. otlpconv applies it at ingest (and
// templates a span named after its SQL statement itself); the pages apply
// it to a name typed or pasted as sent, to find its template.
package spanname

import "strings"

// Placeholder replaces a path segment that holds a value.
const Placeholder = "{id}"

// httpMethods are the request methods a span name may start with
// (OpenTelemetry's known methods; "_OTHER" stands for the rest).
var httpMethods = [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY", "_OTHER"}

// splitMethod splits "GET /x" into "GET" and "/x", and a bare method
// ("GET", "HTTP GET") into it and "". ok is false when name does not start
// with a method.
func splitMethod(name string) (method, rest string, ok bool) {
	s := strings.TrimPrefix(name, "HTTP ")
	for _, m := range httpMethods {
		if !strings.HasPrefix(s, m) {
			continue
		}
		switch {
		case len(s) == len(m):
			return m, "", true
		case s[len(m)] == ' ' && len(s) != len(name):
			return "", "", false // "HTTP GET /x" is not a form anyone sends
		case s[len(m)] == ' ':
			return m, s[len(m)+1:], true
		}
	}
	return "", "", false
}

// Append appends to buf the name a span named name is stored under
// when that differs from name, and reports whether it does. route is the
// span's path template (http.route, url.template), "" when it has none.
func Append(buf []byte, name, route string) ([]byte, bool) {
	if !strings.HasPrefix(route, "/") {
		route = ""
	}
	method, path, ok := splitMethod(name)
	if !ok {
		method, path = "", name
	}
	var origin string // scheme and host of an absolute URL
	switch {
	case path == "" && method != "":
		if route == "" {
			return buf, false
		}
	case strings.HasPrefix(path, "/"):
	case strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://"):
		origin, path = splitOrigin(path)
	default:
		return buf, false
	}
	// Most names are already templates: say so without building one.
	if origin == "" && (route != "" && path == route || route == "" && !strings.ContainsAny(path, "0123456789?#@")) {
		return buf, false
	}
	start := len(buf)
	if method != "" {
		buf = append(buf, method...)
		buf = append(buf, ' ')
	}
	buf = append(buf, origin...)
	if route != "" {
		buf = append(buf, route...)
	} else {
		buf = appendPathTemplate(buf, path)
	}
	return buf, string(buf[start:]) != name
}

// splitOrigin splits an absolute URL into its scheme and host (without
// user:password) and the rest, which starts with "/" or is empty.
func splitOrigin(u string) (origin, rest string) {
	scheme := u[:strings.Index(u, "://")+3]
	authority, rest := u[len(scheme):], ""
	if i := strings.IndexAny(authority, "/?#"); i >= 0 {
		authority, rest = authority[:i], authority[i:]
	}
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		authority = authority[i+1:]
	}
	if rest != "" && rest[0] != '/' {
		rest = "" // a query straight after the host
	}
	return scheme + authority, rest
}

// appendPathTemplate appends path without its query and fragment, each
// segment that holds a value replaced by Placeholder.
func appendPathTemplate(buf []byte, path string) []byte {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	for {
		seg, rest, more := strings.Cut(path, "/")
		if IDSegment(seg) {
			buf = append(buf, Placeholder...)
		} else {
			buf = append(buf, seg...)
		}
		if !more {
			return buf
		}
		buf = append(buf, '/')
		path = rest
	}
}

// IDSegment reports whether a path segment reads as a value rather than a
// route's word: it has no letters and a digit (12345, 2024-01-15,
// 10.0.0.1); it is hexadecimal of at least 8 digits with a decimal one (a
// UUID, a hash, an object id: 3f2a9c1e, 507f1f77bcf86cd799439011); it has
// a run of at least 4 decimal digits (user-12345, INV-2024-0001); it is at
// least 16 bytes long with 3 digits or more (opaque tokens); or it holds
// an e-mail address. Words with a digit or two stay (v2, oauth2, x509,
// s3, ipv6).
func IDSegment(seg string) bool {
	if seg == "" || seg == Placeholder {
		return false
	}
	var (
		digits, run, longest int
		letters, hex         int
		at                   bool
	)
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
			run++
			longest = max(longest, run)
			hex++
			continue
		case c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F':
			letters++
			hex++
		case c >= 'g' && c <= 'z' || c >= 'G' && c <= 'Z' || c >= 0x80:
			letters++
		case c == '@':
			at = true
		case c == '%' && strings.HasPrefix(seg[i:], "%40"):
			at = true
		}
		run = 0
	}
	switch {
	case digits == 0:
		return at
	case letters == 0:
		return true
	case longest >= 4:
		return true
	case len(seg) >= 16 && digits >= 3:
		return true
	case at:
		return true
	}
	// Hexadecimal: every byte a hex digit or a dash (UUIDs).
	return hex >= 8 && hex+strings.Count(seg, "-") == len(seg)
}

// Template returns name's template and whether it differs from name, for
// a name without a path template of its own.
func Template(name string) (string, bool) {
	b, ok := Append(nil, name, "")
	return string(b), ok
}
