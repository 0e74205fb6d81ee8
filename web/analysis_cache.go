package web

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// analysisQuantum is how finely "now" is resolved for analysis requests
// with relative ranges: requests within the same quantum share a cache key,
// so a dashboard reloaded by twenty people computes once. With the cache
// TTL it bounds how long a new span can stay hidden.
const analysisQuantum = 5 * time.Second

// analysisNow is the clock for analysis requests, truncated to the quantum.
func (s *Server) analysisNow() time.Time { return s.now().Truncate(analysisQuantum) }

// cached runs compute through the cache-aside layer when one is configured.
// The key must name every input of the computation with absolute times.
// Every analysis comes here, so this is where they are bounded: identical
// concurrent requests share one computation (the cache's, or s.flights
// without a cache), which runs in the analysis pool (a slot, a memory
// budget, a time limit) and is cancelled when every request waiting for
// it has gone.
func cached[T any](ctx context.Context, s *Server, key string, compute func(context.Context) (T, error)) (T, error) {
	var zero T
	bounded := func(ctx context.Context) (T, error) {
		var v T
		err := s.pool.Run(ctx, func(ctx context.Context) error {
			var err error
			v, err = compute(ctx)
			return err
		})
		return v, err
	}
	if s.cache == nil {
		v, err := s.flights.Do(ctx, key, func(ctx context.Context) (any, error) { return bounded(ctx) })
		if err != nil {
			return zero, err
		}
		return v.(T), nil
	}
	b, _, err := s.cache.Get(ctx, key, func(ctx context.Context) ([]byte, error) {
		v, err := bounded(ctx)
		if err != nil {
			return nil, err
		}
		return json.Marshal(v)
	})
	if err != nil {
		return zero, err
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return zero, fmt.Errorf("decode cached %s: %w", key, err)
	}
	return v, nil
}

// cacheKey joins key parts; times are written as Unix nanoseconds.
func cacheKey(kind string, parts ...any) string {
	b, _ := json.Marshal(parts)
	return "v1:" + kind + ":" + string(b)
}
