package postgres_test

import (
	"context"
	"testing"

	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/postgres"
	"github.com/tailscope/tailscope/store/storetest"
)

func openFresh(t testing.TB) (*postgres.DB, string) {
	t.Helper()
	url := testenv.FreshPostgres(t)
	db, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, url
}

func TestStore(t *testing.T) {
	storetest.RunAll(t, func(t *testing.T) store.Store {
		db, _ := openFresh(t)
		return db
	})
}

// TestTenantRollupsTwoProcesses: two handles on one database (two
// tailscope processes, each caching the tenants kept) fill the tenant
// list at once and still decide every tenant alike.
func TestTenantRollupsTwoProcesses(t *testing.T) {
	a, url := openFresh(t)
	b, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	storetest.TenantRollupsBound(t, a, b)
}

// TestRollupNamesTwoProcesses: as TestTenantRollupsTwoProcesses, for the
// span names a service's rollups keep.
func TestRollupNamesTwoProcesses(t *testing.T) {
	a, url := openFresh(t)
	b, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	storetest.RollupNamesBound(t, a, b)
}
