package postgres

import (
	"database/sql"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/migrations"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/storetest"
)

// TestBudgetHopMeasureMigration: a budget written before migration 00004
// keeps the own-time meaning its numbers were measured with.
func TestBudgetHopMeasureMigration(t *testing.T) {
	url := testenv.FreshPostgres(t)
	sqlDB := migratedTo(t, url, 3)
	var id int64
	if err := sqlDB.QueryRowContext(t.Context(), `INSERT INTO budgets (name, service, endpoint, threshold_ns, target, period_ns, hops, created_ns, updated_ns)
VALUES ('checkout', 'checkout-api', 'POST /checkout', 500000000, 0.99, 2592000000000000, $1, 1, 1) RETURNING id`, storetest.OldBudgetHops).Scan(&id); err != nil {
		t.Fatal(err)
	}
	storetest.CheckMigratedBudget(t, open(t, url), id)
}

// migratedTo connects to the database at url and migrates it up to
// version (not further), to write rows as an older tailscope did.
func migratedTo(t *testing.T, url string, version int64) *sql.DB {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	sqlDB := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { sqlDB.Close() })
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(t.Context(), version); err != nil {
		t.Fatalf("migrate to version %d: %v", version, err)
	}
	return sqlDB
}

// TestRollupNamesMigration: storetest.RollupNamesMigration on PostgreSQL.
func TestRollupNamesMigration(t *testing.T) {
	url := testenv.FreshPostgres(t)
	sqlDB := migratedTo(t, url, 14)
	storetest.RollupNamesMigration(t, func(endpoint string, kind, count, bucket int64) error {
		_, err := sqlDB.ExecContext(t.Context(), `INSERT INTO rollups (step_s, bucket_ns, service, endpoint, version, kind, count, errors, roots,
  first_ns, min_ns, max_ns, sum_ns, zero_count, bins) VALUES (3600, $1, 'api', $2, '', $3, $4, 0, 0, $1, 1, 1, 1, 0, '\x'::bytea)`,
			bucket, endpoint, kind, count)
		return err
	}, func() store.Store { return open(t, url) })
}
