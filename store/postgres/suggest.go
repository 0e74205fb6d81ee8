package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

// AttributeKeys implements store.AttributeSuggester.
func (db *DB) AttributeKeys(ctx context.Context, q store.AttributeQuery) ([]store.AttributeCount, error) {
	query, args, err := sqlcommon.AttributeKeysSQL(sqlcommon.Postgres, q)
	if err != nil {
		return nil, fmt.Errorf("postgres: attribute keys: %w", err)
	}
	return db.attributeCounts(ctx, "attribute keys", query, args)
}

// AttributeValues implements store.AttributeSuggester.
func (db *DB) AttributeValues(ctx context.Context, q store.AttributeQuery) ([]store.AttributeCount, error) {
	query, args, err := sqlcommon.AttributeValuesSQL(sqlcommon.Postgres, q)
	if err != nil {
		return nil, fmt.Errorf("postgres: attribute values: %w", err)
	}
	return db.attributeCounts(ctx, "attribute values", query, args)
}

func (db *DB) attributeCounts(ctx context.Context, what, query string, args []any) ([]store.AttributeCount, error) {
	rows, err := db.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, mapErr(ctx, what, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.AttributeCount, error) {
		var c store.AttributeCount
		err := r.Scan(&c.Value, &c.Count)
		return c, err
	})
	if err != nil {
		return nil, mapErr(ctx, what, err)
	}
	if out == nil {
		out = []store.AttributeCount{}
	}
	return out, nil
}
