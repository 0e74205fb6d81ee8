package components

import (
	"github.com/a-h/templ"
	"github.com/tailscope/tailscope/internal/units"

	"strconv"

	"github.com/tailscope/tailscope/components/chart"
)

func itoa(i int) string { return strconv.Itoa(i) }

func f1(v float64) string { return chart.F(v) }

func ms(v float64) string { return units.Ms(v) }

func pct(v float64) string { return chart.FormatPercent(v) }

func count(v float64) string { return chart.FormatCount(v) }

func f2(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// sortMark shows which way a column is sorted.
func sortMark(current, desc, asc string) string {
	switch current {
	case desc:
		return "↓"
	case asc:
		return "↑"
	}
	if current == "" && desc == "newest" {
		return "↓"
	}
	return ""
}

// num writes a number exactly, for data-sort attributes.
func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func f3(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// Inline styles for positions: templ.SafeCSS is fine here because every
// value is a number the server formatted, never user text.
func leftStyle(pct float64) templ.SafeCSS {
	return templ.SafeCSS("left:" + strconv.FormatFloat(pct, 'f', 2, 64) + "%")
}

func segStyle(s Seg) templ.SafeCSS {
	return templ.SafeCSS("left:" + strconv.FormatFloat(s.LeftPct, 'f', 2, 64) + "%;width:" + strconv.FormatFloat(max(s.WidthPct, 0.01), 'f', 2, 64) + "%")
}

// profileAttr adds data-profile only to spans that have a profile, keeping
// the rows of a 10,000-span waterfall small.
func profileAttr(href string) templ.Attributes {
	if href == "" {
		return nil
	}
	return templ.Attributes{"data-profile": href}
}

func widthStyle(share float64) templ.SafeCSS {
	return templ.SafeCSS("width:" + strconv.FormatFloat(100*share, 'f', 2, 64) + "%")
}

func indentStyle(level int) templ.SafeCSS {
	return templ.SafeCSS("padding-left:" + strconv.FormatFloat(0.4+0.9*float64(level), 'f', 1, 64) + "rem")
}
