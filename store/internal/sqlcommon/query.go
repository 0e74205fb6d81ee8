package sqlcommon

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tailscope/tailscope/store"
)

// Dialect selects placeholder syntax and the few expressions that differ.
type Dialect int

// Supported dialects.
const (
	Postgres Dialect = iota
	SQLite
)

// Limits for trace searches (store.TraceQuery documents them).
const (
	DefaultTraceLimit = 20
	MaxTraceLimit     = 1000
)

// Args collects query arguments and hands out placeholders, so values never
// end up in SQL text.
type Args struct {
	d    Dialect
	Vals []any
}

// NewArgs returns an empty argument list for d.
func NewArgs(d Dialect) *Args { return &Args{d: d} }

// Add appends v and returns its placeholder.
func (a *Args) Add(v any) string {
	a.Vals = append(a.Vals, v)
	if a.d == Postgres {
		return "$" + strconv.Itoa(len(a.Vals))
	}
	return "?"
}

// InTraceIDs returns a condition "col is one of ids".
func (a *Args) InTraceIDs(col string, ids []store.TraceID) string {
	raw := make([][]byte, len(ids))
	for i := range ids {
		raw[i] = ids[i][:]
	}
	return a.inBytes(col, raw)
}

// InSpanIDs returns a condition "col is one of ids".
func (a *Args) InSpanIDs(col string, ids []store.SpanID) string {
	raw := make([][]byte, len(ids))
	for i := range ids {
		raw[i] = ids[i][:]
	}
	return a.inBytes(col, raw)
}

func (a *Args) inBytes(col string, raw [][]byte) string {
	if a.d == Postgres {
		return col + " = ANY(" + a.Add(raw) + ")"
	}
	var b strings.Builder
	b.WriteString(col)
	b.WriteString(" IN (")
	for i := range raw {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(a.Add(raw[i]))
	}
	b.WriteByte(')')
	return b.String()
}

// attrMatch returns a condition true when the span attributes or resource
// hold key with the text form value: a string's content, a number's
// decimal text, true or false.
//
// A resource is inline in rows written before the resources table and in
// resources since: the condition tests the inline one, then whether the
// row's resource_id is among the matching resources, a list the database
// computes once per query rather than looking up each row's resource
// (that per-row lookup made a search by host.name over 200,000 PostgreSQL
// spans 40-80% slower than with inline resources).
func (a *Args) attrMatch(key, value string) string {
	if a.d == Postgres {
		// ->> yields exactly that text form for json scalars: a string's
		// content, a number's token as written, true or false.
		k, v := a.Add(key), a.Add(value)
		return fmt.Sprintf("(spans.attributes ->> %[1]s = %[2]s OR spans.resource ->> %[1]s = %[2]s OR "+
			"spans.resource_id IN (SELECT id FROM resources WHERE body ->> %[1]s = %[2]s))", k, v)
	}
	// json_each rather than a JSON path: keys such as "http.method" or keys
	// holding quotes would need path quoting that SQLite cannot escape.
	// Numbers compare by their token as written (what -> returns), which is
	// what json's ->> gives in PostgreSQL, exact even past float precision.
	one := func(col string) string {
		return fmt.Sprintf(`EXISTS (SELECT 1 FROM json_each(%[1]s) j WHERE j.key = %[2]s AND
			(CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'text' THEN j.atom
			 WHEN 'integer' THEN coalesce(%[1]s -> j.fullkey, CAST(j.atom AS TEXT))
			 WHEN 'real' THEN coalesce(%[1]s -> j.fullkey, CAST(j.atom AS TEXT)) ELSE NULL END) = %[3]s)`,
			col, a.Add(key), a.Add(value))
	}
	return "(" + one("spans.attributes") + " OR " + one("spans.resource") +
		" OR spans.resource_id IN (SELECT r.id FROM resources r WHERE " + one("r.body") + "))"
}

// NS converts t to Unix nanoseconds, clamping times outside the int64 range
// instead of overflowing. The zero time maps to math.MinInt64, which Time
// maps back to the zero time.
func NS(t time.Time) int64 {
	switch {
	case t.IsZero(), t.Before(minTime):
		return math.MinInt64
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// Time is the inverse of NS, in UTC.
func Time(ns int64) time.Time {
	if ns == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

func invalid(format string, args ...any) error {
	return store.Invalid(format, args...)
}

// CheckRange validates a [from, to) window where zero means unbounded.
func CheckRange(from, to time.Time) error {
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		return invalid("time range ends (%s) before it starts (%s)", to.Format(time.RFC3339Nano), from.Format(time.RFC3339Nano))
	}
	return nil
}

// TraceSearch is the first step of SearchTraces: the matching traces with
// their order keys, limited and ordered.
type TraceSearch struct {
	SQL  string
	Args []any
}

// BuildTraceSearch validates q and builds the query selecting matching trace
// ids. Each result row is (trace_id, first_match_start, last_match_start,
// match_duration). Order keys: newest = latest matching span start,
// oldest = earliest matching span start, slowest/fastest = longest
// matching span duration; ties by trace id.
func BuildTraceSearch(d Dialect, q store.TraceQuery) (TraceSearch, error) {
	return buildTraceSearch(d, q, nil)
}

// searchScope restricts a trace search to some traces (IndexSearch's
// candidates): it returns the FROM source, named spans, and further
// conditions. It adds its arguments first, as its SQL comes first.
type searchScope func(a *Args) (from string, conds []string)

func buildTraceSearch(d Dialect, q store.TraceQuery, scope searchScope) (TraceSearch, error) {
	limit := q.Limit
	switch {
	case limit < 0:
		return TraceSearch{}, invalid("limit %d is negative", limit)
	case limit == 0:
		limit = DefaultTraceLimit
	case limit > MaxTraceLimit:
		limit = MaxTraceLimit
	}
	if q.MinDuration < 0 || q.MaxDuration < 0 {
		return TraceSearch{}, invalid("negative duration bound")
	}
	if q.MaxDuration > 0 && q.MaxDuration < q.MinDuration {
		return TraceSearch{}, invalid("max duration %s below min duration %s", q.MaxDuration, q.MinDuration)
	}
	if err := CheckRange(q.From, q.To); err != nil {
		return TraceSearch{}, err
	}
	if len(q.Has) > maxHas {
		return TraceSearch{}, invalid("at most %d further span conditions, not %d", maxHas, len(q.Has))
	}
	var order string
	switch q.Order {
	case store.OrderNewest:
		order = "last_match DESC, trace_id DESC"
	case store.OrderOldest:
		order = "first_match, trace_id"
	case store.OrderSlowest:
		order = "match_dur DESC, trace_id"
	case store.OrderFastest:
		order = "match_dur, trace_id"
	default:
		return TraceSearch{}, invalid("unknown order %q", q.Order)
	}

	a := NewArgs(d)
	from := "spans"
	var conds []string
	if scope != nil {
		from, conds = scope(a)
	}
	eq := func(col, v string) {
		if v != "" {
			conds = append(conds, col+" = "+a.Add(v))
		}
	}
	eq("service", q.Service)
	eq("name", q.Endpoint)
	eq("tenant", q.Tenant)
	eq("version", q.Version)
	if q.MinDuration > 0 {
		conds = append(conds, "duration_ns >= "+a.Add(int64(q.MinDuration)))
	}
	if q.MaxDuration > 0 {
		conds = append(conds, "duration_ns <= "+a.Add(int64(q.MaxDuration)))
	}
	switch q.Status {
	case store.StatusAny:
	case store.StatusFilterOK:
		conds = append(conds, "status_code <> "+strconv.Itoa(int(store.StatusError)))
	case store.StatusFilterErr:
		conds = append(conds, "status_code = "+strconv.Itoa(int(store.StatusError)))
	default:
		return TraceSearch{}, invalid("unknown status filter %q", q.Status)
	}
	if !q.From.IsZero() {
		conds = append(conds, "start_ns >= "+a.Add(NS(q.From)))
	}
	if !q.To.IsZero() {
		conds = append(conds, "start_ns < "+a.Add(NS(q.To)))
	}
	if len(q.Attributes) > store.MaxAttributeFilters {
		return TraceSearch{}, invalid("at most %d attribute filters, not %d", store.MaxAttributeFilters, len(q.Attributes))
	}
	for _, k := range sortedKeys(q.Attributes) {
		if k == "" {
			return TraceSearch{}, invalid("empty attribute key")
		}
		conds = append(conds, a.attrMatch(k, q.Attributes[k]))
	}
	for _, m := range q.Has {
		c, err := a.hasSpan(d, m)
		if err != nil {
			return TraceSearch{}, err
		}
		conds = append(conds, c)
	}
	where := ""
	if len(conds) > 0 {
		where = "WHERE " + strings.Join(conds, " AND ")
	}
	sql := `SELECT trace_id, min(start_ns) AS first_match, max(start_ns) AS last_match, max(duration_ns) AS match_dur
FROM ` + from + ` ` + where + `
GROUP BY trace_id
ORDER BY ` + order + `
LIMIT ` + a.Add(int64(limit))
	return TraceSearch{SQL: sql, Args: a.Vals}, nil
}

// maxHas bounds the further span conditions of one search: each is a
// lookup per candidate trace.
const maxHas = 4

// hasSpan is the condition "the trace of this row also holds a span
// matching m". PostgreSQL finds the trace's spans by its trace_id index;
// SQLite, whose spans are keyed by time, through trace_buckets as Trace
// does.
func (a *Args) hasSpan(d Dialect, m store.SpanMatch) (string, error) {
	if m.IsZero() {
		return "", invalid("a further span condition sets nothing")
	}
	if m.MinPayloadBytes < 0 || m.MaxPayloadBytes < 0 || (m.MaxPayloadBytes > 0 && m.MaxPayloadBytes <= m.MinPayloadBytes) {
		return "", invalid("payload range [%d, %d) is empty or negative", m.MinPayloadBytes, m.MaxPayloadBytes)
	}
	if len(a.Vals) > 1000 {
		return "", invalid("too many search conditions")
	}
	var conds []string
	eq := func(col, v string) {
		if v != "" {
			conds = append(conds, "s2."+col+" = "+a.Add(v))
		}
	}
	eq("service", m.Service)
	eq("version", m.Version)
	eq("host", m.Host)
	if m.Dependency != "" {
		// The analysis's dependency key (see store.SpanMatch).
		conds = append(conds, "(s2.dependency = "+a.Add(m.Dependency)+" OR (s2.dependency = '' AND s2.service = "+a.Add(m.Dependency)+"))")
	}
	if m.MinPayloadBytes > 0 {
		conds = append(conds, "s2.payload_bytes >= "+a.Add(m.MinPayloadBytes))
	}
	if m.MaxPayloadBytes > 0 {
		conds = append(conds, "s2.payload_bytes < "+a.Add(m.MaxPayloadBytes))
	}
	if d == SQLite {
		return `EXISTS (SELECT 1 FROM trace_buckets tb2 CROSS JOIN spans s2 INDEXED BY spans_start_trace
    ON s2.start_ns BETWEEN tb2.min_ns AND tb2.max_ns AND s2.trace_id = tb2.trace_id
  WHERE tb2.trace_id = spans.trace_id AND ` + strings.Join(conds, " AND ") + `)`, nil
	}
	return `EXISTS (SELECT 1 FROM spans s2 WHERE s2.trace_id = spans.trace_id AND ` + strings.Join(conds, " AND ") + `)`, nil
}

// SummarySQL builds the query summarising the given traces. Each row is
// (trace_id, service, name, start_ns, duration_ns, tenant, version, is_root,
// span_count, error_count, first_start, last_end) for the trace's root span,
// or its earliest span when no root has arrived.
func SummarySQL(d Dialect, ids []store.TraceID) (string, []any) {
	a := NewArgs(d)
	from := "spans WHERE " + a.InTraceIDs("trace_id", ids)
	if d == SQLite {
		from = SQLiteTraceSpans(a.InTraceIDs("tb.trace_id", ids))
	}
	return `SELECT trace_id, service, name, start_ns, duration_ns, tenant, version, is_root, n, errs, first_start, last_end FROM (
  SELECT trace_id, service, name, start_ns, duration_ns, tenant, version,
    (parent_span_id IS NULL) AS is_root,
    row_number() OVER (PARTITION BY trace_id
      ORDER BY CASE WHEN parent_span_id IS NULL THEN 0 ELSE 1 END, start_ns, span_id) AS rn,
    count(*) OVER w AS n,
    sum(CASE WHEN status_code = 2 THEN 1 ELSE 0 END) OVER w AS errs,
    min(start_ns) OVER w AS first_start,
    max(start_ns + duration_ns) OVER w AS last_end
  FROM ` + from + `
  WINDOW w AS (PARTITION BY trace_id)
) x WHERE rn = 1`, a.Vals
}

// SampleSQL validates q and builds the Samples query; rows go through a
// SampleBuilder, which returns them ordered. The SQL orders only to apply a
// Limit (newest first): without one, ordering in SQL by (start, trace id,
// span id) made PostgreSQL sort 100k rows on disk instead of streaming the
// covering index, while sorting in Go costs a few milliseconds.
func SampleSQL(d Dialect, q store.SampleQuery) (sql string, args []any, err error) {
	if err := checkSample(q); err != nil {
		return "", nil, err
	}
	if err := CheckRange(q.From, q.To); err != nil {
		return "", nil, err
	}
	a := NewArgs(d)
	conds := sampleConds(a, q)
	if !q.From.IsZero() {
		conds = append(conds, "start_ns >= "+a.Add(NS(q.From)))
	}
	if !q.To.IsZero() {
		conds = append(conds, "start_ns < "+a.Add(NS(q.To)))
	}
	sql = `SELECT ` + SampleColumns + ` FROM spans WHERE ` + strings.Join(conds, " AND ")
	if q.Limit > 0 {
		sql += " ORDER BY " + sampleNewest + " LIMIT " + a.Add(int64(q.Limit))
	}
	return sql, a.Vals, nil
}

// sampleNewest orders a limited sample read: the newest spans are kept.
const sampleNewest = "start_ns DESC, trace_id DESC, span_id DESC"

func checkSample(q store.SampleQuery) error {
	if q.Service == "" {
		return invalid("samples: service is required")
	}
	if q.Limit < 0 {
		return invalid("limit %d is negative", q.Limit)
	}
	if q.MinDurationNano < 0 {
		return invalid("minimum duration %d is negative", q.MinDurationNano)
	}
	return nil
}

// sampleConds is the WHERE of a sample read but its time bounds.
func sampleConds(a *Args, q store.SampleQuery) []string {
	conds := []string{"service = " + a.Add(q.Service), EntryCond}
	if q.Endpoint != "" {
		conds = append(conds, "name = "+a.Add(q.Endpoint))
	}
	if q.Version != "" {
		conds = append(conds, "version = "+a.Add(q.Version))
	}
	if q.Tenant != "" {
		conds = append(conds, "tenant = "+a.Add(q.Tenant))
	}
	if q.MinDurationNano > 0 {
		conds = append(conds, "duration_ns >= "+a.Add(q.MinDurationNano))
	}
	return conds
}

// SampleRangesSQL validates q and ranges and builds PostgreSQL's
// SampleRanges query: the ranges' bounds and limits are three arrays, and
// each range is one LATERAL index range read of the same plan — one
// statement and one round trip however many ranges. Each row leads with
// its range's 1-based position; then SampleColumns. An unbounded side is
// the int64 extreme; a zero limit is none (LIMIT NULL).
func SampleRangesSQL(q store.SampleQuery, ranges []store.SampleRange) (string, []any, error) {
	if err := checkSample(q); err != nil {
		return "", nil, err
	}
	lo, hi, lim := make([]int64, len(ranges)), make([]int64, len(ranges)), make([]int64, len(ranges))
	for i, r := range ranges {
		if r.Limit < 0 {
			return "", nil, invalid("range %d: limit %d is negative", i, r.Limit)
		}
		if err := CheckRange(r.From, r.To); err != nil {
			return "", nil, err
		}
		lo[i], hi[i], lim[i] = math.MinInt64, math.MaxInt64, int64(r.Limit)
		if !r.From.IsZero() {
			lo[i] = NS(r.From)
		}
		if !r.To.IsZero() {
			hi[i] = NS(r.To)
		}
	}
	a := NewArgs(Postgres)
	arrays := a.Add(lo) + "::bigint[], " + a.Add(hi) + "::bigint[], " + a.Add(lim) + "::bigint[]"
	conds := append(sampleConds(a, q), "start_ns >= r.lo", "start_ns < r.hi")
	sql := `SELECT r.i, s.* FROM unnest(` + arrays + `) WITH ORDINALITY AS r(lo, hi, lim, i)
CROSS JOIN LATERAL (SELECT ` + SampleColumns + ` FROM spans WHERE ` + strings.Join(conds, " AND ") + `
ORDER BY ` + sampleNewest + ` LIMIT nullif(r.lim, 0)) s`
	return sql, a.Vals, nil
}

// EntryCond selects entry spans: roots, server and consumer spans. The
// PostgreSQL covering index includes parent_span_id and kind so this filter
// needs no heap access.
const EntryCond = "(parent_span_id IS NULL OR kind IN (2, 5))"

// DeploysSQL validates q and builds the Deploys query (newest first).
func DeploysSQL(d Dialect, q store.DeployQuery) (string, []any, error) {
	if q.Limit < 0 {
		return "", nil, invalid("limit %d is negative", q.Limit)
	}
	if err := CheckRange(q.From, q.To); err != nil {
		return "", nil, err
	}
	a := NewArgs(d)
	var conds []string
	if q.Service != "" {
		conds = append(conds, "service = "+a.Add(q.Service))
	}
	if !q.From.IsZero() {
		conds = append(conds, "at_ns >= "+a.Add(NS(q.From)))
	}
	if !q.To.IsZero() {
		conds = append(conds, "at_ns < "+a.Add(NS(q.To)))
	}
	sql := "SELECT " + DeployColumns + " FROM deploys"
	if len(conds) > 0 {
		sql += " WHERE " + strings.Join(conds, " AND ")
	}
	sql += " ORDER BY at_ns DESC, id DESC"
	if q.Limit > 0 {
		sql += " LIMIT " + a.Add(int64(q.Limit))
	}
	return sql, a.Vals, nil
}

// sortedKeys gives the attribute conditions a fixed order, so one query has
// one SQL text (and one cached plan).
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// SQLiteTraceBucketShift sizes the buckets of SQLite's trace_buckets table:
// a span is filed under (trace id, start_ns >> 30), buckets of ~1.07 s. The
// shift floors negative times too, in Go as in SQLite.
const SQLiteTraceBucketShift = 30

// ResourceExpr is the expression, in both dialects, of the resource JSON of
// the span row named alias: in resources since migration 00004 (SQLite) or
// 00003 (PostgreSQL), inline in rows written before it.
func ResourceExpr(alias string) string {
	return "coalesce(" + alias + ".resource, (SELECT body FROM resources WHERE id = " + alias + ".resource_id))"
}

// ResolvedSpanColumns selects SpanColumns from the span row named alias,
// the resource resolved (ResourceExpr).
func ResolvedSpanColumns(alias string) string {
	cols := make([]string, len(SpanColumnNames))
	for i, c := range SpanColumnNames {
		cols[i] = alias + "." + c
		if c == "resource" {
			cols[i] = ResourceExpr(alias) + " AS resource"
		}
	}
	return strings.Join(cols, ", ")
}

// SQLiteTraceSpans returns a FROM source, named spans, of the SQLite spans
// of the traces selected by cond (a condition on tb.trace_id). SQLite has no
// index on trace id: its unique index starts with start_ns, so inserts
// append instead of landing on a random page each (see migration 00003);
// trace_buckets says which ranges of that index (within ~1 s buckets) hold
// a trace's spans.
// CROSS JOIN pins the loop order (buckets outside), which SQLite's planner
// might otherwise turn around after an ANALYZE, and INDEXED BY the index:
// left to itself, SQLite 3.54 built an automatic index on trace_id over the
// whole table instead (6.4 s to summarise 200 traces among 1M spans, 34 ms
// with the range scans).
func SQLiteTraceSpans(cond string) string {
	return sqliteTraceRows(ResolvedSpanColumns("s"), cond)
}

// SQLiteTraceShapes is SQLiteTraceSpans with ShapeColumns only: neither
// the resource nor the attributes and events are read.
func SQLiteTraceShapes(cond string) string {
	cols := make([]string, len(ShapeColumnNames))
	for i, c := range ShapeColumnNames {
		cols[i] = "s." + c
	}
	return sqliteTraceRows(strings.Join(cols, ", "), cond)
}

// SQLiteRequestShapes is SQLiteTraceSpans with the attributes of the spans
// attrOf (a condition on s) selects, the resource of those resourceOf
// selects, and no events. The two are one condition written twice: SQLite's
// placeholders are positional, so each use binds its own arguments.
func SQLiteRequestShapes(attrOf, resourceOf, cond string) string {
	cols := make([]string, len(SpanColumnNames))
	for i, c := range SpanColumnNames {
		switch c {
		case "attributes":
			cols[i] = "CASE WHEN " + attrOf + " THEN s.attributes END AS attributes"
		case "resource":
			cols[i] = "CASE WHEN " + resourceOf + " THEN " + ResourceExpr("s") + " END AS resource"
		case "events":
			cols[i] = "NULL AS events"
		default:
			cols[i] = "s." + c
		}
	}
	return sqliteTraceRows(strings.Join(cols, ", "), cond)
}

func sqliteTraceRows(cols, cond string) string {
	return `(SELECT ` + cols + ` FROM trace_buckets tb CROSS JOIN spans s INDEXED BY spans_start_trace
    ON s.start_ns BETWEEN tb.min_ns AND tb.max_ns AND s.trace_id = tb.trace_id
  WHERE ` + cond + `) spans`
}
