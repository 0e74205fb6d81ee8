package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
	"github.com/tailscope/tailscope/store/storetest"
)

// BenchmarkWriteSpans measures committed spans per second for each write
// method and batch size, one writer, realistic spans (see
// storetest.BatchGen). Run with a short -benchtime on a shared machine:
//
//	go test ./store/postgres -run '^$' -bench WriteSpans -benchtime 20x
func BenchmarkWriteSpans(b *testing.B) {
	url := testenv.FreshPostgres(b)
	db := open(b, url)
	methods := []struct {
		name string
		m    writeMethod
	}{{"copy-first", writeCopyFirst}, {"staging", writeStaging}}
	for _, m := range methods {
		for _, c := range []struct{ size, tenants int }{{1000, 0}, {5000, 0}, {5000, 200}} {
			name := fmt.Sprintf("%s/batch=%d", m.name, c.size)
			if c.tenants > 0 {
				name += fmt.Sprintf("/tenants=%d", c.tenants)
			}
			size := c.size
			b.Run(name, func(b *testing.B) {
				db.write = m.m
				gen := storetest.NewBatchGen(size, time.Now(), 0)
				if c.tenants > 0 {
					gen.SpreadTenants(c.tenants)
				}
				b.ReportMetric(float64(gen.AttributeBytes()), "json-bytes/span")
				ctx := context.Background()
				cpu0 := serverCPU(b, db)
				client0 := storetest.ProcessCPU()
				b.ResetTimer()
				for b.Loop() {
					if err := db.WriteSpans(ctx, gen.Next()); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "spans/s")
				b.ReportMetric(float64((storetest.ProcessCPU()-client0).Microseconds())/float64(b.N*size), "client-us/span")
				if cpu0 >= 0 {
					b.ReportMetric((serverCPU(b, db)-cpu0)*1e6/float64(b.N*size), "server-us/span")
				}
			})
		}
	}
}

// BenchmarkWriteSpansParallel runs two writers at once, as two ingest
// writers (or two tailscope processes) would; each batch is its own
// transaction on its own connection.
func BenchmarkWriteSpansParallel(b *testing.B) {
	db := open(b, testenv.FreshPostgres(b))
	const size = 5000
	var stream atomic.Int32
	cpu0 := serverCPU(b, db)
	b.SetParallelism(1) // GOMAXPROCS (2 here) goroutines
	b.RunParallel(func(pb *testing.PB) {
		gen := storetest.NewBatchGen(size, time.Now(), byte(stream.Add(1)))
		for pb.Next() {
			if err := db.WriteSpans(context.Background(), gen.Next()); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "spans/s")
	if cpu0 >= 0 {
		b.ReportMetric((serverCPU(b, db)-cpu0)*1e6/float64(b.N*size), "server-us/span")
	}
}

// serverCPU sums the CPU seconds used so far by the server processes serving
// this database, or -1 when they cannot be read (a remote server). On a
// shared machine, server CPU per span is steadier than spans/s.
func serverCPU(b *testing.B, db *DB) float64 {
	b.Helper()
	rows, err := db.pool.Query(context.Background(), "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
	if err != nil {
		b.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		b.Fatal(err)
	}
	total := 0.0
	for _, pid := range pids {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return -1
		}
		// Fields after the command name: utime and stime are the 12th and
		// 13th, in clock ticks (100 per second on Linux).
		f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
		u, _ := strconv.ParseFloat(f[11], 64)
		s, _ := strconv.ParseFloat(f[12], 64)
		total += (u + s) / 100
	}
	return total
}

// BenchmarkSamples reads 100,000 entry spans of one endpoint (out of
// 300,000 spans), what outlier analysis reads per window.
func BenchmarkSamples(b *testing.B) {
	url := testenv.FreshPostgres(b)
	db := open(b, url)
	ctx := context.Background()
	start := time.Now().Add(-time.Hour)
	const roots = 100_000
	storetest.LoadSamples(b, db, start, roots)
	// Index-only scans need the visibility map; autovacuum sets it on a
	// live system, the benchmark does it at once.
	if _, err := db.pool.Exec(ctx, "VACUUM ANALYZE spans"); err != nil {
		b.Fatal(err)
	}
	q := store.SampleQuery{Service: "api", Endpoint: "GET /v1/feed", From: start, To: start.Add(time.Hour)}
	b.ResetTimer()
	for b.Loop() {
		got, err := db.Samples(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != roots {
			b.Fatalf("got %d samples, want %d", len(got), roots)
		}
	}
	b.ReportMetric(float64(b.N*roots)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkEncodeSpans measures building the binary COPY stream of a batch
// (copyStream.encode), tailscope's side of a write without the database.
func BenchmarkEncodeSpans(b *testing.B) {
	const size = 1000
	gen := storetest.NewBatchGen(size, time.Now(), 0)
	spans := gen.Next()
	var c copyStream
	c.resources = make([]int64, size) // resource ids, as DB.resourceIDs leaves them
	for i := range c.resources {
		c.resources[i] = int64(i%8 + 1)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.encode(spans); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(c.b)))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/span")
}

// BenchmarkSearchTracesByResource searches 200,000 spans for the traces
// whose spans carry a resource attribute (host.name): every span of the
// window is tested, its attributes and then its resource, which since
// migration 00003 lives in resources.
func BenchmarkSearchTracesByResource(b *testing.B) {
	db := open(b, testenv.FreshPostgres(b))
	ctx := context.Background()
	start := time.Now().Add(-time.Hour)
	gen := storetest.NewBatchGen(5000, start, 0)
	for range 40 {
		if err := db.WriteSpans(ctx, gen.Next()); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.pool.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		b.Fatal(err)
	}
	q := store.TraceQuery{Attributes: map[string]string{"host.name": "ip-10-0-1-1.eu-west-1.compute.internal"},
		From: start.Add(-time.Minute), To: time.Now().Add(time.Hour), Limit: 20}
	b.ResetTimer()
	for b.Loop() {
		got, err := db.SearchTraces(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != 20 {
			b.Fatalf("%d traces, want 20", len(got))
		}
	}
}

// BenchmarkTraceIndexCost is the trace index's share of a write: the same
// 5,000-span batches with and without trace_index rows, in traces of five
// spans and of ten (a feed request's). One run alternates the two once;
// run it N times for N interleaved pairs (benchstat). CPU per span is the
// figure to compare: the client's (building the rows) and the server's
// (the upsert and its four B-trees).
//
//	go test ./store/postgres -run '^$' -bench TraceIndexCost -benchtime 20x | tee -a out.txt   # N times
func BenchmarkTraceIndexCost(b *testing.B) {
	db := open(b, testenv.FreshPostgres(b))
	if serverCPU(b, db) < 0 {
		b.Skip("the server's CPU cannot be read (a remote server)")
	}
	// The held writes of a process past its first minute, which look up
	// no trace (storedOrSeen): the run would end inside that minute.
	db.lookUps = newLookUps(time.Time{}, lookUpWindow)
	storetest.IndexCost(b, db, func(skip bool) { db.skipTraceIndex = skip }, func() map[string]float64 {
		return map[string]float64{"client-us/span": storetest.ProcessCPU().Seconds(), "server-us/span": serverCPU(b, db)}
	})
}

// BenchmarkTraceIndexMerge is the server's CPU per merge of a batch's row
// into a stored trace_index row (a trace's later part), against the floor
// of the same statement that finds the conflict and writes nothing. Each
// round inserts the rows, then merges two later parts: a new service, then
// a longer span of a known one. narrow: two services a part, 1,500 rows a
// statement (a 5,000-span batch of ten-span traces in three parts); wide:
// 200 services a part, 150 rows (stored objects of kilobytes, compressed).
//
//	go test ./store/postgres -run '^$' -bench TraceIndexMerge -benchtime 20x -count 3
func BenchmarkTraceIndexMerge(b *testing.B) {
	ctx := context.Background()
	db := open(b, testenv.FreshPostgres(b))
	if serverCPU(b, db) < 0 {
		b.Skip("the server's CPU cannot be read (a remote server)")
	}
	round := 0
	for _, shape := range []struct {
		name           string
		rows, services int
	}{{"narrow", 1500, 2}, {"wide", 150, 200}} {
		rows := func(round int, service string, d int64) []sqlcommon.IndexRow {
			out := make([]sqlcommon.IndexRow, shape.rows)
			for i := range out {
				r := &out[i]
				r.TraceID[0], r.TraceID[1], r.TraceID[2], r.TraceID[3] = byte(round>>8), byte(round), byte(i>>8), byte(i)
				r.FirstStart, r.LastStart, r.End, r.MaxDuration = 1_000, 2_000+d, 3_000+d, d
				r.Spans, r.RootRank = 3, 1
				r.Services = []sqlcommon.ServiceMax{{Service: service, Duration: d}}
				for k := range shape.services - 1 {
					r.Services = append(r.Services, sqlcommon.ServiceMax{Service: fmt.Sprintf("db-%03d", k), Duration: d/2 + int64(k)})
				}
			}
			return out
		}
		for _, c := range []struct{ name, sql string }{
			{"merge", indexMergeSQL},
			{"conflict-only", indexValues + "DO NOTHING"},
		} {
			b.Run(shape.name+"/"+c.name, func(b *testing.B) {
				write := func(rs []sqlcommon.IndexRow) {
					if err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error { return upsertIndexRows(ctx, tx, c.sql, rs) }); err != nil {
						b.Fatal(err)
					}
				}
				cpu := 0.0
				for b.Loop() {
					round++
					write(rows(round, "frontend", 100))
					before := serverCPU(b, db)
					write(rows(round, "api", 200))
					write(rows(round, "frontend", 300))
					cpu += serverCPU(b, db) - before
				}
				b.ReportMetric(cpu*1e6/float64(2*shape.rows*b.N), "server-us/merge")
			})
		}
	}
}

// BenchmarkTraceIndexInsert is the CPU per row of inserting new traces'
// index rows (ten-span traces, six services each), 10 or 500 a statement
// (a 100-span request's, a 5,000-span batch's): by the upsert every batch
// used to take, and by the COPY a batch of traces new to the process takes
// now, plain (a write's) or in a savepoint (a flush's; traceindex_copy.go).
// Server and client CPU are reported apart; the sub-benchmarks alternate
// with -count.
//
//	go test ./store/postgres -run '^$' -bench TraceIndexInsert -benchtime 40x -count 6
func BenchmarkTraceIndexInsert(b *testing.B) {
	ctx := context.Background()
	db := open(b, testenv.FreshPostgres(b))
	if serverCPU(b, db) < 0 {
		b.Skip("the server's CPU cannot be read (a remote server)")
	}
	next := uint64(0)
	rows := func(perStatement int) []sqlcommon.IndexRow {
		out := make([]sqlcommon.IndexRow, perStatement)
		for i := range out {
			next++
			r := &out[i]
			binary.BigEndian.PutUint64(r.TraceID[:], next*0x9e3779b97f4a7c15) // spread like random ids
			binary.BigEndian.PutUint64(r.TraceID[8:], next)
			start := int64(next) * 20_000
			r.FirstStart, r.LastStart, r.End, r.MaxDuration = start, start+5_000, start+90_000, 80_000+int64(i%1000)
			r.Spans, r.RootStart, r.RootDuration = 10, start, 80_000
			r.RootSpanID[7] = byte(i)
			r.RootService, r.RootName, r.RootTenant, r.RootVersion = "frontend", "GET /v1/feed", "acme", "v1.2.3"
			for k, s := range []string{"frontend", "feed", "profile", "ranker", "postgres", "redis"} {
				r.Services = append(r.Services, sqlcommon.ServiceMax{Service: s, Duration: 80_000 - int64(k)*10_000})
			}
		}
		return out
	}
	for _, perStatement := range []int{10, 500} {
		for _, c := range []struct {
			name  string
			write func(pgx.Tx, []sqlcommon.IndexRow) error
		}{
			{"upsert", func(tx pgx.Tx, rs []sqlcommon.IndexRow) error { return upsertIndexRows(ctx, tx, indexMergeSQL, rs) }},
			{"copy", func(tx pgx.Tx, rs []sqlcommon.IndexRow) error { return copyIndexRows(ctx, tx, rs) }},
			{"copy-in-savepoint", func(tx pgx.Tx, rs []sqlcommon.IndexRow) error {
				copied, err := copyIndexRowsOnce(ctx, tx, rs)
				if err == nil && !copied {
					err = errors.New("a new trace's row met a stored one")
				}
				return err
			}},
		} {
			b.Run(fmt.Sprintf("rows=%d/%s", perStatement, c.name), func(b *testing.B) {
				server, client, n := 0.0, time.Duration(0), 0
				for b.Loop() {
					rs := rows(perStatement)
					s0, c0 := serverCPU(b, db), storetest.ProcessCPU()
					if err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error { return c.write(tx, rs) }); err != nil {
						b.Fatal(err)
					}
					server += serverCPU(b, db) - s0
					client += storetest.ProcessCPU() - c0
					n += len(rs)
				}
				b.ReportMetric(server*1e6/float64(n), "server-us/row")
				b.ReportMetric(float64(client.Microseconds())/float64(n), "client-us/row")
			})
		}
	}
}
