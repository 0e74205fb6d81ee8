package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Segments are prepared before they are used: created at their full size
// by writing zeros, fsynced (size and block allocation are then on disk)
// and their directory entry synced. Every group fsync after that overwrites
// blocks that already exist in a file whose size does not change, so the
// flusher's fdatasync (datasync) writes the data and flushes the disk's
// cache with no metadata to write (no inode or extent update; on a
// journalling filesystem, no journal commit): on the build machine's disk
// a 30 KB write and sync took 312 µs against 771–778 µs when the file
// grows (docs/PERFORMANCE.md). fallocate(2) alone would not do: it leaves
// unwritten extents, and the first write to each turns it into a written
// one, a metadata change that the sync must write too.
//
// In steady state no zeros are written: an applied segment is not deleted
// but kept (Release renames it .free) and the next preparation renames it
// to the new id (recycle). Its bytes are then the records of its earlier
// life, which the new id's checksum seed rejects (wal.go), so each byte of
// the log reaches the disk once instead of twice. Zeros are written only
// when no applied segment is free: the first two segments, and while the
// loader is behind.
//
// One segment (the spare) is prepared ahead by the preparer goroutine, so
// switching to the next segment costs the flusher nothing; if the spare is
// not ready when the active segment is full, the active one grows past its
// prepared size (correct, only slower to sync) until it is.

// zeroChunk is how much preparation writes at once.
const zeroChunk = 1 << 20

// errClosing ends a preparation when the log closes.
var errClosing = errors.New("wal: closing")

// spare is a prepared segment, not yet in use.
type spare struct {
	id uint64
	f  *os.File
}

// prepareSegment makes segment id ready: a recycled applied segment when
// one is kept (recycle), or else a new file pre-sized with Options.fill
// (zeros by default), synced with its directory. On failure the partial
// file is removed, so a full disk is not left fuller.
func (l *Log) prepareSegment(id uint64) (*os.File, error) {
	path := filepath.Join(l.dir, segName(id))
	l.mu.Lock()
	free := l.free
	l.free = ""
	l.mu.Unlock()
	if free != "" {
		f, err := recycle(free, path)
		if err == nil {
			return f, nil
		}
		l.log.Warn("wal: recycle an applied segment; preparing a new one", "err", err)
		os.Remove(free)
		os.Remove(path)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, fmt.Errorf("wal: prepare segment: %w", err)
	}
	fill := l.opts.fill
	if fill == nil {
		fill = l.fillZeros
	}
	err = fill(f, l.opts.SegmentBytes)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = syncDir(l.dir)
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("wal: prepare segment: %w", err)
	}
	return f, nil
}

// recycle renames an applied segment's file (free) to path and marks it
// empty: the end marker's zeros at its start, synced, so that until its
// first pass it reads back as a segment with no record, not as a torn one.
// Its blocks are allocated and written, so the flusher's fdatasync writes
// no metadata, as in a segment prepared with zeros; its old records never
// check under the new id's seed.
func recycle(free, path string) (*os.File, error) {
	if err := os.Rename(free, path); err != nil {
		return nil, fmt.Errorf("wal: recycle segment: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("wal: recycle segment: %w", err)
	}
	if _, err = f.WriteAt(make([]byte, endBytes), 0); err == nil {
		err = datasync(f)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("wal: recycle segment: %w", err)
	}
	return f, nil
}

// fillZeros writes size zero bytes to f a chunk at a time, each written
// back to the disk before the next (writeback), stopping early when the
// log closes.
func (l *Log) fillZeros(f *os.File, size int64) error {
	buf := make([]byte, min(size, zeroChunk))
	for off := int64(0); off < size; {
		select {
		case <-l.quit:
			return errClosing
		default:
		}
		n, err := f.WriteAt(buf[:min(int64(len(buf)), size-off)], off)
		if err == nil {
			err = writeback(f, off, int64(n))
		}
		if err != nil {
			return err
		}
		off += int64(n)
	}
	return nil
}

// preparer prepares a spare segment each time it is asked (wantSpare)
// and none is ready, until Close.
func (l *Log) preparer() {
	defer close(l.prepStopped)
	for {
		select {
		case <-l.quit:
			return
		case <-l.prepKick:
		}
		l.mu.Lock()
		if l.spare != nil || l.closed {
			l.mu.Unlock()
			continue
		}
		id := l.nextID
		l.nextID++
		l.mu.Unlock()

		f, err := l.prepareSegment(id)

		l.mu.Lock()
		switch {
		case errors.Is(err, errClosing):
		case err != nil:
			l.prepFailed = time.Now()
			l.log.Warn("wal: prepare the next segment; the active one grows until one is ready", "err", err)
		case l.closed || id < l.nextActiveID():
			// Closing, or the flusher had to start a segment of its own
			// meanwhile (after a failed write) with a later id: this one
			// would sort before it. Try again with a new id.
			f.Close()
			os.Remove(f.Name())
			l.wantSpareLocked()
		default:
			l.prepFailed = time.Time{}
			l.spare = &spare{id: id, f: f}
		}
		l.readable.Broadcast() // for tests waiting on the preparer (waitPrepared)
		l.mu.Unlock()
	}
}

// nextActiveID is the lowest id the next active segment may have. l.mu
// must be held.
func (l *Log) nextActiveID() uint64 {
	if n := len(l.segs); n > 0 {
		return l.segs[n-1].id + 1
	}
	return 1
}

// wantSpareLocked asks the preparer for a spare segment if none is ready;
// after a failed preparation, at most once per probeEvery, so a full disk
// is not filled and emptied again at every pass. l.mu must be held.
func (l *Log) wantSpareLocked() {
	if l.spare != nil || l.closed || time.Since(l.prepFailed) < probeEvery {
		return
	}
	select {
	case l.prepKick <- struct{}{}:
	default:
	}
}

// rollLocked makes the spare the active segment and asks for the next
// one; false, and the active segment is kept, when no spare is ready.
// l.mu must be held.
func (l *Log) rollLocked() bool {
	s := l.spare
	if s == nil {
		l.wantSpareLocked()
		return false
	}
	l.spare = nil
	l.activateLocked(s.id, s.f)
	l.wantSpareLocked()
	return true
}

// activateLocked seals the active segment, if any, and makes f (segment
// id) the active one. l.mu must be held.
func (l *Log) activateLocked(id uint64, f *os.File) {
	if l.file != nil {
		l.file.Close()
	}
	if n := len(l.segs); n > 0 {
		l.segs[n-1].sealed = true
	}
	l.file = f
	l.segs = append(l.segs, &segment{id: id})
	l.readable.Broadcast()
}

// startSegment replaces the active segment (after a failed write, or at
// Open when no segment could be prepared) with the spare if one is ready,
// or else with an empty segment created now, which grows as it is written.
// The directory is synced so the new file survives a crash before any
// record in it is acknowledged. l.mu must be held, or the Log not yet
// shared.
func (l *Log) startSegment() error {
	if l.rollLocked() {
		return nil
	}
	id := l.nextID
	l.nextID++
	f, err := os.OpenFile(filepath.Join(l.dir, segName(id)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("wal: new segment: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	l.activateLocked(id, f)
	return nil
}
