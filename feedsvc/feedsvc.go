// Package feedsvc is tailscope's demo service and the ground truth its
// analysis is tested against: the personalized feed of the performance
// stories in shared/seeds, as six OpenTelemetry services talking real HTTP
// on loopback.
//
//	feed-api ──▶ candidate-svc  (Postgres: the tenant's newest items in the user's category)
//	         ──▶ feature-svc    (Redis cache-aside in v2, Postgres on a miss)
//	         ──▶ profile-svc    ("external": long latency tail, flaky)
//	         ──▶ ranker         (CPU scoring, cost grows with the candidate count)
//	         ┄┄▶ analytics-svc  (fire-and-forget: feed-api does not wait; an async branch)
//
// Start runs all six in-process on 127.0.0.1:0 ports. With a PostgreSQL and
// a Redis URL the data path is real (pgx + otelpgx, go-redis + redisotel, a
// seeded catalogue of a million items); without them it is simulated: the
// same services, HTTP hops, span names and attributes, with database and
// cache latency drawn from seeded models and their spans made by hand. The
// resource attribute feedsvc.mode says which.
//
// Versions (switchable at run time with SetVersion, which is a deploy: every
// service gets a new service.version):
//   - v1: sequential fan-out; feature-svc reads Postgres and re-derives every
//     item's features on every request (no cache); no composite index, so the
//     candidate query scans the tenant's rows (the heavy tenant's: a
//     sequential scan of the table); retries without backoff or attempt
//     limit (bounded only by the caller's context and a safety ceiling).
//   - v2: profile-svc in parallel with candidates→features; per-call
//     deadlines inside an overall budget, degrading (no profile, neutral
//     features) instead of failing; cache-aside with TTL + jitter; the
//     composite index; at most one retry after a jittered backoff.
//   - v3: v2 plus a regression: candidate-svc also counts the tenant's items
//     for pagination, a query whose cost grows with the catalogue.
//
// Injected faults (Faults, SetFaults, POST /admin/faults on feed-api) mark
// the spans they affect with the attribute feedsvc.fault = the fault's name
// (see the Fault* constants), so tests know the truth.
package feedsvc

import (
	"errors"
	"fmt"
	"go.opentelemetry.io/otel/trace"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Service names, as they appear in service.name and peer.service.
const (
	FeedAPI      = "feed-api"
	CandidateSvc = "candidate-svc"
	FeatureSvc   = "feature-svc"
	ProfileSvc   = "profile-svc"
	Ranker       = "ranker"
	// Analytics records feed views; feed-api calls it fire-and-forget,
	// without waiting, so every trace has an async branch.
	Analytics = "analytics-svc"
)

// Services lists the six services in call order.
var services = []string{FeedAPI, CandidateSvc, FeatureSvc, ProfileSvc, Ranker, Analytics}

// Services returns the six service names in call order.
func Services() []string { return slices.Clone(services) }

// Versions of the feed.
const (
	V1 = "v1"
	V2 = "v2"
	V3 = "v3"
)

// Versions returns the known versions in release order.
func Versions() []string { return []string{V1, V2, V3} }

// Mode says where database and cache latency comes from.
type Mode string

// Modes.
const (
	ModeReal      Mode = "real"      // PostgreSQL and Redis
	ModeSimulated Mode = "simulated" // latency models, hand-made spans
)

// Attribute keys feedsvc sets besides the semantic conventions.
const (
	AttrTenant   = "tenant.id"     // on every span
	AttrMode     = "feedsvc.mode"  // resource: real | simulated
	AttrFault    = "feedsvc.fault" // span: the injected fault that affected it
	AttrDegraded = "feed.degraded" // feed-api root: dependencies skipped by the budget
)

// Config configures Start. Zero values take the defaults noted.
type Config struct {
	// OTLPEndpoint is tailscope's OTLP/HTTP base URL, e.g.
	// http://127.0.0.1:4318 (the /v1/traces path is added when absent).
	// Required unless Exporter is set.
	OTLPEndpoint string
	// Exporter, when set, receives every service's spans instead of an
	// OTLP exporter (tests). It is shared by all services and never shut
	// down by the cluster: the caller owns it.
	Exporter sdktrace.SpanExporter
	// PostgresURL and RedisURL select the real mode; both empty selects the
	// simulated mode. Giving only one is an error.
	PostgresURL string
	RedisURL    string
	// Version to start with (default v1).
	Version string
	// Tenants (default DefaultTenants()).
	Tenants []Tenant
	// Faults active from the start.
	Faults Faults
	// Seed drives the catalogue, the latency models and retry jitter.
	Seed uint64
	// CatalogItems is the number of items in the catalogue (default
	// 1,000,000). The real mode seeds that many rows once and reuses them;
	// the simulated mode scales its query-cost models by it.
	CatalogItems int
	// Schema is the PostgreSQL schema feedsvc owns inside the database
	// (default "feedsvc"), also the Redis key prefix unless CachePrefix is
	// set. One cluster per schema: a deploy creates or drops an index in it.
	Schema string
	// CachePrefix prefixes every Redis key (default Schema).
	CachePrefix string
	// FeedAddr is feed-api's listen address (default 127.0.0.1:0); the
	// other services always take free loopback ports.
	FeedAddr string
	// Environment is deployment.environment (default "demo").
	Environment string
	// PoolSize is each database client's connection pool size (default 4).
	PoolSize int
	// DeadlineScale multiplies v2's per-call deadlines and overall budget
	// (default 1). Raise it where everything is slow (the race detector, an
	// overloaded machine) and v2 should not degrade for that reason.
	DeadlineScale float64
	// ExportDelay is the batch span processor's schedule delay (default 1s).
	ExportDelay time.Duration
	// WrapTracerProvider, when set, wraps each service's tracer provider,
	// e.g. with span profiling (pprof labels naming the active span) so
	// CPU profiles link to spans.
	WrapTracerProvider func(trace.TracerProvider) trace.TracerProvider
	// Logger (default discards).
	Logger *slog.Logger
}

// DefaultCatalogItems is the catalogue size when Config.CatalogItems is 0:
// large enough that a scan of the heavy tenant's rows costs tens of ms.
const DefaultCatalogItems = 1_000_000

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,40}$`)

// withDefaults validates c and fills in defaults.
func (c Config) withDefaults() (Config, error) {
	if c.OTLPEndpoint == "" && c.Exporter == nil {
		return c, errors.New("feedsvc: config: an OTLP endpoint or an exporter is required")
	}
	if c.OTLPEndpoint != "" {
		u, err := url.Parse(c.OTLPEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, fmt.Errorf("feedsvc: config: OTLP endpoint %q: want http(s)://host:port", c.OTLPEndpoint)
		}
	}
	if (c.PostgresURL == "") != (c.RedisURL == "") {
		return c, errors.New("feedsvc: config: give both a PostgreSQL and a Redis URL (real mode) or neither (simulated mode)")
	}
	if c.Version == "" {
		c.Version = V1
	}
	if !slices.Contains(Versions(), c.Version) {
		return c, fmt.Errorf("feedsvc: config: unknown version %q (want one of %v)", c.Version, Versions())
	}
	if len(c.Tenants) == 0 {
		c.Tenants = DefaultTenants()
	}
	if err := validateTenants(c.Tenants); err != nil {
		return c, fmt.Errorf("feedsvc: config: %w", err)
	}
	if c.CatalogItems == 0 {
		c.CatalogItems = DefaultCatalogItems
	}
	if c.CatalogItems < 1000 || c.CatalogItems > 50_000_000 {
		return c, fmt.Errorf("feedsvc: config: catalog items %d outside [1000, 50000000]", c.CatalogItems)
	}
	if c.Schema == "" {
		c.Schema = "feedsvc"
	}
	if !identRE.MatchString(c.Schema) {
		return c, fmt.Errorf("feedsvc: config: schema %q: want a lowercase SQL identifier", c.Schema)
	}
	if c.CachePrefix == "" {
		c.CachePrefix = c.Schema
	}
	if c.FeedAddr == "" {
		c.FeedAddr = "127.0.0.1:0"
	}
	if c.Environment == "" {
		c.Environment = "demo"
	}
	if c.PoolSize == 0 {
		c.PoolSize = 4
	}
	if c.PoolSize < 2 || c.PoolSize > 64 {
		return c, fmt.Errorf("feedsvc: config: pool size %d outside [2, 64]", c.PoolSize)
	}
	if c.DeadlineScale == 0 {
		c.DeadlineScale = 1
	}
	if c.DeadlineScale < 0.1 || c.DeadlineScale > 1000 {
		return c, fmt.Errorf("feedsvc: config: deadline scale %v outside [0.1, 1000]", c.DeadlineScale)
	}
	if c.ExportDelay == 0 {
		c.ExportDelay = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if err := c.Faults.validate(c.Tenants); err != nil {
		return c, fmt.Errorf("feedsvc: config: %w", err)
	}
	return c, nil
}

func (c Config) mode() Mode {
	if c.PostgresURL != "" {
		return ModeReal
	}
	return ModeSimulated
}

// behaviour is what a version changes in the code paths.
type behaviour struct {
	parallel    bool          // profile-svc concurrently with candidates→features
	cache       bool          // feature-svc reads Redis first
	index       bool          // the composite index exists
	countQuery  bool          // candidate-svc counts the tenant's items (v3 regression)
	maxAttempts int           // per dependency call; 0: until success or the caller gives up
	backoff     time.Duration // base of the jittered backoff before a retry (0: none)
	budget      time.Duration // overall deadline of a feed request (0: none)
	deadlines   map[string]time.Duration
}

// retrySafetyCeiling bounds v1's "unbounded" retries so a 100% error rate
// cannot spin a request for as long as its caller waits; at a few ms per
// failed attempt it is far beyond what a healthy dependency ever needs.
const retrySafetyCeiling = 25

func behaviourOf(version string, deadlineScale float64) behaviour {
	switch version {
	case V1:
		return behaviour{}
	default:
		b := behaviour{
			parallel:    true,
			cache:       true,
			index:       true,
			maxAttempts: 2,
			backoff:     10 * time.Millisecond,
			budget:      500 * time.Millisecond,
			deadlines: map[string]time.Duration{
				CandidateSvc: 250 * time.Millisecond,
				FeatureSvc:   150 * time.Millisecond,
				ProfileSvc:   120 * time.Millisecond,
				Ranker:       200 * time.Millisecond,
			},
		}
		b.countQuery = version == V3
		scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) * deadlineScale) }
		b.budget = scale(b.budget)
		for k, d := range b.deadlines {
			b.deadlines[k] = scale(d)
		}
		return b
	}
}
