package wal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrNoRecord is returned by Reader.Next(ctx, false) when every synced
// record has been read.
var ErrNoRecord = errors.New("wal: no record")

// Pos is a place in the log: a segment and a byte offset in it.
type Pos struct {
	Seg uint64
	Off int64
}

// Record is one record read back.
type Record struct {
	// Payload aliases the reader's buffer: it is valid until the next call
	// of Next.
	Payload []byte
	// Appended is when Append was called.
	Appended time.Time
	// End is the position just after the record: Release(End) lets the log
	// delete everything up to and including it.
	End Pos
}

// readChunk is how much a Reader reads at once.
const readChunk = 1 << 20

// Reader reads a Log's synced records in order, from the oldest segment
// on disk. A Log has one reader (its loader); it is not safe for
// concurrent use.
type Reader struct {
	l   *Log
	pos Pos
	f   *os.File
	// buf holds the segment's bytes [bufAt, bufAt+len(buf)).
	buf   []byte
	bufAt int64
}

// NewReader returns a reader positioned at the oldest record on disk.
func (l *Log) NewReader() *Reader {
	return &Reader{l: l}
}

// Next returns the next synced record. When there is none, it returns
// ErrNoRecord at once if wait is false; otherwise it waits for one, for
// ctx to end, or for Close (ErrClosed).
func (r *Reader) Next(ctx context.Context, wait bool) (Record, error) {
	l := r.l
	stop := context.AfterFunc(ctx, func() {
		l.mu.Lock()
		l.readable.Broadcast()
		l.mu.Unlock()
	})
	defer stop()
	l.mu.Lock()
	for {
		seg := r.segmentLocked()
		if seg != nil && r.pos.Off < seg.size {
			limit, name, seed := seg.size, seg.name(), seg.seed()
			l.mu.Unlock()
			rec, err := r.read(name, seed, limit)
			if err == nil {
				return rec, nil
			}
			// Synced bytes that no longer parse: the disk changed them
			// after the fact. Skip the rest of the segment, loudly; what
			// follows may still be good.
			l.log.Error("wal: unreadable synced record; skipping the rest of its segment",
				"segment", name, "offset", r.pos.Off, "err", err)
			l.mu.Lock()
			r.pos.Off = limit
			continue
		}
		if seg != nil && seg.sealed {
			r.pos = Pos{Seg: seg.id + 1}
			r.closeFile()
			continue
		}
		switch {
		case l.closed:
			l.mu.Unlock()
			return Record{}, ErrClosed
		case ctx.Err() != nil:
			l.mu.Unlock()
			return Record{}, fmt.Errorf("wal: next: %w", ctx.Err())
		case !wait:
			l.mu.Unlock()
			return Record{}, ErrNoRecord
		}
		l.readable.Wait()
	}
}

// segmentLocked returns the segment the reader is in, moving it to the
// oldest segment at or after its position (segments before may have been
// deleted, or the position may name the next segment before it exists).
// l.mu must be held.
func (r *Reader) segmentLocked() *segment {
	for _, s := range r.l.segs {
		if s.id < r.pos.Seg {
			continue
		}
		if s.id > r.pos.Seg {
			r.pos = Pos{Seg: s.id}
			r.closeFile()
		}
		return s
	}
	return nil
}

func (r *Reader) closeFile() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	r.buf, r.bufAt = r.buf[:0], 0
}

// read parses the record at r.pos, whose segment (file name, checksum
// seed) holds synced records up to limit, and advances past it.
func (r *Reader) read(name string, seed uint32, limit int64) (Record, error) {
	if r.f == nil {
		f, err := os.Open(filepath.Join(r.l.dir, name))
		if err != nil {
			return Record{}, fmt.Errorf("wal: open segment: %w", err)
		}
		r.f = f
		r.buf, r.bufAt = r.buf[:0], 0
	}
	b, err := r.window(r.pos.Off, headerBytes, limit)
	if err != nil {
		return Record{}, err
	}
	n := int64(headerBytes) + int64(binary.LittleEndian.Uint32(b))
	if b, err = r.window(r.pos.Off, n, limit); err != nil {
		return Record{}, err
	}
	body, got := parseRecord(b, r.l.opts.MaxRecordBytes, seed)
	if got == 0 || int64(got) != n {
		return Record{}, errors.New("bad length or checksum")
	}
	r.pos.Off += n
	return Record{
		Payload:  body[timeBytes:],
		Appended: time.Unix(0, int64(binary.LittleEndian.Uint64(body))),
		End:      r.pos,
	}, nil
}

// window returns n bytes of the segment at off, reading more of it into
// the buffer when needed; limit is where the synced bytes end.
func (r *Reader) window(off, n, limit int64) ([]byte, error) {
	if off+n > limit || n > r.l.opts.MaxRecordBytes+headerBytes+timeBytes {
		return nil, errors.New("record runs past the synced end of its segment")
	}
	if off >= r.bufAt && off+n <= r.bufAt+int64(len(r.buf)) {
		return r.buf[off-r.bufAt : off-r.bufAt+n], nil
	}
	want := min(max(n, readChunk), limit-off)
	if int64(cap(r.buf)) < want {
		r.buf = make([]byte, want)
	}
	r.buf = r.buf[:want]
	if _, err := r.f.ReadAt(r.buf, off); err != nil && !errors.Is(err, io.EOF) {
		r.buf = r.buf[:0]
		return nil, fmt.Errorf("wal: read segment: %w", err)
	}
	r.bufAt = off
	return r.buf[:n], nil
}

// Pos returns the reader's position: after the last record it returned,
// or past damaged bytes it skipped.
func (r *Reader) Pos() Pos { return r.pos }

// Close releases the reader's file.
func (r *Reader) Close() { r.closeFile() }

// Release tells the log that every record before pos is applied: segments
// wholly before it are deleted.
func (l *Log) Release(pos Pos) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	keep := l.segs[:0]
	for i, s := range l.segs {
		last := i == len(l.segs)-1
		done := s.id < pos.Seg || (s.id == pos.Seg && s.sealed && pos.Off >= s.size)
		if !done || last {
			keep = append(keep, s)
			continue
		}
		if err := l.recycleLocked(s); err != nil {
			errs = append(errs, err)
			keep = append(keep, s)
			continue
		}
		l.bytes -= s.size
	}
	clear(l.segs[len(keep):])
	l.segs = keep
	if len(errs) > 0 {
		return fmt.Errorf("wal: release: %w", errors.Join(errs...))
	}
	return nil
}

// recycleLocked removes an applied segment, or keeps its file for the next
// preparation (renamed to .free) when none is kept yet and it is a whole
// prepared segment of the current format: the preparer then renames it to
// the next id instead of writing a segment of zeros, so the disk writes
// each byte of the log once, not twice. l.mu must be held.
func (l *Log) recycleLocked(s *segment) error {
	path := filepath.Join(l.dir, s.name())
	if l.free == "" && !s.v1 && !l.closed {
		if fi, err := os.Stat(path); err == nil && fi.Size() >= l.opts.SegmentBytes {
			free := strings.TrimSuffix(path, segSuffix) + freeSuffix
			if err := os.Rename(path, free); err == nil {
				l.free = free
				l.wantSpareLocked()
				return nil
			}
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Unapplied returns the synced bytes at or after pos: the loader's lag.
func (l *Log) Unapplied(pos Pos) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := int64(0)
	for _, s := range l.segs {
		switch {
		case s.id > pos.Seg:
			n += s.size
		case s.id == pos.Seg:
			n += max(0, s.size-pos.Off)
		}
	}
	return n
}
