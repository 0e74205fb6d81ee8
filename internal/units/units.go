// Package units writes durations and sizes for people, one rule for every
// page, chart, summary and report: three significant figures and the
// largest unit that keeps the number at least 1 ("850 µs", "42.7 ms",
// "1.23 s", "2.5 min"; "512 B", "1.5 KiB"). Before it, analysis wrote
// "1.2 s" and the charts "1.23 s" in the same paragraph of a report.
package units

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// Missing is written for a value that is not a number (NaN, ±Inf).
const Missing = "–"

// minus is a true minus sign, which lines up with digits where "-" does not.
const minus = "−"

// unit is one step of a scale: values at or above min are divided by div.
type unit struct {
	min, div float64
	name     string
}

// msUnits is the scale of durations in milliseconds, smallest first.
var msUnits = []unit{
	{0, 1e-3, "µs"},
	{1, 1, "ms"},
	{1e3, 1e3, "s"},
	{60e3, 60e3, "min"},
}

// byteUnits is the binary scale of sizes in bytes, smallest first.
var byteUnits = []unit{
	{0, 1, "B"},
	{1 << 10, 1 << 10, "KiB"},
	{1 << 20, 1 << 20, "MiB"},
	{1 << 30, 1 << 30, "GiB"},
	{1 << 40, 1 << 40, "TiB"},
}

// Ms writes a duration given in milliseconds: "850 µs", "42.7 ms",
// "1.23 s", "2.5 min", "−5 ms".
func Ms(ms float64) string {
	if ms == 0 {
		return "0 ms"
	}
	return scaled(ms, msUnits)
}

// Duration writes d like Ms.
func Duration(d time.Duration) string { return Ms(float64(d) / 1e6) }

// Bytes writes a size in bytes with a binary unit: "512 B", "1.5 KiB",
// "3 MiB".
func Bytes(b float64) string { return scaled(b, byteUnits) }

func scaled(v float64, scale []unit) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return Missing
	case v < 0:
		return minus + scaled(-v, scale)
	}
	i := len(scale) - 1
	for i > 0 && v < scale[i].min {
		i--
	}
	// Rounding can carry into the next unit (999.7 ms is "1 s", not
	// "1000 ms"): move up when the rounded number reaches its minimum.
	if i+1 < len(scale) && round(v/scale[i].div, 3) >= scale[i+1].min/scale[i].div {
		i++
	}
	return Significant(v/scale[i].div, 3) + " " + scale[i].name
}

// round rounds v to sig significant figures.
func round(v float64, sig int) float64 {
	r, _ := strconv.ParseFloat(Significant(v, sig), 64)
	return r
}

// Significant writes v with at most sig significant figures and no
// trailing zeros, but never rounds the integer part: 1234 stays "1234".
func Significant(v float64, sig int) string {
	if v == 0 {
		return "0"
	}
	digits := max(sig-1-int(math.Floor(math.Log10(math.Abs(v)))), 0)
	s := strconv.FormatFloat(v, 'f', digits, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// SLOPercent writes targets and attainments with the precision they need:
// "99%", "99.9%", "98.62%" (a rounded "99%" would hide a missed 99%
// target).
func SLOPercent(f float64) string {
	s := strconv.FormatFloat(f*100, 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + "%"
}

// SignedPercent writes a percent change with its sign: "+205%", "−43%".
func SignedPercent(v float64) string {
	s := strconv.FormatFloat(math.Abs(v), 'f', 0, 64) + "%"
	switch {
	case math.Round(v) > 0:
		return "+" + s
	case math.Round(v) < 0:
		return minus + s
	}
	return s
}

// SignedMs writes a change in milliseconds with its sign: "+42.7 ms",
// "−1.2 s".
func SignedMs(v float64) string {
	if v > 0 {
		return "+" + Ms(v)
	}
	return Ms(v)
}

// Round rounds x to digits decimals, as analysis rounds the shares and
// milliseconds it reports.
func Round(x float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(x*p) / p
}
