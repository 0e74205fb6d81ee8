package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/tailscope/tailscope/ingest/internal/otlptest"
	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/store"
)

func journalConfig(dir string) Config {
	cfg := testConfig()
	cfg.WALDir = dir
	cfg.WALSegmentBytes = 64 << 10 // several segments per test
	return cfg
}

func newTestJournal(t *testing.T, cfg Config, w store.Writer) *Journal {
	t.Helper()
	j, err := NewJournal(cfg, w, &fakeDeploys{}, prometheus.NewRegistry(), testenv.Logger(t))
	if err != nil {
		t.Fatalf("NewJournal: %v", err)
	}
	t.Cleanup(func() { closeJournal(t, j) })
	return j
}

func closeJournal(t *testing.T, j *Journal) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := j.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func replay(t *testing.T, j *Journal) {
	t.Helper()
	if err := j.Replay(context.Background()); err != nil {
		t.Fatalf("Replay: %v", err)
	}
}

func TestJournalLoadsEverySpanOnce(t *testing.T) {
	w := newMemWriter()
	cfg := journalConfig(t.TempDir())
	cfg.BatchSpans = 64
	j := newTestJournal(t, cfg, w)
	const senders, each, size = 8, 25, 10
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := j.Submit(context.Background(), testSpans(size, uint64(s*each+i), "svc", "v1")); err != nil {
					t.Errorf("Submit: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	replay(t, j)
	if got := len(w.stored()); got != senders*each*size {
		t.Fatalf("stored %d spans, submitted %d", got, senders*each*size)
	}
	for _, n := range w.callSizes() {
		if n > cfg.BatchSpans+size {
			t.Errorf("a commit of %d spans, batch limit %d", n, cfg.BatchSpans)
		}
	}
	if n, age := j.Lag(); n != 0 || age != 0 {
		t.Errorf("lag after replay: %d bytes, %v", n, age)
	}
	// Applied segments are deleted or kept for recycling: what remains is
	// the active segment, the next one prepared ahead, and at most one
	// applied segment's file waiting to be recycled.
	segs, _ := filepath.Glob(filepath.Join(cfg.WALDir, "*.wal"))
	free, _ := filepath.Glob(filepath.Join(cfg.WALDir, "*.free"))
	if len(segs) > 2 || len(free) > 1 {
		t.Errorf("after loading everything %d segments and %d free ones remain: %v %v", len(segs), len(free), segs, free)
	}
}

// During an outage requests are still acknowledged (they are in the log);
// the loader applies them once the store is back.
func TestJournalRidesOutAnOutage(t *testing.T) {
	w := newMemWriter()
	w.setFail(func([]store.Span) error { return errStoreDown })
	j := newTestJournal(t, journalConfig(t.TempDir()), w)
	for i := range 20 {
		if err := j.Submit(context.Background(), testSpans(5, uint64(i), "svc", "")); err != nil {
			t.Fatalf("Submit during the outage: %v", err)
		}
	}
	waitFor(t, "a failed load attempt", func() bool { return len(w.callSizes()) > 0 })
	if n, _ := j.Lag(); n == 0 {
		t.Fatal("no lag while the store is down")
	}
	w.setFail(nil)
	replay(t, j)
	if got := len(w.stored()); got != 100 {
		t.Fatalf("stored %d spans after the outage, want 100", got)
	}
}

// What a stopped process left in the log is loaded by the next one, once.
func TestJournalReplaysAfterRestart(t *testing.T) {
	dir := t.TempDir()
	down := newMemWriter()
	down.setFail(func([]store.Span) error { return errStoreDown })
	j, err := NewJournal(journalConfig(dir), down, nil, nil, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if err := j.Submit(context.Background(), testSpans(4, uint64(i), "svc", "")); err != nil {
			t.Fatal(err)
		}
	}
	closeJournal(t, j) // gives up draining: the store is down

	up := newMemWriter()
	j = newTestJournal(t, journalConfig(dir), up)
	replay(t, j)
	if got := len(up.stored()); got != 120 {
		t.Fatalf("replayed %d spans, want 120", got)
	}
}

func TestJournalFullLogRefuses(t *testing.T) {
	w := newMemWriter()
	w.setFail(func([]store.Span) error { return errStoreDown })
	cfg := journalConfig(t.TempDir())
	cfg.WALMaxBytes = 16 << 10
	cfg.WALSegmentBytes = 4 << 10
	j := newTestJournal(t, cfg, w)
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		err = j.Submit(context.Background(), testSpans(10, uint64(i), "svc", ""))
	}
	if !errors.Is(err, ErrOverloaded) {
		t.Fatalf("Submit to a full log: %v, want ErrOverloaded", err)
	}
	if !j.Saturated() {
		t.Error("a full log does not report saturation")
	}
	w.setFail(nil)
	replay(t, j)
	if j.Saturated() {
		t.Error("still saturated once the store caught up")
	}
	if err := j.Submit(context.Background(), testSpans(10, 5000, "svc", "")); err != nil {
		t.Errorf("Submit after catching up: %v", err)
	}
}

// A record the store refuses for good is set aside in a file; the log goes
// on with the rest.
func TestJournalSetsAsideRefusedRecords(t *testing.T) {
	w := newMemWriter()
	w.setFail(func(spans []store.Span) error {
		for _, s := range spans {
			if s.Service == "poison" {
				return errors.New("value out of range")
			}
		}
		return nil
	})
	dir := t.TempDir()
	cfg := journalConfig(dir)
	j := newTestJournal(t, cfg, w)
	// Logged together, applied in one batch: the batch fails, then the
	// records are applied one by one.
	hold, release := w.hold()
	for i := range 3 {
		svc := "svc"
		if i == 1 {
			svc = "poison"
		}
		if err := j.Submit(context.Background(), testSpans(5, uint64(i), svc, "")); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			<-hold // the loader holds record 0; records 1 and 2 gather
		}
	}
	release()
	replay(t, j)
	if got := len(w.stored()); got != 10 {
		t.Fatalf("stored %d spans, want the 10 good ones", got)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "rejected", "*.rows"))
	if len(files) != 1 {
		t.Fatalf("%d set-aside files, want 1", len(files))
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	spans, err := decodeRows(nil, b)
	if err != nil || len(spans) != 5 || spans[0].Service != "poison" {
		t.Fatalf("set-aside file holds %d spans (%v)", len(spans), err)
	}
}

// With a write-ahead log the receiver's answers keep their meaning: 200
// once durable, 429 with Retry-After when the log is full.
func TestHTTPWithWAL(t *testing.T) {
	cfg := httpConfig()
	cfg.WALDir = t.TempDir()
	cfg.WALMaxBytes = 64 << 10
	cfg.WALSegmentBytes = 16 << 10
	tr := newTestReceiver(t, cfg)
	body := protoBody(t, otlptest.FeedTraces(100, 7))
	decodeSuccess(t, tr.post(t, contentTypeProtobuf, "", body), contentTypeProtobuf)
	if err := tr.Replay(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(tr.w.stored()); got != 100 {
		t.Fatalf("stored %d spans, want 100", got)
	}
	if _, _, ok := tr.LoaderLag(); !ok {
		t.Error("LoaderLag: no log reported")
	}

	tr.w.setFail(func([]store.Span) error { return errStoreDown })
	var r httpResp
	for i := uint64(0); i < 200; i++ {
		r = tr.post(t, contentTypeProtobuf, "", protoBody(t, otlptest.FeedTraces(100, 100+i)))
		if r.status != http.StatusOK {
			break
		}
	}
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" {
		t.Fatalf("full log: status %d Retry-After %q, want 429 and 1", r.status, r.header.Get("Retry-After"))
	}
	if st := decodeStatus(t, r); codes.Code(st.GetCode()) != codes.ResourceExhausted {
		t.Errorf("status code %v", codes.Code(st.GetCode()))
	}
	tr.w.setFail(nil)
	if err := tr.Replay(context.Background()); err != nil {
		t.Fatal(err)
	}
	tr.keepsServing(t)
}

func BenchmarkJournalSubmit(b *testing.B) {
	for _, senders := range []int{1, 8} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			cfg := journalConfig(b.TempDir())
			cfg.WALSegmentBytes = 64 << 20
			j, err := NewJournal(cfg, newMemWriter(), nil, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer j.Close(context.Background())
			spans := feedRows(b, 10)
			b.SetParallelism(senders)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := j.Submit(context.Background(), spans); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*len(spans))/b.Elapsed().Seconds(), "spans/s")
		})
	}
}
