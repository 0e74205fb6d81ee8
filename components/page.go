// Package components holds tailscope's templ components: the page layout,
// charts, tables, the waterfall and report fragments. Components are pure
// functions of small view-model structs; they know nothing of storage or
// HTTP, so pages and exported reports render the same markup.
package components

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
	// Resolved is a human description of the absolute window.
	Resolved string
	// IncidentHref opens the incident form prefilled with this window.
	IncidentHref string
	// FreezeHref is this page at the absolute times a relative range
	// resolved to ("" when the range is absolute already): a link that
	// shows the same data tomorrow.
	FreezeHref string
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
