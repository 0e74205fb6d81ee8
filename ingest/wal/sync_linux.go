//go:build linux

package wal

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// datasync makes f's data durable with fdatasync(2): unlike fsync it does
// not wait for metadata that reading the data back does not need
// (timestamps), so overwriting blocks of a prepared segment — allocated,
// written and synced before use, the file size unchanged — costs a data
// write and a cache flush, no inode or journal write. A write that
// grows the file is still made durable: fdatasync flushes the size too.
func datasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if !errors.Is(err, unix.EINTR) {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}

// writeback writes f's dirty pages in [off, off+n) to the disk and waits
// for them — data only, no metadata, no cache flush — so that preparing a
// segment sends its zeros a chunk at a time instead of leaving 64 MiB of
// dirty pages for one fsync to send at once, which would queue every
// group sync of the flusher behind them.
func writeback(f *os.File, off, n int64) error {
	for {
		err := unix.SyncFileRange(int(f.Fd()), off, n,
			unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
		if !errors.Is(err, unix.EINTR) {
			if err != nil {
				return &os.PathError{Op: "sync_file_range", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}
