package sqlite

import (
	"context"

	"github.com/tailscope/tailscope/store"
)

// Operations aggregates spans per operation (sqlcommon.Records.Operations).
func (db *DB) Operations(ctx context.Context, q store.OperationQuery) ([]store.OperationStats, error) {
	return db.records().Operations(ctx, q)
}

// OperationRollups answers an operations query from the operation rollups
// (sqlcommon.RollupDB.OperationRollups).
func (db *DB) OperationRollups(ctx context.Context, q store.OperationQuery) ([]store.OperationStats, error) {
	return db.rollups().OperationRollups(ctx, q)
}
