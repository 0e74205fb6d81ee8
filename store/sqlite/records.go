package sqlite

import (
	"context"
	"time"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

// records are the deploy, budget and incident methods, written once in
// sqlcommon over conn (conn.go).
func (db *DB) records() sqlcommon.Records {
	return sqlcommon.Records{Conn: conn{db}, Name: "sqlite", Now: db.now}
}

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

// CreateFiring stores a burn-rate alert firing (see store.AlertStore).
func (db *DB) CreateFiring(ctx context.Context, f store.AlertFiring) (store.AlertFiring, bool, error) {
	return db.records().CreateFiring(ctx, f)
}

// ResolveFiring closes an open firing.
func (db *DB) ResolveFiring(ctx context.Context, id int64, at time.Time, longBurn, shortBurn float64) error {
	return db.records().ResolveFiring(ctx, id, at, longBurn, shortBurn)
}

// MarkAlertSent records a delivered notification.
func (db *DB) MarkAlertSent(ctx context.Context, id int64, event store.AlertEvent, at time.Time) error {
	return db.records().MarkAlertSent(ctx, id, event, at)
}

// Firings lists firings newest first.
func (db *DB) Firings(ctx context.Context, q store.AlertQuery) ([]store.AlertFiring, error) {
	return db.records().Firings(ctx, q)
}

// CreateSnapshot stores s as its incident's next revision.
func (db *DB) CreateSnapshot(ctx context.Context, s store.IncidentSnapshot) (store.IncidentSnapshot, error) {
	return db.records().CreateSnapshot(ctx, s)
}

// Snapshot returns one revision of an incident's snapshot (0: the latest).
func (db *DB) Snapshot(ctx context.Context, incidentID int64, revision int) (store.IncidentSnapshot, error) {
	return db.records().Snapshot(ctx, incidentID, revision)
}

// Snapshots lists an incident's revisions newest first, without bodies.
func (db *DB) Snapshots(ctx context.Context, incidentID int64) ([]store.IncidentSnapshot, error) {
	return db.records().Snapshots(ctx, incidentID)
}

// KeepTraces stores copies of traces an incident's report cites.
func (db *DB) KeepTraces(ctx context.Context, incidentID int64, traces map[store.TraceID][]store.Span) error {
	return db.records().KeepTraces(ctx, incidentID, traces)
}

// KeptTrace returns a kept copy of a trace or store.ErrNotFound.
func (db *DB) KeptTrace(ctx context.Context, id store.TraceID) (store.KeptTrace, error) {
	return db.records().KeptTrace(ctx, id)
}
