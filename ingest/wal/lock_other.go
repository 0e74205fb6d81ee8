//go:build !unix

package wal

import (
	"fmt"
	"os"
)

// lockDir opens the lock file without locking it: on this platform nothing
// stops two processes from sharing a log directory, so don't.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	return f, nil
}
