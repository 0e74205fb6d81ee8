package ingest

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailscope/tailscope/ingest/wal"
	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/postgres"
	"github.com/tailscope/tailscope/store/sqlite"
)

// splitTraces returns request r of a stream in which every trace reaches
// the receiver in three requests, as from three services: request r holds
// the root of traces 10r…10r+9, a child of each trace of request r−1 and
// one of each of request r−2.
func splitTraces(r int) []store.Span {
	var out []store.Span
	services := []string{"frontend", "api", "worker"}
	for part := range 3 {
		first := r - part
		if first < 0 {
			continue
		}
		for k := range 10 {
			t := uint64(first*10 + k)
			var tid store.TraceID
			binary.BigEndian.PutUint64(tid[:8], 0xa11ce)
			binary.BigEndian.PutUint64(tid[8:], t+1)
			var sid, root store.SpanID
			binary.BigEndian.PutUint64(sid[:], t<<4|uint64(part)+1)
			binary.BigEndian.PutUint64(root[:], t<<4|1)
			s := store.Span{TraceID: tid, SpanID: sid, Service: services[part], Name: "op",
				StartUnixNano: 1_735_689_600_000_000_000 + int64(t)*int64(time.Millisecond) + int64(part)*1000,
				DurationNano:  int64(time.Millisecond) - int64(part)*1000}
			if part > 0 {
				s.ParentSpanID = root
			}
			out = append(out, s)
		}
	}
	return out
}

// A crash loses the trace index rows the loader held; the log kept their
// records, and replaying them recomputes the rows from the stored spans:
// every trace is found, its spans counted once.
//
// On SQLite a replayed span is a resend, whose trace the store recomputes
// anyway; on PostgreSQL only the journal's rebuild recomputes it.
func TestJournalHeldIndexRowsSurviveACrash(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "t.db")
		testHeldRowsCrash(t, func() store.Store {
			db, err := sqlite.Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		})
	})
	t.Run("postgres", func(t *testing.T) {
		url := testenv.FreshPostgres(t)
		testHeldRowsCrash(t, func() store.Store {
			db, err := postgres.Open(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		})
	})
}

// testHeldRowsCrash runs the crash test on a store open returns, each call
// a new handle on the same database.
func testHeldRowsCrash(t *testing.T, open func() store.Store) {
	ctx := context.Background()
	db := open()
	cfg := journalConfig(t.TempDir())
	cfg.TraceIndexDelay = time.Hour // held until Close: the crash comes first
	cfg.BatchSpans = 25             // a trace's parts in different batches
	j := newTestJournal(t, cfg, db)
	const requests = 40
	for r := range requests + 2 {
		if err := j.Submit(ctx, splitTraces(r)); err != nil {
			t.Fatal(err)
		}
	}
	replay(t, j)
	wantTraces := (requests + 2) * 10

	// The crash: the log as it is on disk, copied while the first loader
	// holds rows; a second store handle on the same database sees what
	// the first one stored, and none of what it holds.
	crashed := t.TempDir()
	copyDir(t, cfg.WALDir, crashed)
	db2 := open()
	q := store.TraceQuery{Limit: 10_000}
	before, err := db2.SearchTraces(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) >= wantTraces/2 {
		t.Fatalf("before the replay %d of %d traces are in the index: the loader held too few rows for this test", len(before), wantTraces)
	}

	cfg2 := cfg
	cfg2.WALDir = crashed
	j2, err := NewJournal(cfg2, db2, nil, nil, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	replay(t, j2)
	closeJournal(t, j2)
	got, err := db2.SearchTraces(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != wantTraces {
		t.Fatalf("after the replay %d traces are in the index, want %d", len(got), wantTraces)
	}
	for _, s := range got {
		want := 3
		if n := int(binary.BigEndian.Uint64(s.TraceID[8:])) - 1; n >= (requests+1)*10 {
			want = 1 // the last request's traces got their roots only
		} else if n >= requests*10 {
			want = 2
		}
		if s.SpanCount != want {
			t.Errorf("trace %s: %d spans counted, want %d", s.TraceID, s.SpanCount, want)
		}
	}
}

// While rows are held the log keeps what they came from; a flush — when
// the loader stops, or TraceIndexDelay after the last — stores them and
// releases it.
func TestJournalReleasesTheLogWhenHeldRowsAreStored(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	db := openSQLite(t, path)
	// Another handle on the database: its searches do not store the
	// rows db holds, so they show what a flush has stored.
	other := openSQLite(t, path)
	indexed := func() int {
		sums, err := other.SearchTraces(ctx, store.TraceQuery{Limit: 10_000})
		if err != nil {
			t.Fatal(err)
		}
		return len(sums)
	}
	send := func(j *Journal, from int) {
		for r := from; r < from+40; r++ {
			if err := j.Submit(ctx, splitTraces(r)); err != nil {
				t.Fatal(err)
			}
		}
		replay(t, j)
	}

	cfg := journalConfig(t.TempDir())
	cfg.WALSegmentBytes = 16 << 10
	cfg.TraceIndexDelay = time.Hour
	reg := prometheus.NewRegistry()
	j, err := NewJournal(cfg, db, nil, reg, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	send(j, 0)
	if n := gauge(t, reg, "tailscope_ingest_trace_index_held_traces"); n < 200 {
		t.Errorf("held traces gauge %v, want most of the 400", n)
	}
	if n := j.log.Bytes(); n <= 2*cfg.WALSegmentBytes {
		t.Fatalf("log holds %d bytes once loaded, want the segments of the held rows kept (> %d)", n, 2*cfg.WALSegmentBytes)
	}
	if n := indexed(); n >= 200 {
		t.Fatalf("%d traces indexed before any flush, want most of the 400 held", n)
	}
	closeJournal(t, j) // flushes
	if n := indexed(); n != 400 {
		t.Fatalf("%d traces indexed after Close, want 400", n)
	}

	// Longer than sending takes, so the last rows wait for the timer.
	cfg.TraceIndexDelay = 500 * time.Millisecond
	cfg.WALDir = t.TempDir()
	j = newTestJournal(t, cfg, db)
	send(j, 1000)
	waitFor(t, "the held rows stored and the log released while idle", func() bool {
		// 400 more, and the 20 of requests 998 and 999 whose later
		// parts requests 1000 and 1001 carry.
		return indexed() == 820 && j.log.Segments() == 1
	})
}

// openSQLite opens a handle on the SQLite database at path, closed when
// the test ends.
func openSQLite(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// gauge reads a gauge's value from reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// The log keeps every record until the trace index rows of its traces are
// stored, though a flush stores only the rows held since before the
// previous one (FlushAgedTraceIndex): at any moment, a crash would lose no
// acknowledged part of a trace — each is in the log, to replay, or counted
// in the trace's stored row. Sampled while split traces stream in and the
// loader flushes several times; each sample copies the log as a crash
// would leave it, then reads the stored rows through another handle.
func TestJournalKeepsTheRecordsOfHeldRows(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	db := openSQLite(t, path)
	// The stored rows as another process reads them: a search would
	// stop at 1,000 traces.
	other, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	storedRows := func() map[store.TraceID]int {
		rows, err := other.QueryContext(ctx, `SELECT trace_id, span_count FROM trace_index`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[store.TraceID]int{}
		for rows.Next() {
			var id []byte
			var n int
			if err := rows.Scan(&id, &n); err != nil {
				t.Fatal(err)
			}
			out[store.TraceID(id)] = n
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	cfg := journalConfig(t.TempDir())
	cfg.WALSegmentBytes = 16 << 10 // records released segment by segment
	cfg.TraceIndexDelay = 150 * time.Millisecond
	j := newTestJournal(t, cfg, db)

	type part struct {
		trace store.TraceID
		span  store.SpanID
	}
	var (
		mu    sync.Mutex
		acked []part
	)
	const requests = 120
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for r := range requests {
			spans := splitTraces(r)
			if err := j.Submit(ctx, spans); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			for _, s := range spans {
				acked = append(acked, part{s.TraceID, s.SpanID})
			}
			mu.Unlock()
			time.Sleep(10 * time.Millisecond) // ~1.2 s: eight flushes
		}
	}()
	// A failed check ends the test only once the sender has stopped: it
	// reports to t and submits to j, which the test's cleanup closes.
	defer func() { <-sent }()
	check := func() {
		mu.Lock()
		want := slices.Clone(acked)
		mu.Unlock()
		crashed := t.TempDir()
		copyDir(t, cfg.WALDir, crashed)
		logged := loggedSpans(t, cfg, crashed)
		counted := storedRows()
		// A part not in the log was released, so its trace's stored
		// row must count it.
		released := map[store.TraceID]int{}
		for _, p := range want {
			if !logged[p.span] {
				released[p.trace]++
			}
		}
		for id, n := range released {
			if counted[id] < n {
				t.Errorf("trace %s: %d acknowledged parts not in the log, its stored row counts %d spans: a crash now would lose them", id, n, counted[id])
			}
		}
	}
	samples := 0
	for done := false; !done; samples++ {
		select {
		case <-sent:
			done = true
		default:
		}
		if check(); t.Failed() {
			return
		}
	}
	t.Logf("%d samples", samples)
	// Idle, the kept rows are stored by the next flush, and the log is
	// released.
	waitFor(t, "every trace indexed and the log released", func() bool {
		return len(storedRows()) == requests*10 && j.log.Segments() == 1
	})
}

// copyDir copies the regular files of from to to, as a crash would leave
// them, skipping the ones removed meanwhile: a segment the journal
// released while the copy ran, which a crash would not have found either.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(to, e.Name()), b, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// loggedSpans opens the log in dir, as a restart would, and returns the
// span ids of every record it would replay.
func loggedSpans(t *testing.T, cfg Config, dir string) map[store.SpanID]bool {
	t.Helper()
	opts := wal.DefaultOptions()
	opts.MaxBytes = cfg.WALMaxBytes
	opts.SegmentBytes = cfg.WALSegmentBytes
	opts.MaxRecordBytes = max(cfg.QueueBytes, cfg.MaxDecompressedBytes) * 8
	log, err := wal.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	r := log.NewReader()
	defer r.Close()
	out := map[store.SpanID]bool{}
	for {
		rec, err := r.Next(context.Background(), false)
		if errors.Is(err, wal.ErrNoRecord) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		spans, err := decodeRows(nil, rec.Payload)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range spans {
			out[s.SpanID] = true
		}
	}
}
