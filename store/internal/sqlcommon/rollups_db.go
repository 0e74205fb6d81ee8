package sqlcommon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tailscope/tailscope/store"
)

// MaxRollupBuckets bounds one Rollups read: a week of minutes, over a
// year of hours.
const MaxRollupBuckets = 7 * 24 * 60

// RollupDB implements store.RollupStore once for both dialects.
type RollupDB struct {
	// Conn reads (SQLite: from its read pool).
	Conn Conn
	// InTx runs fn in one write transaction, given a Conn over it.
	InTx func(ctx context.Context, fn func(Conn) error) error
	// Name prefixes errors ("postgres", "sqlite").
	Name string
	// Tenants is the store's registry of tenants with rollups, which the
	// backfill of tenant rollups decides with.
	Tenants *TenantRegistry
	// Names is the store's registry of span names with rollups of their
	// own, which the backfills decide with.
	Names *NameRegistry
}

func (r RollupDB) errorf(op string, err error) error {
	return fmt.Errorf("%s: %s: %w", r.Name, op, err)
}

func stepSeconds(step time.Duration) (int32, error) {
	switch step {
	case store.RollupMinute:
		return 60, nil
	case store.RollupHour:
		return 3600, nil
	}
	return 0, invalid("rollups: step %s: want 1m or 1h", step)
}

// Rollups reads q's rows and merges them per key and bucket.
func (r RollupDB) Rollups(ctx context.Context, q store.RollupQuery) ([]store.Rollup, error) {
	stepS, err := stepSeconds(q.Step)
	if err != nil {
		return nil, r.errorf("rollups", err)
	}
	if q.From.IsZero() || q.To.IsZero() || !q.To.After(q.From) {
		return nil, r.errorf("rollups", invalid("rollups: a time range [from, to) is required"))
	}
	step := int64(stepS) * int64(time.Second)
	from, to := floorTo(NS(q.From), step), ceilTo(NS(q.To), step)
	if (to-from)/step > MaxRollupBuckets {
		return nil, r.errorf("rollups", invalid("rollups: %d buckets of %s: at most %d", (to-from)/step, q.Step, MaxRollupBuckets))
	}
	tenants := q.Tenant != "" || q.ByTenant
	if tenants && (q.Version != "" || q.ByVersion) {
		return nil, r.errorf("rollups", invalid("rollups: tenant rollups keep no version"))
	}
	kind, dim := entryKind, q.Version
	if tenants {
		// A tenant rollup's version column holds its tenant.
		kind, dim = tenantKind, q.Tenant
	}
	a := NewArgs(r.Conn.Dialect())
	// Placeholders in text order: SQLite's are positional.
	conds := []string{"step_s = " + a.Add(stepS)}
	if q.Endpoint == "" {
		// The service's other names belong to a read of all its
		// endpoints: its rows sum to all its entry spans.
		conds = append(conds, "kind IN ("+a.Add(kind)+", "+a.Add(otherKind(kind))+")")
	} else {
		conds = append(conds, "kind = "+a.Add(kind))
	}
	conds = append(conds, "bucket_ns >= "+a.Add(from), "bucket_ns < "+a.Add(to))
	for _, f := range []struct{ col, v string }{{"service", q.Service}, {"endpoint", q.Endpoint}, {"version", dim}} {
		if f.v != "" {
			conds = append(conds, f.col+" = "+a.Add(f.v))
		}
	}
	merged, err := readRollups(ctx, r.Conn, conds, a.Vals, func(k *rollupKey) {
		if !q.ByVersion && !q.ByTenant {
			k.version = ""
		}
	})
	if err != nil {
		return nil, r.errorf("rollups", err)
	}
	keys := make([]rollupKey, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y rollupKey) int {
		// A service's other names come after its named endpoints.
		return cmp.Or(cmp.Compare(x.service, y.service), cmp.Compare(y.kind, x.kind), cmp.Compare(x.endpoint, y.endpoint),
			cmp.Compare(x.version, y.version), cmp.Compare(x.bucket, y.bucket))
	})
	out := make([]store.Rollup, len(keys))
	for i, k := range keys {
		out[i] = toRollup(k, merged[k])
		if tenants {
			out[i].Tenant, out[i].Version = k.version, ""
			if q.Tenant != "" {
				out[i].Tenant = q.Tenant
			}
		}
	}
	return out, nil
}

// readRollups reads the rows matching conds (over args) and merges them
// per key, as norm leaves the key (norm may blank fields to merge more).
func readRollups(ctx context.Context, c Conn, conds []string, args []any, norm func(*rollupKey)) (map[rollupKey]*rollupAgg, error) {
	merged := map[rollupKey]*rollupAgg{}
	err := c.Query(ctx, `SELECT `+rollupColumns+` FROM rollups WHERE `+strings.Join(conds, " AND "), func(sc Scanner) error {
		_, err := scanRollupInto(sc, merged, norm)
		return err
	}, args...)
	return merged, err
}

// Endpoints lists the endpoints of the rollups of [from, to) rounded out to
// whole store.RollupStep buckets, summed in the database (no bins read).
func (r RollupDB) Endpoints(ctx context.Context, from, to time.Time) ([]store.Endpoint, error) {
	if err := CheckRange(from, to); err != nil {
		return nil, r.errorf("endpoints", err)
	}
	step := store.RollupHour
	if !from.IsZero() && !to.IsZero() {
		step = store.RollupStep(to.Sub(from))
	}
	stepS, _ := stepSeconds(step)
	a := NewArgs(r.Conn.Dialect())
	conds := []string{"step_s = " + a.Add(stepS), "kind = " + a.Add(entryKind)}
	if !from.IsZero() {
		conds = append(conds, "bucket_ns >= "+a.Add(floorTo(NS(from), int64(step))))
	}
	if !to.IsZero() {
		conds = append(conds, "bucket_ns < "+a.Add(ceilTo(NS(to), int64(step))))
	}
	out, err := Collect(ctx, r.Conn, `SELECT service, endpoint, CAST(sum(count) AS BIGINT), CAST(sum(roots) AS BIGINT) FROM rollups WHERE `+
		strings.Join(conds, " AND ")+` GROUP BY service, endpoint`, func(sc Scanner) (store.Endpoint, error) {
		var e store.Endpoint
		err := sc.Scan(&e.Service, &e.Name, &e.Count, &e.Roots)
		return e, err
	}, a.Vals...)
	if err != nil {
		return nil, r.errorf("endpoints", err)
	}
	SortEndpoints(out)
	return out, nil
}

// RequestBefore reports whether the endpoint had an entry span starting in
// [since, before). Without since it asks the hour rows, kept longest, and
// is exact through first_ns; with since, the minute rows from since's
// minute on.
func (r RollupDB) RequestBefore(ctx context.Context, service, endpoint, version string, since, before time.Time) (bool, error) {
	b := NS(before)
	a := NewArgs(r.Conn.Dialect())
	conds := []string{"service = " + a.Add(service), "endpoint = " + a.Add(endpoint), "kind = " + a.Add(entryKind)}
	if since.IsZero() {
		conds = append(conds, "step_s = 3600", "bucket_ns < "+a.Add(b))
	} else {
		conds = append(conds, "step_s = 60", "bucket_ns >= "+a.Add(floorTo(NS(since), minuteNs)), "bucket_ns < "+a.Add(b))
	}
	conds = append(conds, "first_ns < "+a.Add(b))
	if version != "" {
		conds = append(conds, "version = "+a.Add(version))
	}
	found := false
	err := r.Conn.Query(ctx, `SELECT 1 FROM rollups WHERE `+strings.Join(conds, " AND ")+` LIMIT 1`, func(Scanner) error {
		found = true
		return nil
	}, a.Vals...)
	if err != nil {
		return false, r.errorf("rollups: request before", err)
	}
	return found, nil
}

// endpointsBeforeChunk is how many endpoints one EndpointsBefore read
// names (bound parameters, far below either dialect's limit).
const endpointsBeforeChunk = 500

// EndpointsBefore implements store.RollupReader: RequestBefore's hour
// rollup look-up for many endpoints, a read per endpointsBeforeChunk.
func (r RollupDB) EndpointsBefore(ctx context.Context, service string, endpoints []string, before time.Time) (map[string]bool, error) {
	out := map[string]bool{}
	b := NS(before)
	for chunk := range slices.Chunk(endpoints, endpointsBeforeChunk) {
		// Placeholders in text order: SQLite's are positional.
		a := NewArgs(r.Conn.Dialect())
		q := `SELECT DISTINCT endpoint FROM rollups WHERE step_s = 3600 AND service = ` + a.Add(service) +
			` AND kind = ` + a.Add(entryKind) + ` AND bucket_ns < ` + a.Add(b) + ` AND first_ns < ` + a.Add(b)
		ph := make([]string, len(chunk))
		for i, ep := range chunk {
			ph[i] = a.Add(ep)
		}
		q += ` AND endpoint IN (` + strings.Join(ph, ", ") + `)`
		err := r.Conn.Query(ctx, q, func(sc Scanner) error {
			var ep string
			if err := sc.Scan(&ep); err != nil {
				return err
			}
			out[ep] = true
			return nil
		}, a.Vals...)
		if err != nil {
			return nil, r.errorf("rollups: endpoints before", err)
		}
	}
	return out, nil
}

// compactBuckets is how many buckets one compaction transaction folds.
const compactBuckets = 256

// CompactRollups folds every bucket with appended (unfolded) rows into one
// row per key. DELETE ... RETURNING hands each row to exactly one
// transaction, so two compactors (two tailscope processes) cannot both
// count a row; rows a writer appends meanwhile stay for the next pass.
func (r RollupDB) CompactRollups(ctx context.Context) error {
	for _, stepS := range []int32{60, 3600} {
		for {
			n, err := r.compactOnce(ctx, stepS)
			if err != nil {
				return r.errorf("compact rollups", err)
			}
			if n < compactBuckets {
				break
			}
		}
	}
	return nil
}

// compactOnce folds up to compactBuckets buckets of step and returns how
// many it folded.
func (r RollupDB) compactOnce(ctx context.Context, stepS int32) (int, error) {
	buckets := 0
	err := r.InTx(ctx, func(c Conn) error {
		merged := map[rollupKey]*rollupAgg{}
		seen := map[int64]bool{}
		q := `DELETE FROM rollups WHERE step_s = ? AND bucket_ns IN (SELECT bucket_ns FROM rollups WHERE step_s = ? AND folded = 0
 GROUP BY bucket_ns ORDER BY bucket_ns LIMIT ?) RETURNING ` + rollupColumns
		err := c.Query(ctx, Rebind(c.Dialect(), q), func(sc Scanner) error {
			k, err := scanRollupInto(sc, merged, nil)
			seen[k.bucket] = true
			return err
		}, stepS, stepS, compactBuckets)
		if err != nil {
			return err
		}
		buckets = len(seen)
		return insertRollups(ctx, c, merged, true)
	})
	return buckets, err
}

// DeleteMinutesBefore removes minute rollups of minutes that ended by t
// (span retention).
func (r RollupDB) DeleteMinutesBefore(ctx context.Context, t time.Time) error {
	_, err := r.Conn.Exec(ctx, Rebind(r.Conn.Dialect(), `DELETE FROM rollups WHERE step_s = 60 AND bucket_ns < ?`), floorTo(NS(t), minuteNs))
	if err != nil {
		return r.errorf("delete minute rollups", err)
	}
	return nil
}

// DeleteRollupsBefore removes hour rollups of hours that ended by t.
func (r RollupDB) DeleteRollupsBefore(ctx context.Context, t time.Time) error {
	_, err := r.Conn.Exec(ctx, Rebind(r.Conn.Dialect(), `DELETE FROM rollups WHERE step_s = 3600 AND bucket_ns < ?`), floorTo(NS(t), hourNs))
	if err != nil {
		return r.errorf("delete hour rollups", err)
	}
	return nil
}

// errBackfillDone ends the backfill loop.
var errBackfillDone = errors.New("backfill done")

// A backfill builds one family of rollups for the spans stored before the
// migration that introduced it, with its progress in its own table.
type backfill struct {
	// progress is the table of the progress row (id 1).
	progress string
	// kind is the family: entryKind (migration postgres 00007, sqlite
	// 00009), tenantKind (postgres 00012, sqlite 00014), or any span kind
	// for the operation rollups (postgres 00010, sqlite 00012).
	kind int32
}

var backfills = []backfill{{progress: "rollup_backfill", kind: entryKind},
	{progress: "operation_rollup_backfill", kind: 0}, {progress: "tenant_rollup_backfill", kind: tenantKind}}

// BackfillRollups builds the rollups of spans stored before the rollups
// migrations, an hour of span time per transaction with the progress
// (rollup_backfill, operation_rollup_backfill, tenant_rollup_backfill)
// committed in the same transaction, so a restart resumes where it
// stopped and no hour is counted twice. It must run before this
// database's first write with rollups after a migration (the stores run
// it when they open, before any writer starts): a span written by a
// rollup-writing process into an hour not yet backfilled would be counted
// by both. Tenants are decided in the order the hours bring them. It
// returns the hours built.
func (r RollupDB) BackfillRollups(ctx context.Context) (int, error) {
	reg := registries{tenants: r.Tenants, names: r.Names}
	if reg.tenants == nil {
		reg.tenants = NewTenantRegistry()
	}
	if reg.names == nil {
		reg.names = NewNameRegistry()
	}
	hours := 0
	for _, bf := range backfills {
		for {
			var d decisions
			err := r.InTx(ctx, func(c Conn) (err error) {
				d, err = bf.hour(ctx, c, reg)
				return err
			})
			if errors.Is(err, errBackfillDone) {
				break
			}
			if err != nil {
				return hours, r.errorf("backfill "+bf.progress, err)
			}
			if d.tenants != nil {
				reg.tenants.Remember(*d.tenants)
			}
			reg.names.Remember(d.names)
			hours++
		}
	}
	return hours, nil
}

// registries are the rollup decisions a backfill takes.
type registries struct {
	tenants *TenantRegistry
	names   *NameRegistry
}

// decisions are what one backfill hour decided, to Remember once it
// commits: the names of every hour, the tenants of a tenant hour.
type decisions struct {
	tenants *TenantSet
	names   NameSet
}

// hour builds one hour's rollups, or returns errBackfillDone (after
// recording it) when none is left. It decides the hour's names, and a
// tenant hour its tenants, through reg.
func (bf backfill) hour(ctx context.Context, c Conn, reg registries) (decisions, error) {
	var d decisions
	lock := ""
	if c.Dialect() == Postgres {
		lock = " FOR UPDATE" // two processes opening at once take turns
	}
	var (
		cursor, high *int64
		done         int64
	)
	if err := c.QueryRow(ctx, `SELECT cursor_ns, high_ns, done FROM `+bf.progress+` WHERE id = 1`+lock).Scan(&cursor, &high, &done); err != nil {
		return d, fmt.Errorf("read progress: %w", err)
	}
	if done != 0 {
		return d, errBackfillDone
	}
	if cursor == nil {
		var lo, hi *int64
		if err := c.QueryRow(ctx, `SELECT min(start_ns), max(start_ns) FROM spans`).Scan(&lo, &hi); err != nil {
			return d, fmt.Errorf("span range: %w", err)
		}
		if lo == nil {
			return d, bf.finish(ctx, c)
		}
		start := floorTo(*lo, hourNs)
		cursor, high = &start, hi
	}
	if high == nil || *cursor > *high {
		return d, bf.finish(ctx, c)
	}
	b := NewRollupBuilder()
	if err := bf.aggregate(ctx, c, *cursor, *cursor+hourNs, b); err != nil {
		return d, err
	}
	if bf.kind == tenantKind {
		set, err := b.keepTenants(ctx, c, reg.tenants)
		if err != nil {
			return d, err
		}
		d.tenants = &set
	}
	names, err := b.keepNames(ctx, c, reg.names)
	if err != nil {
		return d, err
	}
	d.names, b.Names = names, &names
	if err := insertRollups(ctx, c, b.rows(), true); err != nil {
		return d, err
	}
	_, err = c.Exec(ctx, Rebind(c.Dialect(), `UPDATE `+bf.progress+` SET cursor_ns = ?, high_ns = ? WHERE id = 1`), *cursor+hourNs, *high)
	if err != nil {
		return d, fmt.Errorf("record progress: %w", err)
	}
	return d, nil
}

// keepTenants decides the tenants of a backfill hour's tenant rows (the
// busiest of the hour first) and drops the rows of those not kept.
func (b *RollupBuilder) keepTenants(ctx context.Context, c Conn, reg *TenantRegistry) (TenantSet, error) {
	counts := map[string]int64{}
	for k, a := range b.minutes {
		counts[k.version] += a.count
	}
	tenants := slices.Collect(maps.Keys(counts))
	slices.SortFunc(tenants, func(x, y string) int { return cmp.Or(cmp.Compare(counts[y], counts[x]), cmp.Compare(x, y)) })
	set := reg.Current()
	if undecided := slices.DeleteFunc(tenants, set.Has); len(undecided) > 0 && !set.full {
		var err error
		if set, err = reg.Decide(ctx, c, undecided); err != nil {
			return set, err
		}
	}
	maps.DeleteFunc(b.minutes, func(k rollupKey, _ *rollupAgg) bool { return !set.Has(k.version) })
	return set, nil
}

func (bf backfill) finish(ctx context.Context, c Conn) error {
	if _, err := c.Exec(ctx, `UPDATE `+bf.progress+` SET done = 1 WHERE id = 1`); err != nil {
		return fmt.Errorf("record progress: %w", err)
	}
	return errBackfillDone
}

// aggregate adds the spans starting in [from, to) to b's minute rows of
// bf's family — entry spans per (service, name, version) or (service,
// name, tenant), every span per (service, name, kind) — grouped by the database per minute and bin so
// the rows read are few: the same bins as store.RollupBin (OperationsSQL's
// bin expression).
func (bf backfill) aggregate(ctx context.Context, c Conn, from, to int64, b *RollupBuilder) error {
	a := NewArgs(c.Dialect())
	bin := "CASE WHEN duration_ns <= 0 THEN NULL ELSE CAST(floor(ln(CAST(duration_ns AS DOUBLE PRECISION) / 1e6) * " +
		a.Add(store.RollupBinScale()) + ") AS INTEGER) END"
	key, only := "version", " AND "+EntryCond
	switch bf.kind {
	case entryKind:
	case tenantKind:
		key = "tenant"
	default:
		key, only = "kind", ""
	}
	// Each span counts as its weight (WeightCount), and its square in
	// weight_sq, as RollupBuilder.Add counts it.
	w := WeightCount
	q := `SELECT service, name, ` + key + `, start_ns / 60000000000 AS m, ` + bin + ` AS bin, CAST(sum(` + w + `) AS BIGINT),
  CAST(sum(CASE WHEN status_code = 2 THEN ` + w + ` ELSE 0 END) AS BIGINT),
  CAST(sum(CASE WHEN parent_span_id IS NULL THEN ` + w + ` ELSE 0 END) AS BIGINT),
  min(start_ns), min(duration_ns), max(duration_ns), ` + WeightedSum("duration_ns") + `,
  sum(CAST(` + w + ` AS DOUBLE PRECISION) * ` + w + `)
FROM spans WHERE start_ns >= ` + a.Add(from) + ` AND start_ns < ` + a.Add(to) + only + `
GROUP BY 1, 2, 3, 4, 5`
	return c.Query(ctx, q, func(sc Scanner) error {
		var (
			k   = rollupKey{stepS: 60, kind: bf.kind}
			p   = &rollupAgg{bins: map[int32]int64{}}
			m   int64
			bin *int64
			wsq float64 // squares of weights up to 2^56 overflow a BIGINT
			dst any     = &k.version
		)
		if bf.kind >= 0 {
			dst = &k.kind
		}
		if err := sc.Scan(&k.service, &k.endpoint, dst, &m, &bin, &p.count, &p.errors, &p.roots,
			&p.first, &p.min, &p.max, &p.sum, &wsq); err != nil {
			return err
		}
		p.wsq = math.MaxInt64
		if wsq < math.MaxInt64 {
			p.wsq = int64(wsq)
		}
		k.bucket = m * minuteNs
		if bin == nil {
			p.zero = p.count
		} else if *bin >= math.MinInt32 && *bin <= math.MaxInt32 {
			p.bins[int32(*bin)] = p.count
		}
		b.agg(k).merge(p)
		return nil
	}, a.Vals...)
}
