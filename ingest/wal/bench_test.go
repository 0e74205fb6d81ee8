package wal

import (
	"context"
	"fmt"
	"testing"
)

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
