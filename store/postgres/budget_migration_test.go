package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/migrations"
	"github.com/tailscope/tailscope/store/storetest"
)

// TestBudgetHopMeasureMigration: a budget written before migration 00004
// keeps the own-time meaning its numbers were measured with.
func TestBudgetHopMeasureMigration(t *testing.T) {
	ctx := t.Context()
	url := testenv.FreshPostgres(t)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	sqlDB := stdlib.OpenDB(*cfg)
	defer sqlDB.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 3); err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := sqlDB.QueryRowContext(ctx, `INSERT INTO budgets (name, service, endpoint, threshold_ns, target, period_ns, hops, created_ns, updated_ns)
VALUES ('checkout', 'checkout-api', 'POST /checkout', 500000000, 0.99, 2592000000000000, $1, 1, 1) RETURNING id`, storetest.OldBudgetHops).Scan(&id); err != nil {
		t.Fatal(err)
	}
	storetest.CheckMigratedBudget(t, open(t, url), id)
}
