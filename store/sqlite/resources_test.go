package sqlite

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/storetest"
)

func countResources(t *testing.T, db *DB) int {
	t.Helper()
	var n int
	if err := db.r.QueryRowContext(t.Context(), `SELECT count(*) FROM resources`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestResourcesStoredOnce: spans sharing a resource share one row of
// resources and read back with it, by id and by attribute search.
func TestResourcesStoredOnce(t *testing.T) {
	ctx := t.Context()
	db := openInternal(t)
	at := time.Unix(1_700_000_000, 0)
	var spans []store.Span
	for i := range byte(100) {
		res := storetest.ResourceA
		if i%10 == 0 {
			res = storetest.ResourceB
		}
		spans = append(spans, storetest.ResourceSpan(i+1, 1, at.Add(time.Duration(i)*time.Millisecond), res))
	}
	spans = append(spans, storetest.ResourceSpan(200, 1, at, "")) // no resource
	// Two batches: the second finds both resources in the cache.
	if err := db.WriteSpans(ctx, spans[:50]); err != nil {
		t.Fatal(err)
	}
	if err := db.WriteSpans(ctx, spans[50:]); err != nil {
		t.Fatal(err)
	}
	if n := countResources(t, db); n != 2 {
		t.Errorf("%d resources stored, want 2", n)
	}
	var inline int
	if err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM spans WHERE resource IS NOT NULL`).Scan(&inline); err != nil {
		t.Fatal(err)
	}
	if inline != 0 {
		t.Errorf("%d spans hold their resource inline, want 0", inline)
	}
	storetest.CheckResource(t, db, 1, storetest.ResourceB)
	storetest.CheckResource(t, db, 2, storetest.ResourceA)
	storetest.CheckResource(t, db, 200, "")
	got, err := db.SearchTraces(ctx, store.TraceQuery{Attributes: map[string]string{"host.name": "h2"}, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 {
		t.Errorf("search host.name=h2: %d traces, want 10", len(got))
	}
}

// TestResourcesAfterRollback: a failed batch leaves no resource id in the
// writer's cache that the rollback took back.
func TestResourcesAfterRollback(t *testing.T) {
	ctx := t.Context()
	db := openInternal(t)
	at := time.Unix(1_700_000_000, 0)
	bad := storetest.ResourceSpan(2, 1, at, storetest.ResourceB)
	bad.Events = []store.Event{{Name: "e", Attributes: store.Attributes(`{not json`)}}
	if err := db.WriteSpans(ctx, []store.Span{storetest.ResourceSpan(1, 1, at, storetest.ResourceA), bad}); err == nil {
		t.Fatal("a batch with undecodable event attributes was stored")
	}
	// The next new resource takes the id storetest.ResourceA had in the rolled-back batch.
	if err := db.WriteSpans(ctx, []store.Span{storetest.ResourceSpan(3, 1, at, storetest.ResourceB)}); err != nil {
		t.Fatal(err)
	}
	if err := db.WriteSpans(ctx, []store.Span{storetest.ResourceSpan(1, 1, at, storetest.ResourceA)}); err != nil {
		t.Fatal(err)
	}
	storetest.CheckResource(t, db, 1, storetest.ResourceA)
	storetest.CheckResource(t, db, 3, storetest.ResourceB)
}

// TestDeleteBeforeKeepsReferencedResources: retention deletes resources
// only kept spans no longer refer to, including a resource whose first
// span it deletes while a later one stays; a resource it deleted is stored
// again when it comes back.
func TestDeleteBeforeKeepsReferencedResources(t *testing.T) {
	ctx := t.Context()
	db := openInternal(t)
	t0 := time.Unix(1_700_000_000, 0)
	write := func(spans ...store.Span) {
		t.Helper()
		if err := db.WriteSpans(ctx, spans); err != nil {
			t.Fatal(err)
		}
	}
	write(storetest.ResourceSpan(1, 1, t0, storetest.ResourceA), storetest.ResourceSpan(2, 1, t0, storetest.ResourceB))
	// storetest.ResourceA again ten minutes on, in another batch: its last_ns must move.
	write(storetest.ResourceSpan(3, 1, t0.Add(10*time.Minute), storetest.ResourceA))
	if err := db.DeleteBefore(ctx, t0.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := countResources(t, db); n != 1 {
		t.Errorf("%d resources after the cut, want 1 (storetest.ResourceB's only span is gone)", n)
	}
	storetest.CheckResource(t, db, 3, storetest.ResourceA)
	// storetest.ResourceB returns after retention deleted it: a new row, not the old id.
	write(storetest.ResourceSpan(4, 1, t0.Add(11*time.Minute), storetest.ResourceB))
	storetest.CheckResource(t, db, 4, storetest.ResourceB)
	storetest.CheckResource(t, db, 3, storetest.ResourceA)
}

// TestResourcesMigration: spans written before migration 00004 keep their
// inline resource, read back and searched as before.
func TestResourcesMigration(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "old.db")
	w := openAtVersion(t, path, 3)
	at := time.Unix(1_700_000_000, 0).UnixNano()
	tid, sid := store.TraceID{1}, store.SpanID{1}
	if _, err := w.ExecContext(ctx, `INSERT INTO spans (trace_id, span_id, service, name, kind, start_ns, duration_ns, status_code, resource)
VALUES (?, ?, 's', 'n', 0, ?, 1, 0, ?)`, tid[:], sid[:], at, storetest.ResourceA); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ExecContext(ctx, `INSERT INTO trace_buckets VALUES (?, ?, ?, ?)`, tid[:], at>>30, at, at); err != nil {
		t.Fatal(err)
	}
	db := reopenLatest(t, w, path)
	if err := db.WriteSpans(ctx, []store.Span{storetest.ResourceSpan(2, 1, time.Unix(0, at), storetest.ResourceA)}); err != nil {
		t.Fatal(err)
	}
	storetest.CheckResource(t, db, 1, storetest.ResourceA)
	storetest.CheckResource(t, db, 2, storetest.ResourceA)
	got, err := db.SearchTraces(ctx, store.TraceQuery{Attributes: map[string]string{"host.name": "h1"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Errorf("search host.name=h1: %d traces, want 2 (one from before the migration)", len(got))
	}
}
