package postgres

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
	"github.com/tailscope/tailscope/store/storetest"
)

// TestTraceReadsPruneDays: reading traces by id (an analysis's sample)
// looks each trace up only in the day partitions it has spans in —
// without statistics and after ANALYZE — and still returns every span:
// of a trace that crosses midnight, and of one the trace index has no row
// for (read the old way).
func TestTraceReadsPruneDays(t *testing.T) {
	ctx := t.Context()
	db := open(t, testenv.FreshPostgres(t))
	today := time.Now().UTC().Truncate(24 * time.Hour)
	var recent []store.TraceID
	for d := 7; d >= 0; d-- {
		gen := storetest.NewBatchGenPerTrace(5000, today.Add(-time.Duration(d)*24*time.Hour+time.Hour), byte(d), 10)
		for range 2 {
			batch := gen.Next()
			if err := db.WriteSpans(ctx, batch); err != nil {
				t.Fatal(err)
			}
			for i := 0; d == 0 && i < len(batch); i += 10 {
				recent = append(recent, batch[i].TraceID)
			}
		}
	}
	// A trace across midnight: its root ends after it, a child starts
	// before, one after (written in two batches).
	straddle := storetest.NewBatchGenPerTrace(10, today.Add(-time.Minute), 100, 10).Next()
	straddle[9].StartUnixNano = today.Add(time.Minute).UnixNano()
	if err := db.WriteSpans(ctx, straddle[:5]); err != nil {
		t.Fatal(err)
	}
	if err := db.WriteSpans(ctx, straddle[5:]); err != nil {
		t.Fatal(err)
	}
	// A trace without an index row.
	unindexed := storetest.NewBatchGenPerTrace(10, today.Add(2*time.Hour), 101, 10).Next()
	db.skipTraceIndex = true
	err := db.WriteSpans(ctx, unindexed)
	db.skipTraceIndex = false
	if err != nil {
		t.Fatal(err)
	}
	ids := append(recent[:400:400], straddle[0].TraceID, unindexed[0].TraceID, recent[0])
	for _, stats := range []string{"none", "analyzed"} {
		if stats == "analyzed" {
			if _, err := db.pool.Exec(ctx, "ANALYZE"); err != nil {
				t.Fatal(err)
			}
		}
		reqs := make([]store.SpanRef, len(ids))
		for i, id := range ids {
			reqs[i] = store.SpanRef{TraceID: id, SpanID: store.SpanID{1}}
		}
		for name, read := range map[string]func() (map[store.TraceID][]store.Span, error){
			"Traces":        func() (map[store.TraceID][]store.Span, error) { return db.Traces(ctx, ids) },
			"TraceShapes":   func() (map[store.TraceID][]store.Span, error) { return db.TraceShapes(ctx, ids) },
			"RequestShapes": func() (map[store.TraceID][]store.Span, error) { return db.RequestShapes(ctx, reqs) },
		} {
			got, err := read()
			if err != nil {
				t.Fatalf("stats=%s %s: %v", stats, name, err)
			}
			if len(got) != 402 {
				t.Errorf("stats=%s %s: %d traces, want 402", stats, name, len(got))
			}
			for id, spans := range got {
				if len(spans) != 10 {
					t.Errorf("stats=%s %s: trace %x has %d spans, want 10", stats, name, id, len(spans))
				}
			}
		}
		for _, id := range []store.TraceID{recent[0], straddle[0].TraceID, unindexed[0].TraceID} {
			got, err := db.Trace(ctx, id)
			if err != nil {
				t.Fatalf("stats=%s Trace: %v", stats, err)
			}
			if len(got) != 10 || !slices.IsSortedFunc(got, func(a, b store.Span) int { return cmp.Compare(a.StartUnixNano, b.StartUnixNano) }) {
				t.Errorf("stats=%s Trace(%x): %d spans (want 10, by start)", stats, id, len(got))
			}
		}
		// The plans: per trace, only its days' partitions are scanned,
		// by primary key.
		thisDay, dayBefore := partitionName(dayOf(today.UnixNano())), partitionName(dayOf(today.UnixNano())-1)
		checkPlan(t, "stats="+stats+" Trace(straddling)", explainScans(t, db, traceSQL, straddle[0].TraceID[:]),
			map[string]string{thisDay: "Index Scan " + thisDay + "_pkey", dayBefore: "Index Scan " + dayBefore + "_pkey"})
		checkPlan(t, "stats="+stats+" Trace(today's)", explainScans(t, db, traceSQL, recent[0][:]),
			map[string]string{thisDay: "Index Scan " + thisDay + "_pkey"})
		raw := make([][]byte, 0, 401)
		for _, id := range append(recent[:400:400], straddle[0].TraceID) {
			raw = append(raw, id[:])
		}
		checkPlan(t, "stats="+stats+" Traces", explainScans(t, db, tracesByIndexSQL(traceIDsSource, selectShapes), raw),
			map[string]string{thisDay: "Index Scan " + thisDay + "_pkey", dayBefore: "Index Scan " + dayBefore + "_pkey"})
		spanIDs := make([][]byte, len(raw))
		for i := range spanIDs {
			spanIDs[i] = []byte{1, 0, 0, 0, 0, 0, 0, 0}
		}
		checkPlan(t, "stats="+stats+" RequestShapes", explainScans(t, db, tracesByIndexSQL(requestsSource, selectRequestShapes), raw, spanIDs),
			map[string]string{thisDay: "Index Scan " + thisDay + "_pkey", dayBefore: "Index Scan " + dayBefore + "_pkey"})
	}
}

// explainScans runs sql with args under EXPLAIN ANALYZE and returns how
// each day partition of spans it executed was scanned (node type and
// index); partitions pruned at run time ran no loop and are left out.
func explainScans(t *testing.T, db *DB, sql string, args ...any) map[string]string {
	t.Helper()
	var out []byte
	if err := db.pool.QueryRow(t.Context(), "EXPLAIN (ANALYZE, FORMAT JSON) "+sql, args...).Scan(&out); err != nil {
		t.Fatal(err)
	}
	var plans []struct{ Plan planNode }
	if err := json.Unmarshal(out, &plans); err != nil || len(plans) != 1 {
		t.Fatalf("explain %s: %v", out, err)
	}
	scanned := map[string]string{}
	plans[0].Plan.walk(func(n planNode) {
		if n.Loops > 0 && strings.HasPrefix(n.Relation, "spans_p") {
			scanned[n.Relation] = n.NodeType + " " + n.IndexName
		}
	})
	return scanned
}

func checkPlan(t *testing.T, what string, scanned, want map[string]string) {
	t.Helper()
	if !maps.Equal(scanned, want) {
		t.Errorf("%s: partitions scanned %v, want %v", what, scanned, want)
	}
}

// BenchmarkTraceShapesWeek reads the shapes of 1,000 traces of the last
// day (an outliers or budget sample) with 1M spans stored in ten-span
// traces, over eight days (a week's retention) and in one: through the
// trace index (TraceShapes) and by ids alone (the query it replaced,
// which names no day); then single traces as the trace page reads them. pages/op is what PostgreSQL touched (EXPLAIN
// BUFFERS: shared hit + read), the cost a cold cache pays in reads.
//
//	go test ./store/postgres -run '^$' -bench TraceShapesWeek -count 6
func BenchmarkTraceShapesWeek(b *testing.B) {
	for _, days := range []int{8, 1} {
		b.Run(fmt.Sprintf("days=%d", days), func(b *testing.B) { benchTraceShapes(b, days) })
	}
}

func benchTraceShapes(b *testing.B, days int) {
	ctx := b.Context()
	db := open(b, testenv.FreshPostgres(b))
	today := time.Now().UTC().Truncate(24 * time.Hour)
	var recent []store.TraceID
	first := map[store.TraceID]store.SpanID{}
	for d := days - 1; d >= 0; d-- {
		gen := storetest.NewBatchGenPerTrace(5000, today.Add(-time.Duration(d)*24*time.Hour+time.Hour), byte(d), 10)
		for range 200 / days {
			batch := gen.Next()
			if err := db.WriteSpans(ctx, batch); err != nil {
				b.Fatal(err)
			}
			for i := 0; d == 0 && i < len(batch); i += 10 {
				recent = append(recent, batch[i].TraceID)
				first[batch[i].TraceID] = batch[i].SpanID
			}
		}
	}
	if _, err := db.pool.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]store.TraceID, 1000)
	for i, j := range rng.Perm(len(recent))[:len(ids)] {
		ids[i] = recent[j]
	}
	a := sqlcommon.NewArgs(sqlcommon.Postgres)
	byIDs := selectShapes + `WHERE ` + a.InTraceIDs("trace_id", ids) + ` ORDER BY trace_id, start_ns, span_id`
	raw := make([][]byte, len(ids))
	for i := range ids {
		raw[i] = ids[i][:]
	}
	for _, c := range []struct {
		name string
		sql  string
		args []any
	}{
		{"by-index", tracesByIndexSQL(traceIDsSource, selectShapes), []any{raw}},
		// The same with the database sorting every row, as before
		// groupTraces sorted each trace.
		{"by-index-sorted-in-sql", tracesByIndexSQL(traceIDsSource, selectShapes) + "\nORDER BY s.trace_id, s.start_ns, s.span_id", []any{raw}},
		{"by-ids", byIDs, a.Vals},
	} {
		b.Run(c.name, func(b *testing.B) {
			pages := explainPages(b, db, c.sql, c.args...)
			for b.Loop() {
				rows, err := db.pool.Query(ctx, c.sql, c.args...)
				if err != nil {
					b.Fatal(err)
				}
				got := map[store.TraceID][]store.Span{}
				if err := groupTraces(rows, sqlcommon.ScanShape, got); err != nil {
					b.Fatal(err)
				}
				if len(got) != len(ids) {
					b.Fatalf("%d traces, want %d", len(got), len(ids))
				}
			}
			b.ReportMetric(pages, "pages/op")
		})
	}
	// The reads as analyses make them: whole traces, shapes, and shapes
	// with each request's span (the trace's first here).
	reqs := make([]store.SpanRef, len(ids))
	for i, id := range ids {
		reqs[i] = store.SpanRef{TraceID: id, SpanID: first[id]}
	}
	for _, c := range []struct {
		name string
		read func() (map[store.TraceID][]store.Span, error)
	}{
		{"Traces", func() (map[store.TraceID][]store.Span, error) { return db.Traces(ctx, ids) }},
		{"TraceShapes", func() (map[store.TraceID][]store.Span, error) { return db.TraceShapes(ctx, ids) }},
		{"RequestShapes", func() (map[store.TraceID][]store.Span, error) { return db.RequestShapes(ctx, reqs) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if got, err := c.read(); err != nil || len(got) != len(ids) {
					b.Fatalf("%d traces, want %d (%v)", len(got), len(ids), err)
				}
			}
		})
	}
	// One trace, as the trace page reads it (Trace): bounded by its index
	// row, and by id alone (the query traceSQL replaced).
	for _, c := range []struct{ name, sql string }{
		{"trace/by-index", traceSQL},
		{"trace/by-id", selectSpans + `WHERE trace_id = $1 ORDER BY start_ns, span_id`},
	} {
		b.Run(c.name, func(b *testing.B) {
			pages := explainPages(b, db, c.sql, ids[0][:])
			i := 0
			for b.Loop() {
				rows, err := db.pool.Query(ctx, c.sql, ids[i%len(ids)][:])
				if err != nil {
					b.Fatal(err)
				}
				spans, err := collectSpans(rows, 10)
				if err != nil || len(spans) != 10 {
					b.Fatalf("%d spans, want 10 (%v)", len(spans), err)
				}
				i++
			}
			b.ReportMetric(pages, "pages/op")
		})
	}
	// The whole read of the trace page: the span count and the spans.
	b.Run("trace/Trace", func(b *testing.B) {
		i := 0
		for b.Loop() {
			spans, err := db.Trace(ctx, ids[i%len(ids)])
			if err != nil || len(spans) != 10 {
				b.Fatalf("%d spans, want 10 (%v)", len(spans), err)
			}
			i++
		}
	})
}

// explainPages is the pages PostgreSQL touches to run sql (EXPLAIN
// BUFFERS: shared hit + read).
func explainPages(b *testing.B, db *DB, sql string, args ...any) float64 {
	b.Helper()
	var out []byte
	if err := db.pool.QueryRow(b.Context(), "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "+sql, args...).Scan(&out); err != nil {
		b.Fatal(err)
	}
	var plans []struct {
		Plan struct {
			Hit  int `json:"Shared Hit Blocks"`
			Read int `json:"Shared Read Blocks"`
		}
	}
	if err := json.Unmarshal(out, &plans); err != nil || len(plans) != 1 {
		b.Fatalf("explain %s: %v", out, err)
	}
	return float64(plans[0].Plan.Hit + plans[0].Plan.Read)
}
