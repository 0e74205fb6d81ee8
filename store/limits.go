package store

import "unicode/utf8"

// Limits of the text a span row keys on. PostgreSQL refuses an index entry
// over 2,704 bytes, and the spans' (service, name, start) index carries
// the service, name, tenant, version and host of every entry: one span
// with a 4 KiB name would fail its whole batch, every time it is retried.
// So writers cut these to a size all five fit in together (and SQLite
// stores the same bytes). Real names are far shorter; a span name of SQL
// text is the one that comes near.
const (
	// MaxNameBytes bounds a span name (an endpoint or an operation).
	MaxNameBytes = 1024
	// MaxLabelBytes bounds a service, tenant, version and host.
	MaxLabelBytes = 256
)

// TruncateText cuts s to at most n bytes, at a rune boundary.
func TruncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
