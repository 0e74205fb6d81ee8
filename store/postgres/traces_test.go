package postgres

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
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
		for name, read := range map[string]func() (map[store.TraceID][]store.Span, error){
			"Traces":      func() (map[store.TraceID][]store.Span, error) { return db.Traces(ctx, ids) },
			"TraceShapes": func() (map[store.TraceID][]store.Span, error) { return db.TraceShapes(ctx, ids) },
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
		// The plan: per trace, only its days' partitions are scanned,
		// by primary key.
		raw := make([][]byte, 0, 401)
		for _, id := range append(recent[:400:400], straddle[0].TraceID) {
			raw = append(raw, id[:])
		}
		var out []byte
		if err := db.pool.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+tracesByIndexSQL(selectShapes), raw).Scan(&out); err != nil {
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
		want := map[string]string{
			partitionName(dayOf(today.UnixNano())):     "Index Scan " + partitionName(dayOf(today.UnixNano())) + "_pkey",
			partitionName(dayOf(today.UnixNano()) - 1): "Index Scan " + partitionName(dayOf(today.UnixNano())-1) + "_pkey",
		}
		if len(scanned) != len(want) {
			t.Errorf("stats=%s: partitions scanned %v, want %v", stats, scanned, want)
		}
		for p, how := range want {
			if scanned[p] != how {
				t.Errorf("stats=%s: %s scanned as %q, want %q (all: %v)", stats, p, scanned[p], how, scanned)
			}
		}
	}
}

// BenchmarkTraceShapesWeek reads the shapes of 1,000 traces of the last
// day (an outliers or budget sample) with 1M spans stored in ten-span
// traces, over eight days (a week's retention) and in one: through the
// trace index (TraceShapes) and by ids alone (the query it replaced,
// which names no day). pages/op is what PostgreSQL touched (EXPLAIN
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
	for d := days - 1; d >= 0; d-- {
		gen := storetest.NewBatchGenPerTrace(5000, today.Add(-time.Duration(d)*24*time.Hour+time.Hour), byte(d), 10)
		for range 200 / days {
			batch := gen.Next()
			if err := db.WriteSpans(ctx, batch); err != nil {
				b.Fatal(err)
			}
			for i := 0; d == 0 && i < len(batch); i += 10 {
				recent = append(recent, batch[i].TraceID)
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
		{"by-index", tracesByIndexSQL(selectShapes), []any{raw}},
		{"by-ids", byIDs, a.Vals},
	} {
		b.Run(c.name, func(b *testing.B) {
			var out []byte
			if err := db.pool.QueryRow(ctx, "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "+c.sql, c.args...).Scan(&out); err != nil {
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
			b.ReportMetric(float64(plans[0].Plan.Hit+plans[0].Plan.Read), "pages/op")
		})
	}
}
