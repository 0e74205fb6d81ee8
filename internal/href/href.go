// Package href builds the links that pages and reports share, so a link in
// report.md and the same link on the incident page are one string.
package href

import (
	"net/url"
	"time"
)

// With is path with the query parameters kv (key, value, key, value...),
// skipping empty values; without any, it is path.
func With(path string, kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			v.Set(kv[i], kv[i+1])
		}
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// Time writes a time as a range parameter (from, to) of a link: RFC 3339
// in UTC with nanoseconds, so a link names the exact window.
func Time(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
