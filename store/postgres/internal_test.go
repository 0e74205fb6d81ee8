package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/storetest"
)

func open(t testing.TB, url string, opts ...Option) *DB {
	t.Helper()
	db, err := Open(context.Background(), url, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func partitionDays(t *testing.T, db *DB) []int64 {
	t.Helper()
	days, err := db.loadPartitions(t.Context())
	if err != nil {
		t.Fatalf("load partitions: %v", err)
	}
	slices.Sort(days)
	return days
}

func TestDayOf(t *testing.T) {
	tests := []struct {
		ns   int64
		want int64
	}{
		{0, 0},
		{dayNS - 1, 0},
		{dayNS, 1},
		{-1, -1},
		{-dayNS, -1},
		{-dayNS - 1, -2},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.ns), func(t *testing.T) {
			if got := dayOf(tc.ns); got != tc.want {
				t.Errorf("dayOf(%d) = %d, want %d", tc.ns, got, tc.want)
			}
		})
	}
	if got := partitionName(dayOf(time.Date(2026, 11, 23, 23, 59, 0, 0, time.UTC).UnixNano())); got != "spans_p20261123" {
		t.Errorf("partitionName = %s", got)
	}
}

func TestPartitionsAheadAndOnDemand(t *testing.T) {
	db := open(t, testenv.FreshPostgres(t))
	today := dayOf(time.Now().UnixNano())
	if got, want := partitionDays(t, db), []int64{today - 1, today, today + 1, today + 2, today + 3}; !slices.Equal(got, want) {
		t.Fatalf("partitions after Open = %v, want %v", got, want)
	}
	// A batch spanning two old days creates both partitions.
	old := time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC)
	spans := []store.Span{
		{TraceID: store.TraceID{1}, SpanID: store.SpanID{1}, Service: "s", Name: "n", StartUnixNano: old.UnixNano()},
		{TraceID: store.TraceID{1}, SpanID: store.SpanID{2}, Service: "s", Name: "n", StartUnixNano: old.Add(2 * time.Second).UnixNano()},
	}
	if err := db.WriteSpans(t.Context(), spans); err != nil {
		t.Fatalf("WriteSpans: %v", err)
	}
	days := partitionDays(t, db)
	if !slices.Contains(days, dayOf(old.UnixNano())) || !slices.Contains(days, dayOf(old.UnixNano())+1) {
		t.Errorf("partitions %v lack the days of the batch", days)
	}
	// Retention drops whole partitions from the catalog.
	if err := db.DeleteBefore(t.Context(), time.Unix(0, (today-1)*dayNS)); err != nil {
		t.Fatalf("DeleteBefore: %v", err)
	}
	if got, want := partitionDays(t, db), []int64{today - 1, today, today + 1, today + 2, today + 3}; !slices.Equal(got, want) {
		t.Errorf("partitions after DeleteBefore = %v, want %v", got, want)
	}
}

// Two processes sharing a database: one creates partitions while the other
// writes, then drops a partition the other has cached.
func TestPartitionsAcrossProcesses(t *testing.T) {
	url := testenv.FreshPostgres(t)
	a, b := open(t, url), open(t, url)
	day := time.Date(2025, 1, 10, 12, 0, 0, 0, time.UTC)
	mk := func(n byte, at time.Time) store.Span {
		return store.Span{TraceID: store.TraceID{n}, SpanID: store.SpanID{n}, Service: "s", Name: "n", StartUnixNano: at.UnixNano()}
	}
	// Both create the same missing partitions at once.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db := a
			if i%2 == 1 {
				db = b
			}
			errs[i] = db.WriteSpans(context.Background(), []store.Span{mk(byte(i+1), day.Add(time.Duration(i)*24*time.Hour))})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent write %d: %v", i, err)
		}
	}
	// b drops the day a has cached; a's next write to it must still work.
	if err := b.DeleteBefore(t.Context(), day.Add(24*time.Hour)); err != nil {
		t.Fatalf("DeleteBefore: %v", err)
	}
	if err := a.WriteSpans(t.Context(), []store.Span{mk(50, day)}); err != nil {
		t.Fatalf("write to a partition another process dropped: %v", err)
	}
	if _, err := a.Trace(t.Context(), store.TraceID{50}); err != nil {
		t.Errorf("Trace after rewrite: %v", err)
	}
}

// Every write method is idempotent, including duplicates inside one batch.
func TestWriteMethods(t *testing.T) {
	for _, m := range []struct {
		name string
		m    writeMethod
	}{{"copy-first", writeCopyFirst}, {"staging", writeStaging}} {
		t.Run(m.name, func(t *testing.T) {
			db := open(t, testenv.FreshPostgres(t))
			db.write = m.m
			gen := storetest.NewBatchGen(500, time.Now(), 0)
			batch := slices.Clone(gen.Next())
			for range 2 {
				if err := db.WriteSpans(t.Context(), batch); err != nil {
					t.Fatalf("WriteSpans: %v", err)
				}
			}
			// New spans mixed with duplicates, and a duplicate within the batch.
			mixed := append(slices.Clone(gen.Next()), batch[:100]...)
			mixed = append(mixed, mixed[0])
			if err := db.WriteSpans(t.Context(), mixed); err != nil {
				t.Fatalf("WriteSpans(mixed): %v", err)
			}
			var n int
			if err := db.pool.QueryRow(t.Context(), "SELECT count(*) FROM spans").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 1000 {
				t.Errorf("stored %d spans, want 1000", n)
			}
		})
	}
}

func TestUnavailable(t *testing.T) {
	t.Run("nothing listening", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		_, err := Open(ctx, "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("Open(closed port) err = %v, want ErrUnavailable", err)
		}
	})
	t.Run("connections killed then recovered", func(t *testing.T) {
		url := testenv.FreshPostgres(t)
		db := open(t, url)
		sp := func(n byte) []store.Span {
			return []store.Span{{TraceID: store.TraceID{n}, SpanID: store.SpanID{n}, Service: "s", Name: "n", StartUnixNano: time.Now().UnixNano()}}
		}
		if err := db.WriteSpans(t.Context(), sp(1)); err != nil {
			t.Fatalf("first write: %v", err)
		}
		// An administrator (or a failover) terminates every connection.
		admin, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close(context.Background())
		var killed int
		if err := admin.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&killed); err != nil {
			t.Fatal(err)
		}
		if killed == 0 {
			t.Fatal("no connection was terminated; the test proves nothing")
		}
		// The first call may see the dead connection; if it fails, it
		// must say "unavailable" so the receiver answers 503.
		err = db.WriteSpans(t.Context(), sp(2))
		if err != nil && !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("write after kill: err = %v, want nil or ErrUnavailable", err)
		}
		// The pool recovers by itself.
		if err := db.WriteSpans(t.Context(), sp(3)); err != nil {
			t.Fatalf("write after recovery: %v", err)
		}
		if _, err := db.Trace(t.Context(), store.TraceID{3}); err != nil {
			t.Fatalf("read after recovery: %v", err)
		}
	})
	t.Run("classification", func(t *testing.T) {
		ctx := context.Background()
		tests := []struct {
			err  error
			want bool
		}{
			{context.DeadlineExceeded, true},
			{fmt.Errorf("read: %w", syscallReset()), true},
			{errors.New("syntax error"), false},
		}
		for _, tc := range tests {
			if got := errors.Is(mapErr(ctx, "op", tc.err), store.ErrUnavailable); got != tc.want {
				t.Errorf("mapErr(%v) unavailable = %v, want %v", tc.err, got, tc.want)
			}
		}
	})
}

// Several tailscope processes starting at once all migrate; goose's session
// lock makes that safe.
func TestMigrateConcurrently(t *testing.T) {
	url := testenv.FreshPostgres(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = Migrate(context.Background(), url)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate %d: %v", i, err)
		}
	}
	open(t, url) // and the schema works
}

// TestHeldFlushAfterRebuild: two processes on one database; one rebuilds
// rows whose spans the other holds index rows for
// (storetest.HeldFlushAfterRebuild).
// The holder runs with its look-ups on (the first minute after opening)
// and off (later: storedOrSeen).
func TestHeldFlushAfterRebuild(t *testing.T) {
	for _, lookUps := range []bool{true, false} {
		t.Run(fmt.Sprintf("look-ups=%v", lookUps), func(t *testing.T) {
			url := testenv.FreshPostgres(t)
			a, b := open(t, url), open(t, url)
			if !lookUps {
				b.lookUps = newLookUps(time.Time{}, lookUpWindow)
			}
			storetest.HeldFlushAfterRebuild(t, a, b)
		})
	}
}
