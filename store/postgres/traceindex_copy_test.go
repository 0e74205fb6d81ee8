package postgres

import (
	"testing"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

// TestFreshTraces: a batch is COPYed only when every trace in it is new
// to the process; a conflict backs off for conflictBackoff batches; the
// memory forgets a trace two generations later.
func TestFreshTraces(t *testing.T) {
	rows := func(ids ...byte) []sqlcommon.IndexRow {
		out := make([]sqlcommon.IndexRow, len(ids))
		for i, id := range ids {
			out[i].TraceID = store.TraceID{id}
		}
		return out
	}
	f := newFreshTraces(4)
	steps := []struct {
		name     string
		ids      []byte
		conflict bool // f.conflicted() after the batch
		want     bool
	}{
		{"new traces", []byte{1, 2}, false, true},
		{"one known among new ones", []byte{3, 1}, false, false},
		{"the new one of that batch is known now", []byte{3}, false, false},
		// cur {1,2,3} + 4 fills the generation: {1,2,3,4} becomes prev.
		{"new, filling the generation", []byte{4}, false, true},
		{"known from the previous generation", []byte{2}, false, false},
		{"new", []byte{5, 6}, false, true},
		// cur {2,5,6} + 7 rotates again: {1,3,4} are forgotten.
		{"new, rotating again", []byte{7}, false, true},
		{"forgotten two generations later", []byte{1, 3}, true, true},
	}
	for _, s := range steps {
		if got := f.take(rows(s.ids...)); got != s.want {
			t.Fatalf("%s: take(%v) = %v, want %v", s.name, s.ids, got, s.want)
		}
		if s.conflict {
			f.conflicted()
		}
	}
	for i := range conflictBackoff {
		if f.take(rows(byte(100 + i))) {
			t.Fatalf("batch %d after a conflict: fresh, want a backoff of %d batches", i+1, conflictBackoff)
		}
	}
	if !f.take(rows(200)) {
		t.Errorf("after the backoff: a new trace is not fresh")
	}
}
