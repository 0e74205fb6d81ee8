package web

import (
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

func TestTraceMemo(t *testing.T) {
	var m traceMemo
	t0 := time.Unix(1000, 0)
	a, b, c := store.TraceID{1}, store.TraceID{2}, store.TraceID{3}
	da, db, dc := &traceDetail{TraceID: "a"}, &traceDetail{TraceID: "b"}, &traceDetail{TraceID: "c"}
	m.put(a, da, t0)
	m.put(b, db, t0.Add(time.Second))
	tests := []struct {
		name string
		id   store.TraceID
		at   time.Time
		want *traceDetail
	}{
		{"a fresh entry", a, t0.Add(2 * time.Second), da},
		{"another fresh entry", b, t0.Add(2 * time.Second), db},
		{"an unknown trace", c, t0, nil},
		{"an expired entry", a, t0.Add(traceMemoTTL), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := m.get(tt.id, tt.at); got != tt.want {
				t.Errorf("get = %v, want %v", got, tt.want)
			}
		})
	}
	// A third trace evicts the oldest: the memo holds traceMemoSize.
	m.put(c, dc, t0.Add(2*time.Second))
	if _, ok := m.get(a, t0.Add(2*time.Second)); ok {
		t.Error("the oldest trace was kept past the memo's size")
	}
	if got, _ := m.get(c, t0.Add(2*time.Second)); got != dc {
		t.Error("the newest trace is missing")
	}
}
