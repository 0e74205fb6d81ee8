package storetest

import (
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// Two resource bodies for the stores' own tests of how they keep
// resources (each once, with retention).
const (
	ResourceA = `{"service.name":"a","host.name":"h1"}`
	ResourceB = `{"service.name":"b","host.name":"h2"}`
)

// ResourceSpan returns a minimal span (trace, span) starting at at with
// resource res ("" for none).
func ResourceSpan(trace, span byte, at time.Time, res string) store.Span {
	return store.Span{TraceID: store.TraceID{trace}, SpanID: store.SpanID{span}, Service: "s", Name: "n",
		StartUnixNano: at.UnixNano(), DurationNano: 1, Resource: store.Attributes(res)}
}

// CheckResource fails unless the span (trace, span 1) reads back from r
// with resource want.
func CheckResource(t *testing.T, r store.Reader, trace byte, want string) {
	t.Helper()
	spans, err := r.Trace(t.Context(), store.TraceID{trace})
	if err != nil {
		t.Fatalf("trace %d: %v", trace, err)
	}
	if got := string(spans[0].Resource); got != want {
		t.Errorf("trace %d: resource %s, want %s", trace, got, want)
	}
}

// Count returns what a count(*) query over a store's own tables counts.
// The queries below are plain SQL both dialects accept.
type Count func(t *testing.T, query string) int

// ResourcesStoredOnce checks that spans sharing a resource share one row of
// the store's resources table and read back with it, by id and by attribute
// search. Spans start at at.
func ResourcesStoredOnce(t *testing.T, s store.Store, at time.Time, count Count) {
	t.Helper()
	var spans []store.Span
	for i := range byte(100) {
		res := ResourceA
		if i%10 == 0 {
			res = ResourceB
		}
		spans = append(spans, ResourceSpan(i+1, 1, at.Add(time.Duration(i)*time.Millisecond), res))
	}
	spans = append(spans, ResourceSpan(200, 1, at, "")) // no resource
	// Two batches: the second finds both resources in the writer's cache.
	write(t, s, spans[:50]...)
	write(t, s, spans[50:]...)
	if n := count(t, `SELECT count(*) FROM resources`); n != 2 {
		t.Errorf("%d resources stored, want 2", n)
	}
	if n := count(t, `SELECT count(*) FROM spans WHERE resource IS NOT NULL`); n != 0 {
		t.Errorf("%d spans hold their resource inline, want 0", n)
	}
	CheckResource(t, s, 1, ResourceB)
	CheckResource(t, s, 2, ResourceA)
	CheckResource(t, s, 200, "")
	got := search(t, s, store.TraceQuery{Attributes: map[string]string{"host.name": "h2"}, Limit: 100})
	if len(got) != 10 {
		t.Errorf("search host.name=h2: %d traces, want 10", len(got))
	}
}

// ResourcesRetention checks that DeleteBefore(cut) deletes the resources
// only spans before the cut referred to, keeps one whose first span it
// deleted while a later one (at kept) stays, and that a resource it deleted
// is stored again when it comes back. old is before the cut, kept after it.
func ResourcesRetention(t *testing.T, s store.Store, old, kept, cut time.Time, count Count) {
	t.Helper()
	write(t, s, ResourceSpan(1, 1, old, ResourceA), ResourceSpan(2, 1, old, ResourceB))
	// ResourceA again after the cut, in another batch: what the store keeps
	// of its age must move.
	write(t, s, ResourceSpan(3, 1, kept, ResourceA))
	if err := s.DeleteBefore(t.Context(), cut); err != nil {
		t.Fatal(err)
	}
	if n := count(t, `SELECT count(*) FROM resources`); n != 1 {
		t.Errorf("%d resources after the cut, want 1 (ResourceB's only span is gone)", n)
	}
	CheckResource(t, s, 3, ResourceA)
	// ResourceB returns after retention deleted it: a new row, not the old id.
	write(t, s, ResourceSpan(4, 1, kept.Add(time.Minute), ResourceB))
	CheckResource(t, s, 4, ResourceB)
	CheckResource(t, s, 3, ResourceA)
}

// CheckMigratedResource ends a migration test. Span (trace 1, span 1) was
// written with ResourceA inline by the schema from before resources were
// stored once; it must read back with it, and a search by its host.name
// must find it beside a span of ResourceA written now, at at.
func CheckMigratedResource(t *testing.T, s store.Store, at time.Time) {
	t.Helper()
	write(t, s, ResourceSpan(2, 1, at, ResourceA))
	CheckResource(t, s, 1, ResourceA)
	CheckResource(t, s, 2, ResourceA)
	got := search(t, s, store.TraceQuery{Attributes: map[string]string{"host.name": "h1"}})
	if len(got) != 2 {
		t.Errorf("search host.name=h1: %d traces, want 2 (one from before the migration)", len(got))
	}
}
