package sqlcommon

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tailscope/tailscope/store"
)

// Querier is what the record methods need from a connection. Each backend
// adapts its driver in a few lines (pgx in store/postgres, database/sql in
// store/sqlite), so deploys, budgets and incidents are written once, here.
type Querier interface {
	// QueryRow runs a query returning at most one row; the row's Scan
	// returns sql.ErrNoRows when there is none (the pgx adapter maps
	// pgx.ErrNoRows to it).
	QueryRow(ctx context.Context, query string, args ...any) Scanner
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	// Exec runs a statement and returns how many rows it changed.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
}

// Rows is a result set (pgx.Rows as it is; *sql.Rows through an adapter
// whose Close drops the error, which Err reports).
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Records implements store's deploy, budget and incident methods over
// shared SQL. The SQL is written with "?" placeholders and rebound for
// Postgres.
type Records struct {
	// Read and Write are the connections for reads and writes; SQLite
	// writes through its single writer connection, Postgres uses its pool
	// for both.
	Read, Write Querier
	Dialect     Dialect
	// Name prefixes errors ("postgres", "sqlite").
	Name string
	Now  func() time.Time
	// MapErr wraps a driver error for op (the backend's mapErr: it marks
	// cancellation and store.ErrUnavailable).
	MapErr func(ctx context.Context, op string, err error) error
}

// rebind turns "?" placeholders into Postgres's "$1, $2, ...".
func (r Records) rebind(q string) string {
	if r.Dialect != Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// json is a JSON column's argument: Postgres takes the bytes into jsonb,
// SQLite stores text.
func (r Records) json(b []byte) any {
	if r.Dialect == SQLite {
		return string(b)
	}
	return b
}

func (r Records) row(ctx context.Context, q Querier, query string, args ...any) Scanner {
	return q.QueryRow(ctx, r.rebind(query), args...)
}

func (r Records) notFound(what string, id int64) error {
	return fmt.Errorf("%s: %s %d: %w", r.Name, what, id, store.ErrNotFound)
}

// collect is Collect on the read connection.
func collect[T any](ctx context.Context, r Records, op, query string, scan func(Scanner) (T, error), args ...any) ([]T, error) {
	return Collect(ctx, r.Read, r.MapErr, op, query, scan, args...)
}

// Collect reads every row of query (placeholders already bound for the
// dialect) with scan; an empty result is an empty, non-nil slice. Errors
// go through mapErr with op.
func Collect[T any](ctx context.Context, q Querier, mapErr func(context.Context, string, error) error, op, query string, scan func(Scanner) (T, error), args ...any) ([]T, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, mapErr(ctx, op, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, mapErr(ctx, op, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(ctx, op, err)
	}
	return out, nil
}

// RecordDeploy stores a marker. An auto marker is stored once per (service,
// version); recording it again (even concurrently, from another process)
// returns the first one.
func (r Records) RecordDeploy(ctx context.Context, d store.Deploy) (store.Deploy, error) {
	d, err := PrepareDeploy(d, r.Now())
	if err != nil {
		return d, fmt.Errorf("%s: record deploy: %w", r.Name, err)
	}
	q := `INSERT INTO deploys (service, version, at_ns, note, source) VALUES (?, ?, ?, ?, ?)`
	if d.Source == store.DeploySourceAuto {
		q += ` ON CONFLICT (service, version) WHERE source = 'auto' DO NOTHING`
	}
	err = r.row(ctx, r.Write, q+` RETURNING id`, d.Service, d.Version, NS(d.At), d.Note, d.Source).Scan(&d.ID)
	if errors.Is(err, sql.ErrNoRows) {
		existing, err := ScanDeploy(r.row(ctx, r.Write, `SELECT `+DeployColumns+` FROM deploys
WHERE service = ? AND version = ? AND source = 'auto'`, d.Service, d.Version))
		if err != nil {
			return d, r.MapErr(ctx, "record deploy", err)
		}
		return existing, nil
	}
	if err != nil {
		return d, r.MapErr(ctx, "record deploy", err)
	}
	d.At = Time(NS(d.At))
	return d, nil
}

// Deploys lists markers newest first.
func (r Records) Deploys(ctx context.Context, q store.DeployQuery) ([]store.Deploy, error) {
	query, args, err := DeploysSQL(r.Dialect, q)
	if err != nil {
		return nil, fmt.Errorf("%s: deploys: %w", r.Name, err)
	}
	return collect(ctx, r, "deploys", query, ScanDeploy, args...)
}

// DeployByID returns one marker or store.ErrNotFound.
func (r Records) DeployByID(ctx context.Context, id int64) (store.Deploy, error) {
	d, err := ScanDeploy(r.row(ctx, r.Read, `SELECT `+DeployColumns+` FROM deploys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, r.notFound("deploy", id)
	}
	if err != nil {
		return d, r.MapErr(ctx, "deploy by id", err)
	}
	return d, nil
}

// CreateBudget stores b, assigning ID, CreatedAt and UpdatedAt.
func (r Records) CreateBudget(ctx context.Context, b store.Budget) (store.Budget, error) {
	b = CleanBudget(b)
	hops, err := EncodeHops(b.Hops)
	if err != nil {
		return b, fmt.Errorf("%s: create budget: %w", r.Name, err)
	}
	now := NS(r.Now())
	err = r.row(ctx, r.Write, `INSERT INTO budgets
(name, service, endpoint, threshold_ns, target, period_ns, hop_measure, hops, created_ns, updated_ns)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		b.Name, b.Service, b.Endpoint, int64(b.Threshold), b.Target, int64(b.Period), string(b.HopMeasure), r.json(hops), now, now).Scan(&b.ID)
	if err != nil {
		return b, r.MapErr(ctx, "create budget", err)
	}
	b.CreatedAt, b.UpdatedAt = Time(now), Time(now)
	return b, nil
}

// UpdateBudget replaces the budget with b.ID; CreatedAt is kept.
func (r Records) UpdateBudget(ctx context.Context, b store.Budget) (store.Budget, error) {
	b = CleanBudget(b)
	hops, err := EncodeHops(b.Hops)
	if err != nil {
		return b, fmt.Errorf("%s: update budget: %w", r.Name, err)
	}
	now := NS(r.Now())
	var created int64
	err = r.row(ctx, r.Write, `UPDATE budgets SET name = ?, service = ?, endpoint = ?, threshold_ns = ?,
target = ?, period_ns = ?, hop_measure = ?, hops = ?, updated_ns = ? WHERE id = ? RETURNING created_ns`,
		b.Name, b.Service, b.Endpoint, int64(b.Threshold), b.Target, int64(b.Period), string(b.HopMeasure), r.json(hops), now, b.ID).Scan(&created)
	if errors.Is(err, sql.ErrNoRows) {
		return b, fmt.Errorf("%s: update budget %d: %w", r.Name, b.ID, store.ErrNotFound)
	}
	if err != nil {
		return b, r.MapErr(ctx, "update budget", err)
	}
	b.CreatedAt, b.UpdatedAt = Time(created), Time(now)
	return b, nil
}

// DeleteBudget removes a budget or returns store.ErrNotFound.
func (r Records) DeleteBudget(ctx context.Context, id int64) error {
	return r.deleteByID(ctx, "budget", `DELETE FROM budgets WHERE id = ?`, id)
}

// BudgetByID returns one budget or store.ErrNotFound.
func (r Records) BudgetByID(ctx context.Context, id int64) (store.Budget, error) {
	b, err := ScanBudget(r.row(ctx, r.Read, `SELECT `+BudgetColumns+` FROM budgets WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return b, r.notFound("budget", id)
	}
	if err != nil {
		return b, r.MapErr(ctx, "budget by id", err)
	}
	return b, nil
}

// Budgets lists every budget ordered by service, endpoint, id.
func (r Records) Budgets(ctx context.Context) ([]store.Budget, error) {
	out, err := collect(ctx, r, "budgets", `SELECT `+BudgetColumns+` FROM budgets`, ScanBudget)
	if err != nil {
		return nil, err
	}
	SortBudgets(out)
	return out, nil
}

// CreateIncident stores in, assigning ID, CreatedAt and UpdatedAt.
func (r Records) CreateIncident(ctx context.Context, in store.Incident) (store.Incident, error) {
	in, services, pinned, err := IncidentJSON(in)
	if err != nil {
		return in, fmt.Errorf("%s: create incident: %w", r.Name, err)
	}
	now := NS(r.Now())
	err = r.row(ctx, r.Write, `INSERT INTO incidents
(title, from_ns, to_ns, services, notes, pinned_traces, created_ns, updated_ns)
VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		in.Title, NS(in.From), NS(in.To), r.json(services), in.Notes, r.json(pinned), now, now).Scan(&in.ID)
	if err != nil {
		return in, r.MapErr(ctx, "create incident", err)
	}
	in.From, in.To = Time(NS(in.From)), Time(NS(in.To))
	in.CreatedAt, in.UpdatedAt = Time(now), Time(now)
	return in, nil
}

// UpdateIncident replaces the incident with in.ID; CreatedAt is kept.
func (r Records) UpdateIncident(ctx context.Context, in store.Incident) (store.Incident, error) {
	in, services, pinned, err := IncidentJSON(in)
	if err != nil {
		return in, fmt.Errorf("%s: update incident: %w", r.Name, err)
	}
	now := NS(r.Now())
	var created int64
	err = r.row(ctx, r.Write, `UPDATE incidents SET title = ?, from_ns = ?, to_ns = ?, services = ?,
notes = ?, pinned_traces = ?, updated_ns = ? WHERE id = ? RETURNING created_ns`,
		in.Title, NS(in.From), NS(in.To), r.json(services), in.Notes, r.json(pinned), now, in.ID).Scan(&created)
	if errors.Is(err, sql.ErrNoRows) {
		return in, fmt.Errorf("%s: update incident %d: %w", r.Name, in.ID, store.ErrNotFound)
	}
	if err != nil {
		return in, r.MapErr(ctx, "update incident", err)
	}
	in.From, in.To = Time(NS(in.From)), Time(NS(in.To))
	in.CreatedAt, in.UpdatedAt = Time(created), Time(now)
	return in, nil
}

// DeleteIncident removes an incident or returns store.ErrNotFound.
func (r Records) DeleteIncident(ctx context.Context, id int64) error {
	return r.deleteByID(ctx, "incident", `DELETE FROM incidents WHERE id = ?`, id)
}

// IncidentByID returns one incident or store.ErrNotFound.
func (r Records) IncidentByID(ctx context.Context, id int64) (store.Incident, error) {
	in, err := ScanIncident(r.row(ctx, r.Read, `SELECT `+IncidentColumns+` FROM incidents WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return in, r.notFound("incident", id)
	}
	if err != nil {
		return in, r.MapErr(ctx, "incident by id", err)
	}
	return in, nil
}

// Incidents lists incidents, newest range first.
func (r Records) Incidents(ctx context.Context) ([]store.Incident, error) {
	return collect(ctx, r, "incidents", `SELECT `+IncidentColumns+` FROM incidents
ORDER BY from_ns DESC, to_ns DESC, id DESC`, ScanIncident)
}

func (r Records) deleteByID(ctx context.Context, what, query string, id int64) error {
	n, err := r.Write.Exec(ctx, r.rebind(query), id)
	if err != nil {
		return r.MapErr(ctx, "delete "+what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: delete %s %d: %w", r.Name, what, id, store.ErrNotFound)
	}
	return nil
}
