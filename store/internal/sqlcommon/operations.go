package sqlcommon

import (
	"cmp"
	"database/sql"
	"slices"
	"strings"
	"time"

	"github.com/tailscope/tailscope/store"
)

// WeightCount is, in both dialects, what a span row counts as: its weight
// rounded half up, at least 1 — store.CountWeight, which the ingest
// rollups use, so rollups built at ingest, by the backfills and the
// operations read from spans agree. Sums of durations multiply it in
// NUMERIC (WeightedSum): PostgreSQL's bigint product would fail on
// overflow.
const WeightCount = "CAST(CASE WHEN weight >= 1 THEN floor(weight + 0.5) ELSE 1 END AS BIGINT)"

// WeightedSum sums a column of the span row weighted by WeightCount.
func WeightedSum(col string) string {
	return "CAST(sum(CAST(" + col + " AS NUMERIC) * " + WeightCount + ") AS BIGINT)"
}

// OperationsSQL validates q and builds the Operations query. Each row is
// (service, name, kind, grp, bin, n, errors, min_ns, max_ns, sum_ns, spans)
// for one duration bin of one operation; bin is NULL for durations ≤ 0.
// Counts and sums are weighted (WeightCount), as the operation rollups
// are; spans is the rows counted, which n exceeds when a span was sampled.
//
// One scan of the window: spans are aggregated per (operation, bin) first,
// and the limit ranks the operations by their total over those few rows
// (window functions), so a high-cardinality GroupBy costs the grouping,
// not a second pass over the spans.
func OperationsSQL(d Dialect, q store.OperationQuery) (string, []any, error) {
	limit, err := checkOperationQuery(q, store.MaxOperationRange)
	if err != nil {
		return "", nil, err
	}
	a := NewArgs(d)
	grp := "''"
	if q.GroupBy != "" {
		grp = a.attrText(q.GroupBy)
	}
	bin := "CASE WHEN duration_ns <= 0 THEN NULL ELSE CAST(floor(ln(CAST(duration_ns AS DOUBLE PRECISION) / 1e6) * " +
		a.Add(q.BinScale) + ") AS INTEGER) END"
	conds := []string{"start_ns >= " + a.Add(NS(q.From)), "start_ns < " + a.Add(NS(q.To))}
	if q.Service != "" {
		conds = append(conds, "service = "+a.Add(q.Service))
	}
	sql := `SELECT service, name, kind, grp, bin, n, errs, min_ns, max_ns, sum_ns, spans FROM (
  SELECT b.*, dense_rank() OVER (ORDER BY total DESC, service, name, kind, grp) AS rk FROM (
    SELECT b.*, sum(n) OVER (PARTITION BY service, name, kind, grp) AS total FROM (
      SELECT service, name, kind, ` + grp + ` AS grp, ` + bin + ` AS bin, CAST(sum(` + WeightCount + `) AS BIGINT) AS n,
        CAST(sum(CASE WHEN status_code = 2 THEN ` + WeightCount + ` ELSE 0 END) AS BIGINT) AS errs,
        min(duration_ns) AS min_ns, max(duration_ns) AS max_ns, ` + WeightedSum("duration_ns") + ` AS sum_ns,
        count(*) AS spans
      FROM spans WHERE ` + strings.Join(conds, " AND ") + `
      GROUP BY 1, 2, 3, 4, 5
    ) b
  ) b
) x WHERE rk <= ` + a.Add(int64(limit))
	return sql, a.Vals, nil
}

// checkOperationQuery validates q (both reads: spans and rollups, whose
// windows are at most maxRange) and returns its effective limit.
func checkOperationQuery(q store.OperationQuery, maxRange time.Duration) (int, error) {
	if q.From.IsZero() || q.To.IsZero() || !q.To.After(q.From) {
		return 0, invalid("operations: a time range [from, to) is required")
	}
	if q.To.Sub(q.From) > maxRange {
		return 0, invalid("operations: the range is longer than %s", maxRange)
	}
	if !(q.BinScale > 0) {
		return 0, invalid("operations: bin scale must be positive")
	}
	switch {
	case q.Limit < 0:
		return 0, invalid("limit %d is negative", q.Limit)
	case q.Limit == 0:
		return store.DefaultOperationLimit, nil
	}
	return min(q.Limit, store.MaxOperationLimit), nil
}

// attrText returns the text form of attribute key of the span row (span
// attributes, then the inline resource, then the resources table), ”
// when absent: the values attrMatch compares.
func (a *Args) attrText(key string) string {
	if a.d == Postgres {
		k := a.Add(key)
		return "coalesce(spans.attributes ->> " + k + ", spans.resource ->> " + k +
			", (SELECT body ->> " + k + " FROM resources WHERE id = spans.resource_id), '')"
	}
	one := func(col, from string) string {
		return `(SELECT CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'text' THEN j.atom
			 WHEN 'integer' THEN coalesce(` + col + ` -> j.fullkey, CAST(j.atom AS TEXT))
			 WHEN 'real' THEN coalesce(` + col + ` -> j.fullkey, CAST(j.atom AS TEXT)) ELSE NULL END
			FROM ` + from + ` j.key = ` + a.Add(key) + ` LIMIT 1)`
	}
	return "coalesce(" + one("spans.attributes", "json_each(spans.attributes) j WHERE") + ", " +
		one("spans.resource", "json_each(spans.resource) j WHERE") + ", " +
		one("r.body", "resources r, json_each(r.body) j WHERE r.id = spans.resource_id AND") + ", '')"
}

// OperationBuilder assembles Operations rows into OperationStats.
type OperationBuilder struct {
	m map[[4]string]*store.OperationStats
}

// Add adds one row of OperationsSQL.
func (b *OperationBuilder) Add(service, name string, kind int64, grp string, bin sql.NullInt64, n, errs, minNs, maxNs, sumNs, spans int64) {
	if b.m == nil {
		b.m = map[[4]string]*store.OperationStats{}
	}
	k := [4]string{service, name, string(rune(kind)), grp}
	o := b.m[k]
	if o == nil {
		o = &store.OperationStats{Service: service, Name: name, Kind: store.SpanKind(kind), Group: grp, MinNs: minNs, MaxNs: maxNs}
		b.m[k] = o
	}
	o.Count += n
	o.Weighted = o.Weighted || n != spans
	o.Errors += errs
	o.SumNs += sumNs
	o.MinNs, o.MaxNs = min(o.MinNs, minNs), max(o.MaxNs, maxNs)
	if !bin.Valid {
		o.ZeroCount += n
		return
	}
	o.Bins = append(o.Bins, store.DurationBin{Index: int32(bin.Int64), Count: n})
}

// Result returns the operations, busiest first.
func (b *OperationBuilder) Result() []store.OperationStats {
	out := make([]store.OperationStats, 0, len(b.m))
	for _, o := range b.m {
		slices.SortFunc(o.Bins, func(x, y store.DurationBin) int { return cmp.Compare(x.Index, y.Index) })
		out = append(out, *o)
	}
	sortOperations(out)
	return out
}

// sortOperations orders ops busiest first, then by service, name, kind and
// group (store.OperationReader's order).
func sortOperations(ops []store.OperationStats) {
	slices.SortFunc(ops, func(x, y store.OperationStats) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.Service, y.Service), cmp.Compare(x.Name, y.Name),
			cmp.Compare(x.Kind, y.Kind), cmp.Compare(x.Group, y.Group), cmp.Compare(b2i(x.Other), b2i(y.Other)))
	})
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
