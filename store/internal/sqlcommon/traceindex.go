package sqlcommon

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/tailscope/tailscope/store"
)

// The trace index (table trace_index, PostgreSQL migration 00008, SQLite
// 00010) holds one row per trace, merged at ingest from every batch that
// carries spans of the trace, in whatever order they arrive:
//
//   - first_start_ns, last_start_ns: the earliest and latest span start;
//   - end_ns: the latest span end; max_duration_ns: the longest span;
//   - span_count, error_count: spans stored (resends are not counted);
//   - root_*: the span that names the trace, as SummarySQL picks it: the
//     earliest root span (ties by span id), or the earliest span while no
//     root has arrived; root_rank is 0 for a root, 1 otherwise, so the
//     row value (root_rank, root_start_ns, root_span_id) is smallest for
//     the span that names the trace;
//   - services: a JSON object, service → its longest span in the trace.
//
// Every column merges with an associative, commutative operation (min, max,
// sum, keep the smallest root key, per-key max), so the row is the same
// whatever the arrival order of spans or batches, and concurrent writers
// of one trace merge under the row lock of the upsert.

// IndexRow is what a batch contributes to one trace's row.
type IndexRow struct {
	TraceID                    store.TraceID
	FirstStart, LastStart, End int64
	MaxDuration                int64
	Spans, Errors              int64
	RootRank                   int64
	RootStart, RootDuration    int64
	RootSpanID                 store.SpanID
	RootService, RootName      string
	RootTenant, RootVersion    string
	// Services holds each service of the trace once with its longest
	// span: a trace has a handful, so a slice beats a map — until it has
	// more than servicesScan, when serviceAt indexes it, so that a trace
	// whose every span names another service (a broken or hostile client)
	// costs a map look-up a span, not a scan of all the others: 20,000
	// such spans took 0.5 s of the writer's time with scans alone.
	Services  []ServiceMax
	serviceAt map[string]int
}

// servicesScan is how many services addService finds by scanning.
const servicesScan = 16

// ServiceMax is a service and its longest span in a trace.
type ServiceMax struct {
	Service  string
	Duration int64
}

// IndexRows aggregates spans by trace, sorted by trace id (one lock order
// for concurrent writers). keep, when not nil, selects the spans to count:
// those a write actually inserted.
func IndexRows(spans []store.Span, keep func(i int) bool) []IndexRow {
	at := make(map[store.TraceID]int, len(spans)/4+1)
	var rows []IndexRow
	for i := range spans {
		if keep != nil && !keep(i) {
			continue
		}
		s := &spans[i]
		service := Clean(s.Service)
		j, ok := at[s.TraceID]
		if !ok {
			at[s.TraceID] = len(rows)
			rows = append(rows, IndexRow{TraceID: s.TraceID, FirstStart: s.StartUnixNano, LastStart: s.StartUnixNano,
				End: s.End(), MaxDuration: s.DurationNano, RootRank: 2})
			j = len(rows) - 1
		}
		r := &rows[j]
		r.FirstStart = min(r.FirstStart, s.StartUnixNano)
		r.LastStart = max(r.LastStart, s.StartUnixNano)
		r.End = max(r.End, s.End())
		r.MaxDuration = max(r.MaxDuration, s.DurationNano)
		r.Spans++
		if s.StatusCode == store.StatusError {
			r.Errors++
		}
		r.addService(service, s.DurationNano)
		rank := int64(1)
		if s.IsRoot() {
			rank = 0
		}
		if rootBefore(rank, s.StartUnixNano, s.SpanID, r) {
			r.RootRank, r.RootStart, r.RootDuration, r.RootSpanID = rank, s.StartUnixNano, s.DurationNano, s.SpanID
			r.RootService, r.RootName = service, Clean(s.Name)
			r.RootTenant, r.RootVersion = Clean(s.Tenant), Clean(s.Version)
		}
	}
	slices.SortFunc(rows, func(a, b IndexRow) int { return bytes.Compare(a.TraceID[:], b.TraceID[:]) })
	return rows
}

// rootBefore reports whether (rank, start, id) names the trace before r's
// root: the row-value order the upsert applies in SQL.
func rootBefore(rank, start int64, id store.SpanID, r *IndexRow) bool {
	if rank != r.RootRank {
		return rank < r.RootRank
	}
	if start != r.RootStart {
		return start < r.RootStart
	}
	return bytes.Compare(id[:], r.RootSpanID[:]) < 0
}

func (r *IndexRow) addService(service string, d int64) {
	if r.serviceAt != nil {
		if i, ok := r.serviceAt[service]; ok {
			r.Services[i].Duration = max(r.Services[i].Duration, d)
			return
		}
		r.serviceAt[service] = len(r.Services)
		r.Services = append(r.Services, ServiceMax{service, d})
		return
	}
	for i := range r.Services {
		if r.Services[i].Service == service {
			r.Services[i].Duration = max(r.Services[i].Duration, d)
			return
		}
	}
	r.Services = append(r.Services, ServiceMax{service, d})
	if len(r.Services) > servicesScan {
		r.serviceAt = make(map[string]int, 2*len(r.Services))
		for i, sm := range r.Services {
			r.serviceAt[sm.Service] = i
		}
	}
}

// ServicesJSON encodes the services object, keys sorted.
func (r *IndexRow) ServicesJSON() string {
	return string(r.AppendServicesJSON(make([]byte, 0, 32*len(r.Services)+2)))
}

// AppendServicesJSON appends ServicesJSON's encoding to b.
func (r *IndexRow) AppendServicesJSON(b []byte) []byte {
	slices.SortFunc(r.Services, func(a, b ServiceMax) int { return strings.Compare(a.Service, b.Service) })
	r.serviceAt = nil // the sort moved the services it indexed
	b = append(b, '{')
	for i, sm := range r.Services {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, sm.Service)
		b = append(b, ':')
		b = strconv.AppendInt(b, sm.Duration, 10)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string: as it is when it needs no
// escape (service names nearly always), else through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			q, err := json.Marshal(s)
			if err != nil {
				// Clean made s valid UTF-8, which always encodes.
				panic(err)
			}
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// IndexColumns are trace_index's columns in the order IndexArgs binds them.
const IndexColumns = `trace_id, first_start_ns, last_start_ns, end_ns, max_duration_ns, span_count, error_count,
root_rank, root_start_ns, root_duration_ns, root_span_id, root_service, root_name, root_tenant, root_version, services`

// IndexArgs returns r's values in IndexColumns order (services as JSON text).
func (r *IndexRow) IndexArgs() []any {
	return []any{r.TraceID[:], r.FirstStart, r.LastStart, r.End, r.MaxDuration, r.Spans, r.Errors,
		r.RootRank, r.RootStart, r.RootDuration, r.RootSpanID[:], r.RootService, r.RootName, r.RootTenant, r.RootVersion,
		r.ServicesJSON()}
}

// IndexMergeSet is the ON CONFLICT (trace_id) DO UPDATE clause that merges
// a batch's row (excluded) into the stored one; replace sets the row to
// excluded instead (a row recomputed from every stored span).
func IndexMergeSet(d Dialect, replace bool) string {
	cols := strings.Split(strings.Join(strings.Fields(IndexColumns), ""), ",")[1:]
	set := make([]string, 0, len(cols))
	if replace {
		for _, c := range cols {
			set = append(set, c+" = excluded."+c)
		}
		return "DO UPDATE SET " + strings.Join(set, ", ")
	}
	least, greatest := "least", "greatest"
	if d == SQLite {
		least, greatest = "min", "max"
	}
	const t = "trace_index."
	set = append(set,
		"first_start_ns = "+least+"("+t+"first_start_ns, excluded.first_start_ns)",
		"last_start_ns = "+greatest+"("+t+"last_start_ns, excluded.last_start_ns)",
		"end_ns = "+greatest+"("+t+"end_ns, excluded.end_ns)",
		"max_duration_ns = "+greatest+"("+t+"max_duration_ns, excluded.max_duration_ns)",
		"span_count = "+t+"span_count + excluded.span_count",
		"error_count = "+t+"error_count + excluded.error_count")
	// All root columns switch together, to the smaller root key.
	better := "(excluded.root_rank, excluded.root_start_ns, excluded.root_span_id) < (" +
		t + "root_rank, " + t + "root_start_ns, " + t + "root_span_id)"
	for _, c := range []string{"root_rank", "root_start_ns", "root_duration_ns", "root_span_id", "root_service",
		"root_name", "root_tenant", "root_version"} {
		set = append(set, c+" = CASE WHEN "+better+" THEN excluded."+c+" ELSE "+t+c+" END")
	}
	// services: per-service max. The whole merge expands both objects,
	// unions, groups and aggregates them: O((n+m) log) in the keys of the
	// batch's (n) and the stored (m). In PostgreSQL a small stored object
	// is instead patched with the batch's keys that are new or longer,
	// each looked up in it (a binary search): 2–3 µs less of a ~18 µs
	// merge (docs/PERFORMANCE.md, "What a merge costs"). Only small: a
	// lookup detoasts its operand, and a stored object past the inline
	// threshold would be decompressed once per key of the batch's — n × m,
	// which a trace of thousands of services would turn into seconds per
	// merge. pg_column_size and pg_column_compression read the stored
	// datum's header, detoasting nothing: under 1,000 bytes and not
	// compressed, a lookup costs a binary search (were the row too wide
	// and the value moved out of line, a fetch of under 1,000 bytes). The
	// coalesce: an object with no new or longer key patches nothing
	// (the aggregate of no row is NULL). SQLite keeps the whole merge: a
	// key lookup there is json_each's scan of the object (n × m again),
	// and no cheaper form measured faster (PERFORMANCE).
	if d == Postgres {
		const whole = `(SELECT jsonb_object_agg(key, m) FROM (SELECT key, max(value::bigint) AS m FROM (
  SELECT * FROM jsonb_each_text(trace_index.services) UNION ALL SELECT * FROM jsonb_each_text(excluded.services)) u
  GROUP BY key) g)`
		set = append(set, `services = CASE WHEN pg_column_size(trace_index.services) < 1000
    AND pg_column_compression(trace_index.services) IS NULL
  THEN trace_index.services || coalesce((SELECT jsonb_object_agg(e.key, e.value) FROM jsonb_each(excluded.services) e
    WHERE NOT coalesce(trace_index.services -> e.key >= e.value, false)), '{}')
  ELSE `+whole+` END`)
	} else {
		set = append(set, `services = (SELECT json_group_object(key, m) FROM (SELECT key, max(value) AS m FROM (
  SELECT key, value FROM json_each(trace_index.services) UNION ALL SELECT key, value FROM json_each(excluded.services))
  GROUP BY key))`)
	}
	return "DO UPDATE SET " + strings.Join(set, ",\n  ")
}

// IndexSummarySQL summarises the given traces from trace_index, in
// SummarySQL's columns, so ScanSummary reads both.
func IndexSummarySQL(d Dialect, ids []store.TraceID) (string, []any) {
	a := NewArgs(d)
	return `SELECT trace_id, root_service, root_name, root_start_ns, root_duration_ns, root_tenant, root_version,
  root_rank = 0, span_count, error_count, first_start_ns, end_ns
FROM trace_index WHERE ` + a.InTraceIDs("trace_id", ids), a.Vals
}

// IndexSpanColumns are the span columns IndexRows reads when a row is
// recomputed from stored spans (ScanIndexSpan reads them).
const IndexSpanColumns = `trace_id, span_id, parent_span_id, service, name, start_ns, duration_ns, status_code, tenant, version`

// ScanIndexSpan reads one row selected with IndexSpanColumns.
func ScanIndexSpan(sc Scanner) (store.Span, error) {
	var (
		s             store.Span
		tid, sid, pid []byte
		status        int64
	)
	if err := sc.Scan(&tid, &sid, &pid, &s.Service, &s.Name, &s.StartUnixNano, &s.DurationNano, &status,
		&s.Tenant, &s.Version); err != nil {
		return s, err
	}
	s.StatusCode = store.StatusCode(status)
	if err := copyID(s.TraceID[:], tid, "trace id"); err != nil {
		return s, err
	}
	if err := copyID(s.SpanID[:], sid, "span id"); err != nil {
		return s, err
	}
	if pid != nil {
		if err := copyID(s.ParentSpanID[:], pid, "parent span id"); err != nil {
			return s, err
		}
	}
	return s, nil
}

// maxSpanCountHint bounds the capacity SpanCountHint suggests, so a corrupt
// or huge count never allocates more than a large trace's worth up front.
const maxSpanCountHint = 1 << 20

// SpanCountHint is the trace's span count from its trace_index row, for
// sizing the slice a trace read fills: appending 50,000 spans to a growing
// slice copied them about twice over and doubled the bytes a read
// allocates (docs/PERFORMANCE.md). The row may lag spans being written, so
// it is a hint; 0 when there is no row or it cannot be read (the read
// that follows reports any real error).
func SpanCountHint(ctx context.Context, c Conn, id store.TraceID) int {
	var n int64
	if err := c.QueryRow(ctx, Rebind(c.Dialect(), SpanCountSQL), id[:]).Scan(&n); err != nil {
		return 0
	}
	return CapSpanCount(n)
}

// SpanCountSQL reads a trace's span count from its index row (one
// parameter, the trace id), for stores that send it with the trace read.
const SpanCountSQL = `SELECT span_count FROM trace_index WHERE trace_id = ?`

// CapSpanCount bounds a stored span count for use as a capacity hint.
func CapSpanCount(n int64) int { return int(min(max(n, 0), maxSpanCountHint)) }
