package store

import (
	"context"
	"time"
)

// Bounds of an operations read.
const (
	DefaultOperationLimit = 500
	MaxOperationLimit     = 5000
	// MaxOperationRange is the longest window one read of spans
	// aggregates: every span in it is read once.
	MaxOperationRange = 7 * 24 * time.Hour
	// MaxOperationRollupRange is the longest window OperationRollups
	// reads: the hour rollups' default retention (--rollup-retention),
	// at most 2,160 hour rows an operation.
	MaxOperationRollupRange = 90 * 24 * time.Hour
)

// OperationQuery selects spans of every kind (server, client, internal,
// producer, consumer) for per-operation rate, errors and durations.
type OperationQuery struct {
	// From and To bound span start in [From, To); both are required and
	// the window is at most MaxOperationRange (MaxOperationRollupRange
	// for OperationRollups).
	From, To time.Time
	// Service, when set, keeps only that service's spans.
	Service string
	// GroupBy, when set, splits each operation by the text form of this
	// attribute (span attributes first, then the resource; "" when
	// absent), as TraceQuery.Attributes compares it.
	GroupBy string
	// BinScale sets the duration bins: a span of d > 0 ms is counted in
	// bin floor(ln(d) × BinScale), the index of a logarithmic DDSketch
	// mapping with multiplier BinScale. Required, > 0.
	BinScale float64
	// Limit caps the operations returned (0: DefaultOperationLimit; at
	// most MaxOperationLimit). The busiest are kept.
	Limit int
}

// DurationBin counts the spans of one duration bin.
type DurationBin struct {
	Index int32
	Count int64
}

// OperationStats aggregates the spans of one (service, name, kind, group).
type OperationStats struct {
	Service string
	Name    string
	Kind    SpanKind
	Group   string
	Count   int64
	Errors  int64 // status error
	// MinNs, MaxNs and SumNs are exact over the operation's spans.
	MinNs, MaxNs, SumNs int64
	// ZeroCount counts spans with a duration ≤ 0 (in no bin).
	ZeroCount int64
	// Bins are ordered by index; their counts and ZeroCount sum to Count.
	Bins []DurationBin
	// Weighted is true when a span of the operation had a sampling
	// weight above 1 (Span.Weight), so Count exceeds the spans read.
	// Counts are weighted either way; only Operations, which reads
	// spans, can tell (rollups do not record it).
	Weighted bool
	// Other marks, in OperationRollups, the spans of kind Kind whose
	// names the service's rollups do not keep (store.MaxRollupNames):
	// Name is empty.
	Other bool
}

// OperationReader aggregates spans per operation.
type OperationReader interface {
	// Operations returns the operations of q ordered by count (busiest
	// first), then service, name, kind and group. It reads every span of
	// the window.
	Operations(ctx context.Context, q OperationQuery) ([]OperationStats, error)
	// OperationRollups answers q as Operations does from the operation
	// rollups written at ingest (per service, span name and kind, minute
	// and hour; docs/DESIGN.md "Rollups"), so its cost follows the
	// operations and buckets of the window, not its spans. The window is
	// rounded out to whole RollupStep(q.To − q.From) buckets; q.GroupBy
	// must be empty (attributes are not a rollup dimension) and
	// q.BinScale must be RollupBinScale() (the bins are stored), else
	// ErrInvalid.
	OperationRollups(ctx context.Context, q OperationQuery) ([]OperationStats, error)
}
