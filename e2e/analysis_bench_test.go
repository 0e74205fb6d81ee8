package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailscope/tailscope/app"
)

// BenchmarkIngestUnderAnalysis measures what heavy analyses cost ingest
// (issue 17.5): the OTLP ack p99 of benchClients exporters on an idle
// server, then again while 16 clients request outlier analyses and
// services summaries back to back, each with a window of its own so no
// cache or coalescing spares the work. "bounded" is the default analysis
// pool (GOMAXPROCS/4 at a time); "unbounded" lets all 16 run at once, as
// tailscope did before. The store holds 200,000 spans of the last minutes
// first. b.N is the number of export requests of each phase.
//
//	go test -run '^$' -bench IngestUnderAnalysis -benchtime 2000x ./e2e
//
// Reported: idle-p99_ms and loaded-p99_ms (ack latency), p99-ratio, and
// analyses/s answered 200 and busy/s answered 503 during the loaded phase.
func BenchmarkIngestUnderAnalysis(b *testing.B) {
	for _, mode := range []struct {
		name        string
		concurrency int
	}{{"bounded", 0}, {"unbounded", 64}} {
		b.Run(mode.name, func(b *testing.B) {
			const preload = 2000 // requests of 100 spans
			start := time.Now().Add(-preload * feedRequestStep)
			a := startApp(b, "sqlite:"+b.TempDir()+"/ts.db", func(cfg *app.Config) {
				cfg.Log = slog.New(slog.DiscardHandler)
				if mode.concurrency > 0 {
					cfg.Analysis.Concurrency = mode.concurrency
				}
			})
			ft := newFeedTemplate(b, feedShape{Service: "feed-api", Traces: 10, SpansPerTrace: 10, Start: start})
			clients := benchClients(b)
			c := newClient(b, clients+16)
			if _, _, err := exportLoad(c, a.OTLPHTTPAddr(), ft, clients, 0, preload); err != nil {
				b.Fatal(err)
			}
			next := uint32(preload)

			b.ResetTimer()
			idle, _, err := exportLoad(c, a.OTLPHTTPAddr(), ft, clients, next, b.N)
			if err != nil {
				b.Fatal(err)
			}
			next += uint32(b.N)

			ctx, stop := context.WithCancel(context.Background())
			var ok, busy, other atomic.Int64
			var wg sync.WaitGroup
			var k atomic.Int64
			for w := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for ctx.Err() == nil {
						// A window of its own per request: every one is computed.
						from := fmt.Sprintf("now-%ds", 600+k.Add(1))
						target := a.URL() + "/api/v1/services?from=" + from
						if w%2 == 0 {
							target = a.URL() + "/api/v1/outliers?" + url.Values{"service": {"feed-api"}, "endpoint": {"GET /v1/feed"}, "from": {from}}.Encode()
						}
						req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
						resp, err := c.Do(req)
						if err != nil {
							continue
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						switch resp.StatusCode {
						case http.StatusOK:
							ok.Add(1)
						case http.StatusServiceUnavailable:
							busy.Add(1)
							time.Sleep(100 * time.Millisecond) // as a client honouring Retry-After would, sooner
						default:
							other.Add(1)
						}
					}
				}()
			}
			time.Sleep(2 * time.Second) // the analyses are under way
			loadStart := time.Now()
			loaded, _, err := exportLoad(c, a.OTLPHTTPAddr(), ft, clients, next, b.N)
			elapsed := time.Since(loadStart)
			stop()
			wg.Wait()
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			if other.Load() > 0 {
				b.Errorf("%d analyses answered neither 200 nor 503", other.Load())
			}
			ip, lp := float64(idle.ValueAtQuantile(99))/1e3, float64(loaded.ValueAtQuantile(99))/1e3
			b.ReportMetric(ip, "idle-p99_ms")
			b.ReportMetric(lp, "loaded-p99_ms")
			b.ReportMetric(lp/ip, "p99-ratio")
			b.ReportMetric(float64(ok.Load())/elapsed.Seconds(), "analyses/s")
			b.ReportMetric(float64(busy.Load())/elapsed.Seconds(), "busy/s")
		})
	}
}
