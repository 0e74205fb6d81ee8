package sqlcommon

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tailscope/tailscope/store"
)

// Records implements store's deploy, budget and incident methods once, over
// the backend's Conn (the adapter the alert firings use too). Reads go
// through Conn.Query, which SQLite serves from its read pool; writes, and
// RETURNING, through Conn.QueryRow and Conn.Exec, on its single writer.
type Records struct {
	Conn Conn
	// Name prefixes errors ("postgres", "sqlite").
	Name string
	Now  func() time.Time
}

func (r Records) errorf(op string, err error) error { return fmt.Errorf("%s: %s: %w", r.Name, op, err) }

// json is a JSON column's argument: Postgres takes the bytes into jsonb,
// SQLite stores text.
func (r Records) json(b []byte) any {
	if r.Conn.Dialect() == SQLite {
		return string(b)
	}
	return b
}

// write runs a statement that returns one row (INSERT/UPDATE ... RETURNING).
func (r Records) write(ctx context.Context, query string, args ...any) Scanner {
	return r.Conn.QueryRow(ctx, Rebind(r.Conn.Dialect(), query), args...)
}

// one reads the single row of query with scan; no row is store.ErrNotFound.
func one[T any](ctx context.Context, c Conn, query string, scan func(Scanner) (T, error), args ...any) (T, error) {
	var v T
	found := false
	err := c.Query(ctx, Rebind(c.Dialect(), query), func(sc Scanner) error {
		var err error
		v, err = scan(sc)
		found = true
		return err
	}, args...)
	if err == nil && !found {
		err = store.ErrNotFound
	}
	return v, err
}

// Collect reads every row of query ("?" placeholders) with scan; an empty
// result is an empty, non-nil slice.
func Collect[T any](ctx context.Context, c Conn, query string, scan func(Scanner) (T, error), args ...any) ([]T, error) {
	out := []T{}
	err := c.Query(ctx, Rebind(c.Dialect(), query), func(sc Scanner) error {
		v, err := scan(sc)
		out = append(out, v)
		return err
	}, args...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RecordDeploy stores a marker. An auto marker is stored once per (service,
// version); recording it again (even concurrently, from another process)
// returns the first one.
func (r Records) RecordDeploy(ctx context.Context, d store.Deploy) (store.Deploy, error) {
	d, err := PrepareDeploy(d, r.Now())
	if err != nil {
		return d, r.errorf("record deploy", err)
	}
	q := `INSERT INTO deploys (service, version, at_ns, note, source) VALUES (?, ?, ?, ?, ?)`
	if d.Source == store.DeploySourceAuto {
		q += ` ON CONFLICT (service, version) WHERE source = 'auto' DO NOTHING`
	}
	err = r.write(ctx, q+` RETURNING id`, d.Service, d.Version, NS(d.At), d.Note, d.Source).Scan(&d.ID)
	if errors.Is(err, store.ErrNotFound) {
		// The marker was there: read it on the writer, which just saw it.
		existing, err := ScanDeploy(r.write(ctx, `SELECT `+DeployColumns+` FROM deploys
WHERE service = ? AND version = ? AND source = 'auto'`, d.Service, d.Version))
		if err != nil {
			return d, r.errorf("record deploy", err)
		}
		return existing, nil
	}
	if err != nil {
		return d, r.errorf("record deploy", err)
	}
	d.At = Time(NS(d.At))
	return d, nil
}

// Deploys lists markers newest first.
func (r Records) Deploys(ctx context.Context, q store.DeployQuery) ([]store.Deploy, error) {
	query, args, err := DeploysSQL(r.Conn.Dialect(), q)
	if err != nil {
		return nil, r.errorf("deploys", err)
	}
	out, err := Collect(ctx, r.Conn, query, ScanDeploy, args...)
	if err != nil {
		return nil, r.errorf("deploys", err)
	}
	return out, nil
}

// DeployByID returns one marker or store.ErrNotFound.
func (r Records) DeployByID(ctx context.Context, id int64) (store.Deploy, error) {
	d, err := one(ctx, r.Conn, `SELECT `+DeployColumns+` FROM deploys WHERE id = ?`, ScanDeploy, id)
	err = named(err, "deploy", id)
	if err != nil {
		return d, r.errorf(fmt.Sprintf("deploy %d", id), err)
	}
	return d, nil
}

// CreateBudget stores b, assigning ID, CreatedAt and UpdatedAt.
func (r Records) CreateBudget(ctx context.Context, b store.Budget) (store.Budget, error) {
	b = CleanBudget(b)
	hops, err := EncodeHops(b.Hops)
	if err != nil {
		return b, r.errorf("create budget", err)
	}
	now := NS(r.Now())
	err = r.write(ctx, `INSERT INTO budgets
(name, service, endpoint, threshold_ns, target, period_ns, hop_measure, hops, created_ns, updated_ns)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		b.Name, b.Service, b.Endpoint, int64(b.Threshold), b.Target, int64(b.Period), string(b.HopMeasure), r.json(hops), now, now).Scan(&b.ID)
	if err != nil {
		return b, r.errorf("create budget", err)
	}
	b.CreatedAt, b.UpdatedAt = Time(now), Time(now)
	return b, nil
}

// UpdateBudget replaces the budget with b.ID; CreatedAt is kept.
func (r Records) UpdateBudget(ctx context.Context, b store.Budget) (store.Budget, error) {
	b = CleanBudget(b)
	hops, err := EncodeHops(b.Hops)
	if err != nil {
		return b, r.errorf("update budget", err)
	}
	now := NS(r.Now())
	var created int64
	err = r.write(ctx, `UPDATE budgets SET name = ?, service = ?, endpoint = ?, threshold_ns = ?,
target = ?, period_ns = ?, hop_measure = ?, hops = ?, updated_ns = ? WHERE id = ? RETURNING created_ns`,
		b.Name, b.Service, b.Endpoint, int64(b.Threshold), b.Target, int64(b.Period), string(b.HopMeasure), r.json(hops), now, b.ID).Scan(&created)
	err = named(err, "budget", b.ID)
	if err != nil {
		return b, r.errorf(fmt.Sprintf("update budget %d", b.ID), err)
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
	b, err := one(ctx, r.Conn, `SELECT `+BudgetColumns+` FROM budgets WHERE id = ?`, ScanBudget, id)
	err = named(err, "budget", id)
	if err != nil {
		return b, r.errorf(fmt.Sprintf("budget %d", id), err)
	}
	return b, nil
}

// Budgets lists every budget ordered by service, endpoint, id.
func (r Records) Budgets(ctx context.Context) ([]store.Budget, error) {
	out, err := Collect(ctx, r.Conn, `SELECT `+BudgetColumns+` FROM budgets`, ScanBudget)
	if err != nil {
		return nil, r.errorf("budgets", err)
	}
	SortBudgets(out)
	return out, nil
}

// CreateIncident stores in, assigning ID, CreatedAt and UpdatedAt.
func (r Records) CreateIncident(ctx context.Context, in store.Incident) (store.Incident, error) {
	in, services, pinned, err := IncidentJSON(in)
	if err != nil {
		return in, r.errorf("create incident", err)
	}
	now := NS(r.Now())
	err = r.write(ctx, `INSERT INTO incidents
(title, from_ns, to_ns, services, notes, pinned_traces, created_ns, updated_ns)
VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		in.Title, NS(in.From), NS(in.To), r.json(services), in.Notes, r.json(pinned), now, now).Scan(&in.ID)
	if err != nil {
		return in, r.errorf("create incident", err)
	}
	in.From, in.To = Time(NS(in.From)), Time(NS(in.To))
	in.CreatedAt, in.UpdatedAt = Time(now), Time(now)
	return in, nil
}

// UpdateIncident replaces the incident with in.ID; CreatedAt is kept.
func (r Records) UpdateIncident(ctx context.Context, in store.Incident) (store.Incident, error) {
	in, services, pinned, err := IncidentJSON(in)
	if err != nil {
		return in, r.errorf("update incident", err)
	}
	now := NS(r.Now())
	var created int64
	err = r.write(ctx, `UPDATE incidents SET title = ?, from_ns = ?, to_ns = ?, services = ?,
notes = ?, pinned_traces = ?, updated_ns = ? WHERE id = ? RETURNING created_ns`,
		in.Title, NS(in.From), NS(in.To), r.json(services), in.Notes, r.json(pinned), now, in.ID).Scan(&created)
	err = named(err, "incident", in.ID)
	if err != nil {
		return in, r.errorf(fmt.Sprintf("update incident %d", in.ID), err)
	}
	in.From, in.To = Time(NS(in.From)), Time(NS(in.To))
	in.CreatedAt, in.UpdatedAt = Time(created), Time(now)
	return in, nil
}

// DeleteIncident removes an incident and its snapshots, or returns
// store.ErrNotFound. The snapshots go first: a failure in between leaves
// the incident, which can be deleted again.
func (r Records) DeleteIncident(ctx context.Context, id int64) error {
	if _, err := r.Conn.Exec(ctx, Rebind(r.Conn.Dialect(), `DELETE FROM incident_snapshots WHERE incident_id = ?`), id); err != nil {
		return r.errorf(fmt.Sprintf("delete incident %d snapshots", id), err)
	}
	if _, err := r.Conn.Exec(ctx, Rebind(r.Conn.Dialect(), `DELETE FROM kept_traces WHERE incident_id = ?`), id); err != nil {
		return r.errorf(fmt.Sprintf("delete incident %d kept traces", id), err)
	}
	return r.deleteByID(ctx, "incident", `DELETE FROM incidents WHERE id = ?`, id)
}

// IncidentByID returns one incident or store.ErrNotFound.
func (r Records) IncidentByID(ctx context.Context, id int64) (store.Incident, error) {
	in, err := one(ctx, r.Conn, `SELECT `+IncidentColumns+` FROM incidents WHERE id = ?`, ScanIncident, id)
	err = named(err, "incident", id)
	if err != nil {
		return in, r.errorf(fmt.Sprintf("incident %d", id), err)
	}
	return in, nil
}

// Incidents lists incidents, newest range first.
func (r Records) Incidents(ctx context.Context) ([]store.Incident, error) {
	out, err := Collect(ctx, r.Conn, `SELECT `+IncidentColumns+` FROM incidents
ORDER BY from_ns DESC, to_ns DESC, id DESC`, ScanIncident)
	if err != nil {
		return nil, r.errorf("incidents", err)
	}
	return out, nil
}

func (r Records) deleteByID(ctx context.Context, what, query string, id int64) error {
	n, err := r.Conn.Exec(ctx, Rebind(r.Conn.Dialect(), query), id)
	if err == nil && n == 0 {
		err = store.NotFound(what, id)
	}
	if err != nil {
		return r.errorf(fmt.Sprintf("delete %s %d", what, id), err)
	}
	return nil
}

// named turns a bare store.ErrNotFound into a store.NotFoundError naming
// the record, whose message users may read ("budget 17 not found").
func named(err error, what string, id int64) error {
	var nf *store.NotFoundError
	if errors.Is(err, store.ErrNotFound) && !errors.As(err, &nf) {
		return store.NotFound(what, id)
	}
	return err
}

// Operations aggregates spans per operation (store.OperationReader), over
// the backend's read connection.
func (r Records) Operations(ctx context.Context, q store.OperationQuery) ([]store.OperationStats, error) {
	query, args, err := OperationsSQL(r.Conn.Dialect(), q)
	if err != nil {
		return nil, r.errorf("operations", err)
	}
	var b OperationBuilder
	err = r.Conn.Query(ctx, query, func(sc Scanner) error {
		var (
			service, name, grp           string
			kind                         int64
			bin                          sql.NullInt64
			n, errs, minNs, maxNs, sumNs int64
			spans                        int64
		)
		if err := sc.Scan(&service, &name, &kind, &grp, &bin, &n, &errs, &minNs, &maxNs, &sumNs, &spans); err != nil {
			return err
		}
		b.Add(service, name, kind, grp, bin, n, errs, minNs, maxNs, sumNs, spans)
		return nil
	}, args...)
	if err != nil {
		return nil, r.errorf("operations", err)
	}
	return b.Result(), nil
}
