package postgres

import (
	"errors"
	"strings"
	"testing"

	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/store"
)

// TestOpenReplica: a replica is opened without migrating, refuses writes,
// reads what the primary wrote, and says it is not one when pointed at a
// primary. (A real streaming replica is exercised end to end by
// e2e.TestScaleOut.)
func TestOpenReplica(t *testing.T) {
	url := testenv.FreshPostgres(t)
	if _, err := OpenReplica(t.Context(), url); !errors.Is(err, ErrReplicaBehind) || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("OpenReplica of an empty database: %v, want ErrReplicaBehind (retryable)", err)
	}
	primary := open(t, url)
	replica, err := OpenReplica(t.Context(), url)
	if err != nil {
		t.Fatalf("OpenReplica: %v", err)
	}
	defer replica.Close()
	if err := replica.WriteSpans(t.Context(), []store.Span{{Service: "s"}}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("WriteSpans on a replica: %v, want ErrReadOnly", err)
	}
	if err := primary.WriteSpans(t.Context(), []store.Span{{TraceID: store.TraceID{1}, SpanID: store.SpanID{1}, Service: "s", Name: "GET /", Kind: store.KindServer, StartUnixNano: primary.now().UnixNano(), DurationNano: 1}}); err != nil {
		t.Fatal(err)
	}
	if spans, err := replica.Trace(t.Context(), store.TraceID{1}); err != nil || len(spans) != 1 {
		t.Errorf("replica reads %d spans, %v", len(spans), err)
	}
	r, err := replica.Replication(t.Context())
	if err != nil || r.Replica || r.Lag != 0 || !r.Streaming {
		t.Errorf("Replication of a primary: %+v, %v; want not a replica, no lag", r, err)
	}
}

// TestSchemaCitusCompatible keeps the schema distributable by trace id
// (docs/SCALING.md): a table with a trace_id column is sharded by it in
// Citus, so each of its unique indexes must include trace_id, and no
// foreign key may point to or from it.
func TestSchemaCitusCompatible(t *testing.T) {
	db := open(t, testenv.FreshPostgres(t))
	rows, err := db.pool.Query(t.Context(), `
SELECT c.relname, i.relname, pg_get_indexdef(ix.indexrelid)
FROM pg_index ix
JOIN pg_class c ON c.oid = ix.indrelid
JOIN pg_class i ON i.oid = ix.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE ix.indisunique AND n.nspname = current_schema() AND NOT c.relispartition
  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'trace_id' AND NOT a.attisdropped)
  AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum = ANY(ix.indkey) AND a.attname = 'trace_id')`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var table, index, def string
		if err := rows.Scan(&table, &index, &def); err != nil {
			t.Fatal(err)
		}
		t.Errorf("table %s: unique index %s lacks trace_id: %s", table, index, def)
	}
	rows.Close()
	var fks []string
	rows, err = db.pool.Query(t.Context(), `
SELECT conname || ' on ' || conrelid::regclass::text FROM pg_constraint
WHERE contype = 'f' AND connamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
  AND (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = conrelid AND a.attname = 'trace_id')
    OR EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = confrelid AND a.attname = 'trace_id'))`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var fk string
		if err := rows.Scan(&fk); err != nil {
			t.Fatal(err)
		}
		fks = append(fks, fk)
	}
	rows.Close()
	if len(fks) > 0 {
		t.Errorf("foreign keys on trace-id tables (cross-shard in Citus): %s", strings.Join(fks, ", "))
	}
}
