package sqlite

import (
	"context"
	"database/sql"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

// records are the deploy, budget and incident methods, written once in
// sqlcommon: reads on the read pool, writes on the single writer.
func (db *DB) records() sqlcommon.Records {
	return sqlcommon.Records{Read: sqlQuerier{db.r}, Write: sqlQuerier{db.w}, Dialect: sqlcommon.SQLite, Name: "sqlite", Now: db.now, MapErr: mapErr}
}

// sqlQuerier adapts database/sql to sqlcommon.Querier.
type sqlQuerier struct{ db *sql.DB }

func (q sqlQuerier) QueryRow(ctx context.Context, query string, args ...any) sqlcommon.Scanner {
	return q.db.QueryRowContext(ctx, query, args...)
}

func (q sqlQuerier) Query(ctx context.Context, query string, args ...any) (sqlcommon.Rows, error) {
	rows, err := q.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

func (q sqlQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := q.db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// sqlRows drops Close's error: Err reports what went wrong while reading.
type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }

// RecordDeploy stores a marker (sqlcommon.Records.RecordDeploy).
func (db *DB) RecordDeploy(ctx context.Context, d store.Deploy) (store.Deploy, error) {
	return db.records().RecordDeploy(ctx, d)
}

// Deploys lists markers newest first.
func (db *DB) Deploys(ctx context.Context, q store.DeployQuery) ([]store.Deploy, error) {
	return db.records().Deploys(ctx, q)
}

// DeployByID returns one marker or store.ErrNotFound.
func (db *DB) DeployByID(ctx context.Context, id int64) (store.Deploy, error) {
	return db.records().DeployByID(ctx, id)
}

// CreateBudget stores b, assigning ID, CreatedAt and UpdatedAt.
func (db *DB) CreateBudget(ctx context.Context, b store.Budget) (store.Budget, error) {
	return db.records().CreateBudget(ctx, b)
}

// UpdateBudget replaces the budget with b.ID; CreatedAt is kept.
func (db *DB) UpdateBudget(ctx context.Context, b store.Budget) (store.Budget, error) {
	return db.records().UpdateBudget(ctx, b)
}

// DeleteBudget removes a budget or returns store.ErrNotFound.
func (db *DB) DeleteBudget(ctx context.Context, id int64) error {
	return db.records().DeleteBudget(ctx, id)
}

// BudgetByID returns one budget or store.ErrNotFound.
func (db *DB) BudgetByID(ctx context.Context, id int64) (store.Budget, error) {
	return db.records().BudgetByID(ctx, id)
}

// Budgets lists every budget ordered by service, endpoint, id.
func (db *DB) Budgets(ctx context.Context) ([]store.Budget, error) {
	return db.records().Budgets(ctx)
}

// CreateIncident stores in, assigning ID, CreatedAt and UpdatedAt.
func (db *DB) CreateIncident(ctx context.Context, in store.Incident) (store.Incident, error) {
	return db.records().CreateIncident(ctx, in)
}

// UpdateIncident replaces the incident with in.ID; CreatedAt is kept.
func (db *DB) UpdateIncident(ctx context.Context, in store.Incident) (store.Incident, error) {
	return db.records().UpdateIncident(ctx, in)
}

// DeleteIncident removes an incident or returns store.ErrNotFound.
func (db *DB) DeleteIncident(ctx context.Context, id int64) error {
	return db.records().DeleteIncident(ctx, id)
}

// IncidentByID returns one incident or store.ErrNotFound.
func (db *DB) IncidentByID(ctx context.Context, id int64) (store.Incident, error) {
	return db.records().IncidentByID(ctx, id)
}

// Incidents lists incidents, newest range first.
func (db *DB) Incidents(ctx context.Context) ([]store.Incident, error) {
	return db.records().Incidents(ctx)
}
