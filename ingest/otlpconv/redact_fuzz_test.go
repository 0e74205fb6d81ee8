package otlpconv

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzScrubURL: scrubbing never panics, keeps valid UTF-8 valid, and is
// idempotent (a stored URL scrubbed again stays as it is, so redaction
// never compounds), and a scrubbed query holds no value of the original.
func FuzzScrubURL(f *testing.F) {
	for _, s := range []string{
		"https://ada:pw@api.example.com/v1/x?token=abc&page=2#frag",
		"https://app.example.com/cb#access_token=xyz&state=1",
		"/v1/reset?key=123;x=4", "q=a%40b&flag&empty=", "http://[::1]:80/?a=b@c#d=e",
		"mailto:ada@example.com", "://@?#", "?&=&;", "",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, queryOnly bool) {
		out := scrubURL(s, queryOnly)
		if utf8.ValidString(s) && !utf8.ValidString(out) {
			t.Fatalf("scrubURL(%q) = %q: invalid UTF-8", s, out)
		}
		if again := scrubURL(out, queryOnly); again != out {
			t.Fatalf("not idempotent: %q → %q → %q", s, out, again)
		}
		if queryOnly {
			for _, part := range strings.FieldsFunc(out, func(r rune) bool { return r == '&' || r == ';' }) {
				if name, v, ok := strings.Cut(part, "="); ok && v != "" && v != RedactedValue || !ok && part != RedactedValue {
					t.Fatalf("scrubURL(%q) = %q keeps %q of %q", s, out, v, name)
				}
			}
		}
	})
}

// FuzzScrubKeyValue: Redis-like statements keep at most their command and
// key per line, never panic, and scrubbing is idempotent.
func FuzzScrubKeyValue(f *testing.F) {
	for _, s := range []string{"set session:42 s3cr3t EX 60", "AUTH default hunter2", "get a\nmget b c", " \t\r\n", "", "0 0\v000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := scrubKeyValue(s)
		if again := scrubKeyValue(out); again != out {
			t.Fatalf("not idempotent: %q → %q → %q", s, out, again)
		}
		for i, line := range strings.Split(out, "\n") {
			for j, f := range fields(line) {
				if j >= 2 && f != "?" {
					t.Fatalf("line %d of %q keeps argument %q", i, out, f)
				}
			}
		}
	})
}

// FuzzLiteralHint: the literal derived from a pattern occurs in every
// string the pattern matches, and the minimum length is no longer than any
// match, so skipping values on either never skips a match.
func FuzzLiteralHint(f *testing.F) {
	for _, p := range builtinPatterns {
		f.Add(p, "Authorization: Bearer abcdefgh12345678 and ada@example.com")
	}
	f.Add(`(?i)sk_live_[a-z0-9]+`, "ſK_LIVE_abc")
	f.Add(`(?i)kelvin`, "\u212aELVIN")
	f.Add(`ab(c|d)ef`, "xxabdefxx")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if len(pattern) > 200 {
			return
		}
		re, err := regexp.Compile(pattern)
		if err != nil || !re.MatchString(s) {
			return
		}
		if loc := re.FindStringIndex(s); loc[1]-loc[0] < minMatchLen(pattern) {
			t.Fatalf("%q matches %q in %d bytes, below its minimum length %d", pattern, s[loc[0]:loc[1]], loc[1]-loc[0], minMatchLen(pattern))
		}
		hint, fold := literalHint(pattern)
		switch {
		case hint == "":
		case fold && indexFold(s, hint) < 0:
			t.Fatalf("%q matches %q but lacks the case-folded hint %q", pattern, s, hint)
		case !fold && !strings.Contains(s, hint):
			t.Fatalf("%q matches %q but lacks the hint %q", pattern, s, hint)
		}
	})
}
