package wal

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// The benchmarks use the exported API only, so that the same file
// measures an older version of the log.

// benchRecord is a 30 KB record: a 100-span request's rows.
func benchRecord() []byte {
	payload := make([]byte, 30<<10)
	for i := range payload {
		payload[i] = byte(i)
	}
	return payload
}

// benchLog opens a log with the default 64 MiB segments and a reader of
// it, both closed with the benchmark.
func benchLog(b *testing.B) (*Log, *Reader) {
	l, err := Open(b.TempDir(), DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	r := l.NewReader()
	b.Cleanup(func() { r.Close() })
	return l, r
}

// applyAll reads every synced record and releases them, as the loader
// would, so that segments are released (and recycled) and the log never
// fills.
func applyAll(b *testing.B, l *Log, r *Reader) {
	var end Pos
	for {
		rec, err := r.Next(context.Background(), false)
		if err != nil {
			break
		}
		end = rec.End
	}
	if err := l.Release(end); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAppendOne is one exporter with one request in flight: a single
// goroutine appends 30 KB records one after another, each waiting for its
// own sync. ns/op is the request's wait; cpu-us/op is the process's CPU
// per append (user + system, the sync's kernel work included).
func BenchmarkAppendOne(b *testing.B) {
	payload := benchRecord()
	l, r := benchLog(b)
	ctx := context.Background()
	b.SetBytes(int64(len(payload)))
	var cpu time.Duration
	cpu0 := processCPU()
	n := 0
	for b.Loop() {
		if err := l.Append(ctx, payload); err != nil {
			b.Fatal(err)
		}
		n++
		if n%1000 == 0 {
			b.StopTimer()
			cpu += processCPU() - cpu0
			applyAll(b, l, r)
			cpu0 = processCPU()
			b.StartTimer()
		}
	}
	cpu += processCPU() - cpu0
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-us/op")
	}
}

// BenchmarkAppend appends 30 KB records with GOMAXPROCS × writers
// goroutines: they share group syncs.
func BenchmarkAppend(b *testing.B) {
	payload := benchRecord()
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			l, r := benchLog(b)
			b.SetBytes(int64(len(payload)))
			b.SetParallelism(writers)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := l.Append(context.Background(), payload); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			applyAll(b, l, r)
		})
	}
}
