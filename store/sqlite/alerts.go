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

// conn adapts the writer and reader connections to sqlcommon.Conn, for
// record code shared with PostgreSQL. Statements that write (RETURNING
// included) go to the writer.
type conn struct{ db *DB }

func (c conn) Dialect() sqlcommon.Dialect { return sqlcommon.SQLite }

func (c conn) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := c.db.w.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, mapErr(ctx, "exec", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, mapErr(ctx, "exec", err)
	}
	return n, nil
}

func (c conn) QueryRow(ctx context.Context, q string, args ...any) sqlcommon.Scanner {
	return row{ctx, c.db.w.QueryRowContext(ctx, q, args...)}
}

func (c conn) Query(ctx context.Context, q string, each func(sqlcommon.Scanner) error, args ...any) error {
	rows, err := c.db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return mapErr(ctx, "query", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return mapErr(ctx, "scan", err)
		}
	}
	if err := rows.Err(); err != nil {
		return mapErr(ctx, "query", err)
	}
	return nil
}

// row maps "no row" to store.ErrNotFound.
type row struct {
	ctx context.Context
	r   *sql.Row
}

func (r row) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if err != nil {
		return mapErr(r.ctx, "query", err)
	}
	return nil
}

// CreateFiring stores a burn-rate alert firing (see store.AlertStore).
func (db *DB) CreateFiring(ctx context.Context, f store.AlertFiring) (store.AlertFiring, bool, error) {
	f, created, err := sqlcommon.CreateFiring(ctx, conn{db}, f)
	if err != nil {
		return f, false, fmt.Errorf("sqlite: %w", err)
	}
	return f, created, nil
}

// ResolveFiring closes an open firing.
func (db *DB) ResolveFiring(ctx context.Context, id int64, at time.Time, longBurn, shortBurn float64) error {
	if err := sqlcommon.ResolveFiring(ctx, conn{db}, id, at, longBurn, shortBurn); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return nil
}

// MarkAlertSent records a delivered notification.
func (db *DB) MarkAlertSent(ctx context.Context, id int64, event store.AlertEvent, at time.Time) error {
	if err := sqlcommon.MarkAlertSent(ctx, conn{db}, id, event, at); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return nil
}

// Firings lists firings newest first.
func (db *DB) Firings(ctx context.Context, q store.AlertQuery) ([]store.AlertFiring, error) {
	out, err := sqlcommon.Firings(ctx, conn{db}, q)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return out, nil
}
