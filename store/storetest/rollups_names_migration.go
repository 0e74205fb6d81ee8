package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// RollupNamesMigration: the migration that bounds rollup names lists, of
// each service, the busiest store.MaxRollupNames names its rollups already
// hold (by hour rows, operation rows too), and no more: the list is then
// full, so a later span of a name left out goes to the service's other
// names, and a listed name keeps its own rows. insert writes an hour row
// of service "api" into a database migrated to just before it; reopen
// migrates it to the latest version and opens it.
func RollupNamesMigration(t *testing.T, insert func(endpoint string, kind, count, bucket int64) error, reopen func() store.Store) {
	ctx := t.Context()
	hour := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	n := store.MaxRollupNames + 2
	name := func(i int) string { return fmt.Sprintf("GET /n%04d", i) }
	for i := range n {
		// Name i has i+1 requests: names 0 and 1 are the quietest.
		if err := insert(name(i), -1, int64(i+1), hour.UnixNano()); err != nil {
			t.Fatal(err)
		}
	}
	// Name 0's operation row makes it as busy as name 1, no busier than
	// name 2.
	if err := insert(name(0), int64(store.KindServer), 1, hour.UnixNano()); err != nil {
		t.Fatal(err)
	}
	db := reopen()
	for i, want := range map[int]bool{0: false, 1: false, 2: true, n - 1: true} {
		if ok, err := db.RolledUpName(ctx, "api", name(i)); err != nil || ok != want {
			t.Errorf("RolledUpName(%s) = %v, %v; want %v", name(i), ok, err, want)
		}
	}
	later := hour.Add(2 * time.Hour)
	spans := []store.Span{
		{TraceID: store.TraceID{1}, SpanID: store.SpanID{1}, Service: "api", Name: name(0), Kind: store.KindServer, StartUnixNano: later.UnixNano(), DurationNano: 1e6},
		{TraceID: store.TraceID{2}, SpanID: store.SpanID{2}, Service: "api", Name: name(5), Kind: store.KindServer, StartUnixNano: later.UnixNano(), DurationNano: 1e6},
	}
	if err := db.WriteSpans(ctx, spans); err != nil {
		t.Fatal(err)
	}
	rs, err := db.Rollups(ctx, store.RollupQuery{Step: store.RollupHour, From: later, To: later.Add(time.Hour), Service: "api"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Endpoint != name(5) || rs[0].Other || !rs[1].Other || rs[1].Count != 1 {
		t.Errorf("rollups after the migration = %+v; want %s's own row, then one other-names row", rs, name(5))
	}
}
