package sqlcommon

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tailscope/tailscope/store"
)

// Conn is what record code shared by the backends needs of a connection:
// one statement at a time, written with "?" placeholders that Rebind
// turns into the backend's. Each backend adapts its driver to it and maps
// its errors (store.ErrUnavailable) before returning them.
type Conn interface {
	Dialect() Dialect
	// Exec runs a statement and returns the rows it affected.
	Exec(ctx context.Context, sql string, args ...any) (int64, error)
	// QueryRow runs a query whose first row Scan reads; no row is
	// store.ErrNotFound.
	QueryRow(ctx context.Context, sql string, args ...any) Scanner
	// Query calls each for every row.
	Query(ctx context.Context, sql string, each func(Scanner) error, args ...any) error
}

// Rebind turns "?" placeholders into d's ("$1", "$2", … for PostgreSQL).
// Statements passed to it never hold a literal "?".
func Rebind(d Dialect, sql string) string {
	if d != Postgres {
		return sql
	}
	var b strings.Builder
	n := 0
	for _, r := range sql {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// alertColumns lists the alert_firings columns scanFiring reads.
const alertColumns = `id, budget_id, rule, severity, factor, long_ns, short_ns, started_ns, resolved_ns,
long_burn, short_burn, cause, cause_share, fixed_p99_ms, fire_sent_ns, resolve_sent_ns`

func scanFiring(sc Scanner) (store.AlertFiring, error) {
	var (
		f                               store.AlertFiring
		long, short, started            int64
		resolved, fireSent, resolveSent *int64
	)
	err := sc.Scan(&f.ID, &f.BudgetID, &f.Rule, &f.Severity, &f.Factor, &long, &short, &started, &resolved,
		&f.LongBurn, &f.ShortBurn, &f.Cause, &f.CauseShare, &f.FixedP99Ms, &fireSent, &resolveSent)
	if err != nil {
		return f, err
	}
	f.Long, f.Short, f.StartedAt = time.Duration(long), time.Duration(short), Time(started)
	f.ResolvedAt, f.FireSentAt, f.ResolveSentAt = optTime(resolved), optTime(fireSent), optTime(resolveSent)
	return f, nil
}

func optTime(ns *int64) time.Time {
	if ns == nil {
		return time.Time{}
	}
	return Time(*ns)
}

// CreateFiring stores f unless its budget already has an open firing of
// the rule, which it returns instead with created false. Two processes
// evaluating the same budget race here: the unique index on open firings
// lets one insert, and the other finds its row.
func (r Records) CreateFiring(ctx context.Context, f store.AlertFiring) (_ store.AlertFiring, created bool, _ error) {
	c := r.Conn
	f.Rule, f.Severity, f.Cause = Clean(f.Rule), Clean(f.Severity), Clean(f.Cause)
	if open, err := openFiring(ctx, c, f.BudgetID, f.Rule); err == nil {
		return open, false, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return f, false, r.errorf("create firing", err)
	}
	err := c.QueryRow(ctx, Rebind(c.Dialect(), `INSERT INTO alert_firings
(budget_id, rule, severity, factor, long_ns, short_ns, started_ns, long_burn, short_burn, cause, cause_share, fixed_p99_ms)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		f.BudgetID, f.Rule, f.Severity, f.Factor, int64(f.Long), int64(f.Short), NS(f.StartedAt),
		f.LongBurn, f.ShortBurn, f.Cause, f.CauseShare, f.FixedP99Ms).Scan(&f.ID)
	if err != nil {
		if open, oerr := openFiring(ctx, c, f.BudgetID, f.Rule); oerr == nil {
			return open, false, nil // another process inserted it first
		}
		return f, false, r.errorf("create firing", err)
	}
	f.ResolvedAt, f.FireSentAt, f.ResolveSentAt = time.Time{}, time.Time{}, time.Time{}
	return f, true, nil
}

func openFiring(ctx context.Context, c Conn, budgetID int64, rule string) (store.AlertFiring, error) {
	return one(ctx, c, `SELECT `+alertColumns+` FROM alert_firings
WHERE budget_id = ? AND rule = ? AND resolved_ns IS NULL`, scanFiring, budgetID, rule)
}

// ResolveFiring closes an open firing.
func (r Records) ResolveFiring(ctx context.Context, id int64, at time.Time, longBurn, shortBurn float64) error {
	c := r.Conn
	n, err := c.Exec(ctx, Rebind(c.Dialect(), `UPDATE alert_firings SET resolved_ns = ?, long_burn = ?, short_burn = ?
WHERE id = ? AND resolved_ns IS NULL`), NS(at), longBurn, shortBurn, id)
	if err != nil {
		return r.errorf(fmt.Sprintf("resolve firing %d", id), err)
	}
	if n == 0 {
		return fmt.Errorf("open: %w", store.NotFound("firing", id))
	}
	return nil
}

// MarkAlertSent records a delivered notification.
func (r Records) MarkAlertSent(ctx context.Context, id int64, event store.AlertEvent, at time.Time) error {
	c := r.Conn
	col := "fire_sent_ns"
	switch event {
	case store.AlertFired:
	case store.AlertResolved:
		col = "resolve_sent_ns"
	default:
		return fmt.Errorf("mark firing %d sent: unknown event %q: %w", id, event, store.ErrInvalid)
	}
	n, err := c.Exec(ctx, Rebind(c.Dialect(), `UPDATE alert_firings SET `+col+` = ? WHERE id = ?`), NS(at), id)
	if err != nil {
		return r.errorf(fmt.Sprintf("mark firing %d sent", id), err)
	}
	if n == 0 {
		return store.NotFound("firing", id)
	}
	return nil
}

// Firings lists firings newest first.
func (r Records) Firings(ctx context.Context, q store.AlertQuery) ([]store.AlertFiring, error) {
	c := r.Conn
	if q.Limit <= 0 {
		q.Limit = 100
	}
	var where []string
	var args []any
	if q.BudgetID != 0 {
		where, args = append(where, "budget_id = ?"), append(args, q.BudgetID)
	}
	if q.OpenOnly {
		where = append(where, "resolved_ns IS NULL")
	}
	sql := `SELECT ` + alertColumns + ` FROM alert_firings`
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY started_ns DESC, id DESC LIMIT ?"
	args = append(args, q.Limit)
	out, err := Collect(ctx, c, sql, scanFiring, args...)
	if err != nil {
		return nil, r.errorf("firings", err)
	}
	return out, nil
}
