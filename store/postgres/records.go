package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

// RecordDeploy stores a marker. An auto marker is stored once per (service,
// version); recording it again (even concurrently, from another process)
// returns the first one.
func (db *DB) RecordDeploy(ctx context.Context, d store.Deploy) (store.Deploy, error) {
	d, err := sqlcommon.PrepareDeploy(d, db.now())
	if err != nil {
		return d, fmt.Errorf("postgres: record deploy: %w", err)
	}
	q := `INSERT INTO deploys (service, version, at_ns, note, source) VALUES ($1, $2, $3, $4, $5)`
	if d.Source == store.DeploySourceAuto {
		q += ` ON CONFLICT (service, version) WHERE source = 'auto' DO NOTHING`
	}
	err = db.pool.QueryRow(ctx, q+` RETURNING id`, d.Service, d.Version, sqlcommon.NS(d.At), d.Note, d.Source).Scan(&d.ID)
	if errors.Is(err, pgx.ErrNoRows) {
		row := db.pool.QueryRow(ctx, `SELECT `+sqlcommon.DeployColumns+` FROM deploys
WHERE service = $1 AND version = $2 AND source = 'auto'`, d.Service, d.Version)
		existing, err := sqlcommon.ScanDeploy(row)
		if err != nil {
			return d, mapErr(ctx, "record deploy", err)
		}
		return existing, nil
	}
	if err != nil {
		return d, mapErr(ctx, "record deploy", err)
	}
	d.At = sqlcommon.Time(sqlcommon.NS(d.At))
	return d, nil
}

// Deploys lists markers newest first.
func (db *DB) Deploys(ctx context.Context, q store.DeployQuery) ([]store.Deploy, error) {
	query, args, err := sqlcommon.DeploysSQL(sqlcommon.Postgres, q)
	if err != nil {
		return nil, fmt.Errorf("postgres: deploys: %w", err)
	}
	rows, err := db.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, mapErr(ctx, "deploys", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Deploy, error) { return sqlcommon.ScanDeploy(r) })
	if err != nil {
		return nil, mapErr(ctx, "deploys", err)
	}
	if out == nil {
		out = []store.Deploy{}
	}
	return out, nil
}

// DeployByID returns one marker or store.ErrNotFound.
func (db *DB) DeployByID(ctx context.Context, id int64) (store.Deploy, error) {
	d, err := sqlcommon.ScanDeploy(db.pool.QueryRow(ctx, `SELECT `+sqlcommon.DeployColumns+` FROM deploys WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return d, fmt.Errorf("postgres: %w", store.NotFound("deploy", id))
	}
	if err != nil {
		return d, mapErr(ctx, "deploy by id", err)
	}
	return d, nil
}

// CreateBudget stores b, assigning ID, CreatedAt and UpdatedAt.
func (db *DB) CreateBudget(ctx context.Context, b store.Budget) (store.Budget, error) {
	b = sqlcommon.CleanBudget(b)
	hops, err := sqlcommon.EncodeHops(b.Hops)
	if err != nil {
		return b, fmt.Errorf("postgres: create budget: %w", err)
	}
	now := sqlcommon.NS(db.now())
	err = db.pool.QueryRow(ctx, `INSERT INTO budgets
(name, service, endpoint, threshold_ns, target, period_ns, hop_measure, hops, created_ns, updated_ns)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id`,
		b.Name, b.Service, b.Endpoint, int64(b.Threshold), b.Target, int64(b.Period), string(b.HopMeasure), hops, now).Scan(&b.ID)
	if err != nil {
		return b, mapErr(ctx, "create budget", err)
	}
	b.CreatedAt, b.UpdatedAt = sqlcommon.Time(now), sqlcommon.Time(now)
	return b, nil
}

// UpdateBudget replaces the budget with b.ID; CreatedAt is kept.
func (db *DB) UpdateBudget(ctx context.Context, b store.Budget) (store.Budget, error) {
	b = sqlcommon.CleanBudget(b)
	hops, err := sqlcommon.EncodeHops(b.Hops)
	if err != nil {
		return b, fmt.Errorf("postgres: update budget: %w", err)
	}
	now := sqlcommon.NS(db.now())
	var created int64
	err = db.pool.QueryRow(ctx, `UPDATE budgets SET name = $1, service = $2, endpoint = $3, threshold_ns = $4,
target = $5, period_ns = $6, hop_measure = $7, hops = $8, updated_ns = $9 WHERE id = $10 RETURNING created_ns`,
		b.Name, b.Service, b.Endpoint, int64(b.Threshold), b.Target, int64(b.Period), string(b.HopMeasure), hops, now, b.ID).Scan(&created)
	if errors.Is(err, pgx.ErrNoRows) {
		return b, fmt.Errorf("postgres: update: %w", store.NotFound("budget", b.ID))
	}
	if err != nil {
		return b, mapErr(ctx, "update budget", err)
	}
	b.CreatedAt, b.UpdatedAt = sqlcommon.Time(created), sqlcommon.Time(now)
	return b, nil
}

// DeleteBudget removes a budget or returns store.ErrNotFound.
func (db *DB) DeleteBudget(ctx context.Context, id int64) error {
	return db.deleteByID(ctx, "budget", `DELETE FROM budgets WHERE id = $1`, id)
}

// BudgetByID returns one budget or store.ErrNotFound.
func (db *DB) BudgetByID(ctx context.Context, id int64) (store.Budget, error) {
	b, err := sqlcommon.ScanBudget(db.pool.QueryRow(ctx, `SELECT `+sqlcommon.BudgetColumns+` FROM budgets WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return b, fmt.Errorf("postgres: %w", store.NotFound("budget", id))
	}
	if err != nil {
		return b, mapErr(ctx, "budget by id", err)
	}
	return b, nil
}

// Budgets lists every budget ordered by service, endpoint, id.
func (db *DB) Budgets(ctx context.Context) ([]store.Budget, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+sqlcommon.BudgetColumns+` FROM budgets`)
	if err != nil {
		return nil, mapErr(ctx, "budgets", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Budget, error) { return sqlcommon.ScanBudget(r) })
	if err != nil {
		return nil, mapErr(ctx, "budgets", err)
	}
	if out == nil {
		out = []store.Budget{}
	}
	sqlcommon.SortBudgets(out)
	return out, nil
}

// CreateIncident stores in, assigning ID, CreatedAt and UpdatedAt.
func (db *DB) CreateIncident(ctx context.Context, in store.Incident) (store.Incident, error) {
	in, services, pinned, err := sqlcommon.IncidentJSON(in)
	if err != nil {
		return in, fmt.Errorf("postgres: create incident: %w", err)
	}
	now := sqlcommon.NS(db.now())
	err = db.pool.QueryRow(ctx, `INSERT INTO incidents
(title, from_ns, to_ns, services, notes, pinned_traces, created_ns, updated_ns)
VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id`,
		in.Title, sqlcommon.NS(in.From), sqlcommon.NS(in.To), services, in.Notes, pinned, now).Scan(&in.ID)
	if err != nil {
		return in, mapErr(ctx, "create incident", err)
	}
	in.From, in.To = sqlcommon.Time(sqlcommon.NS(in.From)), sqlcommon.Time(sqlcommon.NS(in.To))
	in.CreatedAt, in.UpdatedAt = sqlcommon.Time(now), sqlcommon.Time(now)
	return in, nil
}

// UpdateIncident replaces the incident with in.ID; CreatedAt is kept.
func (db *DB) UpdateIncident(ctx context.Context, in store.Incident) (store.Incident, error) {
	in, services, pinned, err := sqlcommon.IncidentJSON(in)
	if err != nil {
		return in, fmt.Errorf("postgres: update incident: %w", err)
	}
	now := sqlcommon.NS(db.now())
	var created int64
	err = db.pool.QueryRow(ctx, `UPDATE incidents SET title = $1, from_ns = $2, to_ns = $3, services = $4,
notes = $5, pinned_traces = $6, updated_ns = $7 WHERE id = $8 RETURNING created_ns`,
		in.Title, sqlcommon.NS(in.From), sqlcommon.NS(in.To), services, in.Notes, pinned, now, in.ID).Scan(&created)
	if errors.Is(err, pgx.ErrNoRows) {
		return in, fmt.Errorf("postgres: update: %w", store.NotFound("incident", in.ID))
	}
	if err != nil {
		return in, mapErr(ctx, "update incident", err)
	}
	in.From, in.To = sqlcommon.Time(sqlcommon.NS(in.From)), sqlcommon.Time(sqlcommon.NS(in.To))
	in.CreatedAt, in.UpdatedAt = sqlcommon.Time(created), sqlcommon.Time(now)
	return in, nil
}

// DeleteIncident removes an incident or returns store.ErrNotFound.
func (db *DB) DeleteIncident(ctx context.Context, id int64) error {
	return db.deleteByID(ctx, "incident", `DELETE FROM incidents WHERE id = $1`, id)
}

// IncidentByID returns one incident or store.ErrNotFound.
func (db *DB) IncidentByID(ctx context.Context, id int64) (store.Incident, error) {
	in, err := sqlcommon.ScanIncident(db.pool.QueryRow(ctx, `SELECT `+sqlcommon.IncidentColumns+` FROM incidents WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return in, fmt.Errorf("postgres: %w", store.NotFound("incident", id))
	}
	if err != nil {
		return in, mapErr(ctx, "incident by id", err)
	}
	return in, nil
}

// Incidents lists incidents, newest range first.
func (db *DB) Incidents(ctx context.Context) ([]store.Incident, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+sqlcommon.IncidentColumns+` FROM incidents
ORDER BY from_ns DESC, to_ns DESC, id DESC`)
	if err != nil {
		return nil, mapErr(ctx, "incidents", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Incident, error) { return sqlcommon.ScanIncident(r) })
	if err != nil {
		return nil, mapErr(ctx, "incidents", err)
	}
	if out == nil {
		out = []store.Incident{}
	}
	return out, nil
}

func (db *DB) deleteByID(ctx context.Context, what, query string, id int64) error {
	tag, err := db.pool.Exec(ctx, query, id)
	if err != nil {
		return mapErr(ctx, "delete "+what, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: delete: %w", store.NotFound(what, id))
	}
	return nil
}
