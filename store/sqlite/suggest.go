package sqlite

import (
	"context"
	"fmt"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

// AttributeKeys implements store.AttributeSuggester.
func (db *DB) AttributeKeys(ctx context.Context, q store.AttributeQuery) ([]store.AttributeCount, error) {
	query, args, err := sqlcommon.AttributeKeysSQL(sqlcommon.SQLite, q)
	if err != nil {
		return nil, fmt.Errorf("sqlite: attribute keys: %w", err)
	}
	return db.attributeCounts(ctx, "attribute keys", query, args)
}

// AttributeValues implements store.AttributeSuggester.
func (db *DB) AttributeValues(ctx context.Context, q store.AttributeQuery) ([]store.AttributeCount, error) {
	query, args, err := sqlcommon.AttributeValuesSQL(sqlcommon.SQLite, q)
	if err != nil {
		return nil, fmt.Errorf("sqlite: attribute values: %w", err)
	}
	return db.attributeCounts(ctx, "attribute values", query, args)
}

func (db *DB) attributeCounts(ctx context.Context, what, query string, args []any) ([]store.AttributeCount, error) {
	rows, err := db.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, mapErr(ctx, what, err)
	}
	defer rows.Close()
	out := []store.AttributeCount{}
	for rows.Next() {
		var c store.AttributeCount
		if err := rows.Scan(&c.Value, &c.Count); err != nil {
			return nil, mapErr(ctx, what, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(ctx, what, err)
	}
	return out, nil
}
