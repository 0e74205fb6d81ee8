// Package analysis turns stored spans into the numbers tailscope shows:
// latency distributions, critical paths, outlier groups with their
// counterfactual p99, trace anti-patterns, budget compliance and deploy
// comparisons.
//
// It is pure Go over spans read through the small interfaces below: no
// HTTP, no SQL, no templates. Result types carry the JSON tags of the HTTP
// API in DESIGN.md, so the web layer encodes them as they are and the pages
// render the same values: durations are float milliseconds in fields named
// *_ms, nanoseconds where a field says _ns, and Unix-nanosecond timestamps
// are JSON strings (they exceed what a JavaScript number holds exactly).
//
// Errors caused by the caller's query wrap store.ErrInvalid, so the web
// layer answers 400 with the message; store errors are wrapped with %w and
// keep their meaning (store.ErrUnavailable, context cancellation).
package analysis

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/tailscope/tailscope/store"
)

// SampleSource reads entry-span samples. store.Reader implements it.
type SampleSource interface {
	// Samples returns the entry spans selected by q, ordered by start.
	Samples(ctx context.Context, q store.SampleQuery) ([]store.Sample, error)
}

// SpanSource reads samples and whole traces. store.Reader implements it.
// Analysis never modifies the slices a source returns, so a source may hand
// out shared, read-only data.
type SpanSource interface {
	SampleSource
	// Traces returns the spans of each trace that exists; unknown ids are
	// absent from the map.
	Traces(ctx context.Context, ids []store.TraceID) (map[store.TraceID][]store.Span, error)
}

// ShapeSource reads traces without their spans' Attributes, Resource and
// Events (store.Reader.TraceShapes): what the analyses of a trace's shape —
// its tree, critical path and time per hop — need, for a fraction of the
// cost. store.Reader implements it; a SpanSource that does not (test
// sources, the report's memo) is read through Traces instead (readShapes),
// which gives those analyses the same answer.
type ShapeSource interface {
	TraceShapes(ctx context.Context, ids []store.TraceID) (map[store.TraceID][]store.Span, error)
}

// RequestShapeSource reads traces as shapes with their requests' own spans
// whole but for events (store.Reader.RequestShapes): what outliers need —
// a request's critical path and hops from its trace's shape, its
// dimensions from its own span's attributes and resource. store.Reader
// implements it; a SpanSource that does not is read through Traces
// (readRequestShapes), which gives the same answer.
type RequestShapeSource interface {
	RequestShapes(ctx context.Context, reqs []store.SpanRef) (map[store.TraceID][]store.Span, error)
}

// RangeSampler reads one sample query over many time ranges at once
// (store.Reader.SampleRanges): a budget's stratified hop sample in one
// round trip. store.Reader implements it; a SampleSource that does not is
// read a range at a time (sampleRanges), with the same answer.
type RangeSampler interface {
	SampleRanges(ctx context.Context, q store.SampleQuery, ranges []store.SampleRange) ([][]store.Sample, error)
}

// sampleRanges reads q over each range through src's SampleRanges, or one
// Samples call per range.
func sampleRanges(ctx context.Context, src SampleSource, q store.SampleQuery, ranges []store.SampleRange) ([][]store.Sample, error) {
	if rs, ok := src.(RangeSampler); ok {
		return rs.SampleRanges(ctx, q, ranges)
	}
	return store.SampleEach(ctx, q, ranges, src.Samples)
}

// EndpointSource lists the endpoints seen in a window and reads their
// samples. store.Reader implements it.
type EndpointSource interface {
	SampleSource
	Endpoints(ctx context.Context, from, to time.Time) ([]store.Endpoint, error)
}

// Every store reader serves analysis as it is.
var (
	_ SpanSource         = (store.Reader)(nil)
	_ ShapeSource        = (store.Reader)(nil)
	_ RequestShapeSource = (store.Reader)(nil)
	_ RangeSampler       = (store.Reader)(nil)
	_ EndpointSource     = (store.Reader)(nil)
)

// invalidError is a mistake in the caller's query or record. It unwraps to
// store.ErrInvalid so the web layer has one rule for "answer 400".
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return "analysis: " + e.msg }
func (e *invalidError) Unwrap() error { return store.ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// checkWindow validates the service and [from, to) every windowed query has.
func checkWindow(service string, from, to time.Time) error {
	if service == "" {
		return invalidf("service is required")
	}
	if from.IsZero() || to.IsZero() {
		return invalidf("from and to are required")
	}
	if !to.After(from) {
		return invalidf("time range is empty: to (%s) is not after from (%s)",
			to.UTC().Format(time.RFC3339), from.UTC().Format(time.RFC3339))
	}
	return nil
}

// nsToMs converts nanoseconds to float milliseconds, the unit of every
// *_ms JSON field.
func nsToMs(ns int64) float64 { return float64(ns) / 1e6 }

// durMs converts a duration to float milliseconds.
func durMs(d time.Duration) float64 { return float64(d) / 1e6 }

// round3 keeps JSON numbers short (three decimals: microseconds for
// millisecond fields) without changing anything a page shows.
func round3(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return math.Round(x*1000) / 1000
}

// round4 rounds shares and ratios to four decimals.
func round4(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return math.Round(x*1e4) / 1e4
}

// roundSig keeps six significant digits: p-values span hundreds of orders
// of magnitude, so fixed decimals would turn small ones into 0, and the
// last bits of a log-space computation are not worth showing (or pinning
// in golden files across CPU architectures).
func roundSig(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	v, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 6, 64), 64)
	return v
}

// UnixNano is a Unix-nanosecond timestamp that encodes in JSON as a
// string of digits, as OTLP JSON does.
type UnixNano int64

// MarshalText encodes the decimal digits.
func (t UnixNano) MarshalText() ([]byte, error) {
	return strconv.AppendInt(nil, int64(t), 10), nil
}

// UnmarshalText decodes decimal digits.
func (t *UnixNano) UnmarshalText(b []byte) error {
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("analysis: unix nano %q: %w", b, err)
	}
	*t = UnixNano(v)
	return nil
}

// satAdd adds without wrapping around, so absurd timestamps from bad input
// cannot turn an end time into a start time.
func satAdd(a, b int64) int64 {
	s := a + b
	if b > 0 && s < a {
		return math.MaxInt64
	}
	if b < 0 && s > a {
		return math.MinInt64
	}
	return s
}
