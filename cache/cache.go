// Package cache keeps computed analysis results for a short time so that a
// stampede of identical dashboard loads computes once. Two backends share
// one interface: Redis (shared by every tailscope process) and an in-process
// LRU (the default when no Redis URL is given). Aside adds cache-aside
// reads with TTL jitter and coalesced computations (internal/flight) on top
// of either.
package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/tailscope/tailscope/internal/flight"
)

// Cache is a byte-value cache with per-entry expiry.
type Cache interface {
	// Get returns the value and true, or false when the key is absent or
	// expired. An error means the backend failed, not that the key is absent.
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// Set stores value under key for ttl.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Close releases the backend.
	Close() error
}

// Aside reads through a Cache: on a miss it computes the value once for
// all concurrent callers of the same key (internal/flight), stores it with a
// jittered TTL (so entries computed together do not expire together), and
// returns it. A failing backend degrades to computing every time; it never
// fails the request.
type Aside struct {
	c      Cache
	ttl    time.Duration
	jitter float64 // fraction of ttl, e.g. 0.2 for ±20%
	group  flight.Group[result]
	log    *slog.Logger
}

// NewAside returns a cache-aside reader over c. ttl bounds how long a new
// span can stay hidden behind a cached result.
func NewAside(c Cache, ttl time.Duration, jitter float64, log *slog.Logger) *Aside {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Aside{c: c, ttl: ttl, jitter: jitter, log: log}
}

// Get returns the cached value for key, or computes, stores and returns it.
// hit reports whether the value came from the cache.
func (a *Aside) Get(ctx context.Context, key string, compute func(ctx context.Context) ([]byte, error)) (value []byte, hit bool, err error) {
	if v, ok, err := a.c.Get(ctx, key); err != nil {
		a.log.Warn("cache get failed; computing", "key", key, "err", err)
	} else if ok {
		return v, true, nil
	}
	// The computation is shared: it runs until its value is stored, or
	// until every caller waiting for it has gone (then nobody would read
	// it, and its store reads are cancelled with it). One impatient client
	// does not fail the others.
	f, err := a.group.Do(ctx, key, func(cctx context.Context) (result, error) {
		// A caller that missed just before another flight stored the value
		// starts its own flight once that one has ended: look again before
		// computing, so concurrent callers compute a value once.
		if v, ok, err := a.c.Get(cctx, key); err == nil && ok {
			return result{v, true}, nil
		}
		v, err := compute(cctx)
		if err != nil {
			return result{}, err
		}
		if err := a.c.Set(context.WithoutCancel(cctx), key, v, a.jittered()); err != nil {
			a.log.Warn("cache set failed", "key", key, "err", err)
		}
		return result{v, false}, nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, fmt.Errorf("cache: %w", err)
		}
		return nil, false, err
	}
	return f.value, f.hit, nil
}

// result is what one shared computation hands its callers.
type result struct {
	value []byte
	hit   bool // found in the cache after all
}

func (a *Aside) jittered() time.Duration {
	if a.jitter <= 0 {
		return a.ttl
	}
	f := 1 + a.jitter*(2*rand.Float64()-1)
	return time.Duration(float64(a.ttl) * f)
}

// ErrClosed is returned by a closed cache.
var ErrClosed = errors.New("cache: closed")
