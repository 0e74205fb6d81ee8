// Package admission bounds heavy work (tailscope's analyses) so that it
// cannot starve ingest or exhaust memory: a fixed number of slots, a
// bounded wait for one, a time limit per run, and a heap budget above
// which no further run starts while another is running. A request past a
// bound gets an error that says which, and the web layer turns it into a
// clear answer ("busy, retry in 5 s", "too large: narrow the range")
// instead of an empty reply after the write timeout.
package admission

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"time"
)

// ErrBusy: every slot stayed taken for the whole queue wait.
var ErrBusy = errors.New("admission: every analysis slot is busy")

// ErrTooLong: the run passed its time limit and was cancelled.
var ErrTooLong = errors.New("admission: analysis ran past its time limit")

// Limits are the bounds of a Pool. A zero field takes its default.
type Limits struct {
	// Concurrency is how many runs go at once; default GOMAXPROCS/4, at
	// least 1, so ingest keeps most of the CPU.
	Concurrency int
	// QueueWait is how long a run waits for a slot before ErrBusy.
	QueueWait time.Duration
	// Timeout bounds one run; it must be under the HTTP write timeout so
	// the client gets an answer.
	Timeout time.Duration
	// MemoryBytes is the live heap above which a new run waits (within
	// QueueWait) until a running one ends. A run always starts when none
	// is running, so one analysis larger than the budget still completes.
	// Zero: no memory budget.
	MemoryBytes uint64
}

// Defaults for zero Limits fields.
const (
	DefaultQueueWait = 10 * time.Second
	DefaultTimeout   = 60 * time.Second
)

// DefaultConcurrency is GOMAXPROCS/4, at least 1.
func DefaultConcurrency() int { return max(1, runtime.GOMAXPROCS(0)/4) }

// Pool admits runs within Limits. Its methods are safe for concurrent use.
type Pool struct {
	limits Limits
	slots  chan struct{}
	heap   func() uint64

	mu       sync.Mutex
	running  int
	released chan struct{} // closed and replaced when a run ends
}

// New returns a Pool; zero fields of l take their defaults.
func New(l Limits) *Pool {
	if l.Concurrency <= 0 {
		l.Concurrency = DefaultConcurrency()
	}
	if l.QueueWait <= 0 {
		l.QueueWait = DefaultQueueWait
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	return &Pool{limits: l, slots: make(chan struct{}, l.Concurrency), heap: liveHeap, released: make(chan struct{})}
}

// Limits returns the pool's bounds, defaults filled in.
func (p *Pool) Limits() Limits { return p.limits }

// Run waits for a slot (and for the heap to be under budget), then runs fn
// with a context that ends at the time limit or when ctx does. It returns
// ErrBusy when it could not start within QueueWait, and an error wrapping
// ErrTooLong when fn ran past the time limit.
func (p *Pool) Run(ctx context.Context, fn func(context.Context) error) error {
	wait := time.NewTimer(p.limits.QueueWait)
	defer wait.Stop()
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-wait.C:
		return fmt.Errorf("%w (%d at a time)", ErrBusy, p.limits.Concurrency)
	}
	defer func() { <-p.slots }()
	if err := p.waitForMemory(ctx, wait.C); err != nil {
		return err
	}
	defer p.release()

	rctx, cancel := context.WithTimeoutCause(ctx, p.limits.Timeout, ErrTooLong)
	defer cancel()
	err := fn(rctx)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(rctx), ErrTooLong) {
		return fmt.Errorf("%w (%s)", ErrTooLong, p.limits.Timeout)
	}
	return err
}

// waitForMemory holds a run back while the heap is over budget and another
// run is going (its end frees memory); it then counts the run as running.
func (p *Pool) waitForMemory(ctx context.Context, deadline <-chan time.Time) error {
	for {
		p.mu.Lock()
		if p.limits.MemoryBytes == 0 || p.running == 0 || p.heap() <= p.limits.MemoryBytes {
			p.running++
			p.mu.Unlock()
			return nil
		}
		released := p.released
		p.mu.Unlock()
		select {
		case <-released:
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("%w: the heap is over the analysis memory budget of %d MiB", ErrBusy, p.limits.MemoryBytes>>20)
		}
	}
}

func (p *Pool) release() {
	p.mu.Lock()
	p.running--
	close(p.released)
	p.released = make(chan struct{})
	p.mu.Unlock()
}

// liveHeap is the heap the last garbage collection found live: cheap to
// read, and what a budget should compare (not garbage awaiting collection).
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
