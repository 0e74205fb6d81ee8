// Package components holds tailscope's templ components: the page layout,
// charts, tables, the waterfall and report fragments. Components are pure
// functions of small view-model structs; they know nothing of storage or
// HTTP, so pages and exported reports render the same markup.
package components

import "time"

// Page is what the layout needs around every page's content.
type Page struct {
	Title string
	// Section is the active navigation entry ("services", "search", ...).
	Section string
	Nav     []NavItem
	// Range is the time-range picker; nil hides it.
	Range   *RangePicker
	CSS, JS string // hashed asset URLs
	Version string
	// User is who is logged in, shown with a log-out button; "" when
	// authentication is off or by a proxy (which logs out itself).
	User string
	// Notice is a warning about the data of every page (a lagging read
	// replica), shown in the footer; "" shows none.
	Notice string
	// Banner is a note about this page's data shown above its content
	// (a trace read from an incident's kept copy); nil shows none.
	Banner *Banner
}

// Banner is a one-line note above a page's content, with an optional link.
type Banner struct {
	TestID, Text, LinkText, Href string
}

// NavItem is one navigation link; its Href carries the current time range
// so moving between pages keeps the window.
type NavItem struct {
	Section, Label, Href string
}

// RangePicker is the time-range control shared by all pages.
type RangePicker struct {
	// Action is the page URL the form submits to; Hidden carries the other
	// query parameters of the page so changing the range keeps them.
	Action  string
	Hidden  []KV
	From    string // as typed: RFC 3339 or relative
	To      string
	Presets []Preset
	// Resolved is the absolute window the range resolved to; zero when it
	// did not parse.
	Resolved TimeSpan
	// Error says what is wrong with the range as typed, next to the input
	// named by ErrorField ("from" or "to"); the page shows no data.
	Error, ErrorField string
	// Zoom and shift links, as Grafana has them; "" hides one.
	ZoomOutHref, ZoomInHref, EarlierHref, LaterHref string
	// IncidentHref opens the incident form prefilled with this window.
	IncidentHref string
	// FreezeHref is this page at the absolute times a relative range
	// resolved to ("" when the range is absolute already): a link that
	// shows the same data tomorrow.
	FreezeHref string
	// CopyHref is this view as an absolute URL at absolute times (under
	// the public URL when one is set): what "Copy link" puts on the
	// clipboard, so a link pasted into an incident channel shows the same
	// data to whoever opens it, whenever.
	CopyHref string
}

// Preset is a quick range like "Last 1h".
type Preset struct {
	Label, Href string
	Active      bool
}

// KV is a name/value pair (hidden form fields, definition lists).
type KV struct {
	Key, Value string
}

// TimeSpan is an absolute window, shown as two <time> elements.
type TimeSpan struct{ From, To time.Time }

// Time formats for Timestamp: the server writes UTC, and the page's script
// rewrites the same format in the reader's zone unless they chose UTC.
const (
	TimeDateTime   = "datetime"    // 2026-11-23 14:02:05
	TimeDateTimeMs = "datetime-ms" // 2026-11-23 14:02:05.123
	TimeClock      = "time"        // 14:02:05
	// TimeEnd is an interval's end: a clock when it falls on its start's
	// day, a date and clock otherwise (see Interval).
	TimeEnd = "end"
)

// utcText writes t in UTC in one of the Time formats, with the zone, so a
// page read without script still says which zone it is in.
func utcText(t time.Time, format string) string {
	layout := "2006-01-02 15:04:05"
	switch format {
	case TimeDateTimeMs:
		layout = "2006-01-02 15:04:05.000"
	case TimeClock:
		layout = "15:04:05"
	}
	return t.UTC().Format(layout) + " UTC"
}

// endText is an interval's end in UTC: its clock alone when it falls on
// the start's day.
func endText(from, to time.Time) string {
	if from.UTC().Format(time.DateOnly) == to.UTC().Format(time.DateOnly) {
		return utcText(to, TimeClock)
	}
	return utcText(to, TimeDateTime)
}

func isoTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
