package postgres

import (
	"testing"
	"time"

	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/store"
)

// TestDayStatsFilled: a day is handed to ANALYZE once, when a batch first
// reaches past it; late spans of earlier days and the first batch hand
// over nothing.
func TestDayStatsFilled(t *testing.T) {
	s := newDayStats()
	steps := []struct {
		days []int64
		want []int64
	}{
		{[]int64{100}, nil},
		{[]int64{100, 99}, nil},
		{[]int64{101, 100}, []int64{100}},
		{[]int64{100}, nil},
		{[]int64{103}, []int64{101}},
		{nil, nil},
	}
	for i, st := range steps {
		s.wrote(st.days)
		var got []int64
		for len(s.filled) > 0 {
			got = append(got, <-s.filled)
		}
		if len(got) != len(st.want) || (len(got) > 0 && got[0] != st.want[0]) {
			t.Errorf("step %d %v: handed over %v, want %v", i, st.days, got, st.want)
		}
	}
}

// TestAnalyzeSetsStatistics: the tables the stats loop names get planner
// statistics (reltuples is -1 until a table is analysed or vacuumed).
func TestAnalyzeSetsStatistics(t *testing.T) {
	ctx := t.Context()
	db := open(t, testenv.FreshPostgres(t), WithStatsInterval(0))
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	var spans []store.Span
	for i := range 50 {
		spans = append(spans, store.Span{TraceID: store.TraceID{byte(i + 1)}, SpanID: store.SpanID{1}, Service: "s", Name: "n",
			StartUnixNano: at.UnixNano() + int64(i)})
	}
	if err := db.WriteSpans(ctx, spans); err != nil {
		t.Fatal(err)
	}
	part := partitionName(dayOf(at.UnixNano()))
	tuples := func(table string) float64 {
		var n float64
		if err := db.pool.QueryRow(ctx, "SELECT reltuples FROM pg_class WHERE relname = $1", table).Scan(&n); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		return n
	}
	for _, table := range []string{part, "trace_index"} {
		if n := tuples(table); n >= 0 {
			t.Fatalf("%s has statistics (%v rows) before ANALYZE", table, n)
		}
	}
	db.analyze([]string{part, "trace_index"})
	for _, table := range []string{part, "trace_index"} {
		if n := tuples(table); n != 50 {
			t.Errorf("%s: planner sees %v rows after ANALYZE, want 50", table, n)
		}
	}
}
