package otlpconv

import (
	"encoding/base64"
	"math"
	"strconv"
	"unicode/utf8"
)

// replacement is U+FFFD, which stands in for NUL bytes and invalid UTF-8:
// the store contract allows any valid UTF-8 except NUL (PostgreSQL text and
// jsonb reject both).
const replacement = "\uFFFD"

// needsRepair reports whether s holds a NUL byte or invalid UTF-8. The ASCII
// loop is the hot path: almost every string on the wire is clean ASCII.
func needsRepair(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b == 0 {
			return true
		}
		if b >= utf8.RuneSelf {
			return !validNoNUL(s[i:])
		}
	}
	return false
}

func validNoNUL(s string) bool {
	for i := 0; i < len(s); {
		b := s[i]
		if b == 0 {
			return false
		}
		if b < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return false
		}
		i += size
	}
	return true
}

// repair replaces NUL bytes and each invalid UTF-8 byte with U+FFFD.
func repair(s string) string {
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		c := s[i]
		if c == 0 {
			b = append(b, replacement...)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, replacement...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return string(b)
}

// cut returns the longest prefix of s of at most n bytes that does not end
// inside a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	// Back up over at most three continuation bytes to a rune start.
	for j := 0; j < utf8.UTFMax-1 && i > 0 && !utf8.RuneStart(s[i]); j++ {
		i--
	}
	if !utf8.RuneStart(s[i]) {
		// Not UTF-8 around the cut at all; repair turns the bytes into
		// U+FFFD anyway, so a byte cut is as good as any.
		i = n
	}
	return s[:i]
}

// safeASCII marks the ASCII bytes a JSON string can hold unescaped.
var safeASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// load64 reads s[i:i+8] as a little-endian word; the compiler turns it
// into one load.
func load64(s string, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// wordNeedsWork reports whether any byte of x is a control character, '"',
// '\\' or non-ASCII (the bit tricks of "Bit Twiddling Hacks": a byte less
// than n, a zero byte after XOR). It may report true for a clean word next
// to a dirty byte, never false for a dirty one.
func wordNeedsWork(x uint64) bool {
	ctl := (x - 0x20*lsb) &^ x
	q := x ^ ('"' * lsb)
	quote := (q - lsb) &^ q
	bs := x ^ ('\\' * lsb)
	backslash := (bs - lsb) &^ bs
	return (ctl|quote|backslash|x)&msb != 0
}

// appendString appends s as a JSON string, replacing NUL and invalid UTF-8
// with U+FFFD as it goes. It reports whether it had to repair anything.
func appendString(dst []byte, s string) ([]byte, bool) {
	dst = append(dst, '"')
	if isPlain(s) {
		// Keys and most values are plain ASCII: one check, one copy.
		dst = append(dst, s...)
		return append(dst, '"'), false
	}
	repaired := false
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if safeASCII[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case 0:
				dst = append(dst, replacement...)
				repaired = true
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, replacement...)
			repaired = true
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"'), repaired
}

// isPlain reports whether s is printable ASCII without '"' or '\\', which a
// JSON string holds as it is. It checks a word at a time; the last,
// partial word is checked by re-reading the final eight bytes.
func isPlain(s string) bool {
	n := len(s)
	if n < 8 {
		for i := 0; i < n; i++ {
			if c := s[i]; c >= utf8.RuneSelf || !safeASCII[c] {
				return false
			}
		}
		return true
	}
	i := 0
	for ; i+8 <= n; i += 8 {
		if wordNeedsWork(load64(s, i)) {
			return false
		}
	}
	return i == n || !wordNeedsWork(load64(s, n-8))
}

// appendFloat appends f as a JSON number the way encoding/json writes it.
// NaN and ±Inf have no JSON number form; they become the strings "NaN",
// "Infinity" and "-Infinity", as in the protobuf JSON mapping.
func appendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// Shorten e-09 to e-9 as encoding/json does.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

func appendBase64(dst, b []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}
