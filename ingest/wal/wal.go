// Package wal is the receiver's write-ahead log: an append-only sequence of
// segment files holding checksummed records, made durable by group fsync.
//
// Append blocks until its record is on stable storage, but appenders do not
// each pay an fsync: one flusher goroutine writes every record appended
// since its last pass with one write and one fsync, and answers all of
// them. While it syncs, new records gather for the next pass, so the number
// of fsyncs per second stays near 1/fsync-latency whatever the request
// rate, and a lone client waits one fsync, not a database commit. The
// sync is fdatasync into a segment prepared (written with zeros and
// synced) ahead of use, which writes no metadata: see prepare.go.
//
// A Reader (one per Log: the loader) reads durable records in order;
// Release tells the Log which prefix is applied, and whole segments before
// it are deleted. Nothing is read back that was not synced, so a record is
// seen by the reader only once its Append could have returned nil.
//
// Record format, little-endian:
//
//	u32 n | u32 crc32c(body) ^ seed(segment id) | body (n bytes) = i64 append time (Unix ns) | payload
//
// The seed binds each record to its segment's id: applied segments are
// recycled (renamed to the next id and overwritten, see prepare.go), so a
// file's unwritten rest holds records of its earlier life, and those must
// never be read back as this life's. Each pass writes eight zero bytes
// after its records (the next pass overwrites them), so the end of the
// written part is marked whatever the rest holds. Segments of the first
// format (".seg", written before recycling) have seed 0: crc32c(body).
//
// On Open, every segment is scanned; the first record whose header or
// checksum is wrong ends its segment: the file is truncated there and the
// rest of the segment is dropped, never a fatal error. Zeros right after
// the last record (the end marker, or a prepared segment's unwritten rest)
// are a clean end; anything else there is a write torn by a crash or
// damage, dropped with a warning. Later segments are still read
// (recover.go).
package wal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ErrFull is returned by Append when the log holds MaxBytes: the loader is
// behind (or the store down) and the client should retry later.
var ErrFull = errors.New("wal: full")

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("wal: closed")

const (
	headerBytes = 8 // u32 length, u32 crc32c
	timeBytes   = 8
	endBytes    = 8 // the zeros after each pass's records
	segSuffix   = ".wal"
	// v1Suffix names segments of the first format (seed 0, never
	// recycled), replayed after an upgrade.
	v1Suffix   = ".seg"
	freeSuffix = ".free" // an applied segment kept for recycling
	lockName   = "LOCK"
)

// seed is what a segment's records' checksums are XORed with. A
// multiplication by an odd constant is a bijection of uint32, and setting
// the top bit merges only ids 2^31 apart, so two lives of a file — a
// recycled segment's old and new ids, a few segments apart — never share
// a seed; never 0, so no record checks as a first-format one either.
func seed(id uint64) uint32 {
	return (uint32(id)*0x9e3779b1 ^ uint32(id>>32)*0x85ebca77) | 1<<31
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Options configures a Log.
type Options struct {
	// MaxBytes bounds the log on disk plus records waiting for their
	// fsync: past it Append returns ErrFull.
	MaxBytes int64
	// SegmentBytes is the size segments are prepared at (written with
	// zeros before use) and at which the active segment is closed and the
	// next one started; applied segments are deleted whole. The log's
	// directory holds up to two segments more than its records need: the
	// active one's unwritten rest and the next one, prepared ahead.
	SegmentBytes int64
	// MaxRecordBytes bounds one record's payload; a larger header read on
	// Open is corruption.
	MaxRecordBytes int64
	// Log reports truncations and sync failures; nil is silent.
	Log *slog.Logger
	// Observe, when set, is told of every fsync pass: records, bytes and
	// how long the write and fsync took.
	Observe func(records int, bytes int64, d time.Duration, err error)

	// fill pre-sizes a new segment file; nil writes zeros. Tests set it to
	// fail (a full disk) or stop (a crash) part way.
	fill func(f *os.File, size int64) error
}

// DefaultOptions returns a 1 GiB log in 64 MiB segments, records up to
// 256 MiB.
func DefaultOptions() Options {
	return Options{MaxBytes: 1 << 30, SegmentBytes: 64 << 20, MaxRecordBytes: 256 << 20}
}

// segment is one file: [0, size) holds whole, synced records.
type segment struct {
	id     uint64
	size   int64
	sealed bool  // no more appends; size is final
	oldest int64 // append time of its first record (Unix ns), 0 if none
	v1     bool  // the first format: seed 0, named .seg, not recycled
}

// name is the segment's file name.
func (s *segment) name() string {
	if s.v1 {
		return fmt.Sprintf("%016x%s", s.id, v1Suffix)
	}
	return segName(s.id)
}

// seed is what its records' checksums are XORed with.
func (s *segment) seed() uint32 {
	if s.v1 {
		return 0
	}
	return seed(s.id)
}

// group is the records of one flush pass; done is closed once they are
// synced (err nil) or failed.
type group struct {
	done    chan struct{}
	err     error
	records int
}

// Log is an open write-ahead log directory.
type Log struct {
	dir  string
	opts Options
	log  *slog.Logger
	lock *os.File

	mu       sync.Mutex
	readable *sync.Cond // broadcast when synced records or segments change, and on Close
	segs     []*segment // oldest first; the last is the active one
	file     *os.File   // the active segment, opened for writing
	pending  []byte     // records appended, not yet written
	spareBuf []byte     // the other buffer of the pair
	cur      *group     // group collecting pending records
	// flushing is set while a pass writes and syncs a group, by the
	// flusher or by an appender that found none under way (Append).
	flushing bool
	bytes    int64 // segments on disk plus pending
	closed   bool
	// broken is set when a write or fsync failed and no new segment could
	// be started: appends fail until a flush pass manages to start one.
	broken error
	// failed is the last write or fsync error, cleared by a pass or a
	// probe that succeeds (Health).
	failed error
	probed time.Time

	nextID     uint64    // the id the next new segment gets
	spare      *spare    // the next segment, prepared; nil while none is ready
	prepFailed time.Time // when the last preparation failed; zero after one succeeds
	// free is an applied segment's file kept for the next preparation to
	// recycle (prepare.go); "" when none.
	free string

	kick        chan struct{} // wakes the flusher; capacity 1
	stopped     chan struct{} // closed when the flusher exits
	prepKick    chan struct{} // wakes the preparer; capacity 1
	quit        chan struct{} // closed by Close once the flusher is done: stops the preparer
	prepStopped chan struct{} // closed when the preparer exits
}

// Open opens (creating if needed) the log in dir: it takes the directory's
// lock (one process per log), scans and repairs existing segments — which
// the Reader will return first — and starts a new active segment, prepared
// (see prepare.go) unless preparing fails (a full disk: then it starts an
// empty one, which grows).
func Open(dir string, opts Options) (*Log, error) {
	if opts.MaxBytes <= 0 || opts.SegmentBytes <= 0 || opts.MaxRecordBytes <= 0 {
		return nil, fmt.Errorf("wal: open %s: max bytes, segment bytes and max record bytes must be > 0", dir)
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("wal: open: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("wal: open %s: %w", dir, err)
	}
	l := &Log{
		dir: dir, opts: opts, log: opts.Log, lock: lock,
		kick: make(chan struct{}, 1), stopped: make(chan struct{}),
		prepKick: make(chan struct{}, 1), quit: make(chan struct{}), prepStopped: make(chan struct{}),
	}
	l.readable = sync.NewCond(&l.mu)
	if err := l.recover(); err != nil {
		lock.Close()
		return nil, err
	}
	id := l.nextID
	l.nextID++
	if f, err := l.prepareSegment(id); err == nil {
		l.activateLocked(id, f)
	} else {
		l.prepFailed = time.Now()
		l.log.Warn("wal: prepare the first segment; starting an empty one", "err", err)
		if err := l.startSegment(); err != nil {
			lock.Close()
			return nil, err
		}
	}
	go l.preparer()
	l.mu.Lock()
	l.wantSpareLocked()
	l.mu.Unlock()
	go l.flusher()
	return l, nil
}

func segName(id uint64) string { return fmt.Sprintf("%016x%s", id, segSuffix) }

// Append writes payload as one record and returns once it is synced to
// disk (nil), or the error that kept it from being: ErrFull and ErrClosed
// at once, a write or fsync error for the whole group it was in. When ctx
// ends first Append returns ctx's error, and the record may or may not
// become durable. payload is copied before Append returns.
func (l *Log) Append(ctx context.Context, payload []byte) error {
	if int64(len(payload)) > l.opts.MaxRecordBytes {
		return fmt.Errorf("wal: append: record of %d bytes over the limit of %d", len(payload), l.opts.MaxRecordBytes)
	}
	size := int64(headerBytes + timeBytes + len(payload))
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		return ErrClosed
	case l.broken != nil:
		err := l.broken
		l.mu.Unlock()
		return err
	// An empty log admits any record so a big one is not refused forever.
	case l.bytes > 0 && l.bytes+size > l.opts.MaxBytes:
		l.mu.Unlock()
		return ErrFull
	}
	l.pending = appendRecord(l.pending, time.Now(), payload)
	l.bytes += size
	if l.cur == nil {
		l.cur = &group{done: make(chan struct{})}
	}
	g := l.cur
	g.records++
	if !l.flushing {
		// No pass under way: this appender writes and syncs its group
		// itself instead of waking the flusher and waiting to be woken
		// by it. A lone exporter, one request in flight, then goes from
		// its append to its answer without a hand-off between
		// goroutines — on a busy machine each was a wait for a core. It
		// returns when the pass ends, whatever ctx says: a pass cannot
		// be abandoned half way, and the records of others may be in it.
		// What arrives meanwhile is left to the flusher, which the pass
		// wakes as it ends.
		l.flushing = true
		l.passLocked()
		l.flushing = false
		more := l.cur != nil
		l.mu.Unlock()
		if more {
			l.kickFlusher()
		}
		return g.err
	}
	l.mu.Unlock()
	l.kickFlusher()
	select {
	case <-g.done:
		return g.err
	case <-ctx.Done():
		return fmt.Errorf("wal: waiting for fsync: %w", ctx.Err())
	}
}

func (l *Log) kickFlusher() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// appendRecord appends the record of payload, appended at t, to dst, its
// checksum not yet seeded: the flusher seeds a pass's records (seedRecords)
// once it knows the segment they go to. Appenders hash their own payloads,
// in parallel.
func appendRecord(dst []byte, t time.Time, payload []byte) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(timeBytes+len(payload)))
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(t.UnixNano()))
	dst = append(dst, payload...)
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+headerBytes:], castagnoli))
	return dst
}

// seedRecords XORs the checksum of every record in buf (whole records, as
// appendRecord wrote them) with seed.
func seedRecords(buf []byte, seed uint32) {
	for off := 0; off+headerBytes <= len(buf); {
		n := int(binary.LittleEndian.Uint32(buf[off:]))
		c := buf[off+4 : off+headerBytes]
		binary.LittleEndian.PutUint32(c, binary.LittleEndian.Uint32(c)^seed)
		off += headerBytes + n
	}
}

// flusher writes and syncs the records appended while another pass was
// under way, one group per pass, until Close.
func (l *Log) flusher() {
	defer close(l.stopped)
	for {
		<-l.kick
		l.mu.Lock()
		// An appender's pass under way wakes the flusher as it ends.
		for l.cur != nil && !l.flushing {
			l.flushing = true
			l.passLocked()
			l.flushing = false
		}
		done := l.closed && l.cur == nil && !l.flushing
		l.mu.Unlock()
		if done {
			return
		}
	}
}

// passLocked writes and syncs the pending records as one group and
// closes its done channel. It is called with l.mu held and l.flushing
// set, and returns with l.mu held; the write and the sync run unlocked.
func (l *Log) passLocked() {
	if l.broken != nil {
		if err := l.startSegment(); err == nil {
			l.broken = nil
		}
	}
	buf, g := l.pending, l.cur
	l.pending, l.spareBuf, l.cur = l.spareBuf[:0], nil, nil
	if l.broken != nil {
		// No segment to write to: the group fails as the write would.
		l.bytes -= int64(len(buf))
		g.err = l.broken
		l.spareBuf = buf[:0]
		close(g.done)
		return
	}
	seg := l.segs[len(l.segs)-1]
	if seg.size > 0 && seg.size+int64(len(buf))+endBytes > l.opts.SegmentBytes && l.rollLocked() {
		seg = l.segs[len(l.segs)-1]
	}
	f, off := l.file, seg.size
	l.mu.Unlock()

	seedRecords(buf, seg.seed())
	records := len(buf)
	// The end marker: the next pass overwrites it.
	buf = append(buf, make([]byte, endBytes)...)
	start := time.Now()
	_, err := f.WriteAt(buf, off)
	buf = buf[:records]
	if err == nil {
		err = datasync(f)
	}
	if l.opts.Observe != nil {
		l.opts.Observe(g.records, int64(len(buf)), time.Since(start), err)
	}

	l.mu.Lock()
	if err != nil {
		// After a failed write or fsync the file's state is unknown (and
		// Linux may have dropped the dirty pages): never sync it again
		// and pretend. Its synced prefix stays readable; the group is
		// answered with the error and new records go to a new segment.
		l.bytes -= int64(len(buf))
		l.log.Warn("wal: write or fsync failed; the group's requests get a retryable error", "records", g.records, "err", err)
		g.err = fmt.Errorf("wal: sync %d records: %w", g.records, err)
		l.failed = err
		if serr := l.startSegment(); serr != nil {
			l.broken = serr
		}
	} else {
		l.failed = nil
		if seg.size == 0 {
			seg.oldest = int64(binary.LittleEndian.Uint64(buf[headerBytes:]))
		}
		seg.size += int64(len(buf))
		l.readable.Broadcast()
	}
	l.spareBuf = buf[:0]
	close(g.done)
}

// Bytes returns the log's size: segments on disk plus records waiting for
// their fsync.
func (l *Log) Bytes() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken != nil {
		// Appends fail until a segment can be started; this call is as good
		// a moment as any to try again.
		if err := l.startSegment(); err == nil {
			l.broken = nil
		}
	}
	return l.bytes
}

// Segments returns how many segments hold records not yet released, the
// one being appended to included: 1 once everything before it is.
func (l *Log) Segments() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.segs)
}

// MaxBytes is Options.MaxBytes.
func (l *Log) MaxBytes() int64 { return l.opts.MaxBytes }

// Close stops the log: appends then fail with ErrClosed, records already
// appended are synced first, and readers blocked in Next return ErrClosed.
// The spare segment is deleted; the active one keeps its unwritten zero
// tail, which the next Open cuts off.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.readable.Broadcast()
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
	// The flusher drains what is pending, then sees closed with nothing
	// left; one more kick may be needed if it consumed ours mid-pass.
	for {
		select {
		case <-l.stopped:
			close(l.quit)
			<-l.prepStopped
			l.mu.Lock()
			err := l.file.Close()
			if s := l.spare; s != nil {
				// Prepared, never written: nothing to keep.
				l.spare = nil
				s.f.Close()
				os.Remove(s.f.Name())
			}
			l.mu.Unlock()
			if lerr := l.lock.Close(); err == nil {
				err = lerr
			}
			if err != nil {
				return fmt.Errorf("wal: close: %w", err)
			}
			return nil
		case l.kick <- struct{}{}:
		case <-time.After(10 * time.Millisecond):
		}
	}
}
