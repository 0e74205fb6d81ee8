package postgres

import (
	"context"

	"github.com/tailscope/tailscope/store"
)

// OperationRollups answers an operations query from the operation rollups
// (sqlcommon.RollupDB.OperationRollups).
func (db *DB) OperationRollups(ctx context.Context, q store.OperationQuery) ([]store.OperationStats, error) {
	return db.rollups().OperationRollups(ctx, q)
}
