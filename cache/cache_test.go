package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailscope/tailscope/internal/testenv"
)

// runContract checks the behaviour every Cache backend shares.
func runContract(t *testing.T, c Cache) {
	t.Helper()
	ctx := context.Background()
	key := fmt.Sprintf("k-%d", time.Now().UnixNano())

	t.Run("miss", func(t *testing.T) {
		if _, ok, err := c.Get(ctx, key+"-absent"); err != nil || ok {
			t.Fatalf("Get absent = ok %v, err %v; want miss", ok, err)
		}
	})
	t.Run("set-get", func(t *testing.T) {
		if err := c.Set(ctx, key, []byte("v1"), time.Minute); err != nil {
			t.Fatal(err)
		}
		v, ok, err := c.Get(ctx, key)
		if err != nil || !ok || string(v) != "v1" {
			t.Fatalf("Get = %q, %v, %v; want v1", v, ok, err)
		}
	})
	t.Run("overwrite", func(t *testing.T) {
		if err := c.Set(ctx, key, []byte("v2"), time.Minute); err != nil {
			t.Fatal(err)
		}
		v, _, _ := c.Get(ctx, key)
		if string(v) != "v2" {
			t.Fatalf("Get after overwrite = %q, want v2", v)
		}
	})
}

func TestMemory(t *testing.T) {
	m, err := NewMemory(2)
	if err != nil {
		t.Fatal(err)
	}
	runContract(t, m)

	t.Run("expiry", func(t *testing.T) {
		now := time.Unix(1000, 0)
		m.now = func() time.Time { return now }
		ctx := context.Background()
		if err := m.Set(ctx, "e", []byte("x"), 10*time.Second); err != nil {
			t.Fatal(err)
		}
		now = now.Add(9 * time.Second)
		if _, ok, _ := m.Get(ctx, "e"); !ok {
			t.Fatal("entry expired early")
		}
		now = now.Add(time.Second)
		if _, ok, _ := m.Get(ctx, "e"); ok {
			t.Fatal("entry outlived its ttl")
		}
	})
	t.Run("lru-bound", func(t *testing.T) {
		m.now = time.Now
		ctx := context.Background()
		for _, k := range []string{"a", "b", "c"} {
			if err := m.Set(ctx, k, []byte(k), time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		if _, ok, _ := m.Get(ctx, "a"); ok {
			t.Fatal("size-2 cache kept the least recently used of 3 entries")
		}
	})
	t.Run("closed", func(t *testing.T) {
		m.Close()
		if _, _, err := m.Get(context.Background(), "a"); !errors.Is(err, ErrClosed) {
			t.Fatalf("Get on closed cache: err %v, want ErrClosed", err)
		}
	})
}

func TestRedis(t *testing.T) {
	url := testenv.RedisURL(t)
	ctx := context.Background()
	r, err := OpenRedis(ctx, url, "tailscope-test:")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	runContract(t, r)

	t.Run("expiry", func(t *testing.T) {
		// Redis expires keys itself; a 1 ms ttl is gone after a short wait.
		if err := r.Set(ctx, "short", []byte("x"), time.Millisecond); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, ok, _ := r.Get(ctx, "short"); !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("key with a 1 ms ttl still present after 5 s")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func TestOpenRedisBadURL(t *testing.T) {
	if _, err := OpenRedis(context.Background(), "not-a-url://", ""); err == nil {
		t.Fatal("OpenRedis accepted a bad url")
	}
}

func TestAsideComputesOnceForConcurrentCallers(t *testing.T) {
	m, _ := NewMemory(16)
	a := NewAside(m, time.Minute, 0.2, nil)
	var calls atomic.Int32
	release := make(chan struct{})
	compute := func(context.Context) ([]byte, error) {
		calls.Add(1)
		<-release
		return []byte("result"), nil
	}
	const n = 20
	var wg sync.WaitGroup
	started := make(chan struct{}, n)
	results := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started <- struct{}{}
			v, _, err := a.Get(context.Background(), "k", compute)
			if err != nil {
				t.Error(err)
			}
			results[i] = string(v)
		}()
	}
	for range n {
		<-started
	}
	// Give the goroutines time to reach the singleflight; correctness does
	// not depend on it (late ones find the value in the cache, before or
	// inside a flight of their own), only the coverage does.
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	if c := calls.Load(); c != 1 {
		t.Fatalf("compute ran %d times for %d concurrent callers, want 1", c, n)
	}
	for i, r := range results {
		if r != "result" {
			t.Fatalf("caller %d got %q", i, r)
		}
	}
	if _, hit, _ := a.Get(context.Background(), "k", compute); !hit {
		t.Fatal("second read missed the cache")
	}
}

// lateCache misses its first read whatever it holds: the caller that read
// just before another caller's flight stored the value.
type lateCache struct {
	Cache
	missed bool
}

func (c *lateCache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if !c.missed {
		c.missed = true
		return nil, false, nil
	}
	return c.Cache.Get(ctx, key)
}

// TestAsideLateCallerFindsStoredValue: a caller that missed, and reaches
// the singleflight after another flight stored the value and ended, takes
// the stored value instead of computing it again.
func TestAsideLateCallerFindsStoredValue(t *testing.T) {
	m, _ := NewMemory(16)
	ctx := context.Background()
	if err := m.Set(ctx, "k", []byte("stored"), time.Minute); err != nil {
		t.Fatal(err)
	}
	a := NewAside(&lateCache{Cache: m}, time.Minute, 0, nil)
	computed := false
	v, hit, err := a.Get(ctx, "k", func(context.Context) ([]byte, error) {
		computed = true
		return []byte("computed"), nil
	})
	if err != nil || computed || !hit || string(v) != "stored" {
		t.Fatalf("Get = %q, hit %v, %v, computed %v; want the stored value, a hit, no computation", v, hit, err, computed)
	}
}

type brokenCache struct{}

func (brokenCache) Get(context.Context, string) ([]byte, bool, error) {
	return nil, false, errors.New("down")
}
func (brokenCache) Set(context.Context, string, []byte, time.Duration) error {
	return errors.New("down")
}
func (brokenCache) Close() error { return nil }

func TestAsideDegradesWhenBackendFails(t *testing.T) {
	a := NewAside(brokenCache{}, time.Minute, 0, nil)
	v, hit, err := a.Get(context.Background(), "k", func(context.Context) ([]byte, error) { return []byte("ok"), nil })
	if err != nil || hit || string(v) != "ok" {
		t.Fatalf("Get = %q, %v, %v; want computed value", v, hit, err)
	}
}

func TestAsidePropagatesComputeError(t *testing.T) {
	m, _ := NewMemory(4)
	a := NewAside(m, time.Minute, 0, nil)
	boom := errors.New("boom")
	if _, _, err := a.Get(context.Background(), "k", func(context.Context) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if _, ok, _ := m.Get(context.Background(), "k"); ok {
		t.Fatal("a failed computation was cached")
	}
}

func TestJitterStaysInBounds(t *testing.T) {
	a := NewAside(nil, 100*time.Second, 0.2, nil)
	for range 1000 {
		d := a.jittered()
		if d < 80*time.Second || d > 120*time.Second {
			t.Fatalf("jittered ttl %v outside ±20%% of 100s", d)
		}
	}
}
