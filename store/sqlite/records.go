package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

// RecordDeploy stores a marker. An auto marker is stored once per (service,
// version); recording it again returns the first one.
func (db *DB) RecordDeploy(ctx context.Context, d store.Deploy) (store.Deploy, error) {
	d, err := sqlcommon.PrepareDeploy(d, db.now())
	if err != nil {
		return d, fmt.Errorf("sqlite: record deploy: %w", err)
	}
	q := `INSERT INTO deploys (service, version, at_ns, note, source) VALUES (?, ?, ?, ?, ?)`
	if d.Source == store.DeploySourceAuto {
		q += ` ON CONFLICT (service, version) WHERE source = 'auto' DO NOTHING`
	}
	err = db.w.QueryRowContext(ctx, q+` RETURNING id`, d.Service, d.Version, sqlcommon.NS(d.At), d.Note, d.Source).Scan(&d.ID)
	if errors.Is(err, sql.ErrNoRows) {
		row := db.w.QueryRowContext(ctx, `SELECT `+sqlcommon.DeployColumns+` FROM deploys
WHERE service = ? AND version = ? AND source = 'auto'`, d.Service, d.Version)
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
	query, args, err := sqlcommon.DeploysSQL(sqlcommon.SQLite, q)
	if err != nil {
		return nil, fmt.Errorf("sqlite: deploys: %w", err)
	}
	rows, err := db.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, mapErr(ctx, "deploys", err)
	}
	defer rows.Close()
	out := []store.Deploy{}
	for rows.Next() {
		d, err := sqlcommon.ScanDeploy(rows)
		if err != nil {
			return nil, mapErr(ctx, "deploys", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(ctx, "deploys", err)
	}
	return out, nil
}

// DeployByID returns one marker or store.ErrNotFound.
func (db *DB) DeployByID(ctx context.Context, id int64) (store.Deploy, error) {
	d, err := sqlcommon.ScanDeploy(db.r.QueryRowContext(ctx, `SELECT `+sqlcommon.DeployColumns+` FROM deploys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("sqlite: %w", store.NotFound("deploy", id))
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
		return b, fmt.Errorf("sqlite: create budget: %w", err)
	}
	now := sqlcommon.NS(db.now())
	err = db.w.QueryRowContext(ctx, `INSERT INTO budgets
(name, service, endpoint, threshold_ns, target, period_ns, hop_measure, hops, created_ns, updated_ns)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		b.Name, b.Service, b.Endpoint, int64(b.Threshold), b.Target, int64(b.Period), string(b.HopMeasure), string(hops), now, now).Scan(&b.ID)
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
		return b, fmt.Errorf("sqlite: update budget: %w", err)
	}
	now := sqlcommon.NS(db.now())
	var created int64
	err = db.w.QueryRowContext(ctx, `UPDATE budgets SET name = ?, service = ?, endpoint = ?, threshold_ns = ?,
target = ?, period_ns = ?, hop_measure = ?, hops = ?, updated_ns = ? WHERE id = ? RETURNING created_ns`,
		b.Name, b.Service, b.Endpoint, int64(b.Threshold), b.Target, int64(b.Period), string(b.HopMeasure), string(hops), now, b.ID).Scan(&created)
	if errors.Is(err, sql.ErrNoRows) {
		return b, fmt.Errorf("sqlite: update: %w", store.NotFound("budget", b.ID))
	}
	if err != nil {
		return b, mapErr(ctx, "update budget", err)
	}
	b.CreatedAt, b.UpdatedAt = sqlcommon.Time(created), sqlcommon.Time(now)
	return b, nil
}

// DeleteBudget removes a budget or returns store.ErrNotFound.
func (db *DB) DeleteBudget(ctx context.Context, id int64) error {
	return db.deleteByID(ctx, "budget", `DELETE FROM budgets WHERE id = ?`, id)
}

// BudgetByID returns one budget or store.ErrNotFound.
func (db *DB) BudgetByID(ctx context.Context, id int64) (store.Budget, error) {
	b, err := sqlcommon.ScanBudget(db.r.QueryRowContext(ctx, `SELECT `+sqlcommon.BudgetColumns+` FROM budgets WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return b, fmt.Errorf("sqlite: %w", store.NotFound("budget", id))
	}
	if err != nil {
		return b, mapErr(ctx, "budget by id", err)
	}
	return b, nil
}

// Budgets lists every budget ordered by service, endpoint, id.
func (db *DB) Budgets(ctx context.Context) ([]store.Budget, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+sqlcommon.BudgetColumns+` FROM budgets`)
	if err != nil {
		return nil, mapErr(ctx, "budgets", err)
	}
	defer rows.Close()
	out := []store.Budget{}
	for rows.Next() {
		b, err := sqlcommon.ScanBudget(rows)
		if err != nil {
			return nil, mapErr(ctx, "budgets", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(ctx, "budgets", err)
	}
	sqlcommon.SortBudgets(out)
	return out, nil
}

// CreateIncident stores in, assigning ID, CreatedAt and UpdatedAt.
func (db *DB) CreateIncident(ctx context.Context, in store.Incident) (store.Incident, error) {
	in, services, pinned, err := sqlcommon.IncidentJSON(in)
	if err != nil {
		return in, fmt.Errorf("sqlite: create incident: %w", err)
	}
	now := sqlcommon.NS(db.now())
	err = db.w.QueryRowContext(ctx, `INSERT INTO incidents
(title, from_ns, to_ns, services, notes, pinned_traces, created_ns, updated_ns)
VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		in.Title, sqlcommon.NS(in.From), sqlcommon.NS(in.To), string(services), in.Notes, string(pinned), now, now).Scan(&in.ID)
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
		return in, fmt.Errorf("sqlite: update incident: %w", err)
	}
	now := sqlcommon.NS(db.now())
	var created int64
	err = db.w.QueryRowContext(ctx, `UPDATE incidents SET title = ?, from_ns = ?, to_ns = ?, services = ?,
notes = ?, pinned_traces = ?, updated_ns = ? WHERE id = ? RETURNING created_ns`,
		in.Title, sqlcommon.NS(in.From), sqlcommon.NS(in.To), string(services), in.Notes, string(pinned), now, in.ID).Scan(&created)
	if errors.Is(err, sql.ErrNoRows) {
		return in, fmt.Errorf("sqlite: update: %w", store.NotFound("incident", in.ID))
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
	return db.deleteByID(ctx, "incident", `DELETE FROM incidents WHERE id = ?`, id)
}

// IncidentByID returns one incident or store.ErrNotFound.
func (db *DB) IncidentByID(ctx context.Context, id int64) (store.Incident, error) {
	in, err := sqlcommon.ScanIncident(db.r.QueryRowContext(ctx, `SELECT `+sqlcommon.IncidentColumns+` FROM incidents WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return in, fmt.Errorf("sqlite: %w", store.NotFound("incident", id))
	}
	if err != nil {
		return in, mapErr(ctx, "incident by id", err)
	}
	return in, nil
}

// Incidents lists incidents, newest range first.
func (db *DB) Incidents(ctx context.Context) ([]store.Incident, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+sqlcommon.IncidentColumns+` FROM incidents
ORDER BY from_ns DESC, to_ns DESC, id DESC`)
	if err != nil {
		return nil, mapErr(ctx, "incidents", err)
	}
	defer rows.Close()
	out := []store.Incident{}
	for rows.Next() {
		in, err := sqlcommon.ScanIncident(rows)
		if err != nil {
			return nil, mapErr(ctx, "incidents", err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(ctx, "incidents", err)
	}
	return out, nil
}

func (db *DB) deleteByID(ctx context.Context, what, query string, id int64) error {
	res, err := db.w.ExecContext(ctx, query, id)
	if err != nil {
		return mapErr(ctx, "delete "+what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return mapErr(ctx, "delete "+what, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: delete: %w", store.NotFound(what, id))
	}
	return nil
}
