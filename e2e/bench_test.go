package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tailscope/tailscope/app"
)

// defaultBenchClients is the number of concurrent exporters in the ingest
// benchmark: enough for group commit to form batches, as a fleet of
// services would. TAILSCOPE_BENCH_CLIENTS overrides it: with more requests
// in flight, batches grow, and PostgreSQL's cost per span falls (see
// docs/PERFORMANCE.md).
const defaultBenchClients = 32

// benchClients returns the number of concurrent exporters to run.
func benchClients(tb testing.TB) int {
	v := os.Getenv("TAILSCOPE_BENCH_CLIENTS")
	if v == "" {
		return defaultBenchClients
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		tb.Fatalf("TAILSCOPE_BENCH_CLIENTS=%q: want a positive number", v)
	}
	return n
}

// BenchmarkIngestE2E measures ingest end to end: OTLP/HTTP protobuf
// requests of 100 spans shaped like the feed demo's (10 traces of 10
// spans) from benchClients concurrent clients into tailscope running in
// process with its default configuration. A request's latency ends at its
// 2xx, which means its spans are committed, so spans/s is the committed
// rate. b.N is the number of requests. The store is empty at the start:
// a fresh SQLite file, a fresh PostgreSQL database (via testenv).
//
//	go test -run '^$' -bench IngestE2E -benchtime 3000x ./e2e
//
// The receiver answers 429 when all its decode slots (2 per core) are
// busy, which happens when a commit answers many clients at once and their
// next requests arrive together; clients retry those after 1 ms (an OTLP
// exporter would wait the Retry-After) and 429/req counts them.
//
// Besides spans/s, p99_ms and 429/req it reports where the CPU went, per
// committed span: cpu-us/span is this process (the receiver, the writer,
// SQLite or pgx, and the load generator), pg-us/span the PostgreSQL
// backends serving the database; spans/commit is the mean group-commit
// batch. In process, -cpuprofile covers everything but the PostgreSQL
// server.
func BenchmarkIngestE2E(b *testing.B) {
	// Each store with and without the ingest write-ahead log (its default:
	// on beside SQLite, off with PostgreSQL).
	type variant struct {
		name string
		be   backend
		wal  func(tb testing.TB) string
	}
	var variants []variant
	for _, be := range backends() {
		tmpWAL := func(tb testing.TB) string { return filepath.Join(tb.TempDir(), "wal") }
		off := func(testing.TB) string { return app.WALOff }
		if be.name == "sqlite" {
			variants = append(variants, variant{be.name + "/wal", be, tmpWAL}, variant{be.name + "/direct", be, off})
		} else {
			variants = append(variants, variant{be.name + "/direct", be, off}, variant{be.name + "/wal", be, tmpWAL})
		}
	}
	for _, v := range variants {
		be := v.be
		b.Run(v.name, func(b *testing.B) {
			dbURL := be.url(b)
			walDir := v.wal(b)
			a := startApp(b, dbURL, func(cfg *app.Config) {
				cfg.Log = slog.New(slog.DiscardHandler)
				cfg.WALDir = walDir
			})
			ft := newFeedTemplate(b, feedShape{Service: "feed-api", Traces: 10, SpansPerTrace: 10, Start: time.Now()})
			clients := benchClients(b)
			c := newClient(b, clients)
			// Warm up: open every client's connection, let the store
			// create what it creates on first write (partitions) and warm
			// its caches, so that a short run (make bench's 1s) measures
			// the steady state too.
			warmup := 8 * clients
			if _, _, err := exportLoad(c, a.OTLPHTTPAddr(), ft, clients, 1, warmup); err != nil {
				b.Fatal(err)
			}
			first := uint32(warmup + 1)
			pgCPU := func() time.Duration { return -1 }
			if be.name == "postgres" {
				pgCPU = func() time.Duration { return postgresCPU(b, dbURL) }
			}
			batches0, pg0, cpu0 := batchStats(b, c, a.URL()), pgCPU(), processCPU()
			syncs0 := histogramStats(b, c, a.URL(), "tailscope_ingest_wal_fsync_seconds")

			b.ResetTimer()
			lat, retries, err := exportLoad(c, a.OTLPHTTPAddr(), ft, clients, first, b.N)
			// With a write-ahead log, the run ends when the spans are
			// loaded: spans/s and the CPU are those of storing them.
			waitLoaded(b, c, a.URL())
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			cpu, pg, batches := processCPU(), pgCPU(), batchStats(b, c, a.URL())
			spans := float64(b.N * ft.shape.spans())
			b.ReportMetric(spans/b.Elapsed().Seconds(), "spans/s")
			b.ReportMetric(float64(lat.ValueAtQuantile(99))/1e3, "p99_ms")
			b.ReportMetric(float64(retries)/float64(b.N), "429/req")
			if cpu0 >= 0 && cpu >= 0 {
				b.ReportMetric(float64((cpu-cpu0).Microseconds())/spans, "cpu-us/span")
			}
			if pg0 >= 0 && pg >= 0 {
				b.ReportMetric(float64((pg-pg0).Microseconds())/spans, "pg-us/span")
			}
			if syncs := histogramStats(b, c, a.URL(), "tailscope_ingest_wal_fsync_seconds"); syncs.count > syncs0.count {
				n := syncs.count - syncs0.count
				b.ReportMetric((syncs.sum-syncs0.sum)/n*1e3, "fsync_ms")
				b.ReportMetric(float64(b.N)/n, "req/fsync")
			}
			if n := batches.count - batches0.count; n > 0 {
				b.ReportMetric((batches.sum-batches0.sum)/n, "spans/commit")
			}

			// Acknowledged means durable: once loaded, the last request is
			// stored.
			last := first + uint32(b.N) - 1
			got, err := a.Store().Traces(context.Background(), ft.traceIDs(last))
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for _, trace := range got {
				n += len(trace)
			}
			if n != ft.shape.spans() {
				b.Fatalf("last acknowledged request: %d spans stored, want %d", n, ft.shape.spans())
			}
		})
	}
}

// histogramTotals are a Prometheus histogram's _sum and _count.
type histogramTotals struct{ sum, count float64 }

// batchStats reads the group-commit batch size histogram from /metrics.
func batchStats(tb testing.TB, c *http.Client, apiBase string) histogramTotals {
	return histogramStats(tb, c, apiBase, "tailscope_ingest_batch_spans")
}

// histogramStats reads a histogram's totals from /metrics (zero when the
// server has no such histogram).
func histogramStats(tb testing.TB, c *http.Client, apiBase, metric string) histogramTotals {
	tb.Helper()
	resp, err := c.Get(apiBase + "/metrics")
	if err != nil {
		tb.Fatalf("get metrics: %v", err)
	}
	defer resp.Body.Close()
	var h histogramTotals
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		var dst *float64
		switch name {
		case metric + "_sum":
			dst = &h.sum
		case metric + "_count":
			dst = &h.count
		default:
			continue
		}
		if *dst, err = strconv.ParseFloat(value, 64); err != nil {
			tb.Fatalf("metric %s: %v", name, err)
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("read metrics: %v", err)
	}
	return h
}

// exportLoad sends requests first … first+n-1 of ft from clients
// concurrent clients, each sending its next request as soon as the last
// is committed, and returns their latencies in microseconds (from the
// first attempt) and the number of 429 answers, which are retried after
// 1 ms. Any other answer but a 200 accepting every span is an error.
func exportLoad(c *http.Client, addr string, ft *feedTemplate, clients int, first uint32, n int) (*hdrhistogram.Histogram, int64, error) {
	const maxRetries = 10_000 // per request: a server that never recovers fails the run
	var (
		next    atomic.Int64
		retries atomic.Int64
		failed  atomic.Bool
		mu      sync.Mutex
		errs    []error
		wg      sync.WaitGroup
		hists   = make([]*hdrhistogram.Histogram, clients)
	)
	fail := func(err error) {
		failed.Store(true)
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for w := range clients {
		hists[w] = hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body []byte
			for !failed.Load() {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				req := first + uint32(i)
				body = ft.request(body, req)
				start := time.Now()
				for attempt := 0; ; attempt++ {
					r, err := postOTLP(context.Background(), c, addr, body, ctProtobuf, "")
					if err == nil && r.status == http.StatusTooManyRequests && attempt < maxRetries {
						retries.Add(1)
						time.Sleep(time.Millisecond)
						continue
					}
					if err == nil && (r.status != http.StatusOK || r.rejected != 0) {
						err = fmt.Errorf("status %d, %d spans rejected: %q", r.status, r.rejected, r.body)
					}
					if err != nil {
						fail(fmt.Errorf("request %d: %w", req, err))
						return
					}
					break
				}
				hists[w].RecordValue(time.Since(start).Microseconds())
			}
		}()
	}
	wg.Wait()
	all := hists[0]
	for _, h := range hists[1:] {
		all.Merge(h)
	}
	return all, retries.Load(), errors.Join(errs...)
}
