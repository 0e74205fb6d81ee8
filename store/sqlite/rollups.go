package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

var _ store.RollupStore = (*DB)(nil)

// Rollups: the write hook and store.RollupStore, written once in sqlcommon
// (rollups.go, rollups_db.go).

func (db *DB) rollups() sqlcommon.RollupDB {
	return sqlcommon.RollupDB{Conn: conn{db}, Name: "sqlite", Tenants: db.tenants, Names: db.names, InTx: func(ctx context.Context, fn func(sqlcommon.Conn) error) error {
		tx, err := db.w.BeginTx(ctx, nil)
		if err != nil {
			return mapErr(ctx, "begin", err)
		}
		if err := fn(txConn{tx: tx}); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return mapErr(ctx, "commit", err)
		}
		return nil
	}}
}

// writeRollups appends the rollups of the spans a write transaction
// inserted: all of spans, or, when inserted is not nil, those whose
// (trace id, span id, start) it holds, each once (a batch may hold a span
// twice). The tenants and names no earlier batch carried are decided in
// the same transaction (the single writer serialises decisions); what is
// returned is to be remembered once it commits.
func (db *DB) writeRollups(ctx context.Context, tx *sql.Tx, spans []store.Span, inserted map[spanKey]bool) (rollupKeys, error) {
	// keep is nil (every span) or says which spans the INSERTs took, each
	// once.
	var keep func(int) bool
	if inserted != nil {
		take := make([]bool, len(spans))
		for i := range spans {
			s := &spans[i]
			k := spanKey{s.TraceID, s.SpanID, s.StartUnixNano}
			take[i] = inserted[k]
			delete(inserted, k)
		}
		keep = func(i int) bool { return take[i] }
	}
	var (
		keys = rollupKeys{tenants: db.tenants.Current(), names: db.names.Current()}
		err  error
	)
	if undecided := db.tenants.Undecided(spans, keep); len(undecided) > 0 {
		if keys.tenants, err = db.tenants.Decide(ctx, txConn{tx: tx}, undecided); err != nil {
			return keys, err
		}
	}
	if undecided := sqlcommon.Undecided(keys.names, spans, keep); len(undecided) > 0 {
		if keys.names, err = db.names.Decide(ctx, txConn{tx: tx}, keys.names, undecided); err != nil {
			return keys, err
		}
		keys.newNames = true
	}
	b := sqlcommon.NewRollupBuilder()
	b.Tenants, b.Names = keys.tenants, &keys.names
	for i := range spans {
		if keep == nil || keep(i) {
			b.Add(&spans[i])
		}
	}
	return keys, sqlcommon.WriteRollups(ctx, txConn{tx: tx, stmts: map[string]*sql.Stmt{}}, b)
}

// rollupKeys are the tenants and names a write's rollups were built with.
type rollupKeys struct {
	tenants  sqlcommon.TenantSet
	names    sqlcommon.NameSet
	newNames bool // names were decided: remember them
}

// remember publishes keys once their transaction has committed.
func (db *DB) remember(keys rollupKeys) {
	db.tenants.Remember(keys.tenants)
	if keys.newNames {
		db.names.Remember(keys.names)
	}
}

// spanKey is a span's identity in spans (its unique key).
type spanKey struct {
	trace store.TraceID
	span  store.SpanID
	start int64
}

// insertReturning runs an INSERT ... RETURNING trace_id, span_id, start_ns
// and adds the keys of the rows it took to inserted.
func insertReturning(ctx context.Context, stmt *sql.Stmt, args []any, inserted map[spanKey]bool) error {
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var (
		tid, sid []byte
		k        spanKey
	)
	for rows.Next() {
		if err := rows.Scan(&tid, &sid, &k.start); err != nil {
			return err
		}
		copy(k.trace[:], tid)
		copy(k.span[:], sid)
		inserted[k] = true
	}
	return rows.Err()
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
// 00009; Open runs it before returning, so before this process writes.
func (db *DB) backfillRollups(ctx context.Context) error {
	start := time.Now()
	hours, err := db.rollups().BackfillRollups(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if hours > 0 {
		db.log.Info("rollups built for stored spans", "hours", hours, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// txConn adapts a write transaction to sqlcommon.Conn.
type txConn struct {
	tx *sql.Tx
	// stmts, when not nil, keeps each statement Exec prepared, by its
	// text, for the rest of the transaction (which closes them): the
	// rollups of a batch of 8,192 spans whose names carry ids are a
	// hundred INSERTs of the same 200 rows' text, and preparing each
	// again took 13% of the batch's time.
	stmts map[string]*sql.Stmt
}

func (c txConn) Dialect() sqlcommon.Dialect { return sqlcommon.SQLite }

func (c txConn) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	var (
		res sql.Result
		err error
	)
	if c.stmts == nil {
		res, err = c.tx.ExecContext(ctx, q, args...)
	} else {
		st := c.stmts[q]
		if st == nil {
			if st, err = c.tx.PrepareContext(ctx, q); err != nil {
				return 0, err
			}
			c.stmts[q] = st
		}
		res, err = st.ExecContext(ctx, args...)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (c txConn) QueryRow(ctx context.Context, q string, args ...any) sqlcommon.Scanner {
	return txRow{c.tx.QueryRowContext(ctx, q, args...)}
}

func (c txConn) Query(ctx context.Context, q string, each func(sqlcommon.Scanner) error, args ...any) error {
	rows, err := c.tx.QueryContext(ctx, q, args...)
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

// txRow maps "no row" to store.ErrNotFound.
type txRow struct{ r *sql.Row }

func (r txRow) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}
