package otlpconv

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/DataDog/go-sqllexer"
	lru "github.com/hashicorp/golang-lru/v2"
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
// endpoints and operations, which grouping needs (a span name that is a
// request path or a statement is templated instead: internal/spanname).
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
