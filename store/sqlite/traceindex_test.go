package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
	"github.com/tailscope/tailscope/store/storetest"
)

// TestTraceIndexPlans: the trace search page's queries use the indexes
// meant for them, before and after the planner has statistics (PRAGMA
// optimize): the walk its order's index of trace_index, the verification
// the spans' time index over the candidates' buckets, the summaries the
// trace id index. A scan of trace_index or spans here reads every trace.
func TestTraceIndexPlans(t *testing.T) {
	ctx := t.Context()
	db := openInternal(t)
	start := time.Now().Add(-time.Hour)
	gen := storetest.NewBatchGen(5000, start, 0)
	for range 4 {
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
		{store.TraceQuery{Service: "feed-api", Endpoint: "GET /v1/feed", Order: store.OrderSlowest, Limit: 200}, "trace_index_max_duration"},
	}
	for _, stats := range []string{"none", "optimized"} {
		if stats == "optimized" {
			if _, err := db.w.ExecContext(ctx, "ANALYZE"); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range queries {
			var plans []string
			matches, ok, err := sqlcommon.IndexSearch(ctx, sqlcommon.SQLite, c.q, func(ctx context.Context, query string, args []any, scan func(sqlcommon.Scanner) error) error {
				plans = append(plans, queryPlan(t, db, query, args))
				rows, err := db.r.QueryContext(ctx, query, args...)
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
			summary, args := sqlcommon.IndexSummarySQL(sqlcommon.SQLite, ids)
			plans = append(plans, queryPlan(t, db, summary, args))
			for i, p := range plans {
				var want string
				switch {
				case i == len(plans)-1:
					want = "SEARCH trace_index USING INDEX trace_index_trace (trace_id=?)"
				case i%2 == 0:
					want = "trace_index USING INDEX " + c.walk
				default:
					want = "SEARCH s USING INDEX spans_start_trace (start_ns>? AND start_ns<?)"
				}
				if !strings.Contains(p, want) || strings.Contains(p, "SCAN s") || strings.Contains(p, "AUTOMATIC") ||
					strings.Contains(p, "SCAN trace_index ") && !strings.Contains(p, "USING INDEX") {
					t.Errorf("stats=%s %+v query %d: want %q, plan: %s", stats, c.q, i, want, p)
				}
			}
		}
	}
}

func queryPlan(t *testing.T, db *DB, query string, args []any) string {
	t.Helper()
	rows, err := db.r.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return strings.Join(plan, "; ")
}
