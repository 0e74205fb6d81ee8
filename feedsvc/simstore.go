package feedsvc

import (
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.39.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/tailscope/tailscope/feedsvc/ranking"
)

// instrumentation scope of the hand-made spans of the simulated mode.
const simScope = "github.com/tailscope/tailscope/feedsvc/sim"

// simDB is the simulated database both services share: the catalogue is
// computed from item ids (no rows stored) and the query costs come from
// the models in latency.go, scaled by how many rows the plan would visit.
type simDB struct {
	tenants *tenantSet
	items   int
	seed    uint64
	epoch   time.Time
	indexed atomic.Bool // the composite index (v2's migration)
	rng     *lockedRand
	sql     schemaSQL
}

func newSimDB(cfg Config, ts *tenantSet) *simDB {
	return &simDB{
		tenants: ts,
		items:   cfg.CatalogItems,
		seed:    cfg.Seed,
		epoch:   time.Now().UTC().Truncate(time.Second),
		rng:     newLockedRand(cfg.Seed, 0xdb),
		sql:     newSchemaSQL(cfg.Schema),
	}
}

// scanCost is what a query filtering on (tenant, category) costs without
// the composite index: the tenant's rows through the tenant index, or the
// whole table when the tenant is most of it (the planner's choice, too).
func (d *simDB) scanCost(tenantRows int64) time.Duration {
	if float64(tenantRows) > seqScanShare*float64(d.items) {
		return time.Duration(d.items) * seqCostPerRow
	}
	return time.Duration(tenantRows) * bitmapCostPerRow
}

// simCatalog is one service's view of simDB, with a simulated connection
// pool (a semaphore held for the length of each query, so queueing and
// pool exhaustion behave as in pgxpool) and spans shaped like otelpgx's.
type simCatalog struct {
	db     *simDB
	tracer trace.Tracer
	pool   chan struct{}
	attrs  []attribute.KeyValue // otelpgx's connection attributes
}

func newSimCatalog(db *simDB, tp trace.TracerProvider, poolSize int) *simCatalog {
	return &simCatalog{
		db:     db,
		tracer: tp.Tracer(simScope),
		pool:   make(chan struct{}, poolSize),
		attrs: []attribute.KeyValue{
			semconv.DBSystemNamePostgreSQL,
			attribute.String("db.system", "postgresql"),
			semconv.ServerAddress("127.0.0.1"),
			semconv.ServerPort(5432),
			semconv.UserName("feedsvc"),
			semconv.DBNamespace("feedsvc"),
		},
	}
}

func (c *simCatalog) close() {}

// query runs one simulated statement: a pool.acquire span while waiting
// for a connection, then a SELECT span while "executing" for cost.
func (c *simCatalog) query(ctx context.Context, sql string, cost time.Duration, rows int) error {
	_, acq := c.tracer.Start(ctx, "pool.acquire", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(c.attrs...))
	select {
	case c.pool <- struct{}{}:
		acq.End()
	case <-ctx.Done():
		acq.RecordError(ctx.Err())
		acq.SetStatus(codes.Error, ctx.Err().Error())
		acq.End()
		return ctx.Err()
	}
	defer func() { <-c.pool }()
	_, span := c.tracer.Start(ctx, "SELECT", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(c.attrs...),
		trace.WithAttributes(semconv.DBQueryText(sql), semconv.DBOperationName("SELECT")))
	defer span.End()
	d := pgBaseLatency.draw(c.db.rng) + jitter(c.db.rng, cost, 0.15)
	if err := sleep(ctx, d); err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return err
	}
	span.SetAttributes(attribute.Int64("pgx.rows_affected", int64(rows)))
	return nil
}

func (c *simCatalog) tenantRange(tenant string) (first, count int64) {
	if _, i, ok := c.db.tenants.lookup(tenant); ok {
		return c.db.tenants.first[i], c.db.tenants.count[i]
	}
	return 0, 0
}

// In the simulated catalogue item first+k·categories+c is the k-th newest
// item of category c, so "newest of a category" is arithmetic.
func (c *simCatalog) candidates(ctx context.Context, tenant string, category, limit int) ([]itemRow, error) {
	first, count := c.tenantRange(tenant)
	cost := c.db.scanCost(count)
	if c.db.indexed.Load() {
		cost = time.Duration(limit) * indexCostPerRow
	}
	n := max(0, min(int64(limit), (count-int64(category)+categories-1)/categories))
	if err := c.query(ctx, c.db.sql.candidates, cost, int(n)); err != nil {
		return nil, err
	}
	t, _, _ := c.db.tenants.lookup(tenant)
	out := make([]itemRow, 0, n)
	for k := range n {
		off := k*categories + int64(category)
		id := first + off
		r := c.itemRand(id)
		out = append(out, itemRow{
			ID:        id,
			Category:  category,
			CreatedAt: c.db.epoch.Add(-time.Duration(k) * 7 * time.Minute),
			Score:     r.Float32(),
			BodySize:  int(float64(t.BodyBytes) * (0.7 + 0.6*r.Float64())),
		})
	}
	return out, nil
}

func (c *simCatalog) itemRand(id int64) *rand.Rand {
	return rand.New(rand.NewPCG(c.db.seed, uint64(id)))
}

func (c *simCatalog) countItems(ctx context.Context, tenant string) (int64, error) {
	_, count := c.tenantRange(tenant)
	if err := c.query(ctx, c.db.sql.count, time.Duration(count)*countCostPerRow, 1); err != nil {
		return 0, err
	}
	return count, nil
}

func (c *simCatalog) itemFeatures(ctx context.Context, ids []int64) (map[int64][]float32, error) {
	out := make(map[int64][]float32, len(ids))
	for _, id := range ids {
		if id >= 1 && id <= int64(c.db.items) {
			out[id] = features(c.itemRand(id))
		}
	}
	if err := c.query(ctx, c.db.sql.itemFeatures, time.Duration(len(ids))*pkCostPerRow, len(out)); err != nil {
		return nil, err
	}
	return out, nil
}

func features(r *rand.Rand) []float32 {
	f := make([]float32, ranking.FeatureDim)
	for i := range f {
		f[i] = float32(r.NormFloat64())
	}
	return f
}

func (c *simCatalog) userFeatures(ctx context.Context, tenant string, user int64) ([]float32, bool, error) {
	t, i, _ := c.db.tenants.lookup(tenant)
	known := user >= 1 && user <= int64(t.Users)
	rows := 0
	if known {
		rows = 1
	}
	if err := c.query(ctx, c.db.sql.userFeatures, pkCostPerRow, rows); err != nil {
		return nil, false, err
	}
	if !known {
		return nil, false, nil
	}
	return features(rand.New(rand.NewPCG(c.db.seed, uint64(i)<<40|uint64(user)))), true, nil
}

func (c *simCatalog) exhaust(n int) func() {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			select {
			case c.pool <- struct{}{}:
			case <-stop:
				return
			}
			<-stop
			<-c.pool
		})
	}
	return func() { close(stop); wg.Wait() }
}

// simCache is an in-memory cache with expiry and redisotel-shaped spans.
type simCache struct {
	tracer trace.Tracer
	rng    *lockedRand
	attrs  []attribute.KeyValue

	mu      sync.Mutex
	m       map[string]simEntry
	sweepAt int // size at which set drops expired entries
}

type simEntry struct {
	value   []byte
	expires time.Time
}

func newSimCache(tp trace.TracerProvider, seed uint64) *simCache {
	return &simCache{
		tracer: tp.Tracer(simScope),
		rng:    newLockedRand(seed, 0xcac4e),
		m:      map[string]simEntry{},
		attrs: []attribute.KeyValue{
			attribute.String("db.system", "redis"),
			attribute.String("db.connection_string", "redis://127.0.0.1:6379"),
			semconv.ServerAddress("127.0.0.1"),
			semconv.ServerPort(6379),
			attribute.String("db.namespace", "0"),
		},
	}
}

func (c *simCache) close() error { return nil }

func (c *simCache) roundTrip(ctx context.Context, name, stmt string, extra ...attribute.KeyValue) error {
	_, span := c.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(c.attrs...), trace.WithAttributes(extra...),
		trace.WithAttributes(attribute.String("db.statement", stmt)))
	defer span.End()
	if err := sleep(ctx, redisLatency.draw(c.rng)); err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return err
	}
	return nil
}

func (c *simCache) mget(ctx context.Context, keys []string) ([][]byte, error) {
	if err := c.roundTrip(ctx, "mget", "mget "+strings.Join(keys, " ")); err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([][]byte, len(keys))
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, k := range keys {
		if e, ok := c.m[k]; ok && now.Before(e.expires) {
			out[i] = e.value
		}
	}
	return out, nil
}

func (c *simCache) set(ctx context.Context, entries []cacheEntry) error {
	if len(entries) == 0 {
		return nil
	}
	var b strings.Builder
	for i, e := range entries {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("set " + e.key + " " + string(e.value) + " px " + strconv.FormatInt(e.ttl.Milliseconds(), 10))
	}
	if err := c.roundTrip(ctx, "redis.pipeline set", b.String(), attribute.Int("db.redis.num_cmd", len(entries))); err != nil {
		return err
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range entries {
		c.m[e.key] = simEntry{value: e.value, expires: now.Add(e.ttl)}
	}
	if len(c.m) > c.sweepAt {
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
		c.sweepAt = 2*len(c.m) + 4096
	}
	return nil
}

func (c *simCache) flush(_ context.Context, prefix string) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	now := time.Now()
	for k, e := range c.m {
		if strings.HasPrefix(k, prefix) || !now.Before(e.expires) {
			delete(c.m, k)
			n++
		}
	}
	return n, nil
}
