package store

import "time"

// Trace search: the query, its orders and filters, and a result row.

// StatusFilter restricts a trace search by span status.
type StatusFilter string

// Status filters for TraceQuery.
const (
	StatusAny       StatusFilter = ""
	StatusFilterOK  StatusFilter = "ok" // span status is not error
	StatusFilterErr StatusFilter = "error"
)

// TraceOrder sorts trace search results.
type TraceOrder string

// Orders for TraceQuery.
const (
	OrderNewest  TraceOrder = ""        // start time, newest first
	OrderOldest  TraceOrder = "oldest"  // start time, oldest first
	OrderSlowest TraceOrder = "slowest" // matching span duration, longest first
	OrderFastest TraceOrder = "fastest" // matching span duration, shortest first
)

// MaxAttributeFilters bounds TraceQuery.Attributes: each is a condition
// on every span a search reads, and a thousand of them (a URL can carry
// that many) went past SQLite's limits as an internal error.
const MaxAttributeFilters = 16

// TraceQuery finds traces that contain at least one span satisfying every
// given condition (Jaeger's semantics: conditions apply to one span).
// Zero-valued fields do not constrain.
type TraceQuery struct {
	Service     string
	Endpoint    string // span name
	MinDuration time.Duration
	MaxDuration time.Duration
	Tenant      string
	Version     string
	Status      StatusFilter
	// Attributes must all match the span's attributes or its resource; a
	// value matches when its text form equals the given string. At most
	// MaxAttributeFilters.
	Attributes map[string]string
	From, To   time.Time // span start in [From, To); zero means unbounded
	Limit      int       // 0 means the store's default (20); capped at 1000
	Order      TraceOrder
	// Has are further conditions on the trace: for each, the trace also
	// holds a span (any span, not necessarily the one matching the fields
	// above) that satisfies it. The outliers page drills down with them:
	// "the endpoint's requests over the threshold that called
	// candidate-svc at version v1".
	Has []SpanMatch
}

// SpanMatch is a condition one span of a trace satisfies; zero fields do
// not constrain, and at least one must be set.
type SpanMatch struct {
	Service, Version, Host string
	// Dependency is the outlier analysis's dependency key: a span that
	// calls the dependency, or a span of a service by that name that calls
	// none (time in the service's own code), so every dependency the
	// outliers page names can be searched.
	Dependency string
	// MinPayloadBytes and MaxPayloadBytes bound the span's payload:
	// [min, max), max 0 meaning unbounded.
	MinPayloadBytes, MaxPayloadBytes int64
}

// IsZero reports whether the match sets no condition.
func (m SpanMatch) IsZero() bool { return m == SpanMatch{} }

// TraceSummary is one row of a trace search result. The root fields describe
// the trace's root span (or its earliest span when the root has not arrived).
type TraceSummary struct {
	TraceID       TraceID
	RootService   string
	RootName      string
	StartUnixNano int64
	DurationNano  int64 // root duration (or the span extent without a root)
	SpanCount     int
	ErrorCount    int
	Tenant        string
	Version       string
	// MatchDurationNano is the duration of the longest span that matched
	// the query; it is what OrderSlowest sorts by.
	MatchDurationNano int64
}
