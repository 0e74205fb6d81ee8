package e2e

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tailscope/tailscope/app"
)

// TestReadyzWhileSQLiteDiskIsFull puts the SQLite store on a 16 MiB tmpfs
// and fills it: exports then fail (503, retryable) and /readyz answers 503,
// though the store still answers reads; once space is freed, /readyz
// answers 200 again by itself (no export needed: a load balancer sends
// none to a server that is not ready) and exports commit.
func TestReadyzWhileSQLiteDiskIsFull(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=16m"); err != nil {
		t.Skipf("cannot mount a small filesystem (%v); this test needs root", err)
	}
	// Registered before startApp, so it runs after the app is closed.
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	a := startApp(t, "sqlite:"+filepath.Join(dir, "ts.db"), func(cfg *app.Config) {
		cfg.Ingest.RetryAfter = time.Second
	})
	c := newClient(t, 2)
	ctx := context.Background()
	ready := func() int {
		var body map[string]string
		status, _ := getJSON(ctx, c, a.URL()+"/readyz", &body)
		return status
	}
	if s := ready(); s != http.StatusOK {
		t.Fatalf("readyz before: %d", s)
	}

	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill the disk: %v", err)
			}
			break
		}
	}
	f.Close()

	ft := newFeedTemplate(t, feedShape{Service: "e2e-full", Traces: 10, SpansPerTrace: 10, Start: time.Now()})
	failed := false
	for req := uint32(1); req <= 2000 && !failed; req++ {
		r, err := postOTLP(ctx, c, a.OTLPHTTPAddr(), ft.request(nil, req), ctProtobuf, "")
		if err != nil {
			t.Fatalf("export %d: %v", req, err)
		}
		switch r.status {
		case http.StatusOK:
		case http.StatusServiceUnavailable:
			failed = true
		default:
			t.Fatalf("export %d on a full disk: status %d %q, want 200 or 503", req, r.status, r.body)
		}
	}
	if !failed {
		t.Fatal("2,000 exports committed on a full 16 MiB disk")
	}
	if s := ready(); s != http.StatusServiceUnavailable {
		t.Errorf("readyz with the disk full: %d, want 503", s)
	}
	if err := a.Store().Ping(ctx); err != nil {
		t.Errorf("Ping with the disk full: %v (reads still work)", err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for ready() != http.StatusOK {
		time.Sleep(100 * time.Millisecond) // the probe runs at most once a second
	}
	r, err := postOTLP(ctx, c, a.OTLPHTTPAddr(), ft.request(nil, 9999), ctProtobuf, "")
	if err != nil || r.status != http.StatusOK {
		t.Errorf("export once space is back: %d %v", r.status, err)
	}
}
