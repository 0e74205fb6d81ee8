//go:build linux

package e2e

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailscope/tailscope/internal/testenv"
)

// TestScaleOut runs tailscope as a team past one process runs it: a
// PostgreSQL primary and a streaming replica, Redis for the shared
// analysis cache, and two tailscope processes that both take exports and
// read spans from the replica. One process is killed while exports are in
// flight: the other keeps taking them, and no span either acknowledged is
// lost. Pages read from the replica (a search misses what the replica has
// not replayed), and the replica's lag shows on /readyz and, past ten
// seconds, in the page footer.
func TestScaleOut(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two PostgreSQL servers and two tailscope processes")
	}
	pg := startPGPair(t)
	redis := testenv.RedisURL(t)
	args := []string{"--database-url", pg.primaryURL, "--database-read-url", pg.replicaURL, "--redis-url", redis, "--retention", "0"}
	p1 := startProcess(t, nil, args...)
	p2 := startProcess(t, nil, args...)

	ft := newFeedTemplate(t, feedShape{Service: "e2e-scaleout", Traces: 2, SpansPerTrace: 20, Start: time.Now().Add(-time.Minute)})
	const (
		senders   = 6
		killAfter = 30 // acknowledged exports before p1 is killed
		afterKill = 30 // exports p2 must acknowledge after that
	)
	c := newClient(t, senders)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ta := newTally()
	var (
		next                atomic.Uint32
		ackedP1, ackedAfter atomic.Int32
		p1Dead              atomic.Bool
		killed              = make(chan struct{})
		done                = make(chan struct{})
		killOnce, doneOnce  sync.Once
		wg                  sync.WaitGroup
	)
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body []byte
			for {
				select {
				case <-done:
					return
				case <-ctx.Done():
					return
				default:
				}
				req := next.Add(1)
				body = ft.request(body, req)
				// Half the senders use p1 until it dies, as a load
				// balancer would spread them; then everyone uses p2.
				target, toP1 := p2, false
				if i%2 == 0 && !p1Dead.Load() {
					target, toP1 = p1, true
				}
				ok := ta.send(ctx, c, target.otlpHTTP, body, req)
				switch {
				case ok && toP1 && ackedP1.Add(1) >= killAfter:
					killOnce.Do(func() { close(killed) })
				case ok && !toP1 && p1Dead.Load() && ackedAfter.Add(1) >= afterKill:
					doneOnce.Do(func() { close(done) })
				}
			}
		}()
	}
	select {
	case <-killed:
	case <-ctx.Done():
		t.Fatalf("p1 acknowledged fewer than %d exports: %s", killAfter, ta)
	}
	p1.kill(t)
	p1Dead.Store(true)
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("p2 acknowledged fewer than %d exports after p1 died: %s", afterKill, ta)
	}
	wg.Wait()
	t.Logf("p1 killed after %d acknowledged exports; %s", ackedP1.Load(), ta)
	checkStored(t, c, p2.apiURL, ft, ta.ackedRequests())

	// /readyz names the replica and says it streams.
	var ready struct {
		Status      string `json:"status"`
		ReadReplica *struct {
			LagSeconds float64 `json:"lag_seconds"`
			Streaming  bool    `json:"streaming"`
		} `json:"read_replica"`
	}
	if status, err := getJSON(ctx, c, p2.apiURL+"/readyz", &ready); err != nil || status != http.StatusOK {
		t.Fatalf("/readyz: %d, %v", status, err)
	}
	if ready.ReadReplica == nil || !ready.ReadReplica.Streaming {
		t.Fatalf("/readyz %+v: want the read replica, streaming", ready)
	}

	// Searches read the replica: with its replay paused, a new export
	// is acknowledged (by the primary) but not found, until replay
	// resumes.
	pg.replicaExec(t, "SELECT pg_wal_replay_pause()")
	req := next.Add(1)
	if !ta.send(ctx, c, p2.otlpHTTP, ft.request(nil, req), req) {
		t.Fatalf("export with replay paused: %s", ta)
	}
	tid := ft.traceIDs(req)[0].String()
	found := func() bool {
		q := url.Values{"service": {ft.shape.Service}, "limit": {"1000"},
			"from": {ft.shape.Start.Add(time.Duration(req)*feedRequestStep - time.Millisecond).UTC().Format(time.RFC3339Nano)}}
		for _, s := range searchTraces(t, c, p2.apiURL, q.Encode()) {
			if s.TraceID == tid {
				return true
			}
		}
		return false
	}
	if found() {
		t.Fatal("a search found a trace the replica has not replayed: searches do not read the replica")
	}
	// The replica now trails the primary; past ten seconds every page
	// says so in its footer.
	waitFor(t, 60*time.Second, "the page footer to name the replica's lag", func() bool {
		return strings.Contains(getPage(t, c, p2.apiURL+"/"), `data-testid="data-notice"`)
	})
	pg.replicaExec(t, "SELECT pg_wal_replay_resume()")
	waitFor(t, time.Minute, "the search to find the trace once replay resumed", found)
	waitFor(t, time.Minute, "the footer notice to go once the replica caught up", func() bool {
		return !strings.Contains(getPage(t, c, p2.apiURL+"/"), `data-testid="data-notice"`)
	})
	p2.stop(t)
}

// waitFor polls cond until it holds, failing tb after limit.
func waitFor(tb testing.TB, limit time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("waited %v for %s", limit, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// getPage returns a page's HTML, failing tb on any status but 200.
func getPage(tb testing.TB, c *http.Client, u string) string {
	tb.Helper()
	resp, err := c.Get(u)
	if err != nil {
		tb.Fatalf("get %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("get %s: %d, %v: %.300s", u, resp.StatusCode, err, b)
	}
	return string(b)
}
