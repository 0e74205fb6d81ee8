//go:build linux

package e2e

import (
	"context"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// TestWALCrashSafety is the write-ahead log's crash test, in the shape
// most clients send: one exporter, one request in flight. The real binary
// is killed with SIGKILL a few times at random moments while the exporter
// sends — so kills land during group fsyncs (every answer waits for one)
// and while the loader is applying the log — and restarted on the same
// store and log each time. At the end every acknowledged span is stored
// exactly once: checkStored requires each trace to hold exactly the spans
// sent, no more.
func TestWALCrashSafety(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			dbURL := be.url(t)
			// SQLite's log goes beside the database by default; PostgreSQL
			// needs one named.
			args := []string{"--database-url", dbURL}
			if be.name == "postgres" {
				args = append(args, "--wal-dir", filepath.Join(t.TempDir(), "wal"))
			}
			ft := newFeedTemplate(t, feedShape{Service: "e2e-wal-crash", Traces: 2, SpansPerTrace: 50, Start: time.Now()})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 21))
			ta := newTally()
			next := uint32(0)
			const kills = 4
			for round := range kills {
				p := startProcess(t, nil, args...)
				c := newClient(t, 1)
				// Kill 20–300 ms into the round, the exporter sending
				// throughout.
				deadline := time.Now().Add(time.Duration(20+rng.IntN(280)) * time.Millisecond)
				var body []byte
				sent := 0
				for time.Now().Before(deadline) {
					next++
					body = ft.request(body, next)
					ta.send(ctx, c, p.otlpHTTP, body, next)
					sent++
				}
				// One more export in flight when the kill lands.
				next++
				inFlight := make(chan struct{})
				go func(req uint32, b []byte) {
					defer close(inFlight)
					ta.send(ctx, c, p.otlpHTTP, b, req)
				}(next, ft.request(nil, next))
				time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
				p.kill(t)
				<-inFlight
				c.CloseIdleConnections()
				t.Logf("round %d: killed after %d exports; %s", round, sent, ta)
			}
			p := startProcess(t, nil, args...)
			c := newClient(t, 2)
			acked := ta.ackedRequests()
			if len(acked) < kills {
				t.Fatalf("only %d acknowledged exports over %d rounds: %s", len(acked), kills, ta)
			}
			if n := ta.count(http.StatusOK); n != len(acked) || ta.partial != 0 {
				t.Errorf("answers: %s; want only 200s accepting every span", ta)
			}
			checkStored(t, c, p.apiURL, ft, acked)
			p.stop(t)
		})
	}
}
