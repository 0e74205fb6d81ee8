package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// The durability promise (a 2xx survives a crash) rests on these settings.
func TestWriterSettings(t *testing.T) {
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	tests := []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"busy_timeout", "10000"},
	}
	for _, tc := range tests {
		t.Run(tc.pragma, func(t *testing.T) {
			var got string
			if err := db.w.QueryRowContext(t.Context(), "PRAGMA "+tc.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("PRAGMA %s = %s, want %s", tc.pragma, got, tc.want)
			}
		})
	}
	if _, err := db.r.ExecContext(t.Context(), "DELETE FROM spans"); err == nil {
		t.Errorf("reader pool accepted a write; it must be query_only")
	}
}

func TestOpenCreatesDirectoriesAndReopens(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a dir?#", "nested", "tailscope.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	sp := store.Span{TraceID: store.TraceID{1}, SpanID: store.SpanID{1}, Service: "s", Name: "n", StartUnixNano: time.Now().UnixNano()}
	if err := db.WriteSpans(ctx, []store.Span{sp}); err != nil {
		t.Fatalf("WriteSpans: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Migrating an up-to-date database is a no-op, and the data is there
	// after reopening.
	if err := Migrate(ctx, path); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	db, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	if _, err := db.Trace(ctx, sp.TraceID); err != nil {
		t.Fatalf("Trace after reopen: %v", err)
	}
	if _, err := Open(ctx, ""); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Open(\"\") err = %v, want ErrInvalid", err)
	}
}
