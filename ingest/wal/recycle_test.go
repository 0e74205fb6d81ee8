package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countFills counts the segments prepared by writing zeros.
func countFills(o Options) (Options, *atomic.Int32) {
	n := &atomic.Int32{}
	o.fill = func(f *os.File, size int64) error {
		n.Add(1)
		return (&Log{quit: make(chan struct{})}).fillZeros(f, size)
	}
	return o, n
}

func freeFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+freeSuffix))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// busyPayload is payload without its run of zeros: an earlier life's
// bytes after a recycled segment's records are then never zeros by luck.
func busyPayload(i int) []byte {
	return fmt.Appendf(nil, "record %04d %s", i, strings.Repeat("x", i%97))
}

func appendBusy(tb testing.TB, l *Log, from, n int) {
	tb.Helper()
	for i := from; i < from+n; i++ {
		if err := l.Append(tb.Context(), busyPayload(i)); err != nil {
			tb.Fatalf("append %d: %v", i, err)
		}
	}
}

func wantBusy(from, n int) [][]byte {
	var w [][]byte
	for i := from; i < from+n; i++ {
		w = append(w, busyPayload(i))
	}
	return w
}

// Applied segments are recycled: once the loader releases them the next
// segments are made from their files, not written with zeros, and what
// they held before is never read back — not by the reader, nor after a
// crash, when the active segment's tail is its earlier life's records.
func TestSegmentsAreRecycled(t *testing.T) {
	dir := t.TempDir()
	o, fills := countFills(testOptions())
	l := openLog(t, dir, o)
	defer l.Close()
	r := l.NewReader()
	defer r.Close()
	next := 0
	for round := range 6 {
		appendBusy(t, l, next, 60) // several 4 KiB segments a round
		next += 60
		var got [][]byte
		for range 60 {
			rec, err := r.Next(t.Context(), false)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			got = append(got, slices.Clone(rec.Payload))
		}
		equalRecords(t, got, wantBusy(next-60, 60))
		if err := l.Release(r.Pos()); err != nil {
			t.Fatal(err)
		}
		waitPrepared(t, l)
	}
	before := fills.Load()
	appendBusy(t, l, next, 60)
	waitPrepared(t, l)
	if n := fills.Load() - before; n != 0 {
		t.Errorf("%d segments written with zeros while applied ones were free", n)
	}

	// A crash now: the active segment is recycled, its tail an earlier
	// life's records. What comes back is the records of the segments not
	// yet released — every unreleased one, in order, and nothing older
	// than the oldest segment kept (Release keeps the active segment
	// whole) — never an earlier life's.
	path, size := activeSegment(l)
	if fileSize(t, path) <= size+endBytes {
		t.Fatalf("active segment %d bytes, records %d: nothing after them to test", fileSize(t, path), size)
	}
	img := crashImage(t, dir)
	o2, logs := capture(testOptions())
	l2 := openLog(t, img, o2)
	defer l2.Close()
	noWarnings(t, logs)
	got, _ := readAll(t, l2)
	total := next + 60
	if len(got) < 60 || len(got) > 60+60 {
		t.Fatalf("replayed %d records, want the 60 unreleased and at most a segment more", len(got))
	}
	equalRecords(t, got, wantBusy(total-len(got), len(got)))
	if free := freeFiles(t, img); len(free) > 1 {
		t.Errorf("%d free segments kept, want at most one", len(free))
	}
}

// A record of a segment's earlier life right after this life's last
// record (a pass whose head never reached the disk, its tail did) checks
// under the old id only: it is not replayed.
func TestEarlierLifeIsNotReplayed(t *testing.T) {
	dir, o, l := oneSegmentLog(t, 20)
	path, size := activeSegment(l)
	img := crashImage(t, dir)
	l.Close()
	seg := filepath.Join(img, filepath.Base(path))
	id := segmentID(t, seg)
	old := appendRecord(nil, time.Now(), []byte("an earlier life"))
	seedRecords(old, seed(id-3))
	f, err := os.OpenFile(seg, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(old, size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	l2 := openLog(t, img, o)
	defer l2.Close()
	got, _ := readAll(t, l2)
	equalRecords(t, got, want(0, 20))
	// The same record seeded for this segment would have been read: the
	// test can tell.
	if _, n := parseRecord(old, o.MaxRecordBytes, seed(id-3)); n == 0 {
		t.Fatal("the earlier life's record does not parse under its own seed")
	}
}

func segmentID(tb testing.TB, path string) uint64 {
	tb.Helper()
	var id uint64
	for _, c := range strings.TrimSuffix(filepath.Base(path), segSuffix) {
		id <<= 4
		switch {
		case c >= '0' && c <= '9':
			id |= uint64(c - '0')
		default:
			id |= uint64(c-'a') + 10
		}
	}
	return id
}

// Segments of the first format (.seg, checksums unseeded) left by an
// older tailscope are replayed, and deleted once applied, never recycled.
func TestFirstFormatSegmentsReplay(t *testing.T) {
	dir := t.TempDir()
	var b []byte
	for i := range 30 {
		b = appendRecord(b, time.Now(), payload(i)) // unseeded: the first format
	}
	b = append(b, make([]byte, 4<<10)...) // its prepared zeros
	v1 := filepath.Join(dir, "0000000000000007"+v1Suffix)
	if err := os.WriteFile(v1, b, 0o640); err != nil {
		t.Fatal(err)
	}
	o, logs := capture(testOptions())
	l := openLog(t, dir, o)
	defer l.Close()
	noWarnings(t, logs)
	appendN(t, l, 30, 10)
	got, end := readAll(t, l)
	equalRecords(t, got, want(0, 40))
	if id, _ := activeSegment(l); segmentID(t, id) <= 7 {
		t.Errorf("new segment %s does not sort after the first-format one", id)
	}
	if err := l.Release(end); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(v1); !os.IsNotExist(err) {
		t.Errorf("first-format segment still there after release: %v", err)
	}
	for _, f := range freeFiles(t, dir) {
		if strings.HasPrefix(filepath.Base(f), "0000000000000007") {
			t.Errorf("first-format segment kept for recycling: %s", f)
		}
	}
}
