package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// writeHealth remembers whether the last span write failed for want of
// space (SQLITE_FULL) or an I/O error, the failures that leave reads
// working: a disk-full store answers Ping, yet commits nothing.
type writeHealth struct {
	mu     sync.Mutex
	err    error     // nil: the last write committed (or none failed yet)
	probed time.Time // last probe, so readiness checks cannot hammer the disk
}

// probeEvery bounds how often WriteHealth probes while writes fail.
const probeEvery = time.Second

// probeBytes is what a probe commits: a few dozen pages, so that it needs
// space as a small batch of spans does rather than the single page any
// write needs.
const probeBytes = 256 << 10

// observe records the outcome of a span write.
func (h *writeHealth) observe(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err == nil:
		h.err = nil
	case isSpaceOrIO(err):
		h.err = err
	}
}

func isSpaceOrIO(err error) bool {
	var se *msqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR:
		return true
	}
	return false
}

// WriteHealth reports whether span writes commit: nil unless the last one
// failed for want of space or an I/O error. Then it probes, at most once a
// second, by committing probeBytes to write_probe and deleting them: the
// first probe that commits clears the failure, so a server that receives
// no traffic (a load balancer took it out of rotation) still notices that
// space came back. The next failing write marks it again.
func (db *DB) WriteHealth(ctx context.Context) error {
	h := &db.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		return nil
	}
	if time.Since(h.probed) < probeEvery {
		return fmt.Errorf("sqlite: writes failing: %w", h.err)
	}
	h.probed = time.Now()
	if err := db.probeWrite(ctx); err != nil {
		h.err = err
		return fmt.Errorf("sqlite: writes failing: %w", err)
	}
	h.err = nil
	return nil
}

// probeWrite commits a row of zeros to write_probe and deletes it.
func (db *DB) probeWrite(ctx context.Context) error {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if _, err := db.w.ExecContext(ctx, "INSERT OR REPLACE INTO write_probe (id, body) VALUES (1, zeroblob(?))", probeBytes); err != nil {
		return mapErr(ctx, "write probe", err)
	}
	if _, err := db.w.ExecContext(ctx, "DELETE FROM write_probe"); err != nil {
		return mapErr(ctx, "write probe", err)
	}
	return nil
}
