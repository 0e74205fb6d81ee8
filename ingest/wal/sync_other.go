//go:build !linux

package wal

import "os"

// datasync is f.Sync where fdatasync(2) is not available (or, on macOS,
// where Sync is the only call that reaches stable storage).
func datasync(f *os.File) error { return f.Sync() }

// writeback does nothing where sync_file_range(2) is not available: the
// segment's final Sync sends everything.
func writeback(*os.File, int64, int64) error { return nil }
