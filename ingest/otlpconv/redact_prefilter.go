package otlpconv

import (
	"regexp/syntax"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Prefilters of value patterns: what every match of a regular expression
// has (a length, a literal), so values without it are cleared without
// running the expression. FuzzLiteralHint holds them to never skipping a
// match.

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
