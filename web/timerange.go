package web

import (
	"fmt"
	"strings"
	"time"

	"github.com/tailscope/tailscope/internal/duration"
)

// TimeRange is a resolved [From, To) window together with the text the
// user gave, so pages can keep relative ranges ("now-1h") relative in their
// permalinks while the computation uses absolute times.
type TimeRange struct {
	From, To         time.Time
	FromText, ToText string
}

// Default window when the URL names none.
const (
	defaultFrom = "now-1h"
	defaultTo   = "now"
	// maxRange bounds what one request may ask the store for.
	maxRange = 90 * 24 * time.Hour
)

// RangeError is a time range that does not work, with the input it is
// about ("from", "to", or "" for the pair), so a page can show it next to
// the form that holds what the user typed instead of on a page of its own.
type RangeError struct {
	Field string
	Msg   string
}

func (e *RangeError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// parseTimeRange reads from/to query values (RFC 3339, or "now" optionally
// minus a duration such as "now-15m", "now-6h", "now-7d") relative to now.
func parseTimeRange(fromText, toText string, now time.Time) (TimeRange, error) {
	if fromText == "" {
		fromText = defaultFrom
	}
	if toText == "" {
		toText = defaultTo
	}
	from, err := parseTime(fromText, now)
	if err != nil {
		return TimeRange{}, &RangeError{Field: "from", Msg: err.Error()}
	}
	to, err := parseTime(toText, now)
	if err != nil {
		return TimeRange{}, &RangeError{Field: "to", Msg: err.Error()}
	}
	if !from.Before(to) {
		return TimeRange{}, &RangeError{Msg: fmt.Sprintf("from (%s) must be before to (%s)", truncateText(fromText, 60), truncateText(toText, 60))}
	}
	if to.Sub(from) > maxRange {
		return TimeRange{}, &RangeError{Msg: fmt.Sprintf("time range %s is longer than the maximum of %d days", to.Sub(from).Round(time.Hour), int(maxRange.Hours()/24))}
	}
	return TimeRange{From: from, To: to, FromText: fromText, ToText: toText}, nil
}

// Relative reports whether either end of the range was given relative
// to now ("now", "now-1h"): the same link shows other data later.
func (tr TimeRange) Relative() bool {
	rel := func(s string) bool { return strings.HasPrefix(strings.TrimSpace(s), "now") }
	return rel(tr.FromText) || rel(tr.ToText)
}

// parseTime parses one end of a range.
func parseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "now" {
		return now, nil
	}
	if rest, ok := strings.CutPrefix(s, "now-"); ok {
		d, err := duration.Parse(rest)
		if err != nil {
			return time.Time{}, fmt.Errorf("relative time now-%s: want a duration like 15m, 6h, 7d or 1d12h", truncateText(rest, 40))
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (2026-11-23T14:02:00Z) nor relative (now, now-15m, now-2h, now-7d)", truncateText(s, 60))
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
