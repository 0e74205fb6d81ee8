package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

// Operations aggregates spans per operation (store.OperationReader).
func (db *DB) Operations(ctx context.Context, q store.OperationQuery) ([]store.OperationStats, error) {
	query, args, err := sqlcommon.OperationsSQL(sqlcommon.SQLite, q)
	if err != nil {
		return nil, fmt.Errorf("sqlite: operations: %w", err)
	}
	rows, err := db.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, mapErr(ctx, "operations", err)
	}
	defer rows.Close()
	var b sqlcommon.OperationBuilder
	for rows.Next() {
		var (
			service, name, grp           string
			kind                         int64
			bin                          sql.NullInt64
			n, errs, minNs, maxNs, sumNs int64
		)
		if err := rows.Scan(&service, &name, &kind, &grp, &bin, &n, &errs, &minNs, &maxNs, &sumNs); err != nil {
			return nil, mapErr(ctx, "operations", err)
		}
		b.Add(service, name, kind, grp, bin, n, errs, minNs, maxNs, sumNs)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(ctx, "operations", err)
	}
	return b.Result(), nil
}
