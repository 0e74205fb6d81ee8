// Package sqlite is the embedded tailscope store: one SQLite file in WAL mode
// through modernc.org/sqlite (pure Go, no cgo), so a bare machine needs
// nothing installed. It implements store.Store with the same semantics as
// store/postgres; store/storetest holds both to that.
//
// Durability: synchronous=FULL, so when WriteSpans returns nil the batch is
// in the fsynced WAL and survives a crash or power loss. SQLite allows one
// writer at a time, so writes go through a single connection (callers queue
// on it) while reads use a separate pool that WAL lets run concurrently.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/pressly/goose/v3"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/tailscope/tailscope/migrations"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

var _ store.Store = (*DB)(nil)

// DB is a tailscope store in one SQLite file. It is safe for concurrent use.
type DB struct {
	// Records are the deploy, budget, incident, snapshot, alert and kept
	// trace methods, written once in sqlcommon over conn (conn.go).
	sqlcommon.Records

	w     *sql.DB // the single writer connection
	r     *sql.DB // read-only pool
	ckpt  *sql.DB // one connection for background WAL checkpoints
	stmts writeStmts
	now   func() time.Time
	log   *slog.Logger

	// wmu serialises writes with resources, the writer's cache of
	// resource ids (see WriteSpans and DeleteBefore).
	wmu       sync.Mutex
	resources map[string]resourceRef
	// health is the outcome of the last span write (health.go).
	health writeHealth
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

	stop chan struct{}
	done sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

type config struct {
	log             *slog.Logger
	checkpointEvery time.Duration
	statsEvery      time.Duration
}

// Option configures Open.
type Option func(*config)

// WithLogger sets the logger for background work (WAL checkpoints).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithCheckpointInterval sets how often the WAL is checkpointed into the
// database file in the background (default 1 s).
func WithCheckpointInterval(d time.Duration) Option {
	return func(c *config) { c.checkpointEvery = d }
}

// WithStatsInterval sets how often PRAGMA optimize refreshes planner
// statistics (default 10 min; 0: only at open and close). See stats.go.
func WithStatsInterval(d time.Duration) Option {
	return func(c *config) { c.statsEvery = d }
}

// Open opens (creating it and its parent directory if needed) the database
// at path and applies pending migrations.
func Open(ctx context.Context, path string, opts ...Option) (*DB, error) {
	cfg := config{log: slog.New(slog.DiscardHandler), checkpointEvery: time.Second, statsEvery: DefaultStatsInterval}
	for _, o := range opts {
		o(&cfg)
	}
	w, err := openWriter(ctx, path)
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", dsn(path, readerParams))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open reader: %w", err)
	}
	readers := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	r.SetConnMaxIdleTime(0)
	r.SetConnMaxLifetime(0)
	if err := r.PingContext(ctx); err != nil {
		w.Close()
		r.Close()
		return nil, mapErr(ctx, "open reader", err)
	}
	ckpt, err := sql.Open("sqlite", dsn(path, checkpointParams))
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("sqlite: open checkpointer: %w", err)
	}
	ckpt.SetMaxOpenConns(1)
	stmts, err := prepareWrites(ctx, w)
	if err != nil {
		w.Close()
		r.Close()
		ckpt.Close()
		return nil, err
	}
	db := &DB{w: w, r: r, ckpt: ckpt, stmts: stmts, resources: map[string]resourceRef{}, tenants: sqlcommon.NewTenantRegistry(), names: sqlcommon.NewNameRegistry(),
		hold: sqlcommon.NewIndexHold(), now: time.Now, log: cfg.log, stop: make(chan struct{})}
	db.Records = db.records()
	if err := db.backfillRollups(ctx); err != nil {
		errors.Join(stmts.close(), w.Close(), r.Close(), ckpt.Close())
		return nil, err
	}
	db.optimize(ctx, "PRAGMA optimize=0x10002")
	db.done.Add(2)
	go db.checkpointLoop(cfg.checkpointEvery)
	go db.statsLoop(cfg.statsEvery)
	return db, nil
}

// checkpointLoop copies committed WAL frames into the database file off the
// write path. Left to SQLite, the commit that crosses wal_autocheckpoint
// runs the checkpoint itself, which measured ~15% of write time with
// 5,000-span batches. PASSIVE never blocks the writer or readers.
func (db *DB) checkpointLoop(every time.Duration) {
	defer db.done.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-t.C:
			if _, err := db.ckpt.Exec("PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
				db.log.Warn("sqlite: WAL checkpoint", "err", err)
			}
		}
	}
}

// Migrate applies pending migrations to the database at path (creating it
// if needed); `tailscope migrate` calls it. Open migrates too.
func Migrate(ctx context.Context, path string) error {
	w, err := openWriter(ctx, path)
	if err != nil {
		return err
	}
	defer w.Close()
	return migrate(ctx, w)
}

// Writer settings: WAL so readers never block the writer; synchronous=FULL
// because a 2xx from the receiver promises the spans survive a crash;
// busy_timeout for the rare second process (tailscope migrate) holding the
// lock; BEGIN IMMEDIATE so a write transaction takes the lock up front
// instead of failing half-way when upgrading from a read lock. The WAL is
// checkpointed in the background (checkpointLoop); the high
// wal_autocheckpoint is only a backstop should that fall behind, and
// journal_size_limit shrinks the WAL file back after a burst. (A larger
// page_size measured no faster.)
const writerParams = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)" +
	"&_pragma=cache_size(-65536)&_pragma=temp_store(MEMORY)&_pragma=wal_autocheckpoint(20000)" +
	"&_pragma=journal_size_limit(67108864)&_txlock=immediate"

const checkpointParams = "_pragma=busy_timeout(10000)&_pragma=synchronous(FULL)&_pragma=journal_size_limit(67108864)"

// Readers are read-only by construction and get a larger page cache and
// memory-mapped I/O for the bulk reads of analysis.
const readerParams = "_pragma=busy_timeout(10000)&_pragma=cache_size(-32768)&_pragma=mmap_size(268435456)" +
	"&_pragma=temp_store(MEMORY)&_pragma=query_only(1)"

// dsn builds a file: URI so that characters such as '?' or '#' in the path
// are escaped instead of being taken for URI syntax.
func dsn(path, params string) string {
	u := url.URL{Scheme: "file", Path: path, RawQuery: params}
	if !filepath.IsAbs(path) {
		// A relative file: URI has no authority part: file:data/x.db.
		u.OmitHost = true
	}
	return u.String()
}

func openWriter(ctx context.Context, path string) (*sql.DB, error) {
	if path == "" {
		return nil, fmt.Errorf("sqlite: open: %w: empty path", store.ErrInvalid)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("sqlite: create directory of %s: %w", path, err)
		}
	}
	w, err := sql.Open("sqlite", dsn(path, writerParams))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, mapErr(ctx, "open "+path, err)
	}
	return w, nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	p, err := goose.NewProvider(goose.DialectSQLite3, db, migrations.SQLite)
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return mapErr(ctx, "migrate", err)
	}
	return nil
}

// Close stops background work and releases the connections. Later calls
// return the first result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		close(db.stop)
		db.done.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		db.optimize(ctx, "PRAGMA optimize")
		cancel()
		// Fold the WAL into the database file so a closed database is one
		// file; failure (a reader elsewhere) only leaves the WAL behind.
		_, ckptErr := db.ckpt.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
		if ckptErr != nil {
			db.log.Warn("sqlite: final WAL checkpoint", "err", ckptErr)
		}
		db.closeErr = errors.Join(db.stmts.close(), db.r.Close(), db.ckpt.Close(), db.w.Close())
	})
	return db.closeErr
}

// Ping reports whether the database file can be read.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return mapErr(ctx, "ping", err)
	}
	return nil
}

// mapErr wraps err with the operation and classifies it: errors that mean
// "try again later" (the file is locked by another process, the disk is full
// or failing) also wrap store.ErrUnavailable; a cancelled or expired context
// is reported as such.
func mapErr(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("sqlite: %s: %w: %w", op, ctxErr, err)
	}
	var se *msqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR,
			sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_PROTOCOL:
			return fmt.Errorf("sqlite: %s: %w: %w", op, store.ErrUnavailable, err)
		}
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}
