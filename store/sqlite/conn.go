package sqlite

import (
	"context"
	"database/sql"
	"errors"

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
