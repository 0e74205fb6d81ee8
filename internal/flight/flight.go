// Package flight coalesces identical concurrent computations, like
// golang.org/x/sync/singleflight, but the shared computation's context
// lives as long as someone waits for it: it is cancelled when the last
// caller leaves (a closed browser tab, a client timeout), not when the
// first does, and not never. singleflight leaves that choice to the
// caller; detaching the computation kept abandoned analyses running to the
// end, and passing the first caller's context failed everyone when that
// one caller gave up.
package flight

import (
	"context"
	"sync"
)

// Group runs at most one computation per key at a time.
type Group[V any] struct {
	mu    sync.Mutex
	calls map[string]*call[V]
}

type call[V any] struct {
	done    chan struct{}
	val     V
	err     error
	waiters int
	cancel  context.CancelFunc
}

// Do returns fn's result for key, running fn once for all callers that
// arrive while it runs. fn's context carries the first caller's values
// (trace, deadline-free) and is cancelled once every caller's ctx is done.
// shared reports whether the result went to more than one caller.
func (g *Group[V]) Do(ctx context.Context, key string, fn func(context.Context) (V, error)) (v V, err error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[string]*call[V]{}
	}
	c, ok := g.calls[key]
	if !ok {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		c = &call[V]{done: make(chan struct{}), cancel: cancel}
		g.calls[key] = c
		go func() {
			defer cancel()
			c.val, c.err = fn(fctx)
			g.mu.Lock()
			delete(g.calls, key)
			g.mu.Unlock()
			close(c.done)
		}()
	}
	c.waiters++
	g.mu.Unlock()

	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		g.mu.Lock()
		c.waiters--
		last := c.waiters == 0
		if last {
			// Nobody will read the result: stop the work, and let a new
			// caller start afresh rather than join a cancelled flight.
			c.cancel()
			if g.calls[key] == c {
				delete(g.calls, key)
			}
		}
		g.mu.Unlock()
		var zero V
		return zero, ctx.Err()
	}
}
