package otlpconv

import (
	"fmt"
	"strings"
	"time"
)

// Reason says why a span was rejected.
type Reason uint8

// Rejection reasons. They are metric label values, so their String forms are
// stable.
const (
	// ReasonInvalidTraceID: the trace id is all zero or (on the wire) not
	// 16 bytes / 32 hex digits.
	ReasonInvalidTraceID Reason = iota
	// ReasonInvalidSpanID: the span id is all zero, or the span id or
	// parent span id is not 8 bytes / 16 hex digits on the wire.
	ReasonInvalidSpanID
	// ReasonInvalidTime: the start time is missing (zero) or a timestamp
	// does not fit in int64 nanoseconds (after the year 2262).
	ReasonInvalidTime
	// ReasonEndBeforeStart: the end time is before the start time.
	ReasonEndBeforeStart
	// ReasonTooOld: the span started before the accepted range (more than
	// Options.MaxAge ago).
	ReasonTooOld
	// ReasonTooNew: the span starts after the accepted range (more than
	// Options.MaxClockSkew ahead of now).
	ReasonTooNew
	// ReasonWrongTenant: the span names a tenant the request's ingest
	// token may not write (the receiver checks this, not Convert).
	ReasonWrongTenant
	numReasons
)

var reasonNames = [numReasons]string{"invalid_trace_id", "invalid_span_id", "invalid_time", "end_before_start", "too_old", "too_new", "wrong_tenant"}

var reasonText = [numReasons]string{
	"invalid trace id (all-zero)",
	"invalid span id (all-zero)",
	"missing or out-of-range timestamp",
	"end time before start time",
	"start time before the accepted range",
	"start time after the accepted range",
	"tenant not allowed for this ingest token",
}

// String returns the metric label form ("invalid_trace_id", ...).
func (r Reason) String() string {
	if r >= numReasons {
		return "unknown"
	}
	return reasonNames[r]
}

// Reasons lists every rejection reason, for metrics that pre-create series.
func Reasons() []Reason {
	rs := make([]Reason, numReasons)
	for i := range rs {
		rs[i] = Reason(i)
	}
	return rs
}

// Result counts what Convert did to one request.
type Result struct {
	Spans        int // spans in the request
	rejected     [numReasons]int
	Truncated    int // attribute values, keys, names or messages cut to their limit
	Repaired     int // strings whose NUL bytes or invalid UTF-8 were replaced
	DroppedLinks int // links with an all-zero trace or span id
	Redacted     int // values rewritten by Options.Redaction
	Renamed      int // span names stored as their template (Options.TemplateNames)

	// The accepted start times of this request, for Message.
	accepted       [2]time.Time
	maxAge, maxAhd time.Duration
}

// Rejected returns the number of spans rejected for any reason.
func (r *Result) Rejected() int {
	n := 0
	for _, c := range r.rejected {
		n += c
	}
	return n
}

// Reject counts n more spans rejected for reason, by a check made after
// Convert.
func (r *Result) Reject(reason Reason, n int) {
	if reason < numReasons {
		r.rejected[reason] += n
	}
}

// RejectedFor returns the number of spans rejected for reason.
func (r *Result) RejectedFor(reason Reason) int {
	if reason >= numReasons {
		return 0
	}
	return r.rejected[reason]
}

// Message explains the rejections for an OTLP partial_success
// error_message, e.g. "rejected 3 of 10 spans: 2 invalid span id (...), 1 end
// time before start time". It is "" when nothing was rejected.
func (r *Result) Message() string {
	n := r.Rejected()
	if n == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "rejected %d of %d spans:", n, r.Spans)
	sep := " "
	for i, c := range r.rejected {
		if c == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s%d %s", sep, c, reasonText[i])
		sep = ", "
	}
	if r.rejected[ReasonTooOld]+r.rejected[ReasonTooNew] > 0 {
		from := "any time"
		if r.maxAge > 0 {
			from = r.accepted[0].UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(&b, "; spans are accepted when they start from %s to %s (", from, r.accepted[1].UTC().Format(time.RFC3339))
		if r.maxAge > 0 {
			fmt.Fprintf(&b, "at most %v old, the retention; ", r.maxAge)
		}
		fmt.Fprintf(&b, "at most %v ahead of the receiver's clock)", r.maxAhd)
	}
	return b.String()
}
