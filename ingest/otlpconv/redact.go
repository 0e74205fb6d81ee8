package otlpconv

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/DataDog/go-sqllexer"
	lru "github.com/hashicorp/golang-lru/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// RedactedValue replaces what redaction removes: the whole value of a
// denied key, each match of a value pattern, each value of a URL query.
// The OpenTelemetry semantic conventions use the same word for scrubbed
// URL parts, so one marker reads the same everywhere.
const RedactedValue = "REDACTED"

// Redaction says what Convert removes from spans before they are stored, so
// that what is stored is what may be shown. It applies to span, resource,
// event and link attributes at every depth, and value patterns also to
// status messages. Span and event names are kept as sent: they name
// endpoints and operations, which grouping needs.
type Redaction struct {
	// Keys are attribute keys whose values are replaced by RedactedValue.
	// An entry matches a key equal to it or whose last dot-separated
	// segment equals it, ignoring ASCII case and treating '-' and '_'
	// alike: "authorization" matches http.request.header.authorization and
	// rpc.grpc.request.metadata.authorization.
	Keys []string
	// Patterns are regular expressions (RE2 syntax); every match in a
	// string value is replaced by RedactedValue. BuiltinPattern names
	// ready-made ones.
	Patterns []string
	// SQL replaces the string and numeric literals of db.statement and
	// db.query.text with '?', keeping the statement's shape (for Redis and
	// Memcached, every argument after the key).
	SQL bool
	// URLQuery replaces the values of query parameters and fragments, and
	// user:password, in url.full, http.url, http.target and url.query.
	URLQuery bool
}

// DefaultRedactKeys are the keys (and last segments) redacted by default:
// credentials in HTTP headers and gRPC metadata, and password- and
// token-like names. Each is a whole segment, so token counts such as
// gen_ai.usage.input_tokens are kept.
var DefaultRedactKeys = []string{
	"authorization", "proxy-authorization", "cookie", "set-cookie",
	"x-api-key", "api-key", "apikey", "x-auth-token", "auth-token",
	"access-token", "refresh-token", "id-token", "x-amz-security-token",
	"password", "passwd", "pwd", "secret", "client-secret", "private-key",
}

// builtinPatterns are the ready-made value patterns. Each has a literal
// part (see literalHint), so a value without it costs one substring
// search: an unanchored regular expression costs 0.2–0.5 µs per value.
var builtinPatterns = map[string]string{
	// HTTP credentials pasted into messages or URLs.
	"bearer": `(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}`,
	// JSON Web Tokens: header and payload are base64url JSON objects,
	// which always start with "eyJ".
	"jwt": `eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`,
	// E-mail addresses (personal data); off by default, since
	// messaging.destination names and service accounts look alike.
	"email": `[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`,
}

// DefaultPatterns names the builtin patterns on by default.
var DefaultPatterns = []string{"bearer", "jwt"}

// BuiltinPattern returns the regular expression of a named builtin
// pattern ("bearer", "jwt", "email").
func BuiltinPattern(name string) (string, bool) {
	re, ok := builtinPatterns[name]
	return re, ok
}

// BuiltinPatternNames lists the builtin pattern names, sorted.
func BuiltinPatternNames() []string {
	names := make([]string, 0, len(builtinPatterns))
	for n := range builtinPatterns {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// DefaultRedaction is what tailscope redacts unless told otherwise:
// DefaultRedactKeys, the DefaultPatterns, SQL literals and URL queries.
func DefaultRedaction() Redaction {
	r := Redaction{Keys: slices.Clone(DefaultRedactKeys), SQL: true, URLQuery: true}
	for _, n := range DefaultPatterns {
		r.Patterns = append(r.Patterns, builtinPatterns[n])
	}
	return r
}

// Keys whose values redaction rewrites by their meaning.
const (
	keyDBStatement = "db.statement"  // legacy
	keyDBQueryText = "db.query.text" // semconv ≥ 1.26
	keyURLFull     = "url.full"      // semconv ≥ 1.21
	keyURLQuery    = "url.query"     // semconv ≥ 1.21: the query alone
	keyHTTPURL     = "http.url"      // legacy url.full
	keyHTTPTarget  = "http.target"   // legacy path and query
)

// dbKind is how a statement is scrubbed.
type dbKind int

const (
	dbSQL      dbKind = iota // SQL lexer, dialect unknown
	dbKeyValue               // Redis-like: command, key, then arguments
)

// redactor is a compiled Redaction. It is immutable and safe for
// concurrent use.
type redactor struct {
	// Normalised Keys entries (lower case, '-' as '_') by length: those
	// with a dot match whole keys, all match last segments. Most keys are
	// cleared by the length test alone.
	whole, segment [maxKeyLen + 1][]string
	hasKeys        bool
	patterns       []valuePattern
	sql            *sqllexer.Obfuscator // nil: SQL is kept
	// sqlCache remembers scrubbed statements. Instrumented code sends the
	// same few statements with placeholders over and over, and the lexer
	// costs 1–3 µs a statement (a third of a span's decode) where a cache
	// hit costs ~0.1 µs. 2Q keeps the hot statements while a stream of
	// one-off statements (literals inlined) passes through.
	sqlCache *lru.TwoQueueCache[sqlKey, string]
	urls     bool
}

// sqlKey is a statement and the dialect it was scrubbed for.
type sqlKey struct {
	dbms sqllexer.DBMSType
	stmt string
}

// Statements up to maxCachedSQL bytes are cached, at most sqlCacheSize of
// them: ≤ 2 MiB of keys and about as much of values.
const (
	maxCachedSQL = 1024
	sqlCacheSize = 2048
)

// valuePattern is a compiled pattern with what every match has: at least
// minLen bytes and the literal hint. Most attribute values are short or
// lack the literal, and are cleared without running the expression.
type valuePattern struct {
	re     *regexp.Regexp
	minLen int
	hint   string // "" when none could be derived
	fold   bool   // hint is lower case and matched ignoring ASCII case
}

func newRedactor(r Redaction) (*redactor, error) {
	rd := &redactor{urls: r.URLQuery}
	for _, k := range r.Keys {
		k = strings.TrimSpace(k)
		switch {
		case k == "":
			continue
		case len(k) > maxKeyLen:
			return nil, fmt.Errorf("otlpconv: redaction key %q: longer than %d bytes", k, maxKeyLen)
		}
		n := normKey(k)
		rd.hasKeys = true
		if strings.Contains(n, ".") {
			rd.whole[len(n)] = append(rd.whole[len(n)], n)
		} else {
			rd.segment[len(n)] = append(rd.segment[len(n)], n)
		}
	}
	for _, p := range r.Patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("otlpconv: redaction pattern %q: %w", p, err)
		}
		if re.MatchString("") {
			return nil, fmt.Errorf("otlpconv: redaction pattern %q matches the empty string", p)
		}
		hint, fold := literalHint(p)
		rd.patterns = append(rd.patterns, valuePattern{re: re, minLen: minMatchLen(p), hint: hint, fold: fold})
	}
	if r.SQL {
		rd.sql = sqllexer.NewObfuscator()
		c, err := lru.New2Q[sqlKey, string](sqlCacheSize)
		if err != nil {
			return nil, fmt.Errorf("otlpconv: statement cache: %w", err)
		}
		rd.sqlCache = c
	}
	return rd, nil
}

// maxKeyLen bounds Keys entries; attribute keys are much shorter.
const maxKeyLen = 255

func normKey(k string) string {
	b := []byte(strings.ToLower(k))
	for i, c := range b {
		if c == '-' {
			b[i] = '_'
		}
	}
	return string(b)
}

// denied reports whether key k is on the deny list: whole, or by its last
// segment.
func (rd *redactor) denied(k string) bool {
	if !rd.hasKeys {
		return false
	}
	seg := k
	if i := strings.LastIndexByte(k, '.'); i >= 0 {
		seg = k[i+1:]
		if len(k) <= maxKeyLen && matchKey(k, rd.whole[len(k)]) {
			return true
		}
	}
	return len(seg) <= maxKeyLen && matchKey(seg, rd.segment[len(seg)])
}

func matchKey(k string, entries []string) bool {
	for _, e := range entries {
		if eqNormKey(k, e) {
			return true
		}
	}
	return false
}

// eqNormKey compares k with a normalised entry of the same length.
func eqNormKey(k, norm string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '-':
			c = '_'
		}
		if c != norm[i] {
			return false
		}
	}
	return true
}

// patternsApply runs the value patterns over s and reports whether any
// matched.
func (rd *redactor) patternsApply(s string) (string, bool) {
	changed := false
	for i := range rd.patterns {
		p := &rd.patterns[i]
		if len(s) < p.minLen {
			continue
		}
		if p.hint != "" {
			if p.fold && indexFold(s, p.hint) < 0 || !p.fold && !strings.Contains(s, p.hint) {
				continue
			}
		}
		// Find first: ReplaceAll allocates even when nothing matches.
		if p.re.FindStringIndex(s) == nil {
			continue
		}
		s = p.re.ReplaceAllLiteralString(s, RedactedValue)
		changed = true
	}
	return s, changed
}

// statementKind tells how to scrub the statement of a span whose
// attributes are m: by its database system.
func statementKind(m pcommon.Map) (dbKind, sqllexer.DBMSType) {
	sys := ""
	for _, k := range [...]string{keyDBSystemName, keyDBSystem} {
		if v, ok := m.Get(k); ok && v.Type() == pcommon.ValueTypeStr {
			sys = v.Str()
			break
		}
	}
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

// literalHint returns a literal that every match of re contains: the
// longest literal among the parts of a top-level concatenation (each part
// must match somewhere). A case-insensitive literal is returned in lower
// case with fold set, cut to its longest run of letters whose case folds
// are all ASCII (Go folds 'k' to the Kelvin sign and 's' to 'ſ', so
// "(?i)sk" matches "ſK", which an ASCII comparison would miss).
func literalHint(re string) (hint string, fold bool) {
	p, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return "", false
	}
	p = p.Simplify()
	parts := []*syntax.Regexp{p}
	if p.Op == syntax.OpConcat {
		parts = p.Sub
	}
	for _, s := range parts {
		if s.Op != syntax.OpLiteral {
			continue
		}
		f := s.Flags&syntax.FoldCase != 0
		lit := string(s.Rune)
		if f {
			lit = longestASCIIFoldRun(s.Rune)
		}
		if len(lit) > len(hint) {
			hint, fold = lit, f
		}
	}
	return hint, fold
}

// minMatchLen is a lower bound of the length in bytes of any match of re
// (each rune is at least one byte); 0 when re does not parse.
func minMatchLen(re string) int {
	p, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return 0
	}
	return minLenOf(p.Simplify())
}

func minLenOf(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpLiteral:
		return len(re.Rune)
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return 1
	case syntax.OpCapture, syntax.OpPlus:
		return minLenOf(re.Sub[0])
	case syntax.OpRepeat:
		return re.Min * minLenOf(re.Sub[0])
	case syntax.OpConcat:
		n := 0
		for _, sub := range re.Sub {
			n += minLenOf(sub)
		}
		return n
	case syntax.OpAlternate:
		n := -1
		for _, sub := range re.Sub {
			if m := minLenOf(sub); n < 0 || m < n {
				n = m
			}
		}
		return max(n, 0)
	}
	return 0 // empty matches, anchors, star, quest
}

// longestASCIIFoldRun is the longest run of rs whose runes fold only to
// ASCII, in lower case.
func longestASCIIFoldRun(rs []rune) string {
	best, start := "", 0
	for i := 0; i <= len(rs); i++ {
		if i < len(rs) && asciiFold(rs[i]) {
			continue
		}
		if i-start > len(best) {
			best = strings.ToLower(string(rs[start:i]))
		}
		start = i + 1
	}
	return best
}

// asciiFold reports whether r and all its case folds are ASCII.
func asciiFold(r rune) bool {
	if r >= utf8.RuneSelf {
		return false
	}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// indexFold is strings.Index ignoring ASCII case; lower is lower case. It
// jumps between occurrences of the first letter in either case with
// IndexByte, which is vectorised: most values hold neither.
func indexFold(s, lower string) int {
	if lower == "" {
		return 0
	}
	lo := lower[0]
	up := lo
	if 'a' <= lo && lo <= 'z' {
		up -= 'a' - 'A'
	}
	for i := 0; i+len(lower) <= len(s); {
		rest := s[i : len(s)-len(lower)+1]
		j := strings.IndexByte(rest, lo)
		if up != lo {
			if k := strings.IndexByte(rest, up); k >= 0 && (j < 0 || k < j) {
				j = k
			}
		}
		if j < 0 {
			return -1
		}
		i += j
		if strings.EqualFold(s[i:i+len(lower)], lower) {
			return i
		}
		i++
	}
	return -1
}
