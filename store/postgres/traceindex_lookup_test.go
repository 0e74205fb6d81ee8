package postgres

import (
	"testing"
	"time"

	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/storetest"
)

// TestHeldWithoutLookUps: two processes on one database; b holds rows
// without looking traces up (its look-up window has passed), so it holds
// a later part of a trace a stored. Its own reads flush that part first
// and find every span; the flush, meeting a's row, merges into it and
// turns b's look-ups back on, so b merges the next such part at once and
// a reads it at once too. A trace new to both is held, and its flush
// leaves look-ups off.
func TestHeldWithoutLookUps(t *testing.T) {
	ctx := t.Context()
	url := testenv.FreshPostgres(t)
	a, b := open(t, url), open(t, url)
	b.lookUps = newLookUps(time.Time{}, lookUpWindow) // the window passed long ago
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	span := func(trace, id, parent byte, service string, start time.Duration) store.Span {
		s := store.Span{
			Service: service, Name: "op", Kind: store.KindServer,
			StartUnixNano: base.Add(start).UnixNano(), DurationNano: int64(time.Millisecond), Weight: 1,
		}
		s.TraceID[0], s.SpanID[0] = trace, id
		if parent != 0 {
			s.ParentSpanID[0] = parent
		}
		return s
	}
	readTrace := func(db *DB, id store.TraceID, want int) {
		t.Helper()
		spans, err := db.Trace(ctx, id)
		if err != nil || len(spans) != want {
			t.Fatalf("Trace: %d spans, %v; want %d", len(spans), err, want)
		}
	}
	readTraces := func(db *DB, id store.TraceID, want int) {
		t.Helper()
		got, err := db.Traces(ctx, []store.TraceID{id})
		if err != nil || len(got[id]) != want {
			t.Fatalf("Traces: %d spans, %v; want %d", len(got[id]), err, want)
		}
	}

	// A trace a stored, and a later part of it at b.
	root := span(1, 1, 0, "frontend", 0)
	if err := a.WriteSpans(ctx, []store.Span{root}); err != nil {
		t.Fatal(err)
	}
	late := span(1, 2, 1, "worker", time.Minute) // after the stored row's last start
	if err := b.WriteSpansHoldIndex(ctx, []store.Span{late}); err != nil {
		t.Fatal(err)
	}
	if n := b.HeldTraceIndexRows(); n != 1 {
		t.Fatalf("b holds %d rows, want 1: it looked the trace up", n)
	}
	if b.lookUps.on(b.now()) {
		t.Fatal("look-ups on before any flush met a stored row")
	}
	readTraces(b, root.TraceID, 2) // flushes the held part first
	if n := b.HeldTraceIndexRows(); n != 0 {
		t.Fatalf("b still holds %d rows after reading the trace", n)
	}
	if !b.lookUps.on(b.now()) {
		t.Fatal("look-ups still off after a flush met a's row")
	}
	readTraces(a, root.TraceID, 2)
	// Trace flushes too. (b has seen trace 1 now: it would merge a later
	// part at once.)
	b.lookUps = newLookUps(time.Time{}, lookUpWindow)
	root4 := span(4, 1, 0, "frontend", 0)
	if err := a.WriteSpans(ctx, []store.Span{root4}); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteSpansHoldIndex(ctx, []store.Span{span(4, 2, 1, "worker", 2*time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if n := b.HeldTraceIndexRows(); n != 1 {
		t.Fatalf("b holds %d rows, want 1", n)
	}
	readTrace(b, root4.TraceID, 2)
	readTrace(a, root4.TraceID, 2)
	if !b.lookUps.on(b.now()) {
		t.Fatal("look-ups still off after Trace's flush met a's row")
	}

	// With look-ups on, b merges a later part of another of a's traces at
	// once: a reads it without waiting for b's flush.
	root2 := span(2, 1, 0, "frontend", 0)
	if err := a.WriteSpans(ctx, []store.Span{root2}); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteSpansHoldIndex(ctx, []store.Span{span(2, 2, 1, "worker", time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if n := b.HeldTraceIndexRows(); n != 0 {
		t.Fatalf("b holds %d rows of a trace a stored, with look-ups on", n)
	}
	readTrace(a, root2.TraceID, 2)

	// A trace new to both is held, and its flush meets no stored row.
	b.lookUps = newLookUps(time.Time{}, lookUpWindow)
	fresh := []store.Span{span(3, 1, 0, "frontend", 0), span(3, 2, 1, "api", time.Second)}
	if err := b.WriteSpansHoldIndex(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if err := b.FlushTraceIndex(ctx); err != nil {
		t.Fatal(err)
	}
	if b.lookUps.on(b.now()) {
		t.Fatal("look-ups on after a flush that met no stored row")
	}
	// Every row counts every span once.
	sums, err := a.SearchTraces(ctx, store.TraceQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	count := map[byte]int{}
	for _, s := range sums {
		count[s.TraceID[0]] = s.SpanCount
	}
	if count[1] != 2 || count[2] != 2 || count[3] != 2 || count[4] != 2 || len(sums) != 4 {
		t.Errorf("span counts %v (%d traces), want 2 for each of 4 traces", count, len(sums))
	}
}

// TestHeldIndexWithoutLookUps runs the trace index contract through held
// writes with look-ups off, as a process holds rows once its first minute
// has passed (TestStore runs them with look-ups on).
func TestHeldIndexWithoutLookUps(t *testing.T) {
	storetest.RunHeldIndex(t, func(t *testing.T) store.Store {
		db, err := Open(t.Context(), testenv.FreshPostgres(t))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		db.lookUps = newLookUps(time.Time{}, lookUpWindow)
		return db
	})
}
