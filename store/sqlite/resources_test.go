package sqlite

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/storetest"
)

// rowCounter counts through the reader pool, which sees every commit.
func rowCounter(db *DB) storetest.Count {
	return func(t *testing.T, query string) int {
		t.Helper()
		var n int
		if err := db.r.QueryRowContext(t.Context(), query).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
}

// TestResourcesStoredOnce: spans sharing a resource share one row of
// resources and read back with it, by id and by attribute search.
func TestResourcesStoredOnce(t *testing.T) {
	db := openInternal(t)
	storetest.ResourcesStoredOnce(t, db, time.Unix(1_700_000_000, 0), rowCounter(db))
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
	db := openInternal(t)
	t0 := time.Unix(1_700_000_000, 0)
	storetest.ResourcesRetention(t, db, t0, t0.Add(10*time.Minute), t0.Add(5*time.Minute), rowCounter(db))
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
	storetest.CheckMigratedResource(t, db, time.Unix(0, at))
}
