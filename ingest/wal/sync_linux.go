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
// write and a cache flush, not a filesystem journal commit. A write that
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
