package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailscope/tailscope/store"
)

// ErrOverloaded is returned by Submit when the queue has no room for the
// spans. Nothing was queued; the client should retry later (429 /
// ResourceExhausted with a retry delay).
var ErrOverloaded = errors.New("ingest: overloaded: queue full")

// ErrClosed is returned by Submit after Close.
var ErrClosed = errors.New("ingest: pipeline closed")

// DeployRecorder records automatic deploy markers; store.DeployStore
// satisfies it.
type DeployRecorder interface {
	RecordDeploy(ctx context.Context, d store.Deploy) (store.Deploy, error)
}

// SpanPreparer is implemented by stores that must prepare before they can
// write spans of a new time range: PostgreSQL creates day partitions.
// Submit calls it for each request's spans before queueing them, so a
// request that needs slow preparation waits for it alone and fails alone,
// instead of failing the batch it would have joined.
type SpanPreparer interface {
	PrepareSpans(ctx context.Context, spans []store.Span) error
}

// Pipeline is the group-commit writer between the receivers and the store.
// Submit queues a request's spans and waits until the batch holding them is
// committed, so an acknowledgement always means "durable". Writer
// goroutines take whatever is queued when they are free (up to BatchSpans
// spans, never waiting for more), so a lone request commits at once and
// batches grow by themselves under load. The queue is bounded in spans and
// bytes, counting spans until their commit ends, so memory stays bounded
// whatever the offered load: a request that does not fit is refused at once
// with ErrOverloaded.
type Pipeline struct {
	cfg     Config
	w       store.Writer
	prep    SpanPreparer   // nil: w needs no preparation
	deploys *deployTracker // nil: no markers
	m       *pipelineMetrics
	log     *slog.Logger

	// ctx is the writers' base context; Close cancels it when its own
	// context expires, aborting writes still in progress.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	work   *sync.Cond // signalled when requests arrive or on Close
	queue  []*request // FIFO; queue[head:] is pending
	head   int
	spans  int   // spans queued or being committed
	bytes  int64 // their approximate memory
	closed bool
}

type request struct {
	spans []store.Span
	bytes int64
	done  chan error // buffered: the writer never blocks on it
}

// NewPipeline starts cfg.Writers writer goroutines writing to w. deploys
// may be nil (no automatic deploy markers); reg may be nil (metrics not
// exported). Stop it with Close.
func NewPipeline(cfg Config, w store.Writer, deploys DeployRecorder, reg prometheus.Registerer, log *slog.Logger) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if w == nil {
		return nil, errors.New("ingest: new pipeline: nil store writer")
	}
	m, err := newPipelineMetrics(reg)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pipeline{cfg: cfg, w: w, m: m, log: log, ctx: ctx, cancel: cancel}
	p.prep, _ = w.(SpanPreparer)
	if deploys != nil {
		p.deploys = newDeployTracker(deploys, cfg.DeployCacheSize)
	}
	p.work = sync.NewCond(&p.mu)
	for range cfg.Writers {
		p.wg.Add(1)
		go p.writer()
	}
	return p, nil
}

// Saturated reports whether the queue is nearly full (90% of QueueSpans or
// QueueBytes), so the receiver can refuse a request before spending a
// decode on spans the queue would refuse anyway.
func (p *Pipeline) Saturated() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.spans >= p.cfg.QueueSpans/10*9 || p.bytes >= p.cfg.QueueBytes/10*9
}

// Submit queues spans and blocks until they are committed (nil) or their
// batch failed (an error wrapping store.ErrUnavailable, meaning "retry
// later"). It returns ErrOverloaded at once when the queue is full and
// ErrClosed after Close. When the store is a SpanPreparer, the spans are
// prepared first, within WriteTimeout; a failure there is this request's
// alone, and retryable.
//
// When ctx ends first, Submit returns ctx's error but the spans stay queued
// and may still be committed: the client was told the export failed and
// will resend, and the store's idempotent key turns the resend into a
// no-op. Withdrawing queued spans instead would need per-request
// bookkeeping in the writers for no gain in correctness.
//
// spans must not be modified until Submit returns, nor afterwards when it
// returned ctx's error.
func (p *Pipeline) Submit(ctx context.Context, spans []store.Span) error {
	if len(spans) == 0 {
		return nil
	}
	if p.prep != nil {
		pctx, cancel := context.WithTimeout(ctx, p.cfg.WriteTimeout)
		err := p.prep.PrepareSpans(pctx, spans)
		cancel()
		if err != nil {
			p.log.Warn("ingest: prepare spans", "spans", len(spans), "err", err)
			return retryable(fmt.Errorf("ingest: prepare %d spans: %w", len(spans), err))
		}
	}
	req := &request{spans: spans, bytes: spansBytes(spans), done: make(chan error, 1)}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	// An empty queue admits any request, so one bigger than QueueBytes is
	// not refused forever (Validate keeps span counts within QueueSpans).
	if p.spans > 0 && (p.spans+len(spans) > p.cfg.QueueSpans || p.bytes+req.bytes > p.cfg.QueueBytes) {
		p.mu.Unlock()
		return ErrOverloaded
	}
	p.spans += len(spans)
	p.bytes += req.bytes
	p.queue = append(p.queue, req)
	p.setGauges()
	p.work.Signal()
	p.mu.Unlock()

	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("ingest: waiting for commit: %w", ctx.Err())
	}
}

// Close stops accepting spans, lets the writers commit everything queued,
// and waits for them. If ctx ends first, writes in progress are cancelled
// (their requests fail as unavailable) and Close returns ctx's error
// without waiting further.
func (p *Pipeline) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	p.work.Broadcast()
	p.mu.Unlock()

	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		p.cancel()
		return nil
	case <-ctx.Done():
		p.cancel()
		return fmt.Errorf("ingest: close pipeline: %w", ctx.Err())
	}
}

// setGauges publishes the queue size; p.mu must be held.
func (p *Pipeline) setGauges() {
	p.m.queueSpans.Set(float64(p.spans))
	p.m.queueBytes.Set(float64(p.bytes))
}

// next blocks until requests are queued and takes a batch of them: at
// least one request, more while they fit in BatchSpans. It returns nil
// once the pipeline is closed and drained.
func (p *Pipeline) next(reqs []*request) []*request {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.head == len(p.queue) && !p.closed {
		p.work.Wait()
	}
	n := 0
	for p.head < len(p.queue) {
		r := p.queue[p.head]
		if len(reqs) > 0 && n+len(r.spans) > p.cfg.BatchSpans {
			break
		}
		reqs = append(reqs, r)
		n += len(r.spans)
		p.queue[p.head] = nil
		p.head++
	}
	// Reclaim the consumed front once it dominates, keeping the slice
	// from growing without bound.
	if p.head == len(p.queue) {
		p.queue, p.head = p.queue[:0], 0
	} else if p.head > 1024 && p.head > len(p.queue)/2 {
		p.queue = append(p.queue[:0], p.queue[p.head:]...)
		p.head = 0
	}
	if len(reqs) > 0 && p.head < len(p.queue) {
		p.work.Signal() // more work: wake another writer
	}
	return reqs
}

// release returns the budget of committed or failed requests.
func (p *Pipeline) release(reqs []*request) {
	spans, bytes := 0, int64(0)
	for _, r := range reqs {
		spans += len(r.spans)
		bytes += r.bytes
	}
	p.mu.Lock()
	p.spans -= spans
	p.bytes -= bytes
	p.setGauges()
	p.mu.Unlock()
}

// Backoff between failed commits: enough to stop a dead store from being
// hammered, short enough that recovery is noticed within a second.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = time.Second
)

func (p *Pipeline) writer() {
	defer p.wg.Done()
	var (
		reqs    []*request
		answers []error      // per request, reused
		buf     []store.Span // batch assembly, reused
		backoff time.Duration
	)
	for {
		reqs = p.next(reqs[:0])
		if len(reqs) == 0 {
			return
		}
		batch := reqs[0].spans // a lone request goes as it is, uncopied
		if len(reqs) > 1 {
			buf = buf[:0]
			for _, r := range reqs {
				buf = append(buf, r.spans...)
			}
			batch = buf
		}
		err := p.commit(batch)
		failed := err != nil
		answers = answers[:0]
		if err != nil && len(reqs) > 1 && !errors.Is(err, store.ErrUnavailable) {
			// Not an outage: maybe one request's data upsets the store.
			// Commit each request alone so the others still land.
			failed = false
			for _, r := range reqs {
				rerr := p.commit(r.spans)
				failed = failed || rerr != nil
				answers = append(answers, retryable(rerr))
			}
		} else {
			for range reqs {
				answers = append(answers, retryable(err))
			}
		}
		// The queue's budget goes back before the answers: a client told its
		// spans are committed may send its next request at once, and must not
		// be refused for spans that are no longer queued.
		p.release(reqs)
		for i, r := range reqs {
			r.done <- answers[i]
		}
		if err == nil && p.deploys != nil {
			p.recordDeploys(batch)
		}
		clear(buf) // drop references so committed spans can be collected
		if !failed {
			backoff = 0
			continue
		}
		backoff = min(max(2*backoff, minBackoff), maxBackoff)
		p.sleep(backoff)
	}
}

// commit makes one WriteSpans call.
func (p *Pipeline) commit(spans []store.Span) error {
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.WriteTimeout)
	defer cancel()
	start := time.Now()
	err := p.w.WriteSpans(ctx, spans)
	p.m.commitSeconds.Observe(time.Since(start).Seconds())
	p.m.batchSpans.Observe(float64(len(spans)))
	if err == nil {
		p.m.commits.WithLabelValues(resultOK).Inc()
		return nil
	}
	p.m.commits.WithLabelValues(resultError).Inc()
	p.log.Warn("ingest: commit failed", "spans", len(spans), "err", err)
	return fmt.Errorf("ingest: commit %d spans: %w", len(spans), err)
}

// retryable makes every commit error wrap store.ErrUnavailable: whatever
// went wrong, the client's remedy is to retry later, and a 500 would make
// it drop the data.
func retryable(err error) error {
	if err == nil || errors.Is(err, store.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
}

// sleep waits d, or less when the pipeline is closing (draining should not
// crawl) or cancelled.
func (p *Pipeline) sleep(d time.Duration) {
	p.mu.Lock()
	closing := p.closed
	p.mu.Unlock()
	if closing {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-p.ctx.Done():
	}
}

func (p *Pipeline) recordDeploys(batch []store.Span) {
	recordDeploys(p.ctx, p.deploys, p.cfg.WriteTimeout, p.m, p.log, batch)
}

// recordDeploys records a marker for each (service, version) pair of a
// committed batch that t has not seen yet.
func recordDeploys(ctx context.Context, t *deployTracker, timeout time.Duration, m *pipelineMetrics, log *slog.Logger, batch []store.Span) {
	for _, d := range t.observe(batch) {
		rctx, cancel := context.WithTimeout(ctx, timeout)
		err := t.record(rctx, d)
		cancel()
		if err != nil {
			m.deploys.WithLabelValues(resultError).Inc()
			log.Warn("ingest: record deploy marker", "service", d.Service, "version", d.Version, "err", err)
			continue
		}
		m.deploys.WithLabelValues(resultOK).Inc()
		log.Info("ingest: new version seen", "service", d.Service, "version", d.Version, "at", d.At)
	}
}

// spanOverhead is the fixed memory of a store.Span beside its variable
// parts.
const spanOverhead = int64(unsafe.Sizeof(store.Span{}))

// spansBytes approximates the memory held by spans. Attribute objects
// shared between spans (the resource) are counted once per span, which
// over-counts: the bound errs on the safe side.
func spansBytes(spans []store.Span) int64 {
	n := int64(0)
	for i := range spans {
		s := &spans[i]
		n += spanOverhead + int64(len(s.Name)+len(s.StatusMessage)+len(s.Attributes)+len(s.Resource)+
			len(s.Tenant)+len(s.Dependency))
		for _, e := range s.Events {
			n += int64(unsafe.Sizeof(e)) + int64(len(e.Name)+len(e.Attributes))
		}
		for _, l := range s.Links {
			n += int64(unsafe.Sizeof(l)) + int64(len(l.Attributes))
		}
	}
	return n
}
