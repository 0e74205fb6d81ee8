package sqlcommon

import (
	"bytes"
	"context"
	"slices"
	"strings"

	"github.com/tailscope/tailscope/store"
)

// QueryFunc runs one query in the caller's read transaction and calls scan
// for each row.
type QueryFunc func(ctx context.Context, sql string, args []any, scan func(Scanner) error) error

// Walk sizes of IndexSearch: candidates are verified a page at a time, at
// most indexMaxPages pages before the search falls back to spans alone (a
// condition the index cannot see rejects most candidates: an attribute, an
// endpoint, a duration on another span than the longest of its service).
const (
	indexMinPage  = 64
	indexMaxPages = 8
)

// IndexSearch answers a trace search through trace_index: it walks the
// index's rows in an order that bounds the query's order key (newest: the
// latest span start bounds the latest matching start; oldest: the earliest
// start bounds the earliest matching start; slowest: the longest span bounds
// the longest matching span), filtered by what the row can rule out, and
// verifies each page of candidates against their spans with the full
// query (BuildTraceSearch's conditions, so the semantics are the same).
// It stops as soon as no later candidate can enter the first Limit results,
// so the answer is exact. ok is false when the index cannot serve q (order
// fastest, whose key a row does not bound) or the walk ran past
// indexMaxPages pages: the caller then searches spans alone.
func IndexSearch(ctx context.Context, d Dialect, q store.TraceQuery, run QueryFunc) (matches []MatchRow, ok bool, err error) {
	if _, err := BuildTraceSearch(d, q); err != nil {
		return nil, false, err
	}
	var walk indexWalk
	switch q.Order {
	case store.OrderNewest:
		walk = indexWalk{col: "last_start_ns", desc: true, idDesc: true,
			key:    func(m MatchRow) int64 { return m.LastMatch },
			before: func(a, b MatchRow) int { return orderBy(b.LastMatch, a.LastMatch, b.TraceID, a.TraceID) }}
	case store.OrderOldest:
		walk = indexWalk{col: "first_start_ns",
			key:    func(m MatchRow) int64 { return m.FirstMatch },
			before: func(a, b MatchRow) int { return orderBy(a.FirstMatch, b.FirstMatch, a.TraceID, b.TraceID) }}
	case store.OrderSlowest:
		walk = indexWalk{col: "max_duration_ns", desc: true,
			key:    func(m MatchRow) int64 { return m.MatchDuration },
			before: func(a, b MatchRow) int { return orderBy(b.MatchDuration, a.MatchDuration, a.TraceID, b.TraceID) }}
	default:
		return nil, false, nil
	}
	limit := q.Limit
	if limit == 0 {
		limit = DefaultTraceLimit
	}
	limit = min(limit, MaxTraceLimit)
	page := min(max(2*limit, indexMinPage), MaxTraceLimit)

	var (
		after   *indexCandidate
		results []MatchRow
	)
	for range indexMaxPages {
		cands, err := walk.page(ctx, d, q, after, page, run)
		if err != nil {
			return nil, false, err
		}
		if len(cands) > 0 {
			found, err := verifyCandidates(ctx, d, q, cands, run)
			if err != nil {
				return nil, false, err
			}
			results = append(results, found...)
			slices.SortFunc(results, walk.before)
			if len(results) > limit {
				results = results[:limit]
			}
			after = &cands[len(cands)-1]
		}
		if len(cands) < page {
			return results, true, nil // every candidate verified
		}
		if len(results) == limit && walk.beyond(*after, results[limit-1]) {
			return results, true, nil
		}
	}
	return nil, false, nil
}

// orderBy compares by a key, then by trace id (bytewise, as the database
// orders bytea and blobs).
func orderBy(k1, k2 int64, id1, id2 store.TraceID) int {
	if k1 != k2 {
		if k1 < k2 {
			return -1
		}
		return 1
	}
	return bytes.Compare(id1[:], id2[:])
}

type indexCandidate struct {
	id                    store.TraceID
	firstStart, lastStart int64
	bound                 int64
}

// indexWalk is the order in which IndexSearch visits trace_index: by the
// bounding column, ties by trace id in the direction the results break
// ties, so a run of equal bounds (durations are often round) ends the walk
// as soon as it passes the last result's id.
type indexWalk struct {
	col          string // the bounding column
	desc, idDesc bool
	key          func(MatchRow) int64
	before       func(a, b MatchRow) int
}

// beyond reports whether every candidate after c in walk order orders
// after the result last: its key is at most (newest, slowest) or at least
// (oldest) its bound, which is c's or past it, and on a bound equal to
// last's key its id is past c's.
func (w indexWalk) beyond(c indexCandidate, last MatchRow) bool {
	k := w.key(last)
	switch {
	case c.bound != k:
		return (c.bound < k) == w.desc
	case w.idDesc:
		return bytes.Compare(c.id[:], last.TraceID[:]) <= 0
	default:
		return bytes.Compare(c.id[:], last.TraceID[:]) >= 0
	}
}

// page returns the next candidates after the given one, in walk order.
func (w indexWalk) page(ctx context.Context, d Dialect, q store.TraceQuery, after *indexCandidate, n int, run QueryFunc) ([]indexCandidate, error) {
	a := NewArgs(d)
	conds := indexConds(d, a, q)
	dir, cmp, strict := "", ">=", ">"
	if w.desc {
		dir, cmp, strict = " DESC", "<=", "<"
	}
	idDir, idStrict := "", ">"
	if w.idDesc {
		idDir, idStrict = " DESC", "<"
	}
	if after != nil {
		// Each placeholder once: SQLite's ? are positional.
		conds = append(conds, w.col+" "+cmp+" "+a.Add(after.bound))
		conds = append(conds, "("+w.col+" "+strict+" "+a.Add(after.bound)+" OR trace_id "+idStrict+" "+a.Add(after.id[:])+")")
	}
	sql := "SELECT trace_id, first_start_ns, last_start_ns, " + w.col + " FROM trace_index"
	if len(conds) > 0 {
		sql += " WHERE " + strings.Join(conds, " AND ")
	}
	sql += " ORDER BY " + w.col + dir + ", trace_id" + idDir + " LIMIT " + a.Add(int64(n))
	var out []indexCandidate
	err := run(ctx, sql, a.Vals, func(sc Scanner) error {
		var (
			c   indexCandidate
			tid []byte
		)
		if err := sc.Scan(&tid, &c.firstStart, &c.lastStart, &c.bound); err != nil {
			return err
		}
		if err := copyID(c.id[:], tid, "trace id"); err != nil {
			return err
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

// indexConds are the conditions a trace_index row can decide: a trace
// without them has no span matching q. They are necessary, not sufficient;
// verifyCandidates decides.
func indexConds(d Dialect, a *Args, q store.TraceQuery) []string {
	var conds []string
	hasService := func(service string, minDur int64) {
		if d == Postgres {
			if minDur > 0 {
				conds = append(conds, "(services ->> "+a.Add(service)+")::bigint >= "+a.Add(minDur))
			} else {
				conds = append(conds, "(services ->> "+a.Add(service)+") IS NOT NULL")
			}
			return
		}
		c := "EXISTS (SELECT 1 FROM json_each(trace_index.services) WHERE key = " + a.Add(service)
		if minDur > 0 {
			c += " AND value >= " + a.Add(minDur)
		}
		conds = append(conds, c+")")
	}
	switch {
	case q.Service != "":
		hasService(q.Service, int64(q.MinDuration))
	case q.MinDuration > 0:
		conds = append(conds, "max_duration_ns >= "+a.Add(int64(q.MinDuration)))
	}
	for _, m := range q.Has {
		if m.Service != "" {
			hasService(m.Service, 0)
		}
	}
	if q.Status == store.StatusFilterErr {
		conds = append(conds, "error_count > 0")
	}
	if !q.From.IsZero() {
		conds = append(conds, "last_start_ns >= "+a.Add(NS(q.From)))
	}
	if !q.To.IsZero() {
		conds = append(conds, "first_start_ns < "+a.Add(NS(q.To)))
	}
	return conds
}

// verifyCandidates runs the full search over the candidates' spans.
func verifyCandidates(ctx context.Context, d Dialect, q store.TraceQuery, cands []indexCandidate, run QueryFunc) ([]MatchRow, error) {
	ids := make([]store.TraceID, len(cands))
	lo, hi := cands[0].firstStart, cands[0].lastStart
	for i, c := range cands {
		ids[i] = c.id
		lo, hi = min(lo, c.firstStart), max(hi, c.lastStart)
	}
	scope := func(a *Args) (string, []string) {
		if d == SQLite {
			// Every column (resource_id included, which attribute
			// conditions read), found as SQLiteTraceSpans finds them.
			return `(SELECT s.* FROM trace_buckets tb CROSS JOIN spans s INDEXED BY spans_start_trace
    ON s.start_ns BETWEEN tb.min_ns AND tb.max_ns AND s.trace_id = tb.trace_id
  WHERE ` + a.InTraceIDs("tb.trace_id", ids) + `) spans`, nil
		}
		// The candidates' spans by primary key, the start range pruning
		// day partitions (an index row spans every start of its trace).
		// OFFSET 0 plans the subquery on its own: given the search's
		// conditions too, the planner of partitions without statistics
		// chose the covering index on (service, name, start_ns) and
		// scanned every span of the service (320 ms for 64 candidates
		// among 1M spans, against 1 ms by key).
		return `(SELECT * FROM spans WHERE ` + a.InTraceIDs("trace_id", ids) +
			` AND start_ns BETWEEN ` + a.Add(lo) + ` AND ` + a.Add(hi) + ` OFFSET 0) spans`, nil
	}
	vq := q
	vq.Limit = len(ids)
	ts, err := buildTraceSearch(d, vq, scope)
	if err != nil {
		return nil, err
	}
	var out []MatchRow
	err = run(ctx, ts.SQL, ts.Args, func(sc Scanner) error {
		m, err := ScanMatch(sc)
		out = append(out, m)
		return err
	})
	return out, err
}
