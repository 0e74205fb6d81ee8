// Package postgres is tailscope's production store: PostgreSQL through a pgx
// v5 pool. Spans live in a table partitioned by day on start time, written
// with binary COPY and removed by dropping whole partitions. It implements
// store.Store with the same semantics as store/sqlite; store/storetest holds
// both to that.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/tailscope/tailscope/migrations"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

var _ store.Store = (*DB)(nil)

// DB is a tailscope store in PostgreSQL. It is safe for concurrent use.
type DB struct {
	// Records are the deploy, budget, incident, snapshot, alert and kept
	// trace methods, written once in sqlcommon over conn (conn.go).
	sqlcommon.Records

	pool  *pgxpool.Pool
	log   *slog.Logger
	now   func() time.Time
	parts *partitions
	write writeMethod
	// streams holds idle COPY buffers for WriteSpans (DB.stream).
	streams chan *copyStream
	// resources caches the ids of stored resources (resources.go).
	resources resourceCache
	// readOnly marks a replica (OpenReplica): writes are refused.
	readOnly bool
	// stats notices filled day partitions for ANALYZE (stats.go).
	stats *dayStats
	// tenants caches which tenants' entry spans are rolled up.
	tenants *sqlcommon.TenantRegistry
	names   *sqlcommon.NameRegistry
	// skipTraceIndex leaves trace_index unwritten. Only
	// BenchmarkTraceIndexCost sets it, to measure what the index adds to
	// a write; search would miss the traces it skipped.
	skipTraceIndex bool
	// hold keeps the trace index rows of WriteSpansHoldIndex until
	// FlushTraceIndex (sqlcommon/traceindex_hold.go).
	hold *sqlcommon.IndexHold
	// fresh remembers the traces this process indexed lately, so a
	// batch of new ones is COPYed (traceindex_copy.go) and a held write
	// need not look them up (storedOrSeen).
	fresh *freshTraces
	// lookUps says whether a held write looks up the traces it has not
	// seen (storedOrSeen).
	lookUps *lookUps

	stop      chan struct{}
	done      sync.WaitGroup
	closeOnce sync.Once
}

type config struct {
	log         *slog.Logger
	maxConns    int32
	maintenance time.Duration
	write       writeMethod
	statsEvery  time.Duration
}

// Option configures Open.
type Option func(*config)

// WithLogger sets the logger for background work (partition maintenance).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithMaxConns caps the pool size; by default pgxpool's rule (the larger of
// 4 and the number of CPUs) applies, or pool_max_conns from the URL.
func WithMaxConns(n int32) Option { return func(c *config) { c.maxConns = n } }

// WithMaintenanceInterval sets how often day partitions are created ahead of
// time (default 1 h). Partitions are also created on demand by writes.
func WithMaintenanceInterval(d time.Duration) Option {
	return func(c *config) { c.maintenance = d }
}

// WithStatsInterval sets how often tables that changed by a tenth since
// their last ANALYZE are analysed (default 10 min; 0: only a day partition
// the writer has moved past). See stats.go.
func WithStatsInterval(d time.Duration) Option {
	return func(c *config) { c.statsEvery = d }
}

// Open connects to the database at url (a postgres:// URL or DSN), applies
// pending migrations, creates the day partitions around today, and starts
// the background job that keeps creating them ahead of time.
func Open(ctx context.Context, url string, opts ...Option) (*DB, error) {
	cfg := config{log: slog.New(slog.DiscardHandler), maintenance: time.Hour, write: writeCopyFirst,
		statsEvery: DefaultStatsInterval}
	for _, o := range opts {
		o(&cfg)
	}
	if err := Migrate(ctx, url); err != nil {
		return nil, err
	}
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w: %w", store.ErrInvalid, err)
	}
	if cfg.maxConns > 0 {
		pcfg.MaxConns = cfg.maxConns
	}
	pcfg.AfterConnect = createStage
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, mapErr(ctx, "connect", err)
	}
	db := &DB{
		pool:  pool,
		log:   cfg.log,
		now:   time.Now,
		parts: newPartitions(),
		write: cfg.write,
		stop:  make(chan struct{}),

		streams: make(chan *copyStream, maxIdleStreams),
		stats:   newDayStats(),
		tenants: sqlcommon.NewTenantRegistry(),
		names:   sqlcommon.NewNameRegistry(),
		hold:    sqlcommon.NewIndexHold(),
		fresh:   newFreshTraces(freshGeneration),
		lookUps: newLookUps(time.Now(), lookUpWindow),
	}
	db.Records = db.records()
	if err := db.maintainPartitions(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if err := db.backfillRollups(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	db.done.Add(2)
	go db.maintenanceLoop(cfg.maintenance)
	go db.statsLoop(cfg.statsEvery)
	return db, nil
}

// Migrate applies pending migrations to the database at url; `tailscope
// migrate` calls it and Open does too. A PostgreSQL session lock serialises
// concurrent migrators, so several tailscope processes may start at once.
func Migrate(ctx context.Context, url string) error {
	pcfg, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("postgres: parse url: %w: %w", store.ErrInvalid, err)
	}
	sqlDB := stdlib.OpenDB(*pcfg)
	defer sqlDB.Close()
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("postgres: migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.Postgres, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return mapErr(ctx, "migrate", err)
	}
	return nil
}

// Close stops background work and closes the pool. Later calls do nothing.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		close(db.stop)
		db.done.Wait()
		db.pool.Close()
	})
	return nil
}

// Ping reports whether the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return mapErr(ctx, "ping", err)
	}
	return nil
}

func (db *DB) maintenanceLoop(every time.Duration) {
	defer db.done.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := db.maintainPartitions(ctx); err != nil {
				// Writes create missing partitions themselves, so a failed
				// round is only logged and retried on the next tick.
				db.log.Warn("postgres: creating day partitions ahead", "err", err)
			}
			cancel()
		}
	}
}

// mapErr wraps err with the operation and classifies it: errors that mean
// the database cannot be reached right now also wrap store.ErrUnavailable.
func mapErr(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("postgres: %s: %w: %w", op, context.Canceled, err)
	}
	if unavailable(err) {
		return fmt.Errorf("postgres: %s: %w: %w", op, store.ErrUnavailable, err)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// unavailable reports whether err means "the database cannot serve us right
// now; the same request may succeed later".
func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "53"),  // insufficient resources: disk full, out of memory, too many connections
			strings.HasPrefix(pgErr.Code, "57P"), // operator intervention: shutdown, crash, cannot connect now
			pgErr.Code == "40001",                // serialization failure
			pgErr.Code == "40P01",                // deadlock detected
			pgErr.Code == "55P03":                // lock not available
			return true
		}
		return false
	}
	var connErr *pgconn.ConnectError
	switch {
	case errors.As(err, &connErr),
		pgconn.SafeToRetry(err), // the request never reached the server
		pgconn.Timeout(err),
		errors.Is(err, context.DeadlineExceeded), // includes waiting for a pool connection
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNREFUSED):
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}
