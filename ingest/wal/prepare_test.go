package wal

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// warnLog keeps what a Log logs at WARN or above (the flusher and the
// preparer log from their own goroutines).
type warnLog struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnLog) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelWarn }

func (w *warnLog) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, r.Message)
	return nil
}

func (w *warnLog) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnLog) WithGroup(string) slog.Handler      { return w }

func (w *warnLog) warnings() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.msgs)
}

func capture(o Options) (Options, *warnLog) {
	w := &warnLog{}
	o.Log = slog.New(w)
	return o, w
}

// waitPrepared waits until the preparer has prepared the next segment or
// failed to.
func waitPrepared(tb testing.TB, l *Log) {
	tb.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.spare == nil && l.prepFailed.IsZero() && !l.closed {
		l.readable.Wait()
	}
}

// crashImage copies the log's directory as it is now, the log still open:
// what a machine that lost power at this moment could find on its disk
// (every synced byte, and possibly more).
func crashImage(tb testing.TB, dir string) string {
	tb.Helper()
	img := tb.TempDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == lockName {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(img, e.Name()), b, 0o640); err != nil {
			tb.Fatal(err)
		}
	}
	return img
}

// activeSegment returns the active segment's file and the length of its
// records.
func activeSegment(l *Log) (path string, size int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.segs[len(l.segs)-1]
	return filepath.Join(l.dir, segName(s.id)), s.size
}

func fileSize(tb testing.TB, path string) int64 {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Size()
}

func noWarnings(tb testing.TB, b *warnLog) {
	tb.Helper()
	if w := b.warnings(); len(w) > 0 {
		tb.Errorf("unexpected warnings: %q", w)
	}
}

func TestSegmentsArePreparedAhead(t *testing.T) {
	dir := t.TempDir()
	o := testOptions()
	l := openLog(t, dir, o)
	defer l.Close()
	active, _ := activeSegment(l)
	if n := fileSize(t, active); n != o.SegmentBytes {
		t.Errorf("the first segment is %d bytes, want it prepared at %d", n, o.SegmentBytes)
	}
	waitPrepared(t, l)
	l.mu.Lock()
	next := l.spare
	l.mu.Unlock()
	if next == nil {
		t.Fatal("no segment prepared ahead")
	}
	if n := fileSize(t, filepath.Join(dir, segName(next.id))); n != o.SegmentBytes {
		t.Errorf("the prepared segment is %d bytes, want %d", n, o.SegmentBytes)
	}
	// Filling the active segment switches to the prepared one.
	appendN(t, l, 0, 150)
	l.mu.Lock()
	ids := []uint64{}
	for _, s := range l.segs {
		ids = append(ids, s.id)
	}
	l.mu.Unlock()
	if len(ids) < 2 || ids[1] != next.id {
		t.Errorf("segments %v: the second is not the one prepared (%d)", ids, next.id)
	}
	got, _ := readAll(t, l)
	equalRecords(t, got, want(0, 150))
}

// After a crash the active segment's records are followed by the zeros it
// was prepared with, and the next segment holds only zeros: neither is
// damage. Replay returns every record, warns of nothing, and cuts the
// zeros off.
func TestCrashLeavesCleanZeroTail(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, testOptions())
	defer l.Close()
	appendN(t, l, 0, 100) // several 4 KiB segments
	waitPrepared(t, l)
	path, size := activeSegment(l)
	img := crashImage(t, dir)
	if n := fileSize(t, filepath.Join(img, filepath.Base(path))); n <= size {
		t.Fatalf("active segment in the image is %d bytes, records %d: no zero tail to test", n, size)
	}

	o, logs := capture(testOptions())
	l2 := openLog(t, img, o)
	defer l2.Close()
	noWarnings(t, logs)
	if n := fileSize(t, filepath.Join(img, filepath.Base(path))); n != size {
		t.Errorf("replayed segment is %d bytes, want its records' %d", n, size)
	}
	appendN(t, l2, 100, 5)
	got, _ := readAll(t, l2)
	equalRecords(t, got, want(0, 105))
}

// A torn write inside a prepared segment — a record cut short or corrupt
// right after the last good one — is cut at the last good record, with a
// warning. Bytes after a gap of zeros are cut too, and nothing after the
// last good record is replayed even if it checks, but silently: zeros
// right after the records are the end marker of the last pass, and what
// follows them in a recycled segment is its earlier life's (recover.go).
func TestTornRecordInPreparedSegment(t *testing.T) {
	rec := appendRecord(nil, time.Now(), []byte("never acknowledged"))
	tests := []struct {
		name  string
		bytes []byte
		at    int64 // offset after the last good record
		warn  bool
	}{
		{"record cut short", rec[:len(rec)-5], 0, true},
		{"header only", rec[:headerBytes], 0, true},
		{"whole record after a gap of zeros", rec, 512, false},
		{"a zero length, then data", append(make([]byte, headerBytes), rec...), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, o, l := oneSegmentLog(t, 20)
			path, size := activeSegment(l)
			img := crashImage(t, dir)
			l.Close()
			seg := filepath.Join(img, filepath.Base(path))
			f, err := os.OpenFile(seg, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(tt.bytes, size+tt.at); err != nil {
				t.Fatal(err)
			}
			f.Close()

			o, logs := capture(o)
			l2 := openLog(t, img, o)
			defer l2.Close()
			if w := logs.warnings(); tt.warn && (len(w) != 1 || !strings.Contains(w[0], "torn or corrupt")) {
				t.Errorf("warnings %q, want one of a torn record", w)
			} else if !tt.warn {
				noWarnings(t, logs)
			}
			if n := fileSize(t, seg); n != size {
				t.Errorf("segment is %d bytes after replay, want %d", n, size)
			}
			got, _ := readAll(t, l2)
			equalRecords(t, got, want(0, 20))
		})
	}
}

// A crash while the next segment is being prepared leaves a part-filled
// file of zeros: it holds nothing, is removed without a warning, and its
// id is not reused for records before it.
func TestCrashMidPreparation(t *testing.T) {
	dir := t.TempDir()
	o := testOptions()
	var calls atomic.Int32
	halfway, release := make(chan struct{}), make(chan struct{})
	o.fill = func(f *os.File, size int64) error {
		if calls.Add(1) == 2 { // the first spare
			if _, err := f.WriteAt(make([]byte, size/2), 0); err != nil {
				return err
			}
			close(halfway)
			<-release
		}
		_, err := f.WriteAt(make([]byte, size), 0)
		return err
	}
	l := openLog(t, dir, o)
	appendN(t, l, 0, 20) // within the first segment
	<-halfway
	img := crashImage(t, dir)
	close(release)
	l.Close()
	if n := len(segmentFiles(t, img)); n != 2 {
		t.Fatalf("image holds %d segments, want the active one and the half-prepared one", n)
	}

	o2, logs := capture(testOptions())
	l2 := openLog(t, img, o2)
	defer l2.Close()
	noWarnings(t, logs)
	appendN(t, l2, 20, 100) // into new segments
	got, _ := readAll(t, l2)
	equalRecords(t, got, want(0, 120))
}

// A full disk while preparing: the part-written file is removed (the disk
// is not left fuller), appends go on in the active segment, which grows,
// and once space is back segments are prepared again. At Open, a failed
// preparation starts an empty segment instead of failing.
func TestDiskFullWhilePreparing(t *testing.T) {
	t.Run("next segment", func(t *testing.T) {
		dir := t.TempDir()
		var (
			full  atomic.Bool
			calls atomic.Int32
		)
		o := testOptions()
		o.fill = func(f *os.File, size int64) error {
			if calls.Add(1) > 1 && full.Load() {
				f.WriteAt(make([]byte, size/2), 0)
				return syscall.ENOSPC
			}
			_, err := f.WriteAt(make([]byte, size), 0)
			return err
		}
		o, logs := capture(o)
		full.Store(true)
		l := openLog(t, dir, o) // the first segment is prepared before the disk fills
		defer l.Close()
		waitPrepared(t, l)
		path, _ := activeSegment(l)
		if n := fileSize(t, path); n != o.SegmentBytes {
			t.Fatalf("first segment %d bytes, want it prepared at %d", n, o.SegmentBytes)
		}
		if len(logs.warnings()) == 0 {
			t.Error("a failed preparation was not logged")
		}
		if files := segmentFiles(t, dir); len(files) != 1 || files[0] != filepath.Base(path) {
			t.Errorf("segment files %v, want only the active %s", files, filepath.Base(path))
		}
		appendN(t, l, 0, 100) // past the segment size
		if n := fileSize(t, path); n <= o.SegmentBytes {
			t.Errorf("active segment %d bytes: did not grow past %d", n, o.SegmentBytes)
		}

		// Space is back and the retry delay over: the next pass that
		// needs a segment asks for one, and later ones use it.
		full.Store(false)
		l.mu.Lock()
		l.prepFailed = l.prepFailed.Add(-probeEvery)
		l.mu.Unlock()
		appendN(t, l, 100, 1)
		l.mu.Lock()
		for l.spare == nil {
			l.readable.Wait() // the preparer broadcasts its outcome
		}
		l.mu.Unlock()
		appendN(t, l, 101, 1)
		if p, _ := activeSegment(l); p == path {
			t.Error("still appending to the grown segment once a prepared one was ready")
		}
		got, _ := readAll(t, l)
		equalRecords(t, got, want(0, 102))
	})
	t.Run("first segment", func(t *testing.T) {
		dir := t.TempDir()
		o := testOptions()
		o.fill = func(*os.File, int64) error { return syscall.ENOSPC }
		o, logs := capture(o)
		l := openLog(t, dir, o)
		defer l.Close()
		if len(logs.warnings()) == 0 {
			t.Error("a failed preparation was not logged")
		}
		appendN(t, l, 0, 10)
		got, _ := readAll(t, l)
		equalRecords(t, got, want(0, 10))
	})
}
