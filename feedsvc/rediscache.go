package feedsvc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// redisCache is feature-svc's cache on a real Redis, traced by redisotel.
type redisCache struct {
	rdb   *redis.Client // traced: the feed's calls
	admin *redis.Client // untraced: fault injection (flush)
}

func openRedis(ctx context.Context, rawURL string, tp trace.TracerProvider) (*redisCache, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("feedsvc: redis url: %w", err)
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("feedsvc: redis: %w", err)
	}
	err = redisotel.InstrumentTracing(rdb,
		redisotel.WithTracerProvider(tp),
		redisotel.WithCallerEnabled(false),
		// Connection setup (dial, HELLO, CLIENT SETINFO) is not the feed's
		// work and happens at random moments; tracing it would only add
		// spans the simulated mode cannot reproduce.
		redisotel.WithDialFilter(true),
		redisotel.WithCommandFilter(func(cmd redis.Cmder) bool {
			return redisotel.DefaultCommandFilter(cmd) || connSetup(cmd)
		}),
		redisotel.WithCommandsFilter(func(cmds []redis.Cmder) bool {
			return !slices.ContainsFunc(cmds, func(c redis.Cmder) bool { return !connSetup(c) })
		}),
		redisotel.WithAttributes(attribute.String("db.namespace", fmt.Sprint(opt.DB))),
	)
	if err != nil {
		rdb.Close()
		return nil, fmt.Errorf("feedsvc: redis tracing: %w", err)
	}
	return &redisCache{rdb: rdb, admin: redis.NewClient(opt)}, nil
}

func connSetup(cmd redis.Cmder) bool {
	switch strings.ToLower(cmd.Name()) {
	case "hello", "client", "auth", "select", "readonly":
		return true
	}
	return false
}

func (c *redisCache) close() error {
	return errors.Join(c.rdb.Close(), c.admin.Close())
}

func (c *redisCache) mget(ctx context.Context, keys []string) ([][]byte, error) {
	vals, err := c.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("feedsvc: cache mget: %w", err)
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		if s, ok := v.(string); ok {
			out[i] = []byte(s)
		}
	}
	return out, nil
}

func (c *redisCache) set(ctx context.Context, entries []cacheEntry) error {
	if len(entries) == 0 {
		return nil
	}
	pipe := c.rdb.Pipeline()
	for _, e := range entries {
		pipe.Set(ctx, e.key, e.value, e.ttl)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("feedsvc: cache set: %w", err)
	}
	return nil
}

func (c *redisCache) flush(ctx context.Context, prefix string) (int, error) {
	n := 0
	iter := c.admin.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	batch := make([]string, 0, 500)
	del := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := c.admin.Unlink(ctx, batch...).Err()
		n += len(batch)
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == cap(batch) {
			if err := del(); err != nil {
				return n, fmt.Errorf("feedsvc: cache flush: %w", err)
			}
		}
	}
	if err := iter.Err(); err != nil {
		return n, fmt.Errorf("feedsvc: cache flush: %w", err)
	}
	if err := del(); err != nil {
		return n, fmt.Errorf("feedsvc: cache flush: %w", err)
	}
	return n, nil
}
