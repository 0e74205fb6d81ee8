package wal

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkAppendOne is one exporter with one request in flight: a single
// goroutine appends 30 KB records one after another, each waiting for its
// own sync. ns/op is the request's wait; cpu-us/op is the process's CPU
// per append (user + system, the sync's kernel work included).
func BenchmarkAppendOne(b *testing.B) {
	payload := make([]byte, 30<<10)
	for i := range payload {
		payload[i] = byte(i)
	}
	l, err := Open(b.TempDir(), DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	r := l.NewReader()
	defer r.Close()
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
			// Apply what is written, as the loader would, so that
			// segments are released and recycled.
			b.StopTimer()
			cpu += processCPU() - cpu0
			var end Pos
			for {
				rec, err := r.Next(ctx, false)
				if err != nil {
					break
				}
				end = rec.End
			}
			if err := l.Release(end); err != nil {
				b.Fatal(err)
			}
			cpu0 = processCPU()
			b.StartTimer()
		}
	}
	cpu += processCPU() - cpu0
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-us/op")
	}
}

// BenchmarkAppend appends 30 KB records (a 100-span request's rows) with
// the default 64 MiB segments: with one writer every append waits for a
// group sync of its own (one exporter, one request in flight), with more
// they share them. It uses the exported API only, so that the same file
// measures an older version of the log.
func BenchmarkAppend(b *testing.B) {
	payload := make([]byte, 30<<10)
	for i := range payload {
		payload[i] = byte(i)
	}
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			l, err := Open(b.TempDir(), DefaultOptions())
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			r := l.NewReader()
			defer r.Close()
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
			// Apply everything, as the loader would, so that segments are
			// released and the log never fills.
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
		})
	}
}
