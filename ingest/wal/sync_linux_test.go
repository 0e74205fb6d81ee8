package wal

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkSyncAfterWrite measures what one group sync costs on this
// machine's disk — a 30 KB write at the end of the previous one, then a
// sync — for each way of preparing the file: none (the file grows: fsync,
// fdatasync), written with zeros and synced (the log's prepared segments),
// or fallocate(2)d and synced (unwritten extents, converted at each
// write). Each iteration writes and syncs every file in turn, so that all
// four see the same disk (a shared machine's disk varies by the second):
// compare the four metrics of one run, µs per sync.
func BenchmarkSyncAfterWrite(b *testing.B) {
	const (
		write    = 30 << 10
		fileSize = 64 << 20
	)
	type file struct {
		name    string
		prepare func(f *os.File) error
		sync    func(*os.File) error
		f       *os.File
		off     int64
		spent   time.Duration
	}
	files := []*file{
		{name: "growing-fsync", sync: func(f *os.File) error { return f.Sync() }},
		{name: "growing-fdatasync", sync: datasync},
		{name: "zero-filled-fdatasync", sync: datasync, prepare: func(f *os.File) error {
			_, err := f.WriteAt(make([]byte, fileSize), 0)
			return err
		}},
		{name: "fallocated-fdatasync", sync: datasync, prepare: func(f *os.File) error {
			return unix.Fallocate(int(f.Fd()), 0, 0, fileSize)
		}},
	}
	dir := b.TempDir()
	n := 0
	// next starts a new file for x, prepared and synced as a segment is.
	next := func(x *file) {
		b.StopTimer()
		defer b.StartTimer()
		if x.f != nil {
			x.f.Close()
			os.Remove(x.f.Name())
		}
		n++
		f, err := os.Create(filepath.Join(dir, segName(uint64(n))))
		if err != nil {
			b.Fatal(err)
		}
		if x.prepare != nil {
			if err := x.prepare(f); err != nil {
				b.Fatalf("%s: %v", x.name, err)
			}
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		if err := syncDir(dir); err != nil {
			b.Fatal(err)
		}
		x.f, x.off = f, 0
	}
	for _, x := range files {
		next(x)
	}
	buf := make([]byte, write)
	for i := range buf {
		buf[i] = byte(i)
	}
	iters := 0
	for b.Loop() {
		iters++
		for _, x := range files {
			if x.off+write > fileSize {
				next(x)
			}
			start := time.Now()
			if _, err := x.f.WriteAt(buf, x.off); err != nil {
				b.Fatal(err)
			}
			if err := x.sync(x.f); err != nil {
				b.Fatal(err)
			}
			x.spent += time.Since(start)
			x.off += write
		}
	}
	for _, x := range files {
		x.f.Close()
		b.ReportMetric(float64(x.spent.Microseconds())/float64(iters), "µs/"+x.name)
	}
	b.ReportMetric(0, "ns/op")
}
