package feedsvc

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"

	"github.com/tailscope/tailscope/feedsvc/ranking"
)

// seedLayout versions the catalogue's shape; bump it when seeding changes
// so an old catalogue is rebuilt instead of reused.
const seedLayout = 1

// pgDB is feedsvc's schema in the given database: seeding, the deploy
// migration (the composite index), and the services' pools.
type pgDB struct {
	url     string
	schema  string
	admin   *pgxpool.Pool // untraced: seeding and migrations are not the feed
	tenants *tenantSet
	cfg     Config
	log     *slog.Logger
}

func openPostgres(ctx context.Context, cfg Config, ts *tenantSet) (*pgDB, error) {
	pc, err := pgxpool.ParseConfig(cfg.PostgresURL)
	if err != nil {
		return nil, fmt.Errorf("feedsvc: postgres url: %w", err)
	}
	pc.MaxConns = 2
	admin, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("feedsvc: postgres: %w", err)
	}
	if err := admin.Ping(ctx); err != nil {
		admin.Close()
		return nil, fmt.Errorf("feedsvc: postgres: %w", err)
	}
	return &pgDB{url: cfg.PostgresURL, schema: cfg.Schema, admin: admin, tenants: ts, cfg: cfg, log: cfg.Logger}, nil
}

func (d *pgDB) close() { d.admin.Close() }

// locked runs fn holding a session advisory lock on the schema, so two
// processes starting on one database seed or migrate one at a time.
func (d *pgDB) locked(ctx context.Context, fn func(*pgxpool.Conn) error) error {
	conn, err := d.admin.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("feedsvc: postgres: %w", err)
	}
	defer conn.Release()
	h := fnv.New64a()
	h.Write([]byte("feedsvc/" + d.schema))
	key := int64(h.Sum64())
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		return fmt.Errorf("feedsvc: lock schema: %w", err)
	}
	defer func() {
		// A fresh context: the lock must be released even if ctx expired.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, "SELECT pg_advisory_unlock($1)", key); err != nil {
			conn.Conn().Close(uctx) // closing the session drops the lock
		}
	}()
	return fn(conn)
}

// layoutKey identifies what the seed produced: a catalogue seeded with
// other tenants, sizes or seed is rebuilt.
func (d *pgDB) layoutKey() string {
	h := fnv.New64a()
	fmt.Fprintf(h, "layout=%d items=%d seed=%d", seedLayout, d.cfg.CatalogItems, d.cfg.Seed)
	for _, t := range d.tenants.list {
		fmt.Fprintf(h, "|%s/%g/%d/%d", t.Name, t.CatalogShare, t.BodyBytes, t.Users)
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// ensureSeeded creates and fills the schema unless a marker row says the
// same catalogue is already there. A million items take ~15 s with COPY,
// so the catalogue is kept between runs.
func (d *pgDB) ensureSeeded(ctx context.Context) error {
	return d.locked(ctx, func(conn *pgxpool.Conn) error {
		s := d.schema
		if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+s); err != nil {
			return fmt.Errorf("feedsvc: create schema: %w", err)
		}
		if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+s+
			".seed_marker (id int PRIMARY KEY, layout text NOT NULL, items bigint NOT NULL, seeded_at timestamptz NOT NULL)"); err != nil {
			return fmt.Errorf("feedsvc: create marker: %w", err)
		}
		var layout string
		err := conn.QueryRow(ctx, "SELECT layout FROM "+s+".seed_marker WHERE id = 1").Scan(&layout)
		if err == nil && layout == d.layoutKey() {
			return nil
		}
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("feedsvc: read marker: %w", err)
		}
		start := time.Now()
		d.log.Info("feedsvc: seeding catalogue", slog.String("schema", s), slog.Int("items", d.cfg.CatalogItems))
		if err := d.seed(ctx, conn); err != nil {
			return err
		}
		d.log.Info("feedsvc: catalogue seeded", slog.String("schema", s), slog.Duration("took", time.Since(start)))
		return nil
	})
}

func (d *pgDB) seed(ctx context.Context, conn *pgxpool.Conn) error {
	s := d.schema
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("feedsvc: seed: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	for _, q := range []string{
		"DELETE FROM " + s + ".seed_marker",
		"DROP TABLE IF EXISTS " + s + ".items",
		"DROP TABLE IF EXISTS " + s + ".users",
		// No constraints or indexes yet: COPY into a bare table, index after.
		"CREATE TABLE " + s + ".items (item_id bigint NOT NULL, tenant text NOT NULL, category smallint NOT NULL, " +
			"created_at timestamptz NOT NULL, score real NOT NULL, body_size int NOT NULL, features real[] NOT NULL)",
		"CREATE TABLE " + s + ".users (tenant text NOT NULL, user_id bigint NOT NULL, features real[] NOT NULL)",
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("feedsvc: seed: %w", err)
		}
	}
	rng := rand.New(rand.NewPCG(d.cfg.Seed, 0xca7a))
	now := time.Now().UTC().Truncate(time.Second)
	feat := func() []float32 {
		f := make([]float32, ranking.FeatureDim)
		for i := range f {
			f[i] = float32(rng.NormFloat64())
		}
		return f
	}
	// Rows are written tenant by tenant, so each tenant's items are
	// physically together: a scan through the tenant index reads only the
	// tenant's pages, and its cost grows with the tenant's catalogue.
	ti, id, left := 0, d.tenants.first[0], d.tenants.count[0]
	items := pgx.CopyFromFunc(func() ([]any, error) {
		for left == 0 {
			ti++
			if ti == len(d.tenants.list) {
				return nil, nil
			}
			id, left = d.tenants.first[ti], d.tenants.count[ti]
		}
		t := d.tenants.list[ti]
		row := []any{
			id, t.Name, int16(rng.IntN(categories)),
			now.Add(-time.Duration(rng.Int64N(int64(90 * 24 * time.Hour)))),
			float32(rng.Float64()),
			int32(float64(t.BodyBytes) * (0.7 + 0.6*rng.Float64())),
			feat(),
		}
		id++
		left--
		return row, nil
	})
	cols := []string{"item_id", "tenant", "category", "created_at", "score", "body_size", "features"}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{s, "items"}, cols, items); err != nil {
		return fmt.Errorf("feedsvc: seed items: %w", err)
	}
	var users [][]any
	for _, t := range d.tenants.list {
		for u := 1; u <= t.Users; u++ {
			users = append(users, []any{t.Name, int64(u), feat()})
		}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{s, "users"}, []string{"tenant", "user_id", "features"}, pgx.CopyFromRows(users)); err != nil {
		return fmt.Errorf("feedsvc: seed users: %w", err)
	}
	for _, q := range []string{
		"ALTER TABLE " + s + ".items ADD PRIMARY KEY (item_id)",
		"ALTER TABLE " + s + ".users ADD PRIMARY KEY (tenant, user_id)",
		// v1's only secondary index: the tenant alone. The composite one
		// (items_feed_idx) is v2's deploy migration, see setIndex.
		"CREATE INDEX items_tenant_idx ON " + s + ".items (tenant)",
		"INSERT INTO " + s + ".seed_marker (id, layout, items, seeded_at) VALUES (1, $1, $2, now())",
	} {
		args := []any{}
		if q[0] == 'I' {
			args = []any{d.layoutKey(), d.cfg.CatalogItems}
		}
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return fmt.Errorf("feedsvc: seed: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("feedsvc: seed: %w", err)
	}
	// ANALYZE gives the planner the tenant skew; VACUUM sets the visibility
	// map, so v3's count runs as an index-only scan.
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE "+s+".items, "+s+".users"); err != nil {
		return fmt.Errorf("feedsvc: seed: vacuum: %w", err)
	}
	return nil
}

// setIndex is the deploy migration: v2 and v3 need the composite index
// (tenant, category, created_at DESC); v1 runs without it.
// Keeping one query text and changing only the index is what the story in
// shared/seeds did, and it makes the v1 plan really a scan of the tenant's
// rows (the whole table for the heavy tenant) rather than a contrived query.
func (d *pgDB) setIndex(ctx context.Context, present bool) error {
	return d.locked(ctx, func(conn *pgxpool.Conn) error {
		q := "DROP INDEX IF EXISTS " + d.schema + ".items_feed_idx"
		if present {
			q = "CREATE INDEX IF NOT EXISTS items_feed_idx ON " + d.schema + ".items (tenant, category, created_at DESC)"
		}
		start := time.Now()
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("feedsvc: migrate index: %w", err)
		}
		d.log.Info("feedsvc: index migration", slog.Bool("composite_index", present), slog.Duration("took", time.Since(start)))
		return nil
	})
}

// pgCatalog is one service's traced pool.
type pgCatalog struct {
	pool *pgxpool.Pool
	sql  schemaSQL
}

func (d *pgDB) newCatalog(ctx context.Context, tp trace.TracerProvider) (*pgCatalog, error) {
	pc, err := pgxpool.ParseConfig(d.url)
	if err != nil {
		return nil, fmt.Errorf("feedsvc: postgres url: %w", err)
	}
	pc.MaxConns = int32(d.cfg.PoolSize)
	// One round trip per query and no prepare spans: the span shape stays
	// the same on a cold and a warm connection (and in the simulated mode).
	pc.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	// An OLTP service: a parallel scan would only spread v1's slow query
	// over more of the machine's two cores.
	pc.ConnConfig.RuntimeParams["max_parallel_workers_per_gather"] = "0"
	pc.ConnConfig.Tracer = otelpgx.NewTracer(
		otelpgx.WithTracerProvider(tp),
		otelpgx.WithMeterProvider(metricnoop.NewMeterProvider()),
		// otelpgx writes db.system.name (semconv 1.40); tailscope's
		// dependency column reads db.system, so set both.
		otelpgx.WithTracerAttributes(attribute.String("db.system", "postgresql")),
	)
	// A full, warm pool: connections are opened here, untraced, rather
	// than inside the first requests, whose traces would otherwise carry
	// connect spans the simulated mode does not have.
	pc.MinConns = pc.MaxConns
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("feedsvc: postgres pool: %w", err)
	}
	wctx := unsampled(ctx)
	conns := make([]*pgxpool.Conn, 0, pc.MaxConns)
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	for range pc.MaxConns {
		c, err := pool.Acquire(wctx)
		if err != nil {
			pool.Close()
			return nil, fmt.Errorf("feedsvc: postgres pool: %w", err)
		}
		conns = append(conns, c)
	}
	return &pgCatalog{pool: pool, sql: newSchemaSQL(d.schema)}, nil
}

func (c *pgCatalog) close() { c.pool.Close() }

func (c *pgCatalog) candidates(ctx context.Context, tenant string, category, limit int) ([]itemRow, error) {
	rows, err := c.pool.Query(ctx, c.sql.candidates, tenant, category, limit)
	if err != nil {
		return nil, fmt.Errorf("feedsvc: candidates: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (itemRow, error) {
		var it itemRow
		var cat int16
		var size int32
		err := r.Scan(&it.ID, &cat, &it.CreatedAt, &it.Score, &size)
		it.Category, it.BodySize = int(cat), int(size)
		return it, err
	})
	if err != nil {
		return nil, fmt.Errorf("feedsvc: candidates: %w", err)
	}
	return out, nil
}

func (c *pgCatalog) countItems(ctx context.Context, tenant string) (int64, error) {
	var n, categories int64
	if err := c.pool.QueryRow(ctx, c.sql.count, tenant).Scan(&n, &categories); err != nil {
		return 0, fmt.Errorf("feedsvc: count items: %w", err)
	}
	return n, nil
}

func (c *pgCatalog) itemFeatures(ctx context.Context, ids []int64) (map[int64][]float32, error) {
	rows, err := c.pool.Query(ctx, c.sql.itemFeatures, ids)
	if err != nil {
		return nil, fmt.Errorf("feedsvc: item features: %w", err)
	}
	out := make(map[int64][]float32, len(ids))
	var id int64
	var f []float32
	_, err = pgx.ForEachRow(rows, []any{&id, &f}, func() error {
		out[id] = f
		f = nil
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("feedsvc: item features: %w", err)
	}
	return out, nil
}

func (c *pgCatalog) userFeatures(ctx context.Context, tenant string, user int64) ([]float32, bool, error) {
	var f []float32
	err := c.pool.QueryRow(ctx, c.sql.userFeatures, tenant, user).Scan(&f)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("feedsvc: user features: %w", err)
	}
	return f, true, nil
}

// exhaust acquires n connections and holds them; acquiring happens in the
// background (the pool may be busy) under an unsampled context, so the
// fault itself makes no spans: its victims' pool.acquire spans show it.
func (c *pgCatalog) exhaust(n int) func() {
	ctx, cancel := context.WithCancel(unsampled(context.Background()))
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			conn, err := c.pool.Acquire(ctx)
			if err != nil {
				return
			}
			<-ctx.Done()
			conn.Release()
		})
	}
	return func() { cancel(); wg.Wait() }
}

// unsampled returns ctx under a non-sampled parent, so instrumentations
// (parent-based sampling) make no spans for background work.
func unsampled(ctx context.Context) context.Context {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0xfe, 0xed},
		SpanID:  trace.SpanID{0xfe, 0xed},
	})
	return trace.ContextWithSpanContext(ctx, sc)
}
