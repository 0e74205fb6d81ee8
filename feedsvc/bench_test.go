package feedsvc

import (
	"context"
	"flag"
	"os"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tailscope/tailscope/feedsvc/load"
	"github.com/tailscope/tailscope/internal/testenv"
)

var (
	benchRate     = flag.Float64("feedsvc.rate", 15, "BenchmarkV1vsV2: offered load in requests per second")
	benchDuration = flag.Duration("feedsvc.duration", 20*time.Second, "BenchmarkV1vsV2: measured load per version")
	benchWarmup   = flag.Duration("feedsvc.warmup", 5*time.Second, "BenchmarkV1vsV2: unmeasured load before (fills v2's cache)")
)

// BenchmarkV1vsV2 offers the same open-loop load (Poisson arrivals, the
// default Zipf tenant mix, same seed) to v1 and to v2 and reports the
// client-side latency percentiles of each. It runs once per version,
// whatever b.N: run it with -benchtime=1x. The real-mode variants need
// TAILSCOPE_TEST_POSTGRES_URL and TAILSCOPE_TEST_REDIS_URL and seed a
// million-item catalogue once, in the schema feedsvc_bench.
//
//	go test ./feedsvc -run '^$' -bench V1vsV2 -benchtime 1x
func BenchmarkV1vsV2(b *testing.B) {
	for _, mode := range []Mode{ModeSimulated, ModeReal} {
		for _, v := range []string{V1, V2} {
			b.Run(string(mode)+"/"+v, func(b *testing.B) {
				cfg := Config{Exporter: tracetest.NewNoopExporter(), Version: v, Seed: 1}
				if mode == ModeReal {
					if os.Getenv(testenv.EnvPostgres) == "" || os.Getenv(testenv.EnvRedis) == "" {
						b.Skip("real mode needs PostgreSQL and Redis URLs")
					}
					cfg.PostgresURL, cfg.RedisURL = testenv.PostgresURL(b), testenv.RedisURL(b)
					cfg.Schema = "feedsvc_bench"
				}
				ctx := context.Background()
				c, err := Start(ctx, cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer closeCluster(b, c)
				mix := load.Zipf(c.tenants.names(), 1.1)
				run := func(d time.Duration, seed uint64) *load.Result {
					res, err := load.Run(ctx, load.Config{Target: c.FeedURL(), Rate: *benchRate, Duration: d, Tenants: mix, Seed: seed})
					if err != nil {
						b.Fatal(err)
					}
					return res
				}
				if *benchWarmup > 0 {
					run(*benchWarmup, 2)
				}
				b.ResetTimer()
				res := run(*benchDuration, 1)
				b.StopTimer()
				b.Log("\n" + res.Summary())
				ms := func(p float64) float64 { return float64(res.Percentile(p)) / float64(time.Millisecond) }
				b.ReportMetric(ms(50), "p50-ms")
				b.ReportMetric(ms(95), "p95-ms")
				b.ReportMetric(ms(99), "p99-ms")
				b.ReportMetric(float64(res.Failed+res.Dropped)/float64(max(res.Scheduled, 1)), "fail-ratio")
			})
		}
	}
}
