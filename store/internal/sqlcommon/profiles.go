package sqlcommon

import (
	"encoding/json"
	"fmt"

	"github.com/tailscope/tailscope/store"
)

// ProfileSeriesSQL is the ProfileSeries query with its WHERE clause (empty
// or "WHERE ..."). PostgreSQL's sum of bigints is numeric, so it is cast
// back; SQLite's is already an integer.
func ProfileSeriesSQL(d Dialect, where string) string {
	sum := "sum(p.total)"
	if d == Postgres {
		sum += "::bigint"
	}
	return `SELECT p.service, p.type, p.unit, count(*), ` + sum + `, min(p.start_ns), max(p.end_ns)
FROM profiles p ` + where + `
GROUP BY p.service, p.type, p.unit
ORDER BY p.service, p.type, p.unit`
}

// ScanProfileSeries reads one row of ProfileSeriesSQL.
func ScanProfileSeries(sc Scanner) (store.ProfileSeries, error) {
	var (
		s           store.ProfileSeries
		typ         string
		first, last int64
	)
	if err := sc.Scan(&s.Service, &typ, &s.Unit, &s.Profiles, &s.Value, &first, &last); err != nil {
		return s, err
	}
	s.Type = store.ProfileType(typ)
	s.First, s.Last = Time(first), Time(last)
	return s, nil
}

// ScanSpanProfile reads one (span_id, type, unit, value) row of the
// ProfiledSpans query.
func ScanSpanProfile(sc Scanner) (store.SpanProfile, error) {
	var (
		id  []byte
		sp  store.SpanProfile
		typ string
	)
	if err := sc.Scan(&id, &typ, &sp.Unit, &sp.Value); err != nil {
		return sp, err
	}
	if len(id) != len(sp.SpanID) {
		return sp, fmt.Errorf("span id of %d bytes", len(id))
	}
	copy(sp.SpanID[:], id)
	sp.Type = store.ProfileType(typ)
	return sp, nil
}

// ScanStackValue reads a (frames JSON, value) row of a stacks query.
func ScanStackValue(sc Scanner) (store.StackValue, error) {
	var (
		frames []byte
		sv     store.StackValue
	)
	if err := sc.Scan(&frames, &sv.Value); err != nil {
		return sv, err
	}
	if err := json.Unmarshal(frames, &sv.Frames); err != nil {
		return sv, fmt.Errorf("decode frames: %w", err)
	}
	return sv, nil
}
