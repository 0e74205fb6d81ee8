package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/sqlite"
	"github.com/tailscope/tailscope/store/storetest"
)

func openTemp(t testing.TB) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "tailscope.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestStore(t *testing.T) {
	storetest.RunAll(t, func(t *testing.T) store.Store { return openTemp(t) })
}

// TestHeldFlushAfterRebuild: two processes on one database file; one
// rebuilds rows whose spans the other holds index rows for
// (storetest.HeldFlushAfterRebuild).
func TestHeldFlushAfterRebuild(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tailscope.db")
	storetest.HeldFlushAfterRebuild(t, openPath(t, path), openPath(t, path))
}

// TestTraceIndexTwoProcesses: two processes on one database file write
// parts of the same traces, one after the other and at once
// (storetest.TraceIndexTwoWriters).
func TestTraceIndexTwoProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tailscope.db")
	storetest.TraceIndexTwoWriters(t, openPath(t, path), openPath(t, path))
}

// openPath opens the database file at path, a process of its own.
func openPath(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
