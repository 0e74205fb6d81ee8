package profile

import (
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/store/postgres"
	"github.com/tailscope/tailscope/store/sqlite"
)

// BenchmarkIngest posts a typical CPU upload (typicalCPUProfile, as
// pyroscope-go sends it) through the handler: "decode" measures reading,
// gunzipping, decoding and converting with a writer that keeps nothing;
// "sqlite" and "postgres" include the committed write. Each iteration
// uploads a new window, so nothing is deduplicated away.
func BenchmarkIngest(b *testing.B) {
	pp := typicalCPUProfile()
	gz := pp.bytes(b)
	body, ct := form(b, gz, nil)
	b.Logf("upload: %d samples, %d locations, %d bytes gzipped, %d bytes decompressed",
		len(pp.p.Sample), len(pp.p.Location), len(gz), len(pp.rawBytes(b)))

	run := func(b *testing.B, w Writer) {
		h := newTestHandler(b, DefaultConfig(), w)
		start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			from := start.Add(time.Duration(i) * 10 * time.Second)
			i++
			if rec := post(h, ingestQuery("feedsvc", from, from.Add(10*time.Second)), ct, body); rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	}
	b.Run("decode", func(b *testing.B) { run(b, checkWriter{}) })
	b.Run("sqlite", func(b *testing.B) {
		db, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		run(b, db)
	})
	b.Run("postgres", func(b *testing.B) {
		db, err := postgres.Open(b.Context(), testenv.FreshPostgres(b))
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		run(b, db)
	})
}

// BenchmarkParsePprof measures what decoding costs per decompressed byte,
// the factor behind Config's worst-case memory: a profile of 20,000
// samples over 20,000 distinct stacks.
func BenchmarkParsePprof(b *testing.B) {
	pp := cpuPprof()
	for i := range 20_000 {
		pp.sample("runtime.main;main.f"+strconv.Itoa(i%997)+";main.g"+strconv.Itoa(i), []int64{1, 10_000_000}, "span_id=00f067aa0ba902b7")
	}
	raw := pp.rawBytes(b)
	cfg := DefaultConfig()
	b.ReportAllocs()
	for b.Loop() {
		p, err := parsePprof(raw, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := convert(p, &upload{service: "svc"}, cfg, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(raw)), "pprof-bytes")
}
