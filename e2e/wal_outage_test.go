//go:build linux

package e2e

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestWALOutlivesPostgresOutage: with the ingest write-ahead log in front
// of PostgreSQL, a database outage does not refuse exports — they are
// durable in the log and acknowledged — while /readyz says the store is
// down and the log's backlog grows; when PostgreSQL returns, the loader
// applies the backlog. A process killed during an outage loses nothing
// either: the next one replays the log once PostgreSQL is back. Every
// acknowledged span ends up stored exactly once.
func TestWALOutlivesPostgresOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs its own PostgreSQL server and stops it")
	}
	pg := startPG(t)
	args := []string{"--database-url", pg.url(), "--wal-dir", filepath.Join(t.TempDir(), "wal"), "--retention", "0", "--database-wait", "2m"}
	p := startProcess(t, nil, args...)
	ft := newFeedTemplate(t, feedShape{Service: "e2e-wal-outage", Traces: 2, SpansPerTrace: 20, Start: time.Now().Add(-time.Minute)})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := newClient(t, 2)
	ta := newTally()
	next := uint32(0)
	send := func(n int, to *process) {
		t.Helper()
		for range n {
			next++
			if !ta.send(ctx, c, to.otlpHTTP, ft.request(nil, next), next) {
				t.Fatalf("export %d not acknowledged: %s", next, ta)
			}
		}
	}

	send(10, p)
	pg.stop(t)
	send(20, p) // the database is down: the log takes them
	if code := statusOf(t, c, p.apiURL+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with PostgreSQL down: %d, want 503", code)
	}
	if b := unappliedBytes(t, c, p.apiURL); b <= 0 {
		t.Errorf("log backlog with PostgreSQL down: %d bytes, want the acknowledged exports", b)
	}
	pg.start(t)
	checkStored(t, c, p.apiURL, ft, ta.ackedRequests()) // waits for the loader first

	// Down again, more exports, and the process dies before the database
	// comes back: the next process replays the log.
	pg.stop(t)
	send(10, p)
	p.kill(t)
	pg.start(t)
	p2 := startProcess(t, nil, args...)
	checkStored(t, c, p2.apiURL, ft, ta.ackedRequests())
	t.Logf("%s", ta)
	p2.stop(t)
}

func statusOf(tb testing.TB, c *http.Client, u string) int {
	tb.Helper()
	resp, err := c.Get(u)
	if err != nil {
		tb.Fatalf("get %s: %v", u, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// unappliedBytes reads the log's backlog from /metrics.
func unappliedBytes(tb testing.TB, c *http.Client, apiBase string) int64 {
	tb.Helper()
	const metric = "tailscope_ingest_wal_unapplied_bytes "
	resp, err := c.Get(apiBase + "/metrics")
	if err != nil {
		tb.Fatalf("get metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	i := strings.Index(string(b), "\n"+metric)
	if i < 0 {
		tb.Fatalf("no %s on /metrics", strings.TrimSpace(metric))
	}
	v, _, _ := strings.Cut(string(b[i+1+len(metric):]), "\n")
	n, err := strconv.ParseFloat(v, 64)
	if err != nil {
		tb.Fatalf("%s%q: %v", metric, v, err)
	}
	return int64(n)
}
