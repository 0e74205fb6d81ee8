package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// probeEvery bounds how often Health probes the disk while writes fail.
const probeEvery = time.Second

// probeBytes is what a probe writes: enough that it needs space as a small
// group of records does.
const probeBytes = 256 << 10

// Health reports whether appends are being made durable: nil unless the
// last write or fsync failed (a full disk). Then it probes, at most once a
// second, by writing and syncing probeBytes to a scratch file: the first
// probe that succeeds clears the failure, so a server that receives no
// exports (a load balancer took it out of rotation) still notices that
// space came back. The next failing write marks it again.
func (l *Log) Health() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed == nil {
		return nil
	}
	if time.Since(l.probed) < probeEvery {
		return fmt.Errorf("wal: writes failing: %w", l.failed)
	}
	l.probed = time.Now()
	if err := probe(l.dir); err != nil {
		l.failed = err
		return fmt.Errorf("wal: writes failing: %w", err)
	}
	if l.broken != nil {
		if err := l.startSegment(); err != nil {
			l.failed = err
			return fmt.Errorf("wal: writes failing: %w", err)
		}
		l.broken = nil
	}
	l.failed = nil
	return nil
}

func probe(dir string) (err error) {
	path := filepath.Join(dir, "probe")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	defer func() {
		f.Close()
		if rerr := os.Remove(path); err == nil {
			err = rerr
		}
	}()
	if _, err := f.Write(make([]byte, probeBytes)); err != nil {
		return err
	}
	return f.Sync()
}
