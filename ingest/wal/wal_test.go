package wal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func testOptions() Options {
	o := DefaultOptions()
	o.SegmentBytes = 4 << 10
	o.MaxBytes = 1 << 20
	o.MaxRecordBytes = 64 << 10
	return o
}

func openLog(tb testing.TB, dir string, o Options) *Log {
	tb.Helper()
	l, err := Open(dir, o)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	return l
}

func payload(i int) []byte { return fmt.Appendf(nil, "record %04d %s", i, make([]byte, i%97)) }

// readAll reads every synced record without waiting.
func readAll(tb testing.TB, l *Log) ([][]byte, Pos) {
	tb.Helper()
	r := l.NewReader()
	defer r.Close()
	var (
		got [][]byte
		end Pos
	)
	for {
		rec, err := r.Next(context.Background(), false)
		if errors.Is(err, ErrNoRecord) {
			return got, end
		}
		if err != nil {
			tb.Fatalf("next: %v", err)
		}
		got = append(got, slices.Clone(rec.Payload))
		end = rec.End
	}
}

func appendN(tb testing.TB, l *Log, from, n int) {
	tb.Helper()
	for i := from; i < from+n; i++ {
		if err := l.Append(context.Background(), payload(i)); err != nil {
			tb.Fatalf("append %d: %v", i, err)
		}
	}
}

func want(from, n int) [][]byte {
	var w [][]byte
	for i := from; i < from+n; i++ {
		w = append(w, payload(i))
	}
	return w
}

func equalRecords(tb testing.TB, got, want [][]byte) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range got {
		if string(got[i]) != string(want[i]) {
			tb.Fatalf("record %d: got %q, want %q", i, got[i], want[i])
		}
	}
}

func TestAppendReadReopen(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, testOptions())
	appendN(t, l, 0, 300) // several segments of 4 KiB
	got, _ := readAll(t, l)
	equalRecords(t, got, want(0, 300))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopened, the log replays the same records, then takes new ones after.
	l = openLog(t, dir, testOptions())
	defer l.Close()
	appendN(t, l, 300, 10)
	got, _ = readAll(t, l)
	equalRecords(t, got, want(0, 310))
}

func TestConcurrentAppendsAreGrouped(t *testing.T) {
	var (
		mu            sync.Mutex
		passes, total int
	)
	o := testOptions()
	o.Observe = func(records int, _ int64, _ time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		passes++
		total += records
	}
	l := openLog(t, t.TempDir(), o)
	defer l.Close()
	const writers, each = 16, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			appendN(t, l, w*each, each)
		}()
	}
	wg.Wait()
	got, _ := readAll(t, l)
	if len(got) != writers*each {
		t.Fatalf("read %d records, appended %d", len(got), writers*each)
	}
	mu.Lock()
	defer mu.Unlock()
	if total != writers*each {
		t.Errorf("fsync passes covered %d records, want %d", total, writers*each)
	}
	if passes >= total {
		t.Logf("no grouping happened (%d passes for %d records): a slow-scheduling machine", passes, total)
	}
}

// TestCloseWhileAppending: appenders write and sync their own groups when
// no pass is under way, so Close can meet a pass run by an appender as
// well as one run by the flusher: it must wait for both. It returns, every record whose Append
// returned nil is in the log once reopened, and no Append answers nil for
// a record that is not.
func TestCloseWhileAppending(t *testing.T) {
	dir := t.TempDir()
	for round := range 20 {
		l := openLog(t, dir, testOptions())
		// One writer leads nearly every pass itself; eight mostly wait
		// for passes led by one of them or run by the flusher.
		writers := 1 + 7*(round%2)
		var (
			mu    sync.Mutex
			acked = map[string]bool{}
			wg    sync.WaitGroup
		)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					p := fmt.Appendf(nil, "round %d writer %d record %d", round, w, i)
					err := l.Append(context.Background(), p)
					if errors.Is(err, ErrClosed) {
						return
					}
					if err != nil {
						t.Errorf("append: %v", err)
						return
					}
					mu.Lock()
					acked[string(p)] = true
					mu.Unlock()
				}
			}()
		}
		// Close after a number of records that grows with the round, so
		// rounds close at different points of a pass.
		for {
			mu.Lock()
			n := len(acked)
			mu.Unlock()
			if n >= 10*(round+1) {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		if err := l.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		wg.Wait()
		l = openLog(t, dir, testOptions())
		got, end := readAll(t, l)
		seen := map[string]bool{}
		for _, g := range got {
			seen[string(g)] = true
		}
		for p := range acked {
			if !seen[p] {
				t.Fatalf("round %d: %q was acknowledged and is not in the log", round, p)
			}
		}
		if err := l.Release(end); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCloseWaitsForAppendersPass: a lone appender runs its pass itself;
// Close, called while that pass is under way, returns only after it has
// ended, and the record is in the log.
func TestCloseWaitsForAppendersPass(t *testing.T) {
	dir := t.TempDir()
	o := testOptions()
	var held atomic.Bool
	inPass, release := make(chan struct{}), make(chan struct{})
	o.Observe = func(int, int64, time.Duration, error) {
		if held.CompareAndSwap(false, true) {
			close(inPass)
			<-release
		}
	}
	l := openLog(t, dir, o)
	appended := make(chan error, 1)
	go func() { appended <- l.Append(context.Background(), payload(1)) }()
	<-inPass
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while an appender's pass was under way", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-appended; err != nil {
		t.Fatalf("append: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	l = openLog(t, dir, testOptions())
	defer l.Close()
	got, _ := readAll(t, l)
	equalRecords(t, got, want(1, 1))
}

func TestReleaseDeletesAppliedSegments(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, testOptions())
	defer l.Close()
	appendN(t, l, 0, 300)
	before := segmentFiles(t, dir)
	if len(before) < 3 {
		t.Fatalf("want several segments, have %d", len(before))
	}
	got, end := readAll(t, l)
	if len(got) != 300 {
		t.Fatalf("read %d", len(got))
	}
	if n := l.Unapplied(Pos{}); n != l.Bytes() {
		t.Errorf("unapplied from the start %d, log bytes %d", n, l.Bytes())
	}
	if err := l.Release(end); err != nil {
		t.Fatal(err)
	}
	if n := l.Unapplied(end); n != 0 {
		t.Errorf("unapplied after the last record: %d", n)
	}
	// What remains is the active segment and the next one, prepared.
	waitPrepared(t, l)
	after := segmentFiles(t, dir)
	l.mu.Lock()
	keep := []string{segName(l.segs[len(l.segs)-1].id), segName(l.spare.id)}
	l.mu.Unlock()
	if !slices.Equal(after, keep) {
		t.Errorf("after releasing everything these segments remain: %v, want %v", after, keep)
	}
	if l.Bytes() > testOptions().SegmentBytes {
		t.Errorf("log bytes %d after release", l.Bytes())
	}
}

func TestFullLogRefusesAppends(t *testing.T) {
	o := testOptions()
	o.MaxBytes = 2 << 10
	l := openLog(t, t.TempDir(), o)
	defer l.Close()
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		err = l.Append(context.Background(), payload(i))
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("append past MaxBytes: %v, want ErrFull", err)
	}
	_, end := readAll(t, l)
	if err := l.Release(end); err != nil {
		t.Fatal(err)
	}
	// Applied and released, the space is free again... once the active
	// segment rolls over; a fresh log always admits one record.
	if l.Bytes() > o.MaxBytes {
		t.Errorf("log bytes %d > max %d after release", l.Bytes(), o.MaxBytes)
	}
}

func TestDamagedSegmentReplaysToLastGoodRecord(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string, size int64, starts []int64)
		// keep is how many records of the damaged segment survive, given
		// where each record starts.
		keep func(starts []int64) int
	}{
		{
			name: "truncated mid-record",
			damage: func(t *testing.T, path string, size int64, starts []int64) {
				cut := starts[len(starts)-1] + 5 // into the last record's header
				if err := os.Truncate(path, cut); err != nil {
					t.Fatal(err)
				}
			},
			keep: func(starts []int64) int { return len(starts) - 1 },
		},
		{
			name: "bit flipped in a payload",
			damage: func(t *testing.T, path string, size int64, starts []int64) {
				flipBit(t, path, starts[2]+headerBytes+timeBytes+3)
			},
			keep: func([]int64) int { return 2 },
		},
		{
			name: "bit flipped in a length",
			damage: func(t *testing.T, path string, size int64, starts []int64) {
				flipBit(t, path, starts[4]+1)
			},
			keep: func([]int64) int { return 4 },
		},
		{
			name: "garbage appended",
			damage: func(t *testing.T, path string, size int64, starts []int64) {
				f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := f.Write([]byte{0x10, 0, 0, 0, 1, 2, 3}); err != nil {
					t.Fatal(err)
				}
			},
			keep: func(starts []int64) int { return len(starts) },
		},
		{
			name: "zeroed tail (preallocated blocks after a crash)",
			damage: func(t *testing.T, path string, size int64, starts []int64) {
				if err := os.Truncate(path, size+4096); err != nil {
					t.Fatal(err)
				}
			},
			keep: func(starts []int64) int { return len(starts) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 20
			dir, o, l := oneSegmentLog(t, n)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			files := segmentFiles(t, dir)
			path := filepath.Join(dir, files[0])
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			var ends []int64
			off := int64(0)
			for i := range n {
				off += int64(headerBytes + timeBytes + len(payload(i)))
				ends = append(ends, off)
			}
			// starts[i] is where record i+1 starts; prepend 0 for record 0.
			starts := append([]int64{0}, ends[:n-1]...)
			tt.damage(t, path, fi.Size(), starts)
			// Followed by an intact later segment: replay goes on past the damage.
			l = openLog(t, dir, o)
			appendN(t, l, 100, 3)
			got, _ := readAll(t, l)
			l.Close()
			k := tt.keep(starts)
			equalRecords(t, got, append(want(0, k), want(100, 3)...))
			// The damaged segment was cut at the last good record.
			fi, err = os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if k > 0 && fi.Size() != ends[k-1] {
				t.Errorf("damaged segment is %d bytes, want %d", fi.Size(), ends[k-1])
			}
		})
	}
}

// oneSegmentLog opens a log in a new directory whose segments are large
// enough for the test's records, and appends records 0..n-1.
func oneSegmentLog(tb testing.TB, n int) (string, Options, *Log) {
	tb.Helper()
	dir := tb.TempDir()
	o := testOptions()
	o.SegmentBytes = 1 << 20
	l := openLog(tb, dir, o)
	appendN(tb, l, 0, n)
	return dir, o, l
}

func TestSecondOpenIsRefused(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, testOptions())
	defer l.Close()
	if l2, err := Open(dir, testOptions()); err == nil {
		l2.Close()
		t.Fatal("a second Open of one directory succeeded")
	}
}

func TestReaderWaitsForAppends(t *testing.T) {
	l := openLog(t, t.TempDir(), testOptions())
	r := l.NewReader()
	defer r.Close()
	got := make(chan string)
	go func() {
		rec, err := r.Next(context.Background(), true)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(rec.Payload)
	}()
	appendN(t, l, 7, 1)
	if g := <-got; g != string(payload(7)) {
		t.Fatalf("waiting reader got %q", g)
	}
	// Close wakes a waiting reader.
	go func() {
		_, err := r.Next(context.Background(), true)
		got <- fmt.Sprint(err)
	}()
	l.Close()
	if g := <-got; g != ErrClosed.Error() {
		t.Fatalf("reader after close: %s", g)
	}
}

func segmentFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		tb.Fatal(err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	slices.Sort(m)
	return m
}

func flipBit(tb testing.TB, path string, off int64) {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	b[off] ^= 0x04
	if err := os.WriteFile(path, b, 0o640); err != nil {
		tb.Fatal(err)
	}
}

// Bytes damaged after they were synced (the disk, not a crash) are skipped
// to the end of their segment, and the reader's position moves past them,
// so a loader waiting to catch up does not wait forever.
func TestReaderSkipsDamageAfterSync(t *testing.T) {
	dir := t.TempDir()
	o := testOptions()
	o.SegmentBytes = 1 << 20
	l := openLog(t, dir, o)
	defer l.Close()
	appendN(t, l, 0, 10)
	flipBit(t, filepath.Join(dir, segmentFiles(t, dir)[0]), int64(5*(headerBytes+timeBytes))+40)
	r := l.NewReader()
	defer r.Close()
	n := 0
	for {
		_, err := r.Next(context.Background(), false)
		if errors.Is(err, ErrNoRecord) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n == 0 || n >= 10 {
		t.Fatalf("read %d records of 10 with one damaged in the middle", n)
	}
	if u := l.Unapplied(r.Pos()); u != 0 {
		t.Errorf("reader position leaves %d bytes unapplied", u)
	}
}
