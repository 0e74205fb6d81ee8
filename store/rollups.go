package store

import (
	"context"
	"math"
	"time"
)

// Rollups are the entry spans' counts, errors and latency sketches per
// (service, endpoint, version) and minute or hour, written by WriteSpans in
// the transaction that stores the spans (docs/DESIGN.md "Rollups"). Pages
// that summarise many requests read them instead of the spans, so their
// cost follows the number of endpoints and buckets, not the spans stored.

// Rollup steps: every entry span is counted in its minute and its hour.
const (
	RollupMinute = time.Minute
	RollupHour   = time.Hour
)

// RollupStep is the step a window of this length is read at: minutes up
// to six hours (at most 360 buckets a key), hours beyond, so a read costs
// at most a few hundred rows per endpoint whatever the window.
func RollupStep(window time.Duration) time.Duration {
	if window <= 6*time.Hour {
		return RollupMinute
	}
	return RollupHour
}

// RollupRelativeAccuracy is the relative accuracy of the duration bins:
// they are the indexes of a logarithmic DDSketch mapping with this
// accuracy (analysis.SketchRelativeAccuracy, asserted by a test there).
const RollupRelativeAccuracy = 0.01

// rollupBinScale is that mapping's multiplier: 1 / ln(γ), γ = (1+α)/(1−α).
var rollupBinScale = 1 / math.Log((1+RollupRelativeAccuracy)/(1-RollupRelativeAccuracy))

// RollupBinScale returns the multiplier of the rollups' duration bins, the
// BinScale an OperationQuery would use for the same bins.
func RollupBinScale() float64 { return rollupBinScale }

// RollupBin returns the duration bin of a span lasting ns nanoseconds:
// floor(ln(ms) × RollupBinScale()), as OperationQuery bins in SQL. ok is
// false for durations ≤ 0, which are counted apart (ZeroCount).
func RollupBin(ns int64) (bin int32, ok bool) {
	if ns <= 0 {
		return 0, false
	}
	return int32(math.Floor(math.Log(float64(ns)/1e6) * rollupBinScale)), true
}

// MaxRollupTenants bounds the tenants whose entry spans are rolled up per
// tenant: the first this many tenants the entry spans carry (the empty
// tenant of spans without one is one of them) are kept, every later one
// is not, for good (docs/DESIGN.md "Rollups"). It is part of the schema:
// a process with another bound would decide differently.
const MaxRollupTenants = 1000

// MaxRollupNames bounds the span names rolled up under their own name, per
// service: the first this many names a service's spans carry are kept,
// and the spans of every later one are rolled up together as the
// service's other names (Rollup.Other), for good (docs/DESIGN.md
// "Rollups"). Like MaxRollupTenants it is part of the schema.
const MaxRollupNames = 1000

// RollupQuery selects rollups. Step is RollupMinute or RollupHour; the
// window is rounded outward to whole steps (From down, To up), since a
// bucket cannot be split. Service, Endpoint and Version filter when set.
type RollupQuery struct {
	Step              time.Duration
	From, To          time.Time
	Service, Endpoint string
	Version           string
	// ByVersion keeps versions apart; otherwise a bucket's versions are
	// merged and Rollup.Version is empty.
	ByVersion bool
	// Tenant reads the rollups of one tenant's entry spans, ByTenant
	// those of every tenant whose rollups are kept (RolledUpTenant),
	// tenants apart (Rollup.Tenant). Tenant rollups keep no version: with
	// either, Version and ByVersion are invalid.
	Tenant   string
	ByTenant bool
}

// Rollup is the entry spans of one (service, endpoint[, version]) in one
// bucket [BucketUnixNano, BucketUnixNano+Step).
type Rollup struct {
	Service, Endpoint, Version string
	// Other marks the rollup of the service's endpoints whose names are
	// not kept (past MaxRollupNames): Endpoint is empty. A read without
	// an Endpoint returns it after the named ones, so a service's rows
	// sum to all its entry spans.
	Other bool
	// Tenant is set by a tenant read (RollupQuery.Tenant, ByTenant).
	Tenant         string
	BucketUnixNano int64
	Count          int64
	Errors         int64 // status error
	Roots          int64 // entry spans that are trace roots
	// FirstUnixNano is the earliest start in the bucket.
	FirstUnixNano int64
	// MinNs, MaxNs and SumNs are exact over the bucket's durations.
	MinNs, MaxNs, SumNs int64
	// ZeroCount counts durations ≤ 0 (in no bin).
	ZeroCount int64
	// WeightSq is the sum of the squared count weights of the spans
	// counted: Count²/WeightSq is the effective number of independent
	// spans behind the counts (Kish), Count itself for an unsampled
	// stream, a tenth of it for one sampled 1 in 10. Tests of rollup
	// counts take their sample size from it.
	WeightSq int64
	// Bins are ordered by index (RollupBin); with ZeroCount they sum to
	// Count.
	Bins []DurationBin
}

// RollupReader reads rollups.
type RollupReader interface {
	// Rollups returns q's rollups ordered by service, endpoint, version
	// and bucket, each (key, bucket) once, however many rows the store
	// keeps for it.
	Rollups(ctx context.Context, q RollupQuery) ([]Rollup, error)
	// RequestBefore reports whether (service, endpoint[, version]) had an
	// entry span starting in [since, before); a zero since looks as far
	// back as rollups are kept.
	RequestBefore(ctx context.Context, service, endpoint, version string, since, before time.Time) (bool, error)
	// EndpointsBefore returns which of service's endpoints had an entry
	// span starting before before, as far back as rollups are kept:
	// RequestBefore with a zero since and no version, for many endpoints
	// in a few reads.
	EndpointsBefore(ctx context.Context, service string, endpoints []string, before time.Time) (map[string]bool, error)
	// RolledUpTenant reports whether tenant's entry spans are rolled up
	// (one of the first MaxRollupTenants tenants): then tenant reads of
	// its rollups count every span of it, since the backfill.
	RolledUpTenant(ctx context.Context, tenant string) (bool, error)
	// RolledUpName reports whether service's span name is rolled up
	// under its own name (one of the service's first MaxRollupNames):
	// then reads of that endpoint's or operation's rollups count every
	// span of it; otherwise its spans are in the service's Other rows.
	RolledUpName(ctx context.Context, service, name string) (bool, error)
}

// RollupStore reads and maintains rollups.
type RollupStore interface {
	RollupReader
	// CompactRollups folds the rows that writers appended (one per key
	// and bucket per commit) into one row per key and bucket. Readers
	// merge rows either way; compaction keeps them few.
	CompactRollups(ctx context.Context) error
	// DeleteRollupsBefore removes hour rollups of hours that ended
	// before t. Minute rollups go with the spans (DeleteBefore).
	DeleteRollupsBefore(ctx context.Context, t time.Time) error
}
