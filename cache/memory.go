package cache

import (
	"context"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Memory is an in-process LRU cache bounded in entries. It is the default
// when no Redis is configured; each tailscope process has its own.
type Memory struct {
	mu     sync.Mutex
	lru    *lru.Cache[string, memEntry]
	now    func() time.Time
	closed bool
}

type memEntry struct {
	value   []byte
	expires time.Time
}

var _ Cache = (*Memory)(nil)

// NewMemory returns an LRU holding at most size entries.
func NewMemory(size int) (*Memory, error) {
	c, err := lru.New[string, memEntry](size)
	if err != nil {
		return nil, err
	}
	return &Memory{lru: c, now: time.Now}, nil
}

// Get implements Cache.
func (m *Memory) Get(_ context.Context, key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, false, ErrClosed
	}
	e, ok := m.lru.Get(key)
	if !ok {
		return nil, false, nil
	}
	if !m.now().Before(e.expires) {
		m.lru.Remove(key)
		return nil, false, nil
	}
	return e.value, true, nil
}

// Set implements Cache. Values are kept as given: callers must not modify
// them afterwards.
func (m *Memory) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.lru.Add(key, memEntry{value: value, expires: m.now().Add(ttl)})
	return nil
}

// Close implements Cache.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.lru.Purge()
	return nil
}
