package analysistest

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/tailscope/tailscope/store"
)

// Rollups aggregates the entry spans as the stores' rollups do (store.Rollup:
// per endpoint and bucket, the window rounded out to whole steps).
func (s *Source) Rollups(ctx context.Context, q store.RollupQuery) ([]store.Rollup, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if q.Step != store.RollupMinute && q.Step != store.RollupHour {
		return nil, fmt.Errorf("analysistest: rollups: %w: step %s", store.ErrInvalid, q.Step)
	}
	if q.From.IsZero() || q.To.IsZero() || !q.To.After(q.From) {
		return nil, fmt.Errorf("analysistest: rollups: %w: a time range is required", store.ErrInvalid)
	}
	step := int64(q.Step)
	f, t := floorTo(q.From.UnixNano(), step), floorTo(q.To.UnixNano()+step-1, step)
	tenants := q.Tenant != "" || q.ByTenant
	if tenants && (q.Version != "" || q.ByVersion) {
		return nil, fmt.Errorf("analysistest: rollups: %w: tenant rollups keep no version", store.ErrInvalid)
	}
	type key struct {
		service, endpoint, version, tenant string
		other                              bool
		bucket                             int64
	}
	aggs := map[key]*store.Rollup{}
	bins := map[key]map[int32]int64{}
	for svc, ss := range s.byService {
		if q.Service != "" && svc != q.Service {
			continue
		}
		for i := range ss {
			x := &ss[i]
			named := s.nameRolledUp(svc, x.Name)
			if x.StartUnixNano < f || x.StartUnixNano >= t || (q.Endpoint != "" && (x.Name != q.Endpoint || !named)) ||
				(q.Version != "" && x.Version != q.Version) || (q.Tenant != "" && x.Tenant != q.Tenant) ||
				(tenants && !s.rolledUp(x.Tenant)) {
				continue
			}
			k := key{svc, x.Name, "", "", false, floorTo(x.StartUnixNano, step)}
			if !named {
				k.endpoint, k.other = "", true
			}
			if q.ByVersion {
				k.version = x.Version
			}
			if tenants {
				k.tenant = x.Tenant
			}
			r := aggs[k]
			if r == nil {
				r = &store.Rollup{Service: k.service, Endpoint: k.endpoint, Other: k.other, Version: k.version, Tenant: k.tenant, BucketUnixNano: k.bucket,
					FirstUnixNano: math.MaxInt64, MinNs: math.MaxInt64, MaxNs: math.MinInt64}
				aggs[k], bins[k] = r, map[int32]int64{}
			}
			// Weighted as the stores' rollups are (store.CountWeight).
			w := store.CountWeight(x.Weight)
			r.Count += w
			r.WeightSq += w * w
			if x.Error {
				r.Errors += w
			}
			if s.roots[x.SpanID] {
				r.Roots += w
			}
			r.FirstUnixNano = min(r.FirstUnixNano, x.StartUnixNano)
			r.MinNs, r.MaxNs = min(r.MinNs, x.DurationNano), max(r.MaxNs, x.DurationNano)
			r.SumNs += x.DurationNano * w
			if b, ok := store.RollupBin(x.DurationNano); ok {
				bins[k][b] += w
			} else {
				r.ZeroCount += w
			}
		}
	}
	out := make([]store.Rollup, 0, len(aggs))
	for k, r := range aggs {
		r.Bins = []store.DurationBin{}
		for i, n := range bins[k] {
			r.Bins = append(r.Bins, store.DurationBin{Index: i, Count: n})
		}
		slices.SortFunc(r.Bins, func(a, b store.DurationBin) int { return cmp.Compare(a.Index, b.Index) })
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b store.Rollup) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(b2i(a.Other), b2i(b.Other)), cmp.Compare(a.Endpoint, b.Endpoint),
			cmp.Compare(a.Version, b.Version), cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.BucketUnixNano, b.BucketUnixNano))
	})
	return out, nil
}

// RolledUpName reports whether service's span name is rolled up under its
// own name: every name, unless RollupNames lists the ones that are.
func (s *Source) RolledUpName(ctx context.Context, service, name string) (bool, error) {
	return s.nameRolledUp(service, name), ctx.Err()
}

func (s *Source) nameRolledUp(service, name string) bool {
	return s.RollupNames == nil || s.RollupNames[service][name]
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// RolledUpTenant reports whether tenant is rolled up: every tenant, unless
// RollupTenants lists the ones that are.
func (s *Source) RolledUpTenant(ctx context.Context, tenant string) (bool, error) {
	return s.rolledUp(tenant), ctx.Err()
}

func (s *Source) rolledUp(tenant string) bool {
	return s.RollupTenants == nil || s.RollupTenants[tenant]
}

// RequestBefore reports whether the endpoint had an entry span starting in
// [since, before) (a zero since: any time before).
func (s *Source) RequestBefore(ctx context.Context, service, endpoint, version string, since, before time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	lo, hi := int64(math.MinInt64), before.UnixNano()
	if !since.IsZero() {
		lo = since.UnixNano()
	}
	for _, x := range s.byService[service] {
		if x.Name == endpoint && (version == "" || x.Version == version) && x.StartUnixNano >= lo && x.StartUnixNano < hi {
			return true, nil
		}
	}
	return false, nil
}

// EndpointsBefore reports which of the endpoints had an entry span
// starting before before.
func (s *Source) EndpointsBefore(ctx context.Context, service string, endpoints []string, before time.Time) (map[string]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, e := range endpoints {
		want[e] = true
	}
	out := map[string]bool{}
	for _, x := range s.byService[service] {
		if want[x.Name] && x.StartUnixNano < before.UnixNano() {
			out[x.Name] = true
		}
	}
	return out, nil
}

// floorTo rounds t down to a multiple of step.
func floorTo(t, step int64) int64 {
	r := t % step
	if r < 0 {
		r += step
	}
	return t - r
}
