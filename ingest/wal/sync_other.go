//go:build !linux

package wal

import "os"

// datasync is f.Sync where fdatasync(2) is not available (or, on macOS,
// where Sync is the only call that reaches stable storage).
func datasync(f *os.File) error { return f.Sync() }
