package sqlcommon

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/tailscope/tailscope/store"
)

// Rollups (migration postgres 00007, sqlite 00009; docs/DESIGN.md
// "Rollups"): the write hook both stores call from their write
// transaction, and the row encoding readers and the compactor share.

const (
	minuteNs = int64(store.RollupMinute)
	hourNs   = int64(store.RollupHour)
)

// rollupKey names one rollup row: an entry rollup's (service, endpoint,
// version), a tenant rollup's (service, endpoint, tenant: in version) or
// an operation rollup's (service, span name, kind), in one bucket of
// step_s seconds.
type rollupKey struct {
	stepS                      int32
	bucket                     int64
	service, endpoint, version string
	// kind is the span kind of an operation rollup, entryKind for an
	// entry rollup (migration postgres 00010, sqlite 00012).
	kind int32
}

// entryKind is the kind column of entry rollups, which count the entry
// spans of every kind per endpoint and version.
const entryKind int32 = -1

// rollupAgg is what a row holds; bins maps a RollupBin index to its count.
// wsq is the sum of the squared count weights (weight_sq).
type rollupAgg struct {
	count, errors, roots, first, min, max, sum, zero int64
	wsq                                              int64
	bins                                             map[int32]int64
}

func newAgg() *rollupAgg {
	return &rollupAgg{first: math.MaxInt64, min: math.MaxInt64, max: math.MinInt64, bins: map[int32]int64{}}
}

// addSpan counts one span whose duration bin is bin (ok: RollupBin's) as
// the spans of the unsampled stream it stands for: its weight rounded
// (store.CountWeight) in every count and bin, and weight × duration in
// the sum, so the mean stays sum/count, and its square in wsq, so tests
// know how many draws the count rests on. Min, max and first are the
// sampled spans' own.
func (a *rollupAgg) addSpan(s *store.Span, bin int32, ok bool) {
	w := store.CountWeight(s.Weight)
	a.count += w
	a.wsq = addSat(a.wsq, mulSat(w, w))
	if s.StatusCode == store.StatusError {
		a.errors += w
	}
	if s.IsRoot() {
		a.roots += w
	}
	a.first = min(a.first, s.StartUnixNano)
	a.min, a.max = min(a.min, s.DurationNano), max(a.max, s.DurationNano)
	a.sum += mulSat(s.DurationNano, w)
	if ok {
		a.bins[bin] += w
	} else {
		a.zero += w
	}
}

// mulSat is d × w for d ≥ 0, w ≥ 1, saturating at MaxInt64.
func mulSat(d, w int64) int64 {
	if d > math.MaxInt64/w {
		return math.MaxInt64
	}
	return d * w
}

// addSat is a + b for a, b ≥ 0, saturating at MaxInt64.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// merge adds o into a.
func (a *rollupAgg) merge(o *rollupAgg) {
	a.count += o.count
	a.wsq = addSat(a.wsq, o.wsq)
	a.errors += o.errors
	a.roots += o.roots
	a.first = min(a.first, o.first)
	a.min, a.max = min(a.min, o.min), max(a.max, o.max)
	a.sum += o.sum
	a.zero += o.zero
	for b, n := range o.bins {
		a.bins[b] += n
	}
}

// RollupBuilder aggregates spans into minute rows — every span into its
// operation's, entry spans also into their endpoint's and, when their
// tenant is kept (Tenants), their tenant's — and, when rows are taken, the
// hour rows those minutes fall in.
type RollupBuilder struct {
	minutes map[rollupKey]*rollupAgg
	// Tenants are the tenants whose entry spans are rolled up (the zero
	// set: none).
	Tenants TenantSet
	// Names are the span names rolled up under their own name; the rows
	// of others are taken as their service's "other names" rows
	// (rollups_names.go). Nil: every name is kept (a compactor's or a
	// test's builder).
	Names *NameSet
}

// NewRollupBuilder returns an empty builder.
func NewRollupBuilder() *RollupBuilder {
	return &RollupBuilder{minutes: map[rollupKey]*rollupAgg{}}
}

// Add counts s in its operation's rollup and, when it is an entry span
// (store.Span.IsEntry), in its endpoint's and its kept tenant's.
func (b *RollupBuilder) Add(s *store.Span) {
	bin, ok := store.RollupBin(s.DurationNano)
	k := rollupKey{stepS: 60, bucket: floorTo(s.StartUnixNano, minuteNs), service: s.Service, endpoint: s.Name, kind: int32(s.Kind)}
	b.agg(k).addSpan(s, bin, ok)
	if s.IsEntry() {
		k.version, k.kind = s.Version, entryKind
		b.agg(k).addSpan(s, bin, ok)
		if b.Tenants.Has(s.Tenant) || (len(b.Tenants.kept) > 0 && b.Tenants.Has(Clean(s.Tenant))) {
			k.version, k.kind = s.Tenant, tenantKind // rows() cleans keys
			b.agg(k).addSpan(s, bin, ok)
		}
	}
}

// agg returns the minute row of k, created empty.
func (b *RollupBuilder) agg(k rollupKey) *rollupAgg {
	a := b.minutes[k]
	if a == nil {
		a = newAgg()
		b.minutes[k] = a
	}
	return a
}

// Len is the number of minute rows built so far.
func (b *RollupBuilder) Len() int { return len(b.minutes) }

// rows returns the minute rows and the hour rows merged from them, with
// text cleaned as the span columns are (Clean), so readers filtering by a
// stored span's service find its rollups.
func (b *RollupBuilder) rows() map[rollupKey]*rollupAgg {
	out := make(map[rollupKey]*rollupAgg, 2*len(b.minutes))
	put := func(k rollupKey, a *rollupAgg) {
		k.service, k.endpoint, k.version = Clean(k.service), Clean(k.endpoint), Clean(k.version)
		if b.Names != nil && !b.Names.Has(k.service, k.endpoint) {
			k.endpoint, k.kind = "", otherKind(k.kind)
		}
		if have := out[k]; have != nil {
			have.merge(a)
			return
		}
		c := newAgg()
		c.merge(a)
		out[k] = c
	}
	for k, a := range b.minutes {
		put(k, a)
		k.stepS, k.bucket = 3600, floorTo(k.bucket, hourNs)
		put(k, a)
	}
	return out
}

// floorTo rounds t down to a multiple of step (also for t < 0).
func floorTo(t, step int64) int64 {
	r := t % step
	if r < 0 {
		r += step
	}
	return t - r
}

// ceilTo rounds t up to a multiple of step.
func ceilTo(t, step int64) int64 {
	f := floorTo(t, step)
	if f == t {
		return t
	}
	return f + step
}

// rollupColumns are the columns a writer sets (folded takes its default
// 0) and readers scan, in this order.
const rollupColumns = "step_s, bucket_ns, service, endpoint, version, kind, count, errors, roots, first_ns, min_ns, max_ns, sum_ns, zero_count, bins, weight_sq"

const rollupValues = 16

// rollupInsertRows is how many rows one INSERT binds (16 values each, far
// below either dialect's limit).
const rollupInsertRows = 200

// WriteRollups appends the rows of b to rollups through c, the caller's
// write transaction, so they commit with the spans they count.
func WriteRollups(ctx context.Context, c Conn, b *RollupBuilder) error {
	return insertRollups(ctx, c, b.rows(), false)
}

// insertRollups inserts rows; folded marks rows a compactor wrote.
func insertRollups(ctx context.Context, c Conn, rows map[rollupKey]*rollupAgg, folded bool) error {
	if len(rows) == 0 {
		return nil
	}
	keys := make([]rollupKey, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	// A fixed order: two transactions never insert in opposite orders
	// (no lock is taken on insert either way; this keeps plans and tests
	// deterministic).
	slices.SortFunc(keys, compareKeys)
	if c.Dialect() == Postgres {
		return insertRollupArrays(ctx, c, rows, keys, folded)
	}
	cols := rollupColumns
	row := "(?" + strings.Repeat(", ?", rollupValues-1) + ")"
	if folded {
		cols += ", folded"
		row = "(?" + strings.Repeat(", ?", rollupValues-1) + ", 1)"
	}
	args := make([]any, 0, rollupInsertRows*rollupValues)
	for len(keys) > 0 {
		n := min(len(keys), rollupInsertRows)
		args = args[:0]
		for _, k := range keys[:n] {
			a := rows[k]
			args = append(args, k.stepS, k.bucket, k.service, k.endpoint, k.version, k.kind, a.count, a.errors, a.roots,
				a.first, a.min, a.max, a.sum, a.zero, EncodeBins(a.bins), a.wsq)
		}
		q := `INSERT INTO rollups (` + cols + `) VALUES ` + row + strings.Repeat(", "+row, n-1)
		if _, err := c.Exec(ctx, Rebind(c.Dialect(), q), args...); err != nil {
			return fmt.Errorf("insert rollups: %w", err)
		}
		keys = keys[n:]
	}
	return nil
}

// rollupArraysSQL inserts rows given as one typed array per column
// (rollupColumns, then folded): one statement text whatever the row
// count, so PostgreSQL prepares it once per connection, and pgx encodes
// each array in binary without a type look-up per value — a third of the
// client's CPU for the rollups of a batch went to binding 15 values a row.
var rollupArraysSQL = `INSERT INTO rollups (` + rollupColumns + `, folded)
SELECT * FROM unnest($1::int[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::int[], $7::bigint[], $8::bigint[],
  $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bytea[], $16::bigint[],
  $17::smallint[])`

func insertRollupArrays(ctx context.Context, c Conn, rows map[rollupKey]*rollupAgg, keys []rollupKey, folded bool) error {
	n := len(keys)
	var (
		step, kind                        = make([]int32, n), make([]int32, n)
		bucket, count, errs, roots, first = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		minNs, maxNs, sum, zero, wsq      = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		service, endpoint, version        = make([]string, n), make([]string, n), make([]string, n)
		bins                              = make([][]byte, n)
		fold                              = make([]int16, n)
	)
	for i, k := range keys {
		a := rows[k]
		step[i], bucket[i], service[i], endpoint[i], version[i], kind[i] = k.stepS, k.bucket, k.service, k.endpoint, k.version, k.kind
		count[i], errs[i], roots[i], first[i], minNs[i], maxNs[i], sum[i], zero[i] = a.count, a.errors, a.roots, a.first, a.min, a.max, a.sum, a.zero
		wsq[i] = a.wsq
		bins[i] = EncodeBins(a.bins)
		if folded {
			fold[i] = 1
		}
	}
	if _, err := c.Exec(ctx, rollupArraysSQL, step, bucket, service, endpoint, version, kind, count, errs, roots, first,
		minNs, maxNs, sum, zero, bins, wsq, fold); err != nil {
		return fmt.Errorf("insert rollups: %w", err)
	}
	return nil
}

func compareKeys(a, b rollupKey) int {
	return cmp.Or(cmp.Compare(a.stepS, b.stepS), cmp.Compare(a.bucket, b.bucket), cmp.Compare(a.service, b.service),
		cmp.Compare(a.endpoint, b.endpoint), cmp.Compare(a.version, b.version), cmp.Compare(a.kind, b.kind))
}

// EncodeBins encodes bins as (index delta, count) varint pairs in index
// order: ~2–3 bytes a bin, and a bucket of one endpoint holds tens of bins.
func EncodeBins(bins map[int32]int64) []byte {
	idx := make([]int32, 0, len(bins))
	for i, n := range bins {
		if n != 0 {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	out := make([]byte, 0, 4*len(idx))
	prev := int64(0)
	for _, i := range idx {
		out = binary.AppendVarint(out, int64(i)-prev)
		out = binary.AppendUvarint(out, uint64(bins[i]))
		prev = int64(i)
	}
	return out
}

// decodeBinsInto adds the bins encoded in b to bins.
func decodeBinsInto(b []byte, bins map[int32]int64) error {
	prev := int64(0)
	for len(b) > 0 {
		d, n := binary.Varint(b)
		if n <= 0 {
			return fmt.Errorf("decode rollup bins: bad index")
		}
		b = b[n:]
		c, m := binary.Uvarint(b)
		if m <= 0 {
			return fmt.Errorf("decode rollup bins: bad count")
		}
		b = b[m:]
		prev += d
		if prev < math.MinInt32 || prev > math.MaxInt32 || c > math.MaxInt64 {
			return fmt.Errorf("decode rollup bins: out of range")
		}
		bins[int32(prev)] += int64(c)
	}
	return nil
}

// scanRollupInto reads one row of rollupColumns and merges it into
// merged under its key as norm leaves it (norm may blank fields to merge
// more rows). The bins are decoded straight into the merged row: a read
// of thousands of rows allocates per key, not per row.
func scanRollupInto(sc Scanner, merged map[rollupKey]*rollupAgg, norm func(*rollupKey)) (rollupKey, error) {
	var (
		k   rollupKey
		o   rollupAgg
		raw []byte
	)
	if err := sc.Scan(&k.stepS, &k.bucket, &k.service, &k.endpoint, &k.version, &k.kind, &o.count, &o.errors, &o.roots,
		&o.first, &o.min, &o.max, &o.sum, &o.zero, &raw, &o.wsq); err != nil {
		return k, err
	}
	if o.wsq == 0 {
		// A row written before weight_sq existed: each counted span is
		// taken for its own draw (exact for spans without a weight).
		o.wsq = o.count
	}
	if norm != nil {
		norm(&k)
	}
	a := merged[k]
	if a == nil {
		a = newAgg()
		merged[k] = a
	}
	a.merge(&o) // o has no bins: they are decoded next
	return k, decodeBinsInto(raw, a.bins)
}

// toRollup converts a merged row.
func toRollup(k rollupKey, a *rollupAgg) store.Rollup {
	r := store.Rollup{Service: k.service, Endpoint: k.endpoint, Version: k.version, BucketUnixNano: k.bucket,
		Count: a.count, Errors: a.errors, Roots: a.roots, FirstUnixNano: a.first,
		MinNs: a.min, MaxNs: a.max, SumNs: a.sum, ZeroCount: a.zero, WeightSq: a.wsq,
		Bins: sortedBins(a.bins)}
	_, r.Other = isOther(k.kind)
	return r
}

// sortedBins lists bins in index order.
func sortedBins(bins map[int32]int64) []store.DurationBin {
	out := make([]store.DurationBin, 0, len(bins))
	for i, n := range bins {
		out = append(out, store.DurationBin{Index: i, Count: n})
	}
	slices.SortFunc(out, func(x, y store.DurationBin) int { return cmp.Compare(x.Index, y.Index) })
	return out
}
