package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/tailscope/tailscope/migrations"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
	"github.com/tailscope/tailscope/store/storetest"
)

// The durability promise (a 2xx survives a crash) rests on these settings.
func TestWriterSettings(t *testing.T) {
	db := openInternal(t)
	tests := []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"busy_timeout", "10000"},
	}
	for _, tc := range tests {
		t.Run(tc.pragma, func(t *testing.T) {
			var got string
			if err := db.w.QueryRowContext(t.Context(), "PRAGMA "+tc.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("PRAGMA %s = %s, want %s", tc.pragma, got, tc.want)
			}
		})
	}
	if _, err := db.r.ExecContext(t.Context(), "DELETE FROM spans"); err == nil {
		t.Errorf("reader pool accepted a write; it must be query_only")
	}
}

func TestOpenCreatesDirectoriesAndReopens(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a dir?#", "nested", "tailscope.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	sp := store.Span{TraceID: store.TraceID{1}, SpanID: store.SpanID{1}, Service: "s", Name: "n", StartUnixNano: time.Now().UnixNano()}
	if err := db.WriteSpans(ctx, []store.Span{sp}); err != nil {
		t.Fatalf("WriteSpans: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Migrating an up-to-date database is a no-op, and the data is there
	// after reopening.
	if err := Migrate(ctx, path); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	db, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	if _, err := db.Trace(ctx, sp.TraceID); err != nil {
		t.Fatalf("Trace after reopen: %v", err)
	}
	if _, err := Open(ctx, ""); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Open(\"\") err = %v, want ErrInvalid", err)
	}
}

// TestTraceBucketsMigration: spans written before migration 00003 (when the
// unique index began with trace_id) are found by trace id afterwards,
// including a trace whose spans straddle a bucket boundary and one starting
// before 1970, and re-sending them still stores nothing twice.
func TestTraceBucketsMigration(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "old.db")
	w := openAtVersion(t, path, 2)
	edge := int64(7) << sqlcommon.SQLiteTraceBucketShift
	old := []store.Span{
		{TraceID: store.TraceID{1}, SpanID: store.SpanID{1}, Service: "s", Name: "root", StartUnixNano: edge - 1},
		{TraceID: store.TraceID{1}, SpanID: store.SpanID{2}, ParentSpanID: store.SpanID{1}, Service: "s", Name: "child", StartUnixNano: edge},
		{TraceID: store.TraceID{2}, SpanID: store.SpanID{1}, Service: "s", Name: "old", StartUnixNano: -5},
	}
	for _, s := range old {
		if _, err := w.ExecContext(ctx, `INSERT INTO spans (trace_id, span_id, parent_span_id, service, name, kind, start_ns, duration_ns, status_code)
VALUES (?, ?, ?, ?, ?, 0, ?, 1, 0)`, s.TraceID[:], s.SpanID[:], nullSpanID(s.ParentSpanID), s.Service, s.Name, s.StartUnixNano); err != nil {
			t.Fatal(err)
		}
	}
	db := reopenLatest(t, w, path)
	check := func(when string) {
		t.Helper()
		got, err := db.Traces(ctx, []store.TraceID{{1}, {2}})
		if err != nil {
			t.Fatal(err)
		}
		if len(got[store.TraceID{1}]) != 2 || len(got[store.TraceID{2}]) != 1 {
			t.Fatalf("%s: trace 1 has %d spans (want 2), trace 2 has %d (want 1)", when, len(got[store.TraceID{1}]), len(got[store.TraceID{2}]))
		}
		if tr, err := db.Trace(ctx, store.TraceID{1}); err != nil || len(tr) != 2 || tr[0].Name != "root" || tr[1].Name != "child" {
			t.Fatalf("%s: Trace = %v, %v; want root then child", when, tr, err)
		}
	}
	check("after migration")
	if err := db.WriteSpans(ctx, old); err != nil {
		t.Fatalf("re-sending the old spans: %v", err)
	}
	check("after re-sending")
}

// openAtVersion opens the writer connection of a new database at path
// migrated up to version (not further), to write rows as an older
// tailscope did.
func openAtVersion(t *testing.T, path string, version int64) *sql.DB {
	t.Helper()
	w, err := openWriter(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, w, migrations.SQLite)
	if err != nil {
		w.Close()
		t.Fatal(err)
	}
	if _, err := p.UpTo(t.Context(), version); err != nil {
		w.Close()
		t.Fatalf("migrate to version %d: %v", version, err)
	}
	return w
}

// reopenLatest closes w, the writer of openAtVersion, and opens the
// database at path as tailscope does, migrating it to the latest version.
func reopenLatest(t *testing.T, w *sql.DB, path string) *DB {
	t.Helper()
	w.Close()
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open (migrating to the latest version): %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func nullSpanID(id store.SpanID) any {
	if id.IsZero() {
		return nil
	}
	return id[:]
}

// TestDeleteBeforeDropsTraceBuckets: retention removes the buckets it
// emptied and keeps the one holding the cut.
func TestDeleteBeforeDropsTraceBuckets(t *testing.T) {
	ctx := t.Context()
	db := openInternal(t)
	var spans []store.Span
	for b := range int64(10) {
		spans = append(spans, store.Span{TraceID: store.TraceID{byte(b + 1)}, SpanID: store.SpanID{1}, Service: "s", Name: "n",
			StartUnixNano: b << sqlcommon.SQLiteTraceBucketShift})
	}
	if err := db.WriteSpans(ctx, spans); err != nil {
		t.Fatal(err)
	}
	cut := int64(6)<<sqlcommon.SQLiteTraceBucketShift + 1
	if err := db.DeleteBefore(ctx, time.Unix(0, cut)); err != nil {
		t.Fatal(err)
	}
	var n, low int64
	if err := db.r.QueryRowContext(ctx, `SELECT count(*), coalesce(min(bucket), -1) FROM trace_buckets`).Scan(&n, &low); err != nil {
		t.Fatal(err)
	}
	if n != 4 || low != 6 {
		t.Errorf("after the cut: %d buckets from %d; want 4 (6..9)", n, low)
	}
	if _, err := db.Trace(ctx, store.TraceID{7}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the trace before the cut: err %v, want not found", err)
	}
	if _, err := db.Trace(ctx, store.TraceID{8}); err != nil {
		t.Errorf("the trace after the cut: %v", err)
	}
}

// TestTraceLookupPlan: reading traces by id scans spans_start_trace over
// the buckets' ranges; a plan that indexes or scans the whole table instead
// took seconds on a million spans.
func TestTraceLookupPlan(t *testing.T) {
	ctx := t.Context()
	db := openInternal(t)
	ids := make([]store.TraceID, 200) // a search page's worth
	for i := range ids {
		ids[i] = store.TraceID{byte(i), 1}
	}
	summary, args := sqlcommon.SummarySQL(sqlcommon.SQLite, ids)
	queries := []struct {
		name string
		sql  string
		args []any
	}{
		{"trace", `SELECT ` + sqlcommon.SpanColumns + ` FROM ` + sqlcommon.SQLiteTraceSpans("tb.trace_id = ?"), []any{[]byte{1}}},
		{"summary", summary, args},
	}
	for _, q := range queries {
		rows, err := db.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q.sql, q.args...)
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		text := strings.Join(plan, "; ")
		if !strings.Contains(text, "SEARCH s USING INDEX spans_start_trace (start_ns>? AND start_ns<?)") ||
			strings.Contains(text, "AUTOMATIC") || strings.Contains(text, "SCAN s") {
			t.Errorf("%s plan: %s", q.name, text)
		}
	}
}

// openInternal opens a fresh store for tests that look inside it.
func openInternal(t *testing.T) *DB {
	t.Helper()
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// BenchmarkTraceIndexCost is the trace index's share of a write: the same
// 5,000-span batches with and without trace_index rows, in traces of five
// spans and of ten (a feed request's). One run alternates the two once;
// run it N times for N interleaved pairs (benchstat). CPU per span (the
// process's: SQLite runs in it) is the figure to compare.
//
//	go test ./store/sqlite -run '^$' -bench TraceIndexCost -benchtime 20x | tee -a out.txt   # N times
func BenchmarkTraceIndexCost(b *testing.B) {
	db, err := Open(context.Background(), filepath.Join(b.TempDir(), "tailscope.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	storetest.IndexCost(b, db, func(skip bool) { db.skipTraceIndex = skip }, func() map[string]float64 {
		return map[string]float64{"cpu-us/span": storetest.ProcessCPU().Seconds()}
	})
}

// TestRollupWeightSqMigration: a rollup row written before weight_sq
// existed reads as unsampled (weight_sq = count), and merges with rows
// written after it: the effective sample size of a bucket holding both
// counts the old row's spans once each and a new span of weight 10 as
// 100 in weight_sq.
func TestRollupWeightSqMigration(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "old.db")
	w := openAtVersion(t, path, 14)
	minute := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	if _, err := w.ExecContext(ctx, `INSERT INTO rollups (step_s, bucket_ns, service, endpoint, version, kind, count, errors, roots,
  first_ns, min_ns, max_ns, sum_ns, zero_count, bins) VALUES (60, ?, 'api', 'GET /a', 'v1', -1, 5, 1, 5, ?, 1000, 9000, 20000, 5, x'')`,
		minute.UnixNano(), minute.UnixNano()); err != nil {
		t.Fatal(err)
	}
	db := reopenLatest(t, w, path)
	read := func() store.Rollup {
		t.Helper()
		rs, err := db.Rollups(ctx, store.RollupQuery{Step: store.RollupMinute, From: minute, To: minute.Add(time.Minute), Service: "api"})
		if err != nil || len(rs) != 1 {
			t.Fatalf("Rollups = %+v, %v; want one row", rs, err)
		}
		return rs[0]
	}
	if r := read(); r.Count != 5 || r.WeightSq != 5 {
		t.Fatalf("old row: count %d, weight_sq %d; want 5, 5", r.Count, r.WeightSq)
	}
	sp := store.Span{TraceID: store.TraceID{9}, SpanID: store.SpanID{9}, Service: "api", Name: "GET /a", Version: "v1",
		Kind: store.KindServer, StartUnixNano: minute.Add(time.Second).UnixNano(), DurationNano: int64(time.Millisecond), Weight: 10}
	if err := db.WriteSpans(ctx, []store.Span{sp}); err != nil {
		t.Fatal(err)
	}
	if r := read(); r.Count != 15 || r.WeightSq != 105 {
		t.Fatalf("old row and a span of weight 10: count %d, weight_sq %d; want 15, 105", r.Count, r.WeightSq)
	}
}

// TestRollupNamesMigration: storetest.RollupNamesMigration on SQLite.
func TestRollupNamesMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	w := openAtVersion(t, path, 16)
	storetest.RollupNamesMigration(t, func(endpoint string, kind, count, bucket int64) error {
		_, err := w.ExecContext(t.Context(), `INSERT INTO rollups (step_s, bucket_ns, service, endpoint, version, kind, count, errors, roots,
  first_ns, min_ns, max_ns, sum_ns, zero_count, bins) VALUES (3600, ?, 'api', ?, '', ?, ?, 0, 0, ?, 1, 1, 1, 0, x'')`,
			bucket, endpoint, kind, count, bucket)
		return err
	}, func() store.Store { return reopenLatest(t, w, path) })
}
