package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

var _ store.ProfileStore = (*DB)(nil)

// WriteProfiles stores a batch in one transaction: stacks with INSERT OR
// IGNORE (a stack is stored once), each profile unless its fingerprint is
// already stored, then its samples.
func (db *DB) WriteProfiles(ctx context.Context, b store.ProfileBatch) (err error) {
	if err := b.Validate(); err != nil {
		return fmt.Errorf("sqlite: write profiles: %w", err)
	}
	if len(b.Profiles) == 0 {
		return nil
	}
	stacks, err := encodeStacks(b.Stacks)
	if err != nil {
		return fmt.Errorf("sqlite: write profiles: %w", err)
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return mapErr(ctx, "write profiles: begin", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	insStack, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO profile_stacks (id, frames) VALUES (?, ?)`)
	if err != nil {
		return mapErr(ctx, "write profiles", err)
	}
	defer insStack.Close()
	for _, s := range stacks {
		if _, err := insStack.ExecContext(ctx, s.id, s.frames); err != nil {
			return mapErr(ctx, "write profiles: stacks", err)
		}
	}
	insSample, err := tx.PrepareContext(ctx, `INSERT INTO profile_samples (profile_id, stack_id, span_id, span_name, value)
VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return mapErr(ctx, "write profiles", err)
	}
	defer insSample.Close()
	for i := range b.Profiles {
		p := &b.Profiles[i]
		labels, err := encodeLabels(p.Labels)
		if err != nil {
			return fmt.Errorf("sqlite: write profiles: %w", err)
		}
		var id int64
		err = tx.QueryRowContext(ctx, `INSERT INTO profiles (fingerprint, service, type, unit, start_ns, end_ns, labels, total)
VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (fingerprint) DO NOTHING RETURNING id`,
			p.Fingerprint(), sqlcommon.Clean(p.Service), string(p.Type), p.Unit,
			sqlcommon.NS(p.Start), sqlcommon.NS(p.End), labels, profileTotal(p.Samples)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			continue // already stored: a resent upload
		}
		if err != nil {
			return mapErr(ctx, "write profiles", err)
		}
		for _, s := range p.Samples {
			var span any
			if !s.SpanID.IsZero() {
				span = s.SpanID[:]
			}
			if _, err := insSample.ExecContext(ctx, id, s.StackID, span, sqlcommon.Clean(s.SpanName), s.Value); err != nil {
				return mapErr(ctx, "write profiles: samples", err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return mapErr(ctx, "write profiles: commit", err)
	}
	return nil
}

// Stacks merges the samples selected by q per stack.
func (db *DB) Stacks(ctx context.Context, q store.StackQuery) ([]store.StackValue, error) {
	q, err := q.Validate()
	if err != nil {
		return nil, fmt.Errorf("sqlite: stacks: %w", err)
	}
	if q.SpanIDs != nil && len(q.SpanIDs) == 0 {
		return []store.StackValue{}, nil
	}
	var (
		where = []string{"p.type = ?", "p.unit = ?"}
		args  = []any{string(q.Type), q.Unit}
	)
	if q.Service != "" {
		where = append(where, "p.service = ?")
		args = append(args, q.Service)
	}
	cond, targs := windowCond(q.From, q.To)
	where = append(where, cond...)
	args = append(args, targs...)
	if q.SpanIDs != nil {
		// One bound JSON array instead of one variable per id: the list
		// may be longer than SQLite's variable limit, and the merge must
		// happen in one GROUP BY.
		where = append(where, "s.span_id IN (SELECT unhex(value) FROM json_each(?))")
		args = append(args, spanIDsJSON(q.SpanIDs))
	}
	query := `SELECT st.frames, agg.total FROM (
  SELECT s.stack_id, sum(s.value) AS total
  FROM profiles p JOIN profile_samples s ON s.profile_id = p.id
  WHERE ` + strings.Join(where, " AND ") + `
  GROUP BY s.stack_id
) agg JOIN profile_stacks st ON st.id = agg.stack_id
ORDER BY agg.total DESC, agg.stack_id`
	if q.MaxStacks > 0 {
		query += ` LIMIT ?`
		args = append(args, q.MaxStacks)
	}
	out, err := sqlcommon.Collect(ctx, conn{db}, query, sqlcommon.ScanStackValue, args...)
	if err != nil {
		return nil, mapErr(ctx, "stacks", err)
	}
	return out, nil
}

// ProfiledSpans reports which of ids have samples, per type and unit.
func (db *DB) ProfiledSpans(ctx context.Context, ids []store.SpanID) ([]store.SpanProfile, error) {
	if len(ids) > store.MaxProfileSpanIDs {
		return nil, fmt.Errorf("sqlite: profiled spans: %w", store.Invalid("%d span ids: at most %d", len(ids), store.MaxProfileSpanIDs))
	}
	out := []store.SpanProfile{}
	if len(ids) == 0 {
		return out, nil
	}
	out, err := sqlcommon.Collect(ctx, conn{db}, `SELECT s.span_id, p.type, p.unit, sum(s.value)
FROM profile_samples s JOIN profiles p ON p.id = s.profile_id
WHERE s.span_id IN (SELECT unhex(value) FROM json_each(?))
GROUP BY s.span_id, p.type, p.unit
ORDER BY s.span_id, p.type, p.unit`, sqlcommon.ScanSpanProfile, spanIDsJSON(ids))
	if err != nil {
		return nil, fmt.Errorf("sqlite: profiled spans: %w", err)
	}
	return out, nil
}

// ProfileSeries lists the (service, type, unit) with profiles in [from, to).
func (db *DB) ProfileSeries(ctx context.Context, from, to time.Time) ([]store.ProfileSeries, error) {
	if err := sqlcommon.CheckRange(from, to); err != nil {
		return nil, fmt.Errorf("sqlite: profile series: %w", err)
	}
	cond, args := windowCond(from, to)
	where := ""
	if len(cond) > 0 {
		where = "WHERE " + strings.Join(cond, " AND ")
	}
	out, err := sqlcommon.Collect(ctx, conn{db}, sqlcommon.ProfileSeriesSQL(sqlcommon.SQLite, where), sqlcommon.ScanProfileSeries, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: profile series: %w", err)
	}
	return out, nil
}

// profileDeleteChunk bounds one retention transaction, as deleteChunk does
// for spans, so uploads keep flowing while old profiles go.
const profileDeleteChunk = 200

// DeleteProfilesBefore removes profiles that ended before t, and their
// samples, a chunk of profiles per transaction.
func (db *DB) DeleteProfilesBefore(ctx context.Context, t time.Time) error {
	cut := sqlcommon.NS(t)
	for {
		n, err := db.deleteProfileChunk(ctx, cut)
		if err != nil {
			return err
		}
		if n < profileDeleteChunk {
			return nil
		}
	}
}

func (db *DB) deleteProfileChunk(ctx context.Context, cut int64) (n int64, err error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, mapErr(ctx, "delete profiles: begin", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	// start_ns < cut first, so the start index narrows the scan.
	const chunk = `SELECT id FROM profiles WHERE start_ns < ? AND end_ns < ? ORDER BY start_ns LIMIT ?`
	if _, err := tx.ExecContext(ctx, `DELETE FROM profile_samples WHERE profile_id IN (`+chunk+`)`, cut, cut, profileDeleteChunk); err != nil {
		return 0, mapErr(ctx, "delete profiles: samples", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM profiles WHERE id IN (`+chunk+`)`, cut, cut, profileDeleteChunk)
	if err != nil {
		return 0, mapErr(ctx, "delete profiles", err)
	}
	if n, err = res.RowsAffected(); err != nil {
		return 0, mapErr(ctx, "delete profiles", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, mapErr(ctx, "delete profiles: commit", err)
	}
	return n, nil
}

// windowCond selects profiles whose window overlaps [from, to). The lower
// bound on start_ns is implied by end_ns > from and the bounded window
// length (store.MaxProfileWindow); stating it lets the start index serve
// the query.
func windowCond(from, to time.Time) ([]string, []any) {
	var (
		cond []string
		args []any
	)
	if !from.IsZero() {
		f := sqlcommon.NS(from)
		lo := f - int64(store.MaxProfileWindow)
		if lo > f { // overflow near math.MinInt64
			lo = math.MinInt64
		}
		cond = append(cond, "p.start_ns >= ?", "p.end_ns > ?")
		args = append(args, lo, f)
	}
	if !to.IsZero() {
		cond = append(cond, "p.start_ns < ?")
		args = append(args, sqlcommon.NS(to))
	}
	return cond, args
}

// spanIDsJSON encodes ids as a JSON array of hex strings for json_each.
func spanIDsJSON(ids []store.SpanID) string {
	var b strings.Builder
	b.Grow(len(ids)*19 + 2)
	b.WriteByte('[')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(hex.EncodeToString(id[:]))
		b.WriteByte('"')
	}
	b.WriteByte(']')
	return b.String()
}

type encodedStack struct {
	id     int64
	frames string
}

// encodeStacks encodes each distinct stack's frames as a JSON array, in id
// order.
func encodeStacks(stacks []store.Stack) ([]encodedStack, error) {
	out := make([]encodedStack, 0, len(stacks))
	for _, s := range stacks {
		b, err := json.Marshal(s.Frames)
		if err != nil {
			return nil, fmt.Errorf("encode frames: %w", err)
		}
		out = append(out, encodedStack{id: s.ID, frames: string(b)})
	}
	slices.SortFunc(out, func(a, b encodedStack) int { return cmp.Compare(a.id, b.id) })
	return slices.CompactFunc(out, func(a, b encodedStack) bool { return a.id == b.id }), nil
}

// encodeLabels encodes labels as a JSON object, NULL when there are none.
func encodeLabels(labels map[string]string) (any, error) {
	if len(labels) == 0 {
		return nil, nil
	}
	clean := make(map[string]string, len(labels))
	for k, v := range labels {
		clean[sqlcommon.Clean(k)] = sqlcommon.Clean(v)
	}
	b, err := json.Marshal(clean)
	if err != nil {
		return nil, fmt.Errorf("encode labels: %w", err)
	}
	return string(b), nil
}

// profileTotal sums sample values, saturating instead of overflowing.
func profileTotal(samples []store.ProfileSample) int64 {
	var t int64
	for _, s := range samples {
		if t > math.MaxInt64-s.Value {
			return math.MaxInt64
		}
		t += s.Value
	}
	return t
}
