// Package store owns tailscope's span and trace types and the storage
// contract every backend implements (store/postgres, store/sqlite). The
// contract is pinned down by the conformance suite in store/storetest, which
// runs unchanged against every implementation.
package store

import (
	"context"
	"errors"
	"math"
	"time"
)

// ErrNotFound is returned when a trace, deploy or other record does not exist.
var ErrNotFound = errors.New("not found")

// ErrUnavailable wraps errors that mean the store cannot be reached right now
// (connection refused, database shutting down, disk full). Callers treat it
// as retryable: the receiver answers 503 and the client sends again.
var ErrUnavailable = errors.New("store unavailable")

// SpanKind mirrors the OTLP span kind numbering.
type SpanKind int8

// Span kinds as OTLP numbers them.
const (
	KindUnspecified SpanKind = 0
	KindInternal    SpanKind = 1
	KindServer      SpanKind = 2
	KindClient      SpanKind = 3
	KindProducer    SpanKind = 4
	KindConsumer    SpanKind = 5
)

var kindNames = [...]string{"unspecified", "internal", "server", "client", "producer", "consumer"}

// String returns the lowercase kind name ("server", "client", ...).
func (k SpanKind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return "unspecified"
	}
	return kindNames[k]
}

// ParseSpanKind is the inverse of String; unknown names give KindUnspecified.
func ParseSpanKind(s string) SpanKind {
	for i, n := range kindNames {
		if n == s {
			return SpanKind(i)
		}
	}
	return KindUnspecified
}

// StatusCode mirrors the OTLP status code numbering.
type StatusCode int8

// Status codes as OTLP numbers them.
const (
	StatusUnset StatusCode = 0
	StatusOK    StatusCode = 1
	StatusError StatusCode = 2
)

var statusNames = [...]string{"unset", "ok", "error"}

// String returns "unset", "ok" or "error".
func (c StatusCode) String() string {
	if c < 0 || int(c) >= len(statusNames) {
		return "unset"
	}
	return statusNames[c]
}

// Event is a timestamped annotation on a span.
type Event struct {
	TimeUnixNano int64      `json:"time_unix_nano"`
	Name         string     `json:"name"`
	Attributes   Attributes `json:"attributes,omitempty"`
}

// Link points from a span to another span, possibly in another trace.
type Link struct {
	TraceID    TraceID    `json:"trace_id"`
	SpanID     SpanID     `json:"span_id"`
	Attributes Attributes `json:"attributes,omitempty"`
}

// SpanRef names one span of one trace.
type SpanRef struct {
	TraceID TraceID
	SpanID  SpanID
}

// Span is one stored span: the OTLP fields tailscope keeps plus the columns
// derived at ingest so analysis never parses attributes in a hot loop.
type Span struct {
	TraceID       TraceID
	SpanID        SpanID
	ParentSpanID  SpanID // zero for a root span
	Service       string // resource service.name
	Name          string
	Kind          SpanKind
	StartUnixNano int64
	DurationNano  int64
	StatusCode    StatusCode
	StatusMessage string
	Attributes    Attributes
	Resource      Attributes
	Events        []Event
	Links         []Link

	// Derived at ingest (see DESIGN.md "Span row").
	Tenant       string // first present of the configured tenant keys
	Version      string // resource service.version
	Dependency   string // what a client/db/cache span talks to; "" otherwise
	PayloadBytes int64  // request+response body bytes; 0 when not reported
	Host         string // resource host.name, else service.instance.id
	// Weight is the span's adjusted count (≥ 1): how many spans of the
	// unsampled stream it stands for, from the sampler's tracestate
	// threshold or a SampleRate attribute. 1 for unsampled streams and
	// for rows written before weights were kept.
	Weight float64
}

// MaxWeight is the largest span weight: 2^56, the largest adjusted count
// an OpenTelemetry sampling threshold can express.
const MaxWeight = float64(1 << 56)

// NormWeight is w as stores keep it: in [1, MaxWeight], and 1 for an
// unset (0) or meaningless weight, so a Span built without one counts once.
func NormWeight(w float64) float64 {
	if !(w >= 1) { // also NaN
		return 1
	}
	return min(w, MaxWeight)
}

// CountWeight is the integer a span adds to a rollup count: NormWeight
// rounded half up, so at least 1. Rollup columns are integers; a weight
// of 2.4 counts 2, a sampler's 1-in-N rates (integers) count exactly.
// The stores' backfill SQL rounds the same way (floor(w + 0.5)).
func CountWeight(w float64) int64 {
	return int64(math.Floor(NormWeight(w) + 0.5))
}

// IsRoot reports whether the span has no parent.
func (s *Span) IsRoot() bool { return s.ParentSpanID.IsZero() }

// IsEntry reports whether the span is where a request enters a service: a
// root span, or a server or consumer span. Endpoints are the names of entry
// spans.
func (s *Span) IsEntry() bool {
	return s.ParentSpanID.IsZero() || s.Kind == KindServer || s.Kind == KindConsumer
}

// End returns the end time in Unix nanoseconds.
func (s *Span) End() int64 { return s.StartUnixNano + s.DurationNano }

// Sample is the compact form of an entry span that latency and outlier
// analysis reads in bulk: no attributes, events or links.
type Sample struct {
	TraceID       TraceID
	SpanID        SpanID
	Service       string
	Name          string
	StartUnixNano int64
	DurationNano  int64
	Error         bool
	Tenant        string
	Version       string
	Host          string
	PayloadBytes  int64
	Weight        float64 // the span's adjusted count (Span.Weight)
}

// SampleQuery selects entry spans. Service is required; an empty Endpoint
// selects every endpoint of the service. Spans are selected by start time in
// [From, To).
type SampleQuery struct {
	Service  string
	Endpoint string
	Version  string // optional: only this service.version
	Tenant   string // optional: only this tenant
	From, To time.Time
	// Limit caps the rows returned (0 = no cap). When the cap is hit the
	// newest spans are kept.
	Limit int
	// MinDurationNano, when positive, keeps only spans that lasted at
	// least this long. The stores' (service, name, start_ns) index carries
	// duration_ns, so the filter stays inside the index range: a budget's
	// slow sample reads the requests over its threshold without the rest
	// leaving the index (with Limit, the scan stops at the Limit-th).
	MinDurationNano int64
}

// SampleRange is one range of a SampleRanges read: a SampleQuery's From,
// To and Limit.
type SampleRange struct {
	From, To time.Time
	Limit    int
}

// SampleEach answers a SampleRanges read with one samples call per range:
// what a store without round trips to save (SQLite), or a source without
// SampleRanges, does.
func SampleEach(ctx context.Context, q SampleQuery, ranges []SampleRange,
	samples func(context.Context, SampleQuery) ([]Sample, error)) ([][]Sample, error) {
	out := make([][]Sample, len(ranges))
	for i, r := range ranges {
		q.From, q.To, q.Limit = r.From, r.To, r.Limit
		ss, err := samples(ctx, q)
		if err != nil {
			return nil, err
		}
		out[i] = ss
	}
	return out, nil
}

// Endpoint is a (service, entry span name) pair seen in a window.
type Endpoint struct {
	Service string
	Name    string
	Count   int64
	// Roots counts the entry spans that are trace roots: where requests
	// enter the system rather than a downstream hop. Pages default to the
	// endpoint with the most roots.
	Roots int64
}

// Deploy is a marker that a service started running a version.
type Deploy struct {
	ID      int64
	Service string
	Version string
	At      time.Time
	Note    string
	// Source is "auto" for markers recorded when ingest first saw a
	// (service, version), "api" for markers posted by a user or pipeline.
	Source string
}

// Deploy sources.
const (
	DeploySourceAuto = "auto"
	DeploySourceAPI  = "api"
)

// DeployQuery selects deploy markers; zero fields do not constrain.
type DeployQuery struct {
	Service  string
	From, To time.Time
	Limit    int
}

// Writer stores spans.
type Writer interface {
	// WriteSpans stores spans in one atomic commit: when it returns nil,
	// every span is durable (it survives a crash of this process); when it
	// returns an error, none of them was committed by this call.
	// It is idempotent: a span whose (trace id, span id, start) is already
	// stored is skipped silently, so clients may resend after a lost reply.
	// Text fields may hold any valid UTF-8 except NUL; callers sanitise.
	// Service, name, tenant, version and host longer than MaxLabelBytes
	// and MaxNameBytes are cut, in spans itself (limits.go).
	// Errors that mean "try again later" wrap ErrUnavailable.
	WriteSpans(ctx context.Context, spans []Span) error
}

// Reader reads spans back.
type Reader interface {
	// Trace returns every span of a trace ordered by start time (ties by
	// span id), or ErrNotFound.
	Trace(ctx context.Context, id TraceID) ([]Span, error)
	// Traces returns the spans of each given trace that exists, each
	// ordered as Trace orders them. Unknown ids are absent from the map.
	Traces(ctx context.Context, ids []TraceID) (map[TraceID][]Span, error)
	// TraceShapes is Traces without the spans' Attributes, Resource and
	// Events (nil): the same traces, spans, order and every other field,
	// links included. It is for analyses of a trace's shape (its tree,
	// critical path, time per hop), which read those and nothing else,
	// and costs less than Traces: no attribute or event JSON is sent or
	// decoded (PERFORMANCE.md, "The hop table reads trace shapes").
	TraceShapes(ctx context.Context, ids []TraceID) (map[TraceID][]Span, error)
	// RequestShapes is TraceShapes for the traces of reqs, except that
	// each named span keeps its Attributes and Resource (its Events stay
	// nil): for analyses that describe a request by its own span's
	// attributes and the rest of its trace by its shape (outliers), which
	// then read one span's JSON a trace, not every span's
	// (PERFORMANCE.md, "Outliers read shapes and the request's span").
	// A trace may be named by several refs; a ref to a span that does
	// not exist keeps nothing.
	RequestShapes(ctx context.Context, reqs []SpanRef) (map[TraceID][]Span, error)
	// SearchTraces returns summaries of the traces matching q.
	SearchTraces(ctx context.Context, q TraceQuery) ([]TraceSummary, error)
	// Samples returns the entry spans selected by q, ordered by start.
	Samples(ctx context.Context, q SampleQuery) ([]Sample, error)
	// SampleRanges reads q in each of ranges, whose bounds and limit
	// replace q's: out[i] holds exactly what Samples returns for q over
	// ranges[i]. A store with a round trip per query reads them all in one
	// (PostgreSQL: a budget's stratified hop sample is ~75 short ranges).
	SampleRanges(ctx context.Context, q SampleQuery, ranges []SampleRange) ([][]Sample, error)
	// Endpoints lists the (service, entry span name) pairs with entry spans
	// starting in [from, to), ordered by service then name. It reads
	// rollups: the window is rounded outward to whole RollupStep(to −
	// from) buckets (a zero bound is unbounded), and the counts are those
	// of the rounded window.
	Endpoints(ctx context.Context, from, to time.Time) ([]Endpoint, error)
}

// DeployStore records and lists deploy markers.
type DeployStore interface {
	// RecordDeploy stores a marker and returns it with its ID. A marker
	// with Source auto is recorded at most once per (service, version);
	// recording it again returns the existing marker.
	RecordDeploy(ctx context.Context, d Deploy) (Deploy, error)
	// Deploys lists markers, newest first.
	Deploys(ctx context.Context, q DeployQuery) ([]Deploy, error)
	// DeployByID returns one marker or ErrNotFound.
	DeployByID(ctx context.Context, id int64) (Deploy, error)
}

// Budget is a latency objective for one endpoint — Target of requests
// faster than Threshold over Period (99% of GET /v1/feed under 500 ms over
// 30 days) — with a per-hop allocation of that threshold.
type Budget struct {
	ID        int64
	Name      string
	Service   string
	Endpoint  string
	Threshold time.Duration
	Target    float64 // good-request ratio in (0, 1), e.g. 0.99
	Period    time.Duration
	// HopMeasure is what the time of a call hop is; empty means
	// HopWholeCall.
	HopMeasure HopMeasure
	Hops       []HopBudget
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// HopMeasure says what a budget's call hops (a HopBudget with a
// Dependency) measure. A service's own time (no Dependency) is the same
// under both.
type HopMeasure string

// Hop measures.
const (
	// HopWholeCall counts the whole call as the caller waits for it: the
	// critical-path time inside the client span and everything under it
	// (the server's work and its own calls), which is the client span's
	// duration when the caller waits for that call alone.
	HopWholeCall HopMeasure = "whole_call"
	// HopOwnTime counts only the client span's own critical-path time:
	// network, queueing and serialization around the server's span, or
	// the whole call when the dependency is not instrumented.
	HopOwnTime HopMeasure = "own_time"
)

// HopBudget allocates part of an endpoint's threshold to one hop: the
// critical-path time a service spends itself (Dependency empty) or waiting
// on one dependency.
type HopBudget struct {
	Service    string        `json:"service"`
	Dependency string        `json:"dependency,omitempty"`
	Allocation time.Duration `json:"allocation_ns"`
}

// BudgetStore keeps budgets. Validation is the caller's job; the store keeps
// what it is given.
type BudgetStore interface {
	// CreateBudget stores b (ID, CreatedAt and UpdatedAt are assigned).
	CreateBudget(ctx context.Context, b Budget) (Budget, error)
	// UpdateBudget replaces the budget with b.ID or returns ErrNotFound.
	UpdateBudget(ctx context.Context, b Budget) (Budget, error)
	// DeleteBudget removes a budget or returns ErrNotFound.
	DeleteBudget(ctx context.Context, id int64) error
	// BudgetByID returns one budget or ErrNotFound.
	BudgetByID(ctx context.Context, id int64) (Budget, error)
	// Budgets lists every budget ordered by service, endpoint, id.
	Budgets(ctx context.Context) ([]Budget, error)
}

// Incident is a time range under review, with the reviewer's notes.
type Incident struct {
	ID       int64
	Title    string
	From, To time.Time
	Services []string
	Notes    string // Markdown
	// PinnedTraces are exemplar traces the reviewer chose.
	PinnedTraces []TraceID
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// IncidentStore keeps incidents.
type IncidentStore interface {
	CreateIncident(ctx context.Context, in Incident) (Incident, error)
	// UpdateIncident replaces the incident with in.ID or returns ErrNotFound.
	UpdateIncident(ctx context.Context, in Incident) (Incident, error)
	DeleteIncident(ctx context.Context, id int64) error
	IncidentByID(ctx context.Context, id int64) (Incident, error)
	// Incidents lists incidents, newest range first.
	Incidents(ctx context.Context) ([]Incident, error)
	// DeleteIncident (above) removes the incident's snapshots with it;
	// nothing else does: retention (DeleteBefore) never touches them.

	// CreateSnapshot stores s as its incident's next revision (1 for the
	// first), assigning Revision and CreatedAt; Body is kept byte for
	// byte. It returns ErrNotFound when the incident does not exist.
	CreateSnapshot(ctx context.Context, s IncidentSnapshot) (IncidentSnapshot, error)
	// Snapshot returns one revision of an incident's snapshot (0: the
	// latest) or ErrNotFound.
	Snapshot(ctx context.Context, incidentID int64, revision int) (IncidentSnapshot, error)
	// Snapshots lists an incident's revisions newest first, without their
	// bodies; none is an empty list.
	Snapshots(ctx context.Context, incidentID int64) ([]IncidentSnapshot, error)

	// KeepTraces stores copies of traces an incident's report cites, so
	// they outlive retention; a trace the incident already keeps is left
	// as it is. It returns ErrNotFound when the incident does not exist.
	// DeleteIncident removes the copies; nothing else does.
	KeepTraces(ctx context.Context, incidentID int64, traces map[TraceID][]Span) error
	// KeptTrace returns the copy of a trace kept by the incident that kept
	// it first, or ErrNotFound.
	KeptTrace(ctx context.Context, id TraceID) (KeptTrace, error)
}

// KeptTrace is a copy of a trace kept with an incident's report.
type KeptTrace struct {
	TraceID    TraceID
	IncidentID int64
	KeptAt     time.Time
	// Spans are as Trace returned them when the copy was made.
	Spans []Span
}

// IncidentSnapshot is one revision of an incident's finalized report: the
// JSON its page and exports render from once the incident is finalized,
// so a postmortem says the same thing tomorrow whatever arrives, expires
// or changes in tailscope meanwhile.
type IncidentSnapshot struct {
	IncidentID int64
	// Revision numbers an incident's snapshots from 1.
	Revision  int
	CreatedAt time.Time
	// Version is the tailscope version that computed Body.
	Version string
	// Body is the report's JSON (report.Report).
	Body []byte
}

// AlertFiring is one firing of a budget's burn-rate alert: it starts when
// both of a rule's windows burn at or above the rule's factor and resolves
// when they no longer do. Cause is the top outlier group at firing time.
type AlertFiring struct {
	ID       int64
	BudgetID int64
	// Rule names the rule ("14.4× over 1h and 5m"); Severity is "page" or
	// "ticket"; Factor, Long and Short are the rule's figures.
	Rule        string
	Severity    string
	Factor      float64
	Long, Short time.Duration
	StartedAt   time.Time
	// ResolvedAt is zero while the alert fires.
	ResolvedAt          time.Time
	LongBurn, ShortBurn float64
	Cause               string
	CauseShare          float64
	FixedP99Ms          float64
	// FireSentAt and ResolveSentAt are when every notification target
	// accepted the firing and the resolve (zero until then).
	FireSentAt, ResolveSentAt time.Time
}

// AlertEvent names what a notification says of a firing.
type AlertEvent string

// Alert events.
const (
	AlertFired    AlertEvent = "firing"
	AlertResolved AlertEvent = "resolved"
)

// AlertQuery selects firings: of one budget (0 = every budget), open only,
// newest first, at most Limit (0 = 100).
type AlertQuery struct {
	BudgetID int64
	OpenOnly bool
	Limit    int
}

// AlertStore keeps the history of burn-rate alerts.
type AlertStore interface {
	// CreateFiring stores f (ID assigned) and reports true. A budget has
	// at most one open firing per rule: when one is open (another process
	// may have just created it) it returns that one and false.
	CreateFiring(ctx context.Context, f AlertFiring) (AlertFiring, bool, error)
	// ResolveFiring closes an open firing with the burn rates at that time,
	// or returns ErrNotFound.
	ResolveFiring(ctx context.Context, id int64, at time.Time, longBurn, shortBurn float64) error
	// MarkAlertSent records that every target accepted an event's
	// notification.
	MarkAlertSent(ctx context.Context, id int64, event AlertEvent, at time.Time) error
	// Firings lists firings, newest first.
	Firings(ctx context.Context, q AlertQuery) ([]AlertFiring, error)
}

// Store is everything a backend provides.
type Store interface {
	Writer
	Reader
	DeployStore
	BudgetStore
	IncidentStore
	ProfileStore
	OperationReader
	AlertStore
	AttributeSuggester
	RollupStore
	// DeleteBefore removes spans that started before t. Backends may keep
	// some older spans (Postgres drops whole day partitions) but never
	// remove a span that started at or after t.
	DeleteBefore(ctx context.Context, t time.Time) error
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	// Close releases connections and files.
	Close() error
}
