package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

var _ store.RollupStore = (*DB)(nil)

// Rollups: the write hook and store.RollupStore, written once in sqlcommon
// (rollups.go, rollups_db.go).

func (db *DB) rollups() sqlcommon.RollupDB {
	return sqlcommon.RollupDB{Conn: conn{db}, Name: "postgres", Tenants: db.tenants, Names: db.names, InTx: func(ctx context.Context, fn func(sqlcommon.Conn) error) error {
		return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error { return fn(txConn{tx}) })
	}}
}

// decideRollupKeys decides, in a transaction of its own, whether the
// tenants and span names of spans no earlier batch carried are rolled up
// (sqlcommon.TenantRegistry, NameRegistry): committed before the spans'
// transaction begins, so every process writes their rollups alike. It
// returns the names to build the spans' rollups with: the snapshot it
// decided from, with what it decided (the registry's cache may start over
// before the spans' transaction).
func (db *DB) decideRollupKeys(ctx context.Context, spans []store.Span) (sqlcommon.NameSet, error) {
	nset := db.names.Current()
	tenants, names := db.tenants.Undecided(spans, nil), sqlcommon.Undecided(nset, spans, nil)
	if len(tenants) == 0 && len(names) == 0 {
		return nset, nil
	}
	var tset sqlcommon.TenantSet
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) (err error) {
		// Always tenants, then names: two deciders lock in one order.
		if len(tenants) > 0 {
			if tset, err = db.tenants.Decide(ctx, txConn{tx}, tenants); err != nil {
				return err
			}
		}
		if len(names) > 0 {
			nset, err = db.names.Decide(ctx, txConn{tx}, nset, names)
		}
		return err
	})
	if err != nil {
		return sqlcommon.NameSet{}, err
	}
	db.tenants.Remember(tset)
	if len(names) > 0 {
		db.names.Remember(nset)
	}
	return nset, nil
}

// writeRollups appends the rollups of the spans a write transaction
// inserted: all of spans, or, when keep is not nil, those it accepts,
// each once (a batch may hold a span twice); kept tenants and names as
// decided before the transaction (decideRollupKeys returned names).
func (db *DB) writeRollups(ctx context.Context, tx pgx.Tx, spans []store.Span, keep func(int) bool, names *sqlcommon.NameSet) error {
	b := sqlcommon.NewRollupBuilder()
	b.Tenants, b.Names = db.tenants.Current(), names
	for i := range spans {
		if keep == nil || keep(i) {
			b.Add(&spans[i])
		}
	}
	if err := sqlcommon.WriteRollups(ctx, txConn{tx}, b); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

// spanKey is a span's identity in spans (the primary key).
type spanKey struct {
	trace store.TraceID
	span  store.SpanID
	start int64
}

// insertedKeys reads the keys an INSERT ... RETURNING trace_id, span_id,
// start_ns reported.
func insertedKeys(rows pgx.Rows) (map[spanKey]bool, error) {
	defer rows.Close()
	out := map[spanKey]bool{}
	var (
		tid, sid []byte
		k        spanKey
	)
	for rows.Next() {
		if err := rows.Scan(&tid, &sid, &k.start); err != nil {
			return nil, err
		}
		copy(k.trace[:], tid)
		copy(k.span[:], sid)
		out[k] = true
	}
	return out, rows.Err()
}

// Rollups reads merged rollups (sqlcommon.RollupDB.Rollups).
func (db *DB) Rollups(ctx context.Context, q store.RollupQuery) ([]store.Rollup, error) {
	return db.rollups().Rollups(ctx, q)
}

// RolledUpName reports whether a service's span name is rolled up under
// its own name.
func (db *DB) RolledUpName(ctx context.Context, service, name string) (bool, error) {
	return db.rollups().RolledUpName(ctx, service, name)
}

// RolledUpTenant reports whether a tenant's entry spans are rolled up.
func (db *DB) RolledUpTenant(ctx context.Context, tenant string) (bool, error) {
	return db.rollups().RolledUpTenant(ctx, tenant)
}

// EndpointsBefore reports which endpoints had requests before a time.
func (db *DB) EndpointsBefore(ctx context.Context, service string, endpoints []string, before time.Time) (map[string]bool, error) {
	return db.rollups().EndpointsBefore(ctx, service, endpoints, before)
}

// RequestBefore reports whether an endpoint had requests before a time.
func (db *DB) RequestBefore(ctx context.Context, service, endpoint, version string, since, before time.Time) (bool, error) {
	return db.rollups().RequestBefore(ctx, service, endpoint, version, since, before)
}

// CompactRollups folds appended rollup rows.
func (db *DB) CompactRollups(ctx context.Context) error { return db.rollups().CompactRollups(ctx) }

// DeleteRollupsBefore removes hour rollups older than t.
func (db *DB) DeleteRollupsBefore(ctx context.Context, t time.Time) error {
	return db.rollups().DeleteRollupsBefore(ctx, t)
}

// backfillRollups builds the rollups of spans stored before migration
// 00007; Open runs it before returning, so before this process writes.
func (db *DB) backfillRollups(ctx context.Context) error {
	start := time.Now()
	hours, err := db.rollups().BackfillRollups(ctx)
	if err != nil {
		return err
	}
	if hours > 0 {
		db.log.Info("rollups built for stored spans", "hours", hours, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// txConn adapts a transaction to sqlcommon.Conn.
type txConn struct{ tx pgx.Tx }

func (c txConn) Dialect() sqlcommon.Dialect { return sqlcommon.Postgres }

func (c txConn) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	tag, err := c.tx.Exec(ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (c txConn) QueryRow(ctx context.Context, sql string, args ...any) sqlcommon.Scanner {
	return txRow{c.tx.QueryRow(ctx, sql, args...)}
}

func (c txConn) Query(ctx context.Context, sql string, each func(sqlcommon.Scanner) error, args ...any) error {
	rows, err := c.tx.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// txRow maps "no row" to store.ErrNotFound; other errors are mapped once,
// by the caller of the transaction.
type txRow struct{ r pgx.Row }

func (r txRow) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}
