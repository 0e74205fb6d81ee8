package otlpconv

import (
	"strings"

	"github.com/DataDog/go-sqllexer"
)

// Scrubbers of values redaction rewrites by their meaning: database
// statements and URLs.

// statementKind tells how to scrub the statement of a span of database
// system sys.
func statementKind(sys string) (dbKind, sqllexer.DBMSType) {
	switch strings.ToLower(sys) {
	case "redis", "valkey", "memcached":
		return dbKeyValue, ""
	case "postgresql", "cockroachdb":
		return dbSQL, sqllexer.DBMSPostgres
	case "mysql", "mariadb", "tidb":
		return dbSQL, sqllexer.DBMSMySQL
	case "mssql", "microsoft.sql_server":
		return dbSQL, sqllexer.DBMSSQLServer
	case "oracle", "oracle.db":
		return dbSQL, sqllexer.DBMSOracle
	case "db2", "ibm.db2":
		return dbSQL, sqllexer.DBMSDB2
	case "snowflake":
		return dbSQL, sqllexer.DBMSSnowflake
	}
	// Unknown or other systems: the lexer replaces every quoted string and
	// number, which scrubs query languages that are not SQL too.
	return dbSQL, ""
}

// statement scrubs a database statement.
func (rd *redactor) statement(s string, kind dbKind, dbms sqllexer.DBMSType) string {
	if kind == dbKeyValue {
		return scrubKeyValue(s)
	}
	key := sqlKey{dbms: dbms, stmt: s}
	if len(s) <= maxCachedSQL {
		if out, ok := rd.sqlCache.Get(key); ok {
			return out
		}
	}
	var out string
	if dbms != "" {
		out = rd.sql.Obfuscate(s, sqllexer.WithDBMS(dbms))
	} else {
		out = rd.sql.Obfuscate(s)
	}
	if len(s) <= maxCachedSQL {
		// The key may share memory with a larger request; keep a copy.
		key.stmt = strings.Clone(s)
		rd.sqlCache.Add(key, out)
	}
	return out
}

// scrubKeyValue keeps each command of a Redis-like statement (one a line,
// as pipelines are recorded) and its key, and replaces the other
// arguments, which hold values, with '?'. AUTH and HELLO carry
// credentials in their first argument, so all of theirs go.
func scrubKeyValue(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for line := range strings.Lines(s) {
		keep := 2 // command and key
		for j, f := range fields(strings.TrimSuffix(line, "\n")) {
			if j == 0 && (strings.EqualFold(f, "auth") || strings.EqualFold(f, "hello")) {
				keep = 1
			}
			if j > 0 {
				b.WriteByte(' ')
			}
			if j < keep {
				b.WriteString(f)
			} else {
				b.WriteByte('?')
			}
		}
		if strings.HasSuffix(line, "\n") {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// fields yields the fields of s separated by spaces, tabs and carriage
// returns, with their index, without allocating a slice.
func fields(s string) func(yield func(int, string) bool) {
	return func(yield func(int, string) bool) {
		n, i := 0, 0
		for i < len(s) {
			for i < len(s) && isFieldSpace(s[i]) {
				i++
			}
			start := i
			for i < len(s) && !isFieldSpace(s[i]) {
				i++
			}
			if start == i {
				return
			}
			if !yield(n, s[start:i]) {
				return
			}
			n++
		}
	}
}

func isFieldSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' }

// scrubURL replaces user:password, the values of query parameters and the
// values of name=value pairs in the fragment of a URL (or, with queryOnly,
// of a bare query string) with RedactedValue; scheme, host, path and
// parameter names stay. A fragment without '=' is a client-side route and
// stays too.
func scrubURL(s string, queryOnly bool) string {
	if queryOnly {
		return scrubParams(s, true)
	}
	var b strings.Builder
	b.Grow(len(s))
	rest := s
	if i := strings.Index(s, "://"); i >= 0 {
		b.WriteString(s[:i+3])
		rest = s[i+3:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndexByte(rest[:end], '@'); at >= 0 {
			b.WriteString(RedactedValue)
			if strings.IndexByte(rest[:at], ':') >= 0 {
				b.WriteString(":" + RedactedValue)
			}
			rest = rest[at:]
		}
	}
	q := strings.IndexAny(rest, "?#")
	if q < 0 {
		if b.Len() == 0 {
			return s
		}
		b.WriteString(rest)
		return b.String()
	}
	b.WriteString(rest[:q+1])
	tail := rest[q+1:]
	if rest[q] == '?' {
		frag := ""
		if h := strings.IndexByte(tail, '#'); h >= 0 {
			tail, frag = tail[:h], tail[h:]
		}
		b.WriteString(scrubParams(tail, true))
		if frag == "" {
			return b.String()
		}
		b.WriteByte('#')
		tail = frag[1:]
	}
	b.WriteString(scrubParams(tail, false))
	return b.String()
}

// scrubParams redacts the values of name=value pairs separated by '&' or
// ';'. A part without '=' is a value of its own in a query (bare) and is
// redacted whole. Empty parts and empty values stay as they are.
func scrubParams(q string, bare bool) string {
	if q == "" {
		return q
	}
	var b strings.Builder
	b.Grow(len(q))
	for len(q) > 0 {
		part, sep := q, ""
		if end := strings.IndexAny(q, "&;"); end >= 0 {
			part, sep, q = q[:end], q[end:end+1], q[end+1:]
		} else {
			q = ""
		}
		switch eq := strings.IndexByte(part, '='); {
		case part == "", eq == len(part)-1, eq < 0 && !bare:
			b.WriteString(part)
		case eq < 0:
			b.WriteString(RedactedValue)
		default:
			b.WriteString(part[:eq+1])
			b.WriteString(RedactedValue)
		}
		b.WriteString(sep)
	}
	return b.String()
}
