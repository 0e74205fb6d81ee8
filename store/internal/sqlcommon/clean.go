// Package sqlcommon holds what store/postgres and store/sqlite share: input
// sanitising, query validation, the SQL both dialects run, and span scanning.
// Keeping one copy is what makes the two stores answer identically.
package sqlcommon

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// Clean makes s storable as text in both dialects: NUL (PostgreSQL rejects it
// in text) and invalid UTF-8 become U+FFFD. The contract says callers
// sanitise; this is the cheap last line of defence so one bad span cannot
// fail a whole batch. The common case (clean input) does not allocate.
func Clean(s string) string {
	if strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

var escNUL = []byte(`\u0000`)

// CleanJSON does for encoded JSON what Clean does for text, and also rewrites
// the escape \u0000 to \ufffd: PostgreSQL cannot turn it into text, so json
// ->> on such a value fails the query (and jsonb rejects it on input). A
// backslash-escaped backslash followed by "u0000" is left alone. It returns b
// itself when nothing needs changing.
func CleanJSON(b []byte) []byte {
	if b == nil {
		return nil
	}
	hasEsc := bytes.Contains(b, escNUL)
	if !hasEsc && bytes.IndexByte(b, 0) < 0 && utf8.Valid(b) {
		return b
	}
	out := bytes.ToValidUTF8(b, []byte("\uFFFD"))
	out = bytes.ReplaceAll(out, []byte{0}, []byte("\uFFFD"))
	if !hasEsc {
		return out
	}
	res := make([]byte, 0, len(out))
	for i := 0; i < len(out); i++ {
		c := out[i]
		if c != '\\' || i+1 >= len(out) {
			res = append(res, c)
			continue
		}
		if bytes.HasPrefix(out[i:], escNUL) {
			res = append(res, `\ufffd`...)
			i += len(escNUL) - 1
			continue
		}
		// Any other escape: copy the backslash and the escaped byte so an
		// escaped backslash is never mistaken for the start of \u0000.
		res = append(res, c, out[i+1])
		i++
	}
	return res
}
