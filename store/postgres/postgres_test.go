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
	a, b := twoHandles(t)
	storetest.TenantRollupsBound(t, a, b)
}

// TestRollupNamesTwoProcesses: as TestTenantRollupsTwoProcesses, for the
// span names a service's rollups keep.
func TestRollupNamesTwoProcesses(t *testing.T) {
	a, b := twoHandles(t)
	storetest.RollupNamesBound(t, a, b)
}

// TestTraceIndexTwoProcesses: two handles on one database write parts of
// the same traces, sequentially and at once; each COPYs batches of traces
// new to it (traceindex_copy.go), so the other's rows are met as duplicate
// keys (storetest.TraceIndexTwoWriters).
func TestTraceIndexTwoProcesses(t *testing.T) {
	a, b := twoHandles(t)
	storetest.TraceIndexTwoWriters(t, a, b)
}

// twoHandles opens two handles on one fresh database: two processes.
func twoHandles(t *testing.T) (*postgres.DB, *postgres.DB) {
	t.Helper()
	a, url := openFresh(t)
	b, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}
