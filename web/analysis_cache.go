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
func cached[T any](ctx context.Context, s *Server, key string, compute func(context.Context) (T, error)) (T, error) {
	var zero T
	if s.cache == nil {
		return compute(ctx)
	}
	b, _, err := s.cache.Get(ctx, key, func(ctx context.Context) ([]byte, error) {
		v, err := compute(ctx)
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
