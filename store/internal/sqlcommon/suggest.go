package sqlcommon

import (
	"strings"

	"github.com/tailscope/tailscope/store"
)

// maxSuggestScan bounds the spans one suggestion reads.
const maxSuggestScan = 100_000

// AttributeKeysSQL builds the AttributeKeys query (key, count).
func AttributeKeysSQL(d Dialect, q store.AttributeQuery) (string, []any, error) {
	a, sample, err := suggestSample(d, q)
	if err != nil {
		return "", nil, err
	}
	var sql string
	if d == Postgres {
		sql = `SELECT k, count(*) AS n FROM (` + sample + `) s, json_object_keys(s.attributes) k`
	} else {
		sql = `SELECT j.key AS k, count(*) AS n FROM (` + sample + `) s, json_each(s.attributes) j`
	}
	if q.Prefix != "" {
		sql += ` WHERE ` + prefixCond(d, "k", a, q.Prefix)
	}
	return sql + ` GROUP BY k ORDER BY n DESC, k LIMIT ` + a.Add(int64(q.Limit)), a.Vals, nil
}

// AttributeValuesSQL builds the AttributeValues query (value, count): the
// values' text forms are those attrMatch compares with.
func AttributeValuesSQL(d Dialect, q store.AttributeQuery) (string, []any, error) {
	if q.Key == "" {
		return "", nil, invalid("attribute values need a key")
	}
	a, sample, err := suggestSample(d, q)
	if err != nil {
		return "", nil, err
	}
	var sql string
	if d == Postgres {
		k := a.Add(q.Key)
		sql = `SELECT v, count(*) AS n FROM (SELECT s.attributes ->> ` + k + ` AS v FROM (` + sample + `) s
WHERE json_typeof(s.attributes -> ` + k + `) IN ('string', 'number', 'boolean')) x`
	} else {
		sql = `SELECT v, count(*) AS n FROM (SELECT CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'text' THEN j.atom
	ELSE coalesce(s.attributes -> j.fullkey, CAST(j.atom AS TEXT)) END AS v
FROM (` + sample + `) s, json_each(s.attributes) j
WHERE j.key = ` + a.Add(q.Key) + ` AND j.type IN ('true', 'false', 'text', 'integer', 'real')) x`
	}
	if q.Prefix != "" {
		sql += ` WHERE ` + prefixCond(d, "v", a, q.Prefix)
	}
	return sql + ` GROUP BY v ORDER BY n DESC, v LIMIT ` + a.Add(int64(q.Limit)), a.Vals, nil
}

// suggestSample is the bounded sample of spans both suggestions read: no
// ORDER BY, so the database stops after q.Scan rows of its time index
// instead of sorting the window.
func suggestSample(d Dialect, q store.AttributeQuery) (*Args, string, error) {
	if err := CheckRange(q.From, q.To); err != nil {
		return nil, "", err
	}
	if q.Limit < 1 || q.Scan < 1 || q.Scan > maxSuggestScan {
		return nil, "", invalid("limit %d and scan %d: want a positive limit and from 1 to %d spans", q.Limit, q.Scan, maxSuggestScan)
	}
	a := NewArgs(d)
	conds := []string{"attributes IS NOT NULL"}
	if d == Postgres {
		// json_object_keys refuses a json scalar
		conds = append(conds, "json_typeof(attributes) = 'object'")
	}
	if !q.From.IsZero() {
		conds = append(conds, "start_ns >= "+a.Add(NS(q.From)))
	}
	if !q.To.IsZero() {
		conds = append(conds, "start_ns < "+a.Add(NS(q.To)))
	}
	if q.Service != "" {
		conds = append(conds, "service = "+a.Add(q.Service))
	}
	return a, `SELECT attributes FROM spans WHERE ` + strings.Join(conds, " AND ") + ` LIMIT ` + a.Add(int64(q.Scan)), nil
}

// prefixCond is col starting with prefix, compared as text (LIKE would
// need its wildcards escaped).
func prefixCond(d Dialect, col string, a *Args, prefix string) string {
	if d == Postgres {
		return "starts_with(" + col + ", " + a.Add(prefix) + ")"
	}
	// SQLite's parameters are positional: one per use.
	n := a.Add(int64(len([]rune(prefix))))
	return "substr(" + col + ", 1, " + n + ") = " + a.Add(prefix)
}
