//go:build linux

package e2e

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCrashSafety checks that an acknowledgement means "committed":
// concurrent clients export to the real binary, which is killed with
// SIGKILL while exports are in flight, then restarted on the same store.
// Every span whose export was answered 2xx must be there; spans of exports
// cut off by the kill may or may not be.
func TestCrashSafety(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			dbURL := be.url(t)
			p := startProcess(t, nil, "--database-url", dbURL)
			ft := newFeedTemplate(t, feedShape{Service: "e2e-crash", Traces: 2, SpansPerTrace: 50, Start: time.Now()})

			const (
				senders = 8
				// killAfter acknowledged requests, the server dies; the
				// senders are still sending, so exports are in flight.
				killAfter = 40
			)
			c := newClient(t, senders)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			ta := newTally()
			var (
				next     atomic.Uint32 // request numbers: 1, 2, …
				acked    atomic.Int32
				inFlight atomic.Int32
				stop     = make(chan struct{})
				enough   = make(chan struct{})
				once     sync.Once
				wg       sync.WaitGroup
			)
			for range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var body []byte
					for {
						select {
						case <-stop:
							return
						default:
						}
						req := next.Add(1)
						body = ft.request(body, req)
						inFlight.Add(1)
						ok := ta.send(ctx, c, p.otlpHTTP, body, req)
						inFlight.Add(-1)
						if ok && acked.Add(1) >= killAfter {
							once.Do(func() { close(enough) })
						}
					}
				}()
			}
			select {
			case <-enough:
			case <-ctx.Done():
				close(stop)
				wg.Wait()
				t.Fatalf("no %d acknowledged exports before the deadline: %s", killAfter, ta)
			}
			flying := inFlight.Load()
			p.kill(t)
			close(stop)
			wg.Wait()
			t.Logf("killed with %d exports in flight; %s", flying, ta)
			if n := ta.count(http.StatusOK); n != int(acked.Load()) || ta.partial != 0 {
				t.Errorf("answers before the kill: %s; want only 200s accepting every span", ta)
			}

			p2 := startProcess(t, nil, "--database-url", dbURL)
			c2 := newClient(t, 2)
			ackedReqs := ta.ackedRequests()
			checkStored(t, c2, p2.apiURL, ft, ackedReqs)

			isAcked := map[uint32]bool{}
			for _, r := range ackedReqs {
				isAcked[r] = true
			}
			var unacked []uint32
			for r := uint32(1); r <= next.Load(); r++ {
				if !isAcked[r] {
					unacked = append(unacked, r)
				}
			}
			t.Logf("%d acknowledged requests checked; %d of %d unacknowledged requests were committed before the kill",
				len(ackedReqs), storedRequests(t, c2, p2.apiURL, ft, unacked), len(unacked))

			// The restarted server takes new exports.
			req := next.Add(1)
			r, err := postOTLP(ctx, c2, p2.otlpHTTP, ft.request(nil, req), ctProtobuf, "")
			if err != nil || r.status != http.StatusOK || r.rejected != 0 {
				t.Fatalf("export after restart: %+v, %v", r, err)
			}
			checkStored(t, c2, p2.apiURL, ft, []uint32{req})
			p2.stop(t)
		})
	}
}
