package analysistest

import (
	"context"
	"fmt"
	"sync"

	"github.com/tailscope/tailscope/store"
)

// SpanReader is the read side analysis takes (analysis.SpanSource).
type SpanReader interface {
	Samples(ctx context.Context, q store.SampleQuery) ([]store.Sample, error)
	Traces(ctx context.Context, ids []store.TraceID) (map[store.TraceID][]store.Span, error)
}

// TraceCounter reads through a real source and counts how often each
// trace and each sample query is asked of it, for tests of what reads a
// computation makes.
type TraceCounter struct {
	src SpanReader
	// Gate, when set, holds every Traces call until it is closed.
	Gate chan struct{}

	mu      sync.Mutex
	reads   map[store.TraceID]int
	calls   int
	queries map[string]int
}

// CountTraces wraps src.
func CountTraces(src SpanReader) *TraceCounter {
	return &TraceCounter{src: src, reads: map[store.TraceID]int{}, queries: map[string]int{}}
}

// Samples counts q and reads it from the source.
func (c *TraceCounter) Samples(ctx context.Context, q store.SampleQuery) ([]store.Sample, error) {
	c.mu.Lock()
	k := fmt.Sprintf("%s %s version=%q tenant=%q [%d, %d) limit %d", q.Service, q.Endpoint, q.Version, q.Tenant, q.From.UnixNano(), q.To.UnixNano(), q.Limit)
	if q.MinDurationNano > 0 {
		k += fmt.Sprintf(" duration>=%d", q.MinDurationNano)
	}
	c.queries[k]++
	c.mu.Unlock()
	return c.src.Samples(ctx, q)
}

// SampleReads is how many times each sample query was asked for, by a
// text naming the query.
func (c *TraceCounter) SampleReads() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.queries))
	for q, n := range c.queries {
		out[q] = n
	}
	return out
}

// Traces counts ids and reads them from the source.
func (c *TraceCounter) Traces(ctx context.Context, ids []store.TraceID) (map[store.TraceID][]store.Span, error) {
	c.mu.Lock()
	c.calls++
	for _, id := range ids {
		c.reads[id]++
	}
	c.mu.Unlock()
	if c.Gate != nil {
		select {
		case <-c.Gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return c.src.Traces(ctx, ids)
}

// Reads is how many times each trace was asked for.
func (c *TraceCounter) Reads() map[store.TraceID]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[store.TraceID]int, len(c.reads))
	for id, n := range c.reads {
		out[id] = n
	}
	return out
}

// Calls is how many Traces calls reached the source.
func (c *TraceCounter) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}
