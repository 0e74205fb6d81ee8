package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailscope/tailscope/ingest/wal"
	"github.com/tailscope/tailscope/store"
)

// committer takes a request's converted spans and returns once they are
// durable: the Pipeline commits them to the store, the Journal to its
// write-ahead log.
type committer interface {
	// Submit returns nil once spans are durable; ErrOverloaded or ErrClosed
	// at once; otherwise an error wrapping store.ErrUnavailable or ctx's.
	Submit(ctx context.Context, spans []store.Span) error
	// Saturated reports whether a request would likely be refused.
	Saturated() bool
	Close(ctx context.Context) error
}

var (
	_ committer = (*Pipeline)(nil)
	_ committer = (*Journal)(nil)
)

// Journal is the write-ahead-logged alternative to Pipeline. Submit appends
// a request's rows to the log and returns once the log's group fsync covers
// them: the client's wait is one fsync shared with every request that
// arrived meanwhile, not a store commit of its own. A loader goroutine
// reads the log in order and applies it to the store in batches of up to
// BatchSpans, retrying until each commit succeeds, then releases the
// applied segments. Applying is idempotent (store.Writer's contract), so
// the records replayed after a crash — everything not yet released — are
// stored once.
//
// Readers see a span once its batch is loaded: normally within one commit
// (milliseconds); during a store outage the log grows to WALMaxBytes and
// then requests are refused with ErrOverloaded, as the Pipeline's queue
// does.
type Journal struct {
	cfg     Config
	dir     string
	log     *wal.Log
	w       store.Writer
	prep    SpanPreparer
	deploys *deployTracker
	m       *pipelineMetrics
	wm      *walMetrics
	lg      *slog.Logger
	bufs    sync.Pool // *[]byte record buffers

	// index is the store's indexHolder, nil when it is none; hold says
	// whether rows are held (TraceIndexDelay > 0).
	index indexHolder
	hold  bool

	ctx    context.Context // the loader's; cancelled by Close
	cancel context.CancelFunc
	done   chan struct{} // closed when the loader exits

	mu     sync.Mutex
	closed bool
	// waitSpans and waitBytes count the spans of requests waiting for
	// their fsync, bounded by QueueSpans and QueueBytes as the Pipeline's
	// queue is: converted rows are held until the answer, so this bounds
	// memory whatever the number of connections.
	waitSpans int
	waitBytes int64
	applied   wal.Pos       // everything before it is in the store
	oldest    time.Time     // append time of the oldest record being applied; zero when idle
	progress  chan struct{} // closed and replaced after each applied batch

	// The loader's own: replaying is true while it applies what a
	// previous process left (until it first catches up); unreleased is
	// how far the log was applied while trace index rows were held, to
	// release once their rows are stored; aging is how far it was applied
	// at the last flush, whose rows that flush kept and the next one
	// stores (flushIndex); flushed is when the last flush ran.
	replaying  bool
	unreleased wal.Pos
	aging      wal.Pos
	flushed    time.Time
}

// NewJournal opens the write-ahead log in cfg.WALDir and starts its
// loader, which first applies what a previous process left in the log:
// call Replay to wait for that before serving.
func NewJournal(cfg Config, w store.Writer, deploys DeployRecorder, reg prometheus.Registerer, lg *slog.Logger) (*Journal, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.WALDir == "" {
		return nil, errors.New("ingest: new journal: no write-ahead log directory")
	}
	if w == nil {
		return nil, errors.New("ingest: new journal: nil store writer")
	}
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	m, err := newPipelineMetrics(reg)
	if err != nil {
		return nil, err
	}
	j := &Journal{cfg: cfg, dir: cfg.WALDir, w: w, m: m, lg: lg, done: make(chan struct{}), progress: make(chan struct{})}
	j.index, _ = w.(indexHolder)
	j.hold = j.index != nil && cfg.TraceIndexDelay > 0
	j.wm = newWALMetrics(j)
	opts := wal.DefaultOptions()
	opts.MaxBytes = cfg.WALMaxBytes
	opts.SegmentBytes = cfg.WALSegmentBytes
	opts.MaxRecordBytes = max(cfg.QueueBytes, cfg.MaxDecompressedBytes) * 8
	opts.Log = lg
	opts.Observe = j.wm.observeSync
	if j.log, err = wal.Open(cfg.WALDir, opts); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	if err := j.wm.register(reg); err != nil {
		j.log.Close()
		return nil, err
	}
	if n := j.log.Bytes(); n > 0 {
		lg.Info("ingest: write-ahead log holds records of a previous run; loading them", "dir", cfg.WALDir, "bytes", n)
	}
	j.prep, _ = w.(SpanPreparer)
	j.replaying = j.log.Bytes() > 0
	j.flushed = time.Now()
	if deploys != nil {
		j.deploys = newDeployTracker(deploys, cfg.DeployCacheSize)
	}
	j.ctx, j.cancel = context.WithCancel(context.Background())
	go j.load()
	return j, nil
}

// Submit appends spans to the log as one record and waits for its fsync.
// A full log answers ErrOverloaded; a write or fsync failure (a full disk)
// an error wrapping store.ErrUnavailable. When ctx ends first the record
// may still be logged and loaded: the client was told to retry and the
// store's idempotent key absorbs the resend.
func (j *Journal) Submit(ctx context.Context, spans []store.Span) error {
	if len(spans) == 0 {
		return nil
	}
	size := spansBytes(spans)
	j.mu.Lock()
	switch {
	case j.closed:
		j.mu.Unlock()
		return ErrClosed
	// Nothing waiting admits any request, so a big one is not refused
	// forever.
	case j.waitSpans > 0 && (j.waitSpans+len(spans) > j.cfg.QueueSpans || j.waitBytes+size > j.cfg.QueueBytes):
		j.mu.Unlock()
		return ErrOverloaded
	}
	j.waitSpans += len(spans)
	j.waitBytes += size
	j.mu.Unlock()
	defer func() {
		j.mu.Lock()
		j.waitSpans -= len(spans)
		j.waitBytes -= size
		j.mu.Unlock()
	}()
	bp, _ := j.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	*bp = appendRows((*bp)[:0], spans)
	err := j.log.Append(ctx, *bp)
	if cap(*bp) <= maxPooledBuffer {
		j.bufs.Put(bp)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, wal.ErrFull):
		return ErrOverloaded
	case errors.Is(err, wal.ErrClosed):
		return ErrClosed
	case ctx.Err() != nil:
		return err
	}
	return retryable(fmt.Errorf("ingest: write-ahead log: %w", err))
}

// Saturated reports whether the log is 90% full, or the requests waiting
// for an fsync hold 90% of QueueSpans or QueueBytes.
func (j *Journal) Saturated() bool {
	j.mu.Lock()
	waiting := j.waitSpans >= j.cfg.QueueSpans/10*9 || j.waitBytes >= j.cfg.QueueBytes/10*9
	j.mu.Unlock()
	return waiting || j.log.Bytes() >= j.log.MaxBytes()/10*9
}

// Lag returns what the loader has yet to apply: the log's bytes after the
// applied position, and how long ago the oldest of them was appended.
func (j *Journal) Lag() (bytes int64, age time.Duration) {
	j.mu.Lock()
	pos, oldest := j.applied, j.oldest
	j.mu.Unlock()
	if !oldest.IsZero() {
		age = time.Since(oldest)
	}
	return j.log.Unapplied(pos), age
}

// WriteHealth reports whether the log makes appends durable; see
// wal.Log.Health.
func (j *Journal) WriteHealth() error {
	if err := j.log.Health(); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	return nil
}

// Replay waits until the loader has applied every record in the log (at
// start: what a previous process left), or ctx ends.
func (j *Journal) Replay(ctx context.Context) error {
	for {
		j.mu.Lock()
		pos, progress := j.applied, j.progress
		j.mu.Unlock()
		if j.log.Unapplied(pos) == 0 {
			return nil
		}
		select {
		case <-progress:
		case <-j.done:
			return ErrClosed
		case <-ctx.Done():
			n, _ := j.Lag()
			return fmt.Errorf("ingest: replay write-ahead log (%d bytes left): %w", n, ctx.Err())
		}
	}
}

// drainLimit bounds how long Close waits for the loader to apply the log:
// whatever is left stays on disk and is loaded at the next start.
const drainLimit = 5 * time.Second

// Close refuses new spans, gives the loader up to drainLimit (or until ctx
// ends) to apply the log, stops it and closes the log.
func (j *Journal) Close(ctx context.Context) error {
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
	dctx, cancel := context.WithTimeout(ctx, drainLimit)
	err := j.Replay(dctx)
	cancel()
	if err != nil {
		j.lg.Warn("ingest: write-ahead log not fully applied at shutdown; the rest loads at the next start", "err", err)
	}
	j.cancel()
	<-j.done
	if err := j.log.Close(); err != nil {
		return fmt.Errorf("ingest: close journal: %w", err)
	}
	return nil
}

// load is the loader: it reads the log in order and applies it in batches.
func (j *Journal) load() {
	defer close(j.done)
	r := j.log.NewReader()
	defer r.Close()
	defer j.flushAllIndex(context.Background())
	var (
		batch []store.Span
		ends  []int // ends[i]: batch[:ends[i]] holds records 0..i
	)
	for {
		rec, err := r.Next(j.ctx, false)
		if errors.Is(err, wal.ErrNoRecord) {
			// Caught up. The reader may have moved past bytes it could
			// not read (damaged after they were synced, which it logged):
			// count them as applied, or Replay would wait for them forever.
			j.replaying = false
			j.markApplied(r.Pos())
			j.loaded(r.Pos())
			rec, err = j.next(r)
		}
		if err != nil {
			return // closed or cancelled
		}
		batch, ends = batch[:0], ends[:0]
		oldest := rec.Appended
		lingered := false
		j.mu.Lock()
		j.oldest = oldest
		j.mu.Unlock()
		end := rec.End
		for {
			if batch, err = decodeRows(batch, rec.Payload); err != nil {
				// The checksum held, so this is a record of another
				// format, not damage: keep it for inspection.
				j.setAside(batch[ends0(ends):], rec.Payload, err)
				batch = batch[:ends0(ends)]
			} else {
				ends = append(ends, len(batch))
			}
			end = rec.End
			if len(batch) >= j.cfg.BatchSpans {
				break
			}
			rec, err = r.Next(j.ctx, false)
			if errors.Is(err, wal.ErrNoRecord) && !lingered {
				lingered = true
				j.linger(oldest)
				rec, err = r.Next(j.ctx, false)
			}
			if err != nil {
				break
			}
		}
		j.m.queueSpans.Set(float64(len(batch)))
		if !j.apply(batch, ends) {
			return // cancelled: the batch stays in the log
		}
		j.loaded(end)
		j.m.queueSpans.Set(0)
		clear(batch) // let the applied rows be collected
		j.markApplied(end)
	}
}

func (j *Journal) release(pos wal.Pos) {
	if err := j.log.Release(pos); err != nil {
		j.lg.Warn("ingest: release applied write-ahead log segments", "err", err)
	}
}

// markApplied records that everything before pos is in the store and
// wakes Replay.
func (j *Journal) markApplied(pos wal.Pos) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if pos == j.applied && j.oldest.IsZero() {
		return
	}
	j.applied, j.oldest = pos, time.Time{}
	close(j.progress)
	j.progress = make(chan struct{})
}

// linger waits until WALLoadDelay after oldest, the append time of a
// batch's first record, so that a batch the log could not fill gathers what
// arrives meanwhile: one commit of ~1,000 spans costs the store far less
// than ten of 100 (a commit's fixed cost dominates small ones), and nobody
// waits for it — the requests were answered at their fsync.
func (j *Journal) linger(oldest time.Time) {
	d := time.Until(oldest.Add(j.cfg.WALLoadDelay))
	if d <= 0 {
		return
	}
	j.sleep(d)
}

func ends0(ends []int) int {
	if len(ends) == 0 {
		return 0
	}
	return ends[len(ends)-1]
}

// maxAttempts is how often a record the store refuses for a reason other
// than unavailability is tried before it is set aside.
const maxAttempts = 5

// apply commits batch, retrying with backoff until it succeeds: an outage
// only delays loading. A failure that is not an outage splits the batch
// into its records; a record that keeps failing is set aside (written to
// a file in the log directory and logged) rather than blocking the log
// forever. It returns false when the loader is cancelled first.
func (j *Journal) apply(batch []store.Span, ends []int) bool {
	if len(batch) == 0 {
		return true
	}
	var backoff time.Duration
	for {
		err := j.commit(batch)
		if err == nil {
			j.recordDeploys(batch)
			return true
		}
		if !errors.Is(err, store.ErrUnavailable) {
			return j.applyEach(batch, ends)
		}
		backoff = min(max(2*backoff, minBackoff), maxBackoff)
		if !j.sleep(backoff) {
			return false
		}
	}
}

// applyEach commits a batch record by record.
func (j *Journal) applyEach(batch []store.Span, ends []int) bool {
	start := 0
	for _, end := range ends {
		rec := batch[start:end]
		var backoff time.Duration
		for attempt := 1; ; attempt++ {
			err := j.commit(rec)
			if err == nil {
				j.recordDeploys(rec)
				break
			}
			if !errors.Is(err, store.ErrUnavailable) && attempt >= maxAttempts {
				j.setAside(rec, nil, err)
				break
			}
			backoff = min(max(2*backoff, minBackoff), maxBackoff)
			if !j.sleep(backoff) {
				return false
			}
		}
		start = end
	}
	return true
}

// commit makes one WriteSpans call, preparing the store first when it
// needs it.
func (j *Journal) commit(spans []store.Span) error {
	ctx, cancel := context.WithTimeout(j.ctx, j.cfg.WriteTimeout)
	defer cancel()
	if j.prep != nil {
		if err := j.prep.PrepareSpans(ctx, spans); err != nil {
			j.m.commits.WithLabelValues(resultError).Inc()
			j.lg.Warn("ingest: prepare spans", "spans", len(spans), "err", err)
			return retryable(fmt.Errorf("ingest: prepare %d spans: %w", len(spans), err))
		}
	}
	start := time.Now()
	var err error
	if j.hold && !j.replaying {
		err = j.index.WriteSpansHoldIndex(ctx, spans)
	} else {
		err = j.w.WriteSpans(ctx, spans)
	}
	if err == nil && j.replaying && j.index != nil {
		// A previous process may have held these traces' index rows
		// and lost them: recompute them from the stored spans.
		// Only an outage retries the batch: the spans are stored, and
		// a record is never set aside for its index rows.
		if rerr := j.index.RebuildTraceIndex(ctx, traceIDs(spans)); rerr != nil {
			j.lg.Warn("ingest: rebuild trace index rows of replayed spans", "spans", len(spans), "err", rerr)
			if errors.Is(rerr, store.ErrUnavailable) {
				err = rerr
			}
		}
	}
	j.m.commitSeconds.Observe(time.Since(start).Seconds())
	j.m.batchSpans.Observe(float64(len(spans)))
	if err == nil {
		j.m.commits.WithLabelValues(resultOK).Inc()
		return nil
	}
	j.m.commits.WithLabelValues(resultError).Inc()
	j.lg.Warn("ingest: load write-ahead log: commit failed", "spans", len(spans), "err", err)
	if j.ctx.Err() != nil {
		return retryable(err) // cancelled: the caller stops
	}
	return fmt.Errorf("ingest: commit %d spans: %w", len(spans), err)
}

// traceIDs lists the traces of spans, each once.
func traceIDs(spans []store.Span) []store.TraceID {
	seen := make(map[store.TraceID]bool, len(spans)/4+1)
	var ids []store.TraceID
	for i := range spans {
		if id := spans[i].TraceID; !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// sleep waits d; false when the loader is cancelled.
func (j *Journal) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-j.ctx.Done():
		return false
	}
}

// setAside keeps a record the store will not take in
// DIR/rejected/<unix ns>.rows and logs it: an acknowledged span is never
// dropped silently, and one bad record cannot stop the log.
func (j *Journal) setAside(spans []store.Span, raw []byte, cause error) {
	if raw == nil {
		raw = appendRows(nil, spans)
	}
	dir := filepath.Join(j.dir, "rejected")
	path := filepath.Join(dir, fmt.Sprintf("%d.rows", time.Now().UnixNano()))
	err := os.MkdirAll(dir, 0o750)
	if err == nil {
		err = os.WriteFile(path, raw, 0o640)
	}
	j.wm.setAside.Add(float64(len(spans)))
	j.lg.Error("ingest: write-ahead log record refused by the store; set aside", "spans", len(spans), "file", path, "cause", cause, "save_err", err)
}

func (j *Journal) recordDeploys(batch []store.Span) {
	if j.deploys != nil {
		recordDeploys(j.ctx, j.deploys, j.cfg.WriteTimeout, j.m, j.lg, batch)
	}
}
