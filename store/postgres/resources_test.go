package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/storetest"
)

func countRows(t *testing.T, db *DB, query string) int {
	t.Helper()
	var n int
	if err := db.pool.QueryRow(t.Context(), query).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func rowCounter(db *DB) storetest.Count {
	return func(t *testing.T, query string) int { return countRows(t, db, query) }
}

func writeAll(t *testing.T, db *DB, spans ...store.Span) {
	t.Helper()
	if err := db.WriteSpans(t.Context(), spans); err != nil {
		t.Fatal(err)
	}
}

// TestResourcesStoredOnce: spans sharing a resource share one row of
// resources and read back with it, by id and by attribute search.
func TestResourcesStoredOnce(t *testing.T) {
	db := open(t, testenv.FreshPostgres(t))
	storetest.ResourcesStoredOnce(t, db, time.Now().Add(-time.Hour), rowCounter(db))
}

// TestResourcesConcurrentWriters: writers adding the same new resources at
// once, in different orders, neither fail (no deadlock, no duplicate key)
// nor store a resource twice.
func TestResourcesConcurrentWriters(t *testing.T) {
	db := open(t, testenv.FreshPostgres(t))
	at := time.Now().Add(-time.Hour)
	const writers, resources = 4, 50
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for w := range writers {
		wg.Go(func() {
			var spans []store.Span
			for i := range resources {
				r := (i*7 + w*13) % resources // each writer its own order
				spans = append(spans, storetest.ResourceSpan(byte(w+1), byte(i+1), at,
					fmt.Sprintf(`{"service.name":"svc-%d"}`, r)))
			}
			errs[w] = db.WriteSpans(context.Background(), spans)
		})
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", w, err)
		}
	}
	if n := countRows(t, db, `SELECT count(*) FROM resources`); n != resources {
		t.Errorf("%d resources stored, want %d", n, resources)
	}
	if n := countRows(t, db, `SELECT count(*) FROM spans WHERE resource_id IS NULL`); n != 0 {
		t.Errorf("%d spans without a resource id", n)
	}
}

// TestResourcesCleanedAlike: bodies that differ only in bytes the store
// must replace (invalid UTF-8) clean to one text and share one row.
func TestResourcesCleanedAlike(t *testing.T) {
	db := open(t, testenv.FreshPostgres(t))
	at := time.Now().Add(-time.Hour)
	writeAll(t, db,
		storetest.ResourceSpan(1, 1, at, "{\"host.name\":\"h\xff\"}"),
		storetest.ResourceSpan(2, 1, at, "{\"host.name\":\"h\xfe\"}"))
	if n := countRows(t, db, `SELECT count(*) FROM resources`); n != 1 {
		t.Errorf("%d resources stored, want 1", n)
	}
	storetest.CheckResource(t, db, 2, `{"host.name":"h`+"\uFFFD"+`"}`)
}

// TestResourcesLastRaised: a resource's last_ns follows its newest span
// within resourceTouchSlack, so retention can trust it.
func TestResourcesLastRaised(t *testing.T) {
	db := open(t, testenv.FreshPostgres(t))
	t0 := time.Now().Add(-2 * time.Hour)
	writeAll(t, db, storetest.ResourceSpan(1, 1, t0, storetest.ResourceA))
	later := t0.Add(30 * time.Minute)
	writeAll(t, db, storetest.ResourceSpan(2, 1, later, storetest.ResourceA))
	var last int64
	if err := db.pool.QueryRow(t.Context(), `SELECT last_ns FROM resources`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	if last < later.UnixNano()-resourceTouchSlack {
		t.Errorf("last_ns %d, more than the slack before the newest span %d", last, later.UnixNano())
	}
}

// TestDeleteBeforeKeepsReferencedResources: retention deletes the
// resources of dropped days only, and a resource it deleted is stored
// again when it comes back.
func TestDeleteBeforeKeepsReferencedResources(t *testing.T) {
	db := open(t, testenv.FreshPostgres(t))
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(-72 * time.Hour)
	// PostgreSQL drops whole days: the cut a few minutes into the second
	// day drops the first.
	storetest.ResourcesRetention(t, db, day.Add(time.Hour), day.Add(25*time.Hour),
		day.Add(24*time.Hour+5*time.Minute), rowCounter(db))
}

// TestResourcesDeletedElsewhere: a resource deleted behind this process's
// back (another process's retention) is stored again on its next raise,
// not referred to by a dangling id.
func TestResourcesDeletedElsewhere(t *testing.T) {
	db := open(t, testenv.FreshPostgres(t))
	t0 := time.Now().Add(-3 * time.Hour)
	writeAll(t, db, storetest.ResourceSpan(1, 1, t0, storetest.ResourceA))
	if _, err := db.pool.Exec(t.Context(), `DELETE FROM resources`); err != nil {
		t.Fatal(err)
	}
	writeAll(t, db, storetest.ResourceSpan(2, 1, t0.Add(time.Hour), storetest.ResourceA))
	storetest.CheckResource(t, db, 2, storetest.ResourceA)
}

// TestResourcesMigration: spans written before migration 00003 keep their
// inline resource, read back and searched as before.
func TestResourcesMigration(t *testing.T) {
	ctx := t.Context()
	url := testenv.FreshPostgres(t)
	sqlDB := migratedTo(t, url, 2)
	at := time.Now().Add(-time.Hour).UnixNano()
	day := dayOf(at)
	from, to := dayBounds(day)
	if _, err := sqlDB.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE %s PARTITION OF spans FOR VALUES FROM (%s) TO (%s)`,
		partitionName(day), from, to)); err != nil {
		t.Fatal(err)
	}
	tid, sid := store.TraceID{1}, store.SpanID{1}
	if _, err := sqlDB.ExecContext(ctx, `INSERT INTO spans (trace_id, span_id, service, name, kind, start_ns, duration_ns, status_code, resource)
VALUES ($1, $2, 's', 'n', 0, $3, 1, 0, $4)`, tid[:], sid[:], at, storetest.ResourceA); err != nil {
		t.Fatal(err)
	}
	db := open(t, url)
	storetest.CheckMigratedResource(t, db, time.Unix(0, at))
}
