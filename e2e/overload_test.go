//go:build linux

package e2e

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestOverload offers the real binary far more than its writer can take:
// a burst of many concurrent senders against a small queue and one writer.
// The server must shed load with 429/503 (never another error), keep its
// memory within what its limits allow, commit every span it acknowledged,
// and serve normally once the burst is over.
func TestOverload(t *testing.T) {
	const (
		senders = 256
		// The senders keep sending until wantAcked exports were
		// acknowledged, or maxRequests were sent.
		wantAcked     = 20
		maxRequests   = 8 * senders
		traces        = 5
		spansPerTrace = 100
		spansPerReq   = traces * spansPerTrace

		// The server's limits (flags below).
		queueSpans = 2 * spansPerReq
		batchSpans = spansPerReq / 2
		maxBody    = 256 << 10 // our requests are ~225 KiB
		gomaxprocs = 2
		slots      = 2 * gomaxprocs // ingest: max(4, 2 per core) decode slots
	)
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			p := startProcess(t, []string{"GOMAXPROCS=" + strconv.Itoa(gomaxprocs)},
				"--database-url", be.url(t),
				"--queue-spans", strconv.Itoa(queueSpans),
				"--batch-spans", strconv.Itoa(batchSpans),
				"--writers", "1",
				"--max-spans-per-request", strconv.Itoa(spansPerReq),
				"--max-request-bytes", strconv.Itoa(maxBody),
				"--max-decompressed-bytes", strconv.Itoa(maxBody),
			)
			ft := newFeedTemplate(t, feedShape{Service: "e2e-overload", Traces: traces, SpansPerTrace: spansPerTrace, Start: time.Now()})
			if len(ft.body) > maxBody {
				t.Fatalf("requests of %d bytes exceed the server's limit of %d", len(ft.body), maxBody)
			}
			c := newClient(t, senders)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			var ready map[string]string
			if status, err := getJSON(ctx, c, p.apiURL+"/readyz", &ready); err != nil || status != http.StatusOK {
				t.Fatalf("readyz: %d, %v", status, err)
			}
			baseline := p.peakRSS(t)

			// What the limits allow (ingest.Config's worst-case memory):
			// decode slots × body limit × max(1+Kpdata, Kpdata+Kconv) with
			// the pathological Kpdata 7.6 and Kconv 6, plus the queue (at
			// most queueSpans/spansPerReq of our requests, plus one as an
			// empty queue admits any request) at Kconv × body limit each,
			// plus 64 KiB of buffers and stack per connection. The Go
			// heap may reach twice its live bytes before a collection;
			// 32 MiB more covers the runtime's own overhead, and SQLite's
			// writer may fill its 64 MiB page cache.
			live := int64(slots*maxBody*136/10) +
				int64(queueSpans/spansPerReq+1)*6*maxBody +
				senders*64<<10
			bound := baseline + 2*live + 32<<20
			if be.name == "sqlite" {
				bound += 64 << 20
			}
			// An unbounded server would hold every request at once, each
			// at about Kpdata 3.2 + Kconv 1.5 times its size.
			unbounded := int64(senders * len(ft.body) * 47 / 10)

			ta := newTally()
			var (
				next  atomic.Uint32
				acks  atomic.Int32
				wg    sync.WaitGroup
				start = make(chan struct{})
			)
			for range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var body []byte
					<-start
					for acks.Load() < wantAcked {
						req := next.Add(1)
						if req > maxRequests {
							return
						}
						body = ft.request(body, req)
						if ta.send(ctx, c, p.otlpHTTP, body, req) {
							acks.Add(1)
						}
					}
				}()
			}
			began := time.Now()
			close(start)
			wg.Wait()
			burst := time.Since(began)
			peak := p.peakRSS(t)
			sent := min(int(next.Load()), maxRequests)
			t.Logf("%d requests of %d spans from %d senders in %v: %s", sent, spansPerReq, senders, burst.Round(time.Millisecond), ta)
			t.Logf("server metrics:\n%s", metricLines(t, c, p.apiURL, "tailscope_ingest_requests_total", `reason="overloaded"`, "tailscope_ingest_commits_total"))
			t.Logf("peak RSS %d MiB (baseline %d MiB); bound from the limits %d MiB; an unbounded server would need about %d MiB more than baseline",
				peak>>20, baseline>>20, bound>>20, unbounded>>20)

			shed := ta.count(http.StatusTooManyRequests) + ta.count(http.StatusServiceUnavailable)
			if shed == 0 {
				t.Errorf("no 429 or 503 under overload: %s", ta)
			}
			if ta.count(http.StatusOK)+shed != sent-ta.transportErrors() || ta.partial != 0 {
				t.Errorf("answers other than 200, 429 and 503: %s", ta)
			}
			acked := ta.ackedRequests()
			if len(acked) == 0 {
				t.Errorf("nothing acknowledged: %s", ta)
			}
			if peak > bound {
				t.Errorf("peak RSS %d MiB exceeds %d MiB, the bound the configured limits allow", peak>>20, bound>>20)
			}

			checkStored(t, c, p.apiURL, ft, acked)

			// The burst is over: the server answers normally.
			req := uint32(maxRequests + 1)
			r, err := postOTLP(ctx, c, p.otlpHTTP, ft.request(nil, req), ctProtobuf, "")
			if err != nil || r.status != http.StatusOK || r.rejected != 0 {
				t.Fatalf("export after the burst: %+v, %v", r, err)
			}
			checkStored(t, c, p.apiURL, ft, []uint32{req})
			p.stop(t)
		})
	}
}
