package analysis

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/tailscope/tailscope/store"
)

// The tenants of an endpoint, read from the tenant rollups written at
// ingest (store.RollupQuery.ByTenant): each tenant's requests, errors and
// percentiles, and its share of the endpoint's slowest 1% against its
// share of all requests — a tenant whose requests are 5% of the traffic
// and 60% of the tail is where to look. Only the first
// store.MaxRollupTenants tenants of a store have rollups; the requests of
// the others are counted together (Unrolled) and are answered from spans
// by the outliers and search pages.

// defaultTenantLimit is how many tenants a report lists by default.
const defaultTenantLimit = 20

// TenantsQuery selects the tenants of an endpoint (every endpoint of the
// service when Endpoint is empty) over [From, To).
type TenantsQuery struct {
	Service, Endpoint string
	From, To          time.Time
	// Limit is how many tenants are listed, the busiest first (0: 20).
	Limit int
}

// TenantStats is one tenant's requests in the window.
type TenantStats struct {
	Tenant    string  `json:"tenant"`
	Count     int64   `json:"count"`
	Share     float64 `json:"share"` // of the window's requests
	Errors    int64   `json:"errors"`
	ErrorRate float64 `json:"error_rate"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	MaxMs     float64 `json:"max_ms"`
	// TailCount is its requests slower than the window's p99 (of every
	// tenant), TailShare their share of all such requests.
	TailCount int64   `json:"tail_count"`
	TailShare float64 `json:"tail_share"`
	// Hot: the tenant's share of the tail is well above its share of
	// requests — at least twice it and ten points more — and by test: a
	// one-sided binomial test of its tail count against its traffic share
	// at 1% over the tenants listed (Bonferroni). A tail of a dozen
	// requests gives a small tenant two or three of them by chance often;
	// the test keeps those unmarked. Decided on the requests at or past
	// the p99's bin (markHot), a few more than TailCount.
	Hot bool `json:"hot"`
}

// TenantsReport is the body of GET /api/v1/tenants.
type TenantsReport struct {
	Service  string    `json:"service"`
	Endpoint string    `json:"endpoint"`
	From     time.Time `json:"from"` // the window rounded out to whole rollup buckets
	To       time.Time `json:"to"`
	// RelativeError bounds the percentiles' relative error; counts are
	// exact over [From, To).
	RelativeError float64 `json:"relative_error"`
	Count         int64   `json:"count"`
	P99Ms         float64 `json:"p99_ms"`
	// TailCount is the requests slower than P99Ms (by whole sketch bins:
	// those in bins past the p99's).
	TailCount int64 `json:"tail_count"`
	// Tenants are the busiest tenants with rollups, by requests; Others
	// counts the requests of the rest that have rollups (TenantCount of
	// them in all), Unrolled those of tenants without (past the store's
	// bound).
	Tenants     []TenantStats `json:"tenants"`
	TenantCount int           `json:"tenant_count"`
	Others      int64         `json:"others"`
	Unrolled    int64         `json:"unrolled"`
}

// TenantSource is what Tenants reads: rollups, and the spans of an
// endpoint whose name has none of its own.
type TenantSource interface {
	RollupSource
	Samples(ctx context.Context, q store.SampleQuery) ([]store.Sample, error)
}

// Tenants reads q's tenant rollups and the endpoint's own, over the window
// rounded out to whole rollup buckets; an endpoint whose name the store
// does not roll up on its own (past store.MaxRollupNames) is read from its
// spans over that window instead, every tenant of it.
func Tenants(ctx context.Context, src TenantSource, q TenantsQuery) (TenantsReport, error) {
	if err := checkWindow(q.Service, q.From, q.To); err != nil {
		return TenantsReport{}, err
	}
	if q.Limit < 0 {
		return TenantsReport{}, invalidf("limit %d is negative", q.Limit)
	}
	limit := cmp.Or(q.Limit, defaultTenantLimit)
	from, to, step := rollupWindow(q.From, q.To)
	all, rows, err := tenantRows(ctx, src, q, from, to, step)
	if err != nil {
		return TenantsReport{}, err
	}
	rep := TenantsReport{Service: q.Service, Endpoint: q.Endpoint, From: from, To: to, RelativeError: SketchRelativeAccuracy,
		Tenants: []TenantStats{}}
	total := newBinAgg()
	for i := range all {
		total.addRollup(&all[i])
	}
	rep.Count = total.count
	if total.count == 0 {
		return rep, nil
	}
	sk, err := total.sketch()
	if err != nil {
		return TenantsReport{}, fmt.Errorf("analysis: tenants: %w", err)
	}
	rep.P99Ms = round3(sk.QuantileMs(0.99))
	cut := tailBin(total, 0.99)
	rep.TailCount = total.above(cut)

	byTenant := map[string]*binAgg{}
	var rolled int64
	for i := range rows {
		r := &rows[i]
		a := byTenant[r.Tenant]
		if a == nil {
			a = newBinAgg()
			byTenant[r.Tenant] = a
		}
		a.addRollup(r)
		rolled += r.Count
	}
	rep.TenantCount = len(byTenant)
	rep.Unrolled = max(0, total.count-rolled)
	names := make([]string, 0, len(byTenant))
	for t := range byTenant {
		names = append(names, t)
	}
	slices.SortFunc(names, func(x, y string) int {
		return cmp.Or(cmp.Compare(byTenant[y].count, byTenant[x].count), cmp.Compare(x, y))
	})
	var listed []*binAgg
	for i, t := range names {
		a := byTenant[t]
		if i >= limit {
			rep.Others += a.count
			continue
		}
		ts, err := tenantStats(t, a, total.count, cut, rep.TailCount)
		if err != nil {
			return TenantsReport{}, fmt.Errorf("analysis: tenants: %s: %w", t, err)
		}
		rep.Tenants = append(rep.Tenants, ts)
		listed = append(listed, a)
	}
	markHot(rep.Tenants, listed, total, cut)
	return rep, nil
}

// Thresholds of TenantStats.Hot.
const (
	hotTailFactor = 2
	hotTailMargin = 0.10
	hotAlpha      = 0.01
)

// markHot sets Hot on the listed tenants (aggs their rollups) whose
// share of the requests at or past the bin holding the p99 (cut) is
// improbably high for their share of the traffic: under no association
// each of those requests is a given tenant's with the tenant's traffic
// share. The test counts the p99's own bin too, a few more requests than
// TailCount: past it alone, a bin boundary can cut a tail of a dozen to a
// handful, and the same slow tenant would be marked or not by where the
// boundary fell. Counts of a sampled stream are scaled to the window's
// effective sample size (binAgg.nEff): the test sees the requests drawn.
func markHot(tenants []TenantStats, aggs []*binAgg, total *binAgg, cut tailCut) {
	tail := total.atOrAbove(cut)
	if tail == 0 || len(tenants) == 0 {
		return
	}
	n := total.effective(tail)
	for i := range tenants {
		k := aggs[i].atOrAbove(cut)
		share := float64(aggs[i].count) / float64(total.count)
		tailShare := float64(k) / float64(tail)
		if tailShare < hotTailFactor*share || tailShare < share+hotTailMargin {
			continue
		}
		tenants[i].Hot = binomialAtLeast(total.effective(k), n, share) < hotAlpha/float64(len(tenants))
	}
}

func tenantStats(tenant string, a *binAgg, total int64, cut tailCut, tail int64) (TenantStats, error) {
	ts := TenantStats{Tenant: tenant, Count: a.count, Errors: a.errors,
		Share: round4(float64(a.count) / float64(total))}
	if a.count == 0 {
		return ts, nil
	}
	sk, err := a.sketch()
	if err != nil {
		return ts, err
	}
	ts.ErrorRate = round4(float64(a.errors) / float64(a.count))
	ts.P50Ms, ts.P99Ms, ts.MaxMs = round3(sk.QuantileMs(0.50)), round3(sk.QuantileMs(0.99)), round3(float64(a.max)/1e6)
	ts.TailCount = a.above(cut)
	if tail > 0 {
		ts.TailShare = round4(float64(ts.TailCount) / float64(tail))
	}
	return ts, nil
}

// tailCut is the duration bin holding a quantile of an aggregate; zero
// marks a quantile among the durations ≤ 0 (in no bin).
type tailCut struct {
	bin  int32
	zero bool
}

// tailBin finds the bin holding the q-quantile of a's durations: the
// first, in duration order, at which the count reaches ⌈q·count⌉.
func tailBin(a *binAgg, q float64) tailCut {
	rank := int64(math.Ceil(q * float64(a.count)))
	if a.zero >= rank {
		return tailCut{zero: true}
	}
	idx := make([]int32, 0, len(a.bins))
	for i := range a.bins {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	seen := a.zero
	for _, i := range idx {
		seen += a.bins[i]
		if seen >= rank {
			return tailCut{bin: i}
		}
	}
	if len(idx) == 0 {
		return tailCut{zero: true}
	}
	return tailCut{bin: idx[len(idx)-1]}
}

// atOrAbove counts a's durations in cut's bin and past it.
func (a *binAgg) atOrAbove(cut tailCut) int64 {
	if cut.zero {
		return a.count
	}
	var n int64
	for i, c := range a.bins {
		if i >= cut.bin {
			n += c
		}
	}
	return n
}

// above counts a's durations in bins past cut.
func (a *binAgg) above(cut tailCut) int64 {
	var n int64
	for i, c := range a.bins {
		if cut.zero || i > cut.bin {
			n += c
		}
	}
	return n
}

// tenantRows reads the endpoint's rows (all) and its tenants' (rows) over
// [from, to): its rollups, or, when its name has none of its own, one row
// per span.
func tenantRows(ctx context.Context, src TenantSource, q TenantsQuery, from, to time.Time, step time.Duration) (all, rows []store.Rollup, err error) {
	named := true
	if q.Endpoint != "" {
		if named, err = src.RolledUpName(ctx, q.Service, q.Endpoint); err != nil {
			return nil, nil, fmt.Errorf("analysis: tenants: rollup names: %w", err)
		}
	}
	if !named {
		ss, err := src.Samples(ctx, store.SampleQuery{Service: q.Service, Endpoint: q.Endpoint, From: from, To: to})
		if err != nil {
			return nil, nil, fmt.Errorf("analysis: tenants: read spans: %w", err)
		}
		rows = make([]store.Rollup, 0, len(ss))
		for i := range ss {
			rows = append(rows, sampleRollup(&ss[i]))
		}
		return rows, rows, nil
	}
	rq := store.RollupQuery{Step: step, From: from, To: to, Service: q.Service, Endpoint: q.Endpoint}
	if all, err = src.Rollups(ctx, rq); err != nil {
		return nil, nil, fmt.Errorf("analysis: tenants: read rollups: %w", err)
	}
	rq.ByTenant = true
	if rows, err = src.Rollups(ctx, rq); err != nil {
		return nil, nil, fmt.Errorf("analysis: tenants: read tenant rollups: %w", err)
	}
	return all, rows, nil
}

// sampleRollup is one request as a rollup row of its own tenant: counted
// as its weight, as the stores' rollups count it.
func sampleRollup(s *store.Sample) store.Rollup {
	w := store.CountWeight(s.Weight)
	r := store.Rollup{Service: s.Service, Endpoint: s.Name, Tenant: s.Tenant, BucketUnixNano: s.StartUnixNano,
		Count: w, WeightSq: w * w, FirstUnixNano: s.StartUnixNano, MinNs: s.DurationNano, MaxNs: s.DurationNano,
		SumNs: s.DurationNano * w}
	if s.Error {
		r.Errors = w
	}
	if b, ok := store.RollupBin(s.DurationNano); ok {
		r.Bins = []store.DurationBin{{Index: b, Count: w}}
	} else {
		r.ZeroCount = w
	}
	return r
}
