package app

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A read replica is PostgreSQL of a PostgreSQL primary; anything else is
// refused at start-up with a message naming the fix, not at the first page.
func TestReadURLNeedsPostgres(t *testing.T) {
	for _, tc := range []struct{ primary, read, want string }{
		{"sqlite:" + filepath.Join(t.TempDir(), "a.db"), "postgres://127.0.0.1:1/x", "needs a PostgreSQL primary"},
	} {
		cfg := DefaultConfig()
		cfg.HTTPAddr, cfg.Ingest.HTTPAddr, cfg.Ingest.GRPCAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		cfg.DatabaseURL, cfg.DatabaseReadURL, cfg.DatabaseWait = tc.primary, tc.read, 0
		a := New(cfg)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := a.Start(ctx)
		cancel()
		if err == nil {
			a.Close()
			t.Fatalf("%s read from %s: started", tc.primary, tc.read)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s read from %s: %v, want %q", tc.primary, tc.read, err, tc.want)
		}
	}
}

func TestOpenReplicaRefusesSQLite(t *testing.T) {
	_, err := openReplica(context.Background(), "sqlite:x.db", 0, nil)
	if err == nil || !strings.Contains(err.Error(), "must be PostgreSQL") {
		t.Errorf("openReplica(sqlite): %v", err)
	}
}
