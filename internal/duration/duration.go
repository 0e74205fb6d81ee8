// Package duration reads and writes the spans of time people type into
// tailscope: a budget's period ("30d"), a relative time ("now-12h"), a
// comparison window ("90m"). It is Go's duration syntax with one more
// unit in front, whole days, because time.ParseDuration stops at hours
// and nobody writes a 30-day SLO period as "720h".
package duration

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Day is the unit "d" stands for: 24 hours, as SLO periods count them
// (no calendar, no daylight-saving days).
const Day = 24 * time.Hour

// maxDays is the most days a time.Duration holds.
const maxDays = int64(math.MaxInt64 / int64(Day))

// ErrSyntax is wrapped by every error Parse returns.
var ErrSyntax = errors.New("want whole days and/or a Go duration, such as 30d, 12h, 90m or 1d12h")

// Parse reads a non-negative duration: optionally a whole number of days
// ("30d"), then optionally a Go duration ("12h", "90m", "1h30m", "500ms"),
// so "1d12h" is a day and a half. Signs, spaces, fractional days and days
// after a smaller unit are refused: every accepted text means one thing.
func Parse(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("empty duration: %w", ErrSyntax)
	}
	rest := s
	var days int64
	if i := leadingDigits(s); i > 0 && i < len(s) && s[i] == 'd' {
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n > maxDays {
			return 0, fmt.Errorf("duration %q is too long: %w", quote(s), ErrSyntax)
		}
		days, rest = n, s[i+1:]
	}
	d := days * int64(Day)
	if rest != "" {
		// time.ParseDuration takes signs; a duration here never has one.
		if rest[0] == '+' || rest[0] == '-' {
			return 0, fmt.Errorf("duration %q: %w", quote(s), ErrSyntax)
		}
		r, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("duration %q: %w", quote(s), ErrSyntax)
		}
		if int64(r) > math.MaxInt64-d {
			return 0, fmt.Errorf("duration %q is too long: %w", quote(s), ErrSyntax)
		}
		d += int64(r)
	}
	return time.Duration(d), nil
}

// Format writes d the way Parse reads it, shortest first: "30d", "1d12h",
// "1h30m", "500ms", "0s". Parse(Format(d)) == d for every d ≥ 0.
func Format(d time.Duration) string {
	if d < 0 {
		return d.String()
	}
	days, rest := d/Day, d%Day
	var b strings.Builder
	if days > 0 {
		b.WriteString(strconv.FormatInt(int64(days), 10))
		b.WriteByte('d')
		if rest == 0 {
			return b.String()
		}
	}
	// time.Duration.String writes "12h0m0s" and "1h30m0s": drop the zero
	// minutes and seconds it pads with.
	r := rest.String()
	if strings.HasSuffix(r, "m0s") {
		r = strings.TrimSuffix(r, "0s")
		if strings.HasSuffix(r, "h0m") {
			r = strings.TrimSuffix(r, "0m")
		}
	}
	b.WriteString(r)
	return b.String()
}

func leadingDigits(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// quote shortens what is echoed back in a message.
func quote(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
