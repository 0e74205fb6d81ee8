package web

import (
	"sync"
	"time"

	"github.com/tailscope/tailscope/store"
)

// traceMemoTTL and traceMemoSize bound traceMemo: long enough for the
// requests a trace page makes right after it (the waterfall rows, a span's
// details), few enough entries that a 50,000-span trace or two is all it
// holds.
const (
	traceMemoTTL  = 30 * time.Second
	traceMemoSize = 2
)

// traceMemo keeps the last traces' details for a short while. The trace
// page, the waterfall rows its script fetches a moment later and each
// selected span's details need the same spans and analysis, which for a
// 50,000-span trace take over a second to read and compute; without it
// the rows would arrive a second after the page. Pages and the JSON API
// always read afresh (a reload shows late spans); only the rows and
// details take from the memo. The zero value is ready to use.
type traceMemo struct {
	mu      sync.Mutex
	entries []memoEntry
}

type memoEntry struct {
	id store.TraceID
	at time.Time
	d  *traceDetail
}

func (m *traceMemo) get(id store.TraceID, now time.Time) (*traceDetail, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.entries {
		if e.id == id && now.Sub(e.at) < traceMemoTTL {
			return e.d, true
		}
	}
	return nil, false
}

func (m *traceMemo) put(id store.TraceID, d *traceDetail, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	kept := []memoEntry{{id: id, at: now, d: d}}
	for _, e := range m.entries {
		if e.id != id && now.Sub(e.at) < traceMemoTTL && len(kept) < traceMemoSize {
			kept = append(kept, e)
		}
	}
	m.entries = kept
}
