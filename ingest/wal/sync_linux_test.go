package wal

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkSyncAfterWrite measures what one group sync costs on this
// machine's disk — a 30 KB write at the end of the previous one, then a
// sync — for each way of preparing the file: none (the file grows: fsync,
// fdatasync), written with zeros and synced (the log's prepared segments),
// or fallocate(2)d and synced (unwritten extents, converted at each
// write).
func BenchmarkSyncAfterWrite(b *testing.B) {
	const (
		write    = 30 << 10
		fileSize = 64 << 20
	)
	fsync := func(f *os.File) error { return f.Sync() }
	tests := []struct {
		name    string
		prepare func(b *testing.B, f *os.File)
		sync    func(*os.File) error
	}{
		{"growing/fsync", nil, fsync},
		{"growing/fdatasync", nil, datasync},
		{"zero-filled/fdatasync", func(b *testing.B, f *os.File) {
			if _, err := f.WriteAt(make([]byte, fileSize), 0); err != nil {
				b.Fatal(err)
			}
		}, datasync},
		{"fallocated/fdatasync", func(b *testing.B, f *os.File) {
			if err := unix.Fallocate(int(f.Fd()), 0, 0, fileSize); err != nil {
				b.Skipf("fallocate: %v", err)
			}
		}, datasync},
	}
	buf := make([]byte, write)
	for i := range buf {
		buf[i] = byte(i)
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			dir := b.TempDir()
			var (
				f   *os.File
				off int64
				n   int
			)
			next := func() {
				b.StopTimer()
				if f != nil {
					f.Close()
					os.Remove(f.Name())
				}
				var err error
				n++
				f, err = os.Create(filepath.Join(dir, segName(uint64(n))))
				if err != nil {
					b.Fatal(err)
				}
				if tt.prepare != nil {
					tt.prepare(b, f)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				if err := syncDir(dir); err != nil {
					b.Fatal(err)
				}
				off = 0
				b.StartTimer()
			}
			next()
			b.SetBytes(write)
			for b.Loop() {
				if off+write > fileSize {
					next()
				}
				if _, err := f.WriteAt(buf, off); err != nil {
					b.Fatal(err)
				}
				if err := tt.sync(f); err != nil {
					b.Fatal(err)
				}
				off += write
			}
			f.Close()
		})
	}
}
