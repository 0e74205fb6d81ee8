package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

var _ store.ProfileStore = (*DB)(nil)

var profileSampleColumns = []string{"profile_id", "stack_id", "span_id", "span_name", "value"}

// WriteProfiles stores a batch in one transaction: the stacks in one INSERT
// ... ON CONFLICT DO NOTHING (a stack is stored once), each profile unless
// its fingerprint is already stored, then every new profile's samples in one
// COPY.
func (db *DB) WriteProfiles(ctx context.Context, b store.ProfileBatch) error {
	if err := b.Validate(); err != nil {
		return fmt.Errorf("postgres: write profiles: %w", err)
	}
	if len(b.Profiles) == 0 {
		return nil
	}
	ids, frames, err := encodeStacks(b.Stacks)
	if err != nil {
		return fmt.Errorf("postgres: write profiles: %w", err)
	}
	labels := make([]any, len(b.Profiles))
	for i := range b.Profiles {
		if labels[i], err = encodeLabels(b.Profiles[i].Labels); err != nil {
			return fmt.Errorf("postgres: write profiles: %w", err)
		}
	}
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		// Stacks go in id order: two uploads sharing stacks then take their
		// row locks in the same order and cannot deadlock.
		if _, err := tx.Exec(ctx, `INSERT INTO profile_stacks (id, frames)
SELECT * FROM unnest($1::bigint[], $2::text[]) ON CONFLICT DO NOTHING`, ids, frames); err != nil {
			return err
		}
		var rows [][]any
		for i := range b.Profiles {
			p := &b.Profiles[i]
			var id int64
			err := tx.QueryRow(ctx, `INSERT INTO profiles (fingerprint, service, type, unit, start_ns, end_ns, labels, total)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (fingerprint) DO NOTHING RETURNING id`,
				p.Fingerprint(), sqlcommon.Clean(p.Service), string(p.Type), p.Unit,
				sqlcommon.NS(p.Start), sqlcommon.NS(p.End), labels[i], profileTotal(p.Samples)).Scan(&id)
			if errors.Is(err, pgx.ErrNoRows) {
				continue // already stored: a resent upload
			}
			if err != nil {
				return err
			}
			for _, s := range p.Samples {
				var span []byte
				if !s.SpanID.IsZero() {
					span = s.SpanID[:]
				}
				rows = append(rows, []any{id, s.StackID, span, sqlcommon.Clean(s.SpanName), s.Value})
			}
		}
		if len(rows) == 0 {
			return nil
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"profile_samples"}, profileSampleColumns, pgx.CopyFromRows(rows))
		return err
	})
	return mapErr(ctx, "write profiles", err)
}

// Stacks merges the samples selected by q per stack.
func (db *DB) Stacks(ctx context.Context, q store.StackQuery) ([]store.StackValue, error) {
	q, err := q.Validate()
	if err != nil {
		return nil, fmt.Errorf("postgres: stacks: %w", err)
	}
	if q.SpanIDs != nil && len(q.SpanIDs) == 0 {
		return []store.StackValue{}, nil
	}
	a := sqlcommon.NewArgs(sqlcommon.Postgres)
	where := []string{"p.type = " + a.Add(string(q.Type)), "p.unit = " + a.Add(q.Unit)}
	if q.Service != "" {
		where = append(where, "p.service = "+a.Add(q.Service))
	}
	where = append(where, windowCond(a, q.From, q.To)...)
	if q.SpanIDs != nil {
		where = append(where, "s.span_id = ANY("+a.Add(spanIDBytes(q.SpanIDs))+"::bytea[])")
	}
	query := `SELECT st.frames, agg.total FROM (
  SELECT s.stack_id, sum(s.value)::bigint AS total
  FROM profiles p JOIN profile_samples s ON s.profile_id = p.id
  WHERE ` + strings.Join(where, " AND ") + `
  GROUP BY s.stack_id
) agg JOIN profile_stacks st ON st.id = agg.stack_id
ORDER BY agg.total DESC, agg.stack_id`
	if q.MaxStacks > 0 {
		query += ` LIMIT ` + strconv.Itoa(q.MaxStacks)
	}
	out, err := sqlcommon.Collect(ctx, conn{db}, query, sqlcommon.ScanStackValue, a.Vals...)
	if err != nil {
		return nil, mapErr(ctx, "stacks", err)
	}
	return out, nil
}

// ProfiledSpans reports which of ids have samples, per type and unit.
func (db *DB) ProfiledSpans(ctx context.Context, ids []store.SpanID) ([]store.SpanProfile, error) {
	if len(ids) > store.MaxProfileSpanIDs {
		return nil, fmt.Errorf("postgres: profiled spans: %w", store.Invalid("%d span ids: at most %d", len(ids), store.MaxProfileSpanIDs))
	}
	out := []store.SpanProfile{}
	if len(ids) == 0 {
		return out, nil
	}
	out, err := sqlcommon.Collect(ctx, conn{db}, `SELECT s.span_id, p.type, p.unit, sum(s.value)::bigint
FROM profile_samples s JOIN profiles p ON p.id = s.profile_id
WHERE s.span_id = ANY($1::bytea[])
GROUP BY s.span_id, p.type, p.unit
ORDER BY s.span_id, p.type, p.unit`, sqlcommon.ScanSpanProfile, spanIDBytes(ids))
	if err != nil {
		return nil, fmt.Errorf("postgres: profiled spans: %w", err)
	}
	return out, nil
}

// ProfileSeries lists the (service, type, unit) with profiles in [from, to).
func (db *DB) ProfileSeries(ctx context.Context, from, to time.Time) ([]store.ProfileSeries, error) {
	if err := sqlcommon.CheckRange(from, to); err != nil {
		return nil, fmt.Errorf("postgres: profile series: %w", err)
	}
	a := sqlcommon.NewArgs(sqlcommon.Postgres)
	where := ""
	if cond := windowCond(a, from, to); len(cond) > 0 {
		where = "WHERE " + strings.Join(cond, " AND ")
	}
	out, err := sqlcommon.Collect(ctx, conn{db}, sqlcommon.ProfileSeriesSQL(sqlcommon.Postgres, where), sqlcommon.ScanProfileSeries, a.Vals...)
	if err != nil {
		return nil, fmt.Errorf("postgres: profile series: %w", err)
	}
	return out, nil
}

// profileDeleteChunk bounds one retention transaction, so its locks and WAL
// stay small while uploads continue.
const profileDeleteChunk = 1000

// DeleteProfilesBefore removes profiles that ended before t, and their
// samples, a chunk of profiles per transaction.
func (db *DB) DeleteProfilesBefore(ctx context.Context, t time.Time) error {
	cut := sqlcommon.NS(t)
	for {
		var n int64
		err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			// start_ns < cut first, so the start index narrows the scan.
			rows, err := tx.Query(ctx, `DELETE FROM profiles WHERE id IN (
  SELECT id FROM profiles WHERE start_ns < $1 AND end_ns < $1 ORDER BY start_ns LIMIT $2
) RETURNING id`, cut, profileDeleteChunk)
			if err != nil {
				return err
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				return err
			}
			n = int64(len(ids))
			if n == 0 {
				return nil
			}
			_, err = tx.Exec(ctx, `DELETE FROM profile_samples WHERE profile_id = ANY($1::bigint[])`, ids)
			return err
		})
		if err != nil {
			return mapErr(ctx, "delete profiles", err)
		}
		if n < profileDeleteChunk {
			return nil
		}
	}
}

// windowCond selects profiles whose window overlaps [from, to). The lower
// bound on start_ns is implied by end_ns > from and the bounded window
// length (store.MaxProfileWindow); stating it lets the start index serve
// the query.
func windowCond(a *sqlcommon.Args, from, to time.Time) []string {
	var cond []string
	if !from.IsZero() {
		f := sqlcommon.NS(from)
		lo := f - int64(store.MaxProfileWindow)
		if lo > f { // overflow near math.MinInt64
			lo = math.MinInt64
		}
		cond = append(cond, "p.start_ns >= "+a.Add(lo), "p.end_ns > "+a.Add(f))
	}
	if !to.IsZero() {
		cond = append(cond, "p.start_ns < "+a.Add(sqlcommon.NS(to)))
	}
	return cond
}

func spanIDBytes(ids []store.SpanID) [][]byte {
	out := make([][]byte, len(ids))
	for i := range ids {
		out[i] = ids[i][:]
	}
	return out
}

// encodeStacks returns the distinct stacks' ids and frames (JSON arrays),
// in id order.
func encodeStacks(stacks []store.Stack) ([]int64, []string, error) {
	sorted := slices.Clone(stacks)
	slices.SortFunc(sorted, func(a, b store.Stack) int { return cmp.Compare(a.ID, b.ID) })
	sorted = slices.CompactFunc(sorted, func(a, b store.Stack) bool { return a.ID == b.ID })
	ids := make([]int64, len(sorted))
	frames := make([]string, len(sorted))
	for i, s := range sorted {
		b, err := json.Marshal(s.Frames)
		if err != nil {
			return nil, nil, fmt.Errorf("encode frames: %w", err)
		}
		ids[i], frames[i] = s.ID, string(b)
	}
	return ids, frames, nil
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
