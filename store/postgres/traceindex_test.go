package postgres

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
	"github.com/tailscope/tailscope/store/storetest"
)

// planNode is the part of EXPLAIN (FORMAT JSON) the plan tests read.
type planNode struct {
	NodeType  string `json:"Node Type"`
	Relation  string `json:"Relation Name"`
	IndexName string `json:"Index Name"`
	// Loops is set by EXPLAIN ANALYZE: 0 for a scan never executed.
	Loops int        `json:"Actual Loops"`
	Plans []planNode `json:"Plans"`
}

// walk calls f on n and every node under it.
func (n planNode) walk(f func(planNode)) {
	f(n)
	for _, c := range n.Plans {
		c.walk(f)
	}
}

// scans lists the plan's scans as "relation using index" ("relation" for
// a sequential scan); a bitmap heap scan names the index of its bitmap
// index scan.
func (n planNode) scans() []string {
	var out []string
	if n.Relation != "" {
		s := n.Relation
		if n.IndexName != "" {
			s += " using " + n.IndexName
		}
		for _, c := range n.Plans {
			if c.NodeType == "Bitmap Index Scan" {
				s += " using " + c.IndexName
			}
		}
		out = append(out, s)
	}
	for _, c := range n.Plans {
		out = append(out, c.scans()...)
	}
	return out
}

// TestTraceIndexPlans: the trace search page's queries use the indexes
// meant for them, on new partitions without statistics and after ANALYZE:
// the walk its order's index of trace_index, the verification the day
// partitions' primary keys (trace id first), the summaries trace_index's
// primary key. Without the OFFSET 0 fence in the verification, the
// planner without statistics scanned the service's covering index.
func TestTraceIndexPlans(t *testing.T) {
	ctx := t.Context()
	db := open(t, testenv.FreshPostgres(t))
	gen := storetest.NewBatchGen(5000, time.Now().Add(-time.Hour), 0)
	for range 8 {
		if err := db.WriteSpans(ctx, gen.Next()); err != nil {
			t.Fatal(err)
		}
	}
	queries := []struct {
		q    store.TraceQuery
		walk string
	}{
		{store.TraceQuery{Service: "feed-api", MinDuration: 60 * time.Millisecond}, "trace_index_last_start"},
		{store.TraceQuery{Service: "candidate-svc", Order: store.OrderOldest}, "trace_index_first_start"},
		{store.TraceQuery{Service: "feed-api", Endpoint: "GET /v1/feed", Order: store.OrderSlowest}, "trace_index_max_duration"},
	}
	for _, stats := range []string{"none", "analyzed"} {
		if stats == "analyzed" {
			if _, err := db.pool.Exec(ctx, "ANALYZE"); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range queries {
			var plans [][]string
			err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
				matches, ok, err := sqlcommon.IndexSearch(ctx, sqlcommon.Postgres, c.q, func(ctx context.Context, sql string, args []any, scan func(sqlcommon.Scanner) error) error {
					plans = append(plans, explain(t, tx, sql, args))
					rows, err := tx.Query(ctx, sql, args...)
					if err != nil {
						return err
					}
					defer rows.Close()
					for rows.Next() {
						if err := scan(rows); err != nil {
							return err
						}
					}
					return rows.Err()
				})
				if err != nil || !ok || len(matches) == 0 {
					t.Fatalf("stats=%s %+v: %d matches, indexed %t, err %v", stats, c.q, len(matches), ok, err)
				}
				ids := make([]store.TraceID, len(matches))
				for i, m := range matches {
					ids[i] = m.TraceID
				}
				sql, args := sqlcommon.IndexSummarySQL(sqlcommon.Postgres, ids)
				plans = append(plans, explain(t, tx, sql, args))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for i, scans := range plans {
				ok := len(scans) > 0
				for _, s := range scans {
					switch {
					case i == len(plans)-1:
						ok = ok && s == "trace_index using trace_index_pkey"
					case i%2 == 0:
						ok = ok && s == "trace_index using "+c.walk
					default:
						ok = ok && strings.HasPrefix(s, "spans_p") && strings.HasSuffix(s, "_pkey")
					}
				}
				if !ok {
					t.Errorf("stats=%s %+v query %d: scans %q", stats, c.q, i, scans)
				}
			}
		}
	}
}

// TestStoredTracesPlan: the held writes' look-up of which traces have a
// row reads trace_index's primary key, one id at a time, on a table
// without statistics and after ANALYZE — never a scan of the table (as
// trace_id = ANY($1) was planned before ANALYZE).
func TestStoredTracesPlan(t *testing.T) {
	ctx := t.Context()
	db := open(t, testenv.FreshPostgres(t))
	gen := storetest.NewBatchGen(5000, time.Now().Add(-time.Hour), 0)
	var ids [][]byte
	for range 8 {
		batch := gen.Next()
		if err := db.WriteSpans(ctx, batch); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(batch); i += 10 {
			ids = append(ids, slices.Clone(batch[i].TraceID[:]))
		}
	}
	for _, stats := range []string{"none", "analyzed"} {
		if stats == "analyzed" {
			if _, err := db.pool.Exec(ctx, "ANALYZE"); err != nil {
				t.Fatal(err)
			}
		}
		err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			scans := explain(t, tx, storedTracesSQL, []any{ids[:500]})
			if len(scans) != 1 || scans[0] != "trace_index using trace_index_pkey" {
				t.Errorf("stats=%s: scans %q, want trace_index's primary key only", stats, scans)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func explain(t *testing.T, tx pgx.Tx, sql string, args []any) []string {
	t.Helper()
	var raw []byte
	if err := tx.QueryRow(t.Context(), "EXPLAIN (FORMAT JSON) "+sql, args...).Scan(&raw); err != nil {
		t.Fatalf("explain: %v", err)
	}
	var plans []struct{ Plan planNode }
	if err := json.Unmarshal(raw, &plans); err != nil || len(plans) != 1 {
		t.Fatalf("explain output %s: %v", raw, err)
	}
	return plans[0].Plan.scans()
}

// TestSampleRangesPlan: a budget's stratified sample, every range in one
// statement, reads each range from the day partitions' (service, name,
// start_ns) covering index, without statistics and after ANALYZE — not
// a scan of the spans' primary key or heap.
func TestSampleRangesPlan(t *testing.T) {
	ctx := t.Context()
	db := open(t, testenv.FreshPostgres(t))
	start := time.Now().Add(-time.Hour)
	gen := storetest.NewBatchGen(5000, start, 0)
	for range 8 {
		if err := db.WriteSpans(ctx, gen.Next()); err != nil {
			t.Fatal(err)
		}
	}
	var ranges []store.SampleRange
	for i := range 50 {
		from := start.Add(time.Duration(i) * time.Minute)
		ranges = append(ranges, store.SampleRange{From: from, To: from.Add(time.Minute), Limit: 20})
	}
	q := store.SampleQuery{Service: "feed-api", Endpoint: "GET /v1/feed", MinDurationNano: int64(time.Millisecond)}
	sql, args, err := sqlcommon.SampleRangesSQL(q, ranges)
	if err != nil {
		t.Fatal(err)
	}
	for _, stats := range []string{"none", "analyzed"} {
		if stats == "analyzed" {
			if _, err := db.pool.Exec(ctx, "ANALYZE"); err != nil {
				t.Fatal(err)
			}
		}
		tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
		if err != nil {
			t.Fatal(err)
		}
		scans := explain(t, tx, sql, args)
		_ = tx.Rollback(ctx)
		ok := len(scans) > 0
		for _, s := range scans {
			ok = ok && strings.HasPrefix(s, "spans_p") && strings.Contains(s, " using ") && strings.Contains(s, "service_name_start")
		}
		if !ok {
			t.Errorf("stats=%s: scans %q, want each day partition's covering index", stats, scans)
		}
	}
}
