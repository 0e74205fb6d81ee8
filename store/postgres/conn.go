package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

// conn adapts the pool to sqlcommon.Conn, for record code shared with
// SQLite.
type conn struct{ db *DB }

func (c conn) Dialect() sqlcommon.Dialect { return sqlcommon.Postgres }

func (c conn) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	tag, err := c.db.pool.Exec(ctx, sql, args...)
	if err != nil {
		return 0, mapErr(ctx, "exec", err)
	}
	return tag.RowsAffected(), nil
}

func (c conn) QueryRow(ctx context.Context, sql string, args ...any) sqlcommon.Scanner {
	return row{ctx, c.db.pool.QueryRow(ctx, sql, args...)}
}

func (c conn) Query(ctx context.Context, sql string, each func(sqlcommon.Scanner) error, args ...any) error {
	rows, err := c.db.pool.Query(ctx, sql, args...)
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
	r   pgx.Row
}

func (r row) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	if err != nil {
		return mapErr(r.ctx, "query", err)
	}
	return nil
}
