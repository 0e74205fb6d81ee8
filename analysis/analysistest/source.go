package analysistest

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/tailscope/tailscope/store"
)

// Source holds spans in memory and answers the read side of the storage
// contract (Samples, Traces, Endpoints) the way store implementations do:
// samples are entry spans ordered by start, traces are ordered by start
// then span id. It is a test double built on real data, not a mock: it
// has no expectations, only spans. Returned slices are shared and must
// not be modified; analysis never does.
type Source struct {
	// byService holds each service's entry-span samples sorted by start.
	byService map[string][]store.Sample
	traces    map[store.TraceID][]store.Span
	// roots holds the span ids of the entry spans that are trace roots
	// (Endpoint.Roots counts them).
	roots map[store.SpanID]bool
	// RollupTenants, when not nil, lists the tenants whose entry spans
	// are rolled up (store.MaxRollupTenants's bound); nil: all.
	RollupTenants map[string]bool
	// RollupNames, when not nil, lists the span names rolled up under
	// their own name (store.MaxRollupNames), per service: Rollups reads
	// the others as the service's Other rows.
	RollupNames map[string]map[string]bool
}

// NewSource indexes a copy of spans (attribute bytes are shared: do not
// modify them later).
func NewSource(spans []store.Span) *Source {
	s := &Source{byService: map[string][]store.Sample{}, traces: map[store.TraceID][]store.Span{}, roots: map[store.SpanID]bool{}}
	// One copy grouped by trace (a counting sort on first appearance),
	// each trace then sorted by start and span id; each trace is a run of
	// the copy. This stays linear for the million-span benchmark.
	ordinal := map[store.TraceID]int32{}
	var counts []int32
	for i := range spans {
		o, ok := ordinal[spans[i].TraceID]
		if !ok {
			o = int32(len(counts))
			ordinal[spans[i].TraceID] = o
			counts = append(counts, 0)
		}
		counts[o]++
	}
	offsets := make([]int32, len(counts)+1)
	for i, c := range counts {
		offsets[i+1] = offsets[i] + c
	}
	fill := slices.Clone(offsets[:len(counts)])
	all := make([]store.Span, len(spans))
	for i := range spans {
		o := ordinal[spans[i].TraceID]
		all[fill[o]] = spans[i]
		fill[o]++
	}
	for o := range counts {
		run := all[offsets[o]:offsets[o+1]:offsets[o+1]]
		slices.SortFunc(run, func(a, b store.Span) int {
			if c := cmp.Compare(a.StartUnixNano, b.StartUnixNano); c != 0 {
				return c
			}
			return bytes.Compare(a.SpanID[:], b.SpanID[:])
		})
		s.traces[run[0].TraceID] = run
	}
	type key struct {
		start int64
		id    store.SpanID
		i     int32
	}
	keys := map[string][]key{}
	for i := range all {
		if sp := &all[i]; sp.IsEntry() {
			if sp.IsRoot() {
				s.roots[sp.SpanID] = true
			}
			keys[sp.Service] = append(keys[sp.Service], key{sp.StartUnixNano, sp.SpanID, int32(i)})
		}
	}
	for svc, ks := range keys {
		slices.SortFunc(ks, func(a, b key) int {
			if c := cmp.Compare(a.start, b.start); c != 0 {
				return c
			}
			return bytes.Compare(a.id[:], b.id[:])
		})
		out := make([]store.Sample, len(ks))
		for j, k := range ks {
			sp := &all[k.i]
			out[j] = store.Sample{
				TraceID: sp.TraceID, SpanID: sp.SpanID, Service: sp.Service, Name: sp.Name,
				StartUnixNano: sp.StartUnixNano, DurationNano: sp.DurationNano,
				Error: sp.StatusCode == store.StatusError, Tenant: sp.Tenant, Version: sp.Version,
				Host: sp.Host, PayloadBytes: sp.PayloadBytes, Weight: store.NormWeight(sp.Weight),
			}
		}
		s.byService[svc] = out
	}
	return s
}

// Samples returns the entry spans selected by q, ordered by start.
func (s *Source) Samples(ctx context.Context, q store.SampleQuery) ([]store.Sample, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if q.Service == "" {
		return nil, fmt.Errorf("analysistest: samples: %w: service is required", store.ErrInvalid)
	}
	if q.Limit < 0 || q.MinDurationNano < 0 {
		return nil, fmt.Errorf("analysistest: samples: %w: negative limit or duration", store.ErrInvalid)
	}
	all := s.byService[q.Service]
	lo, hi := 0, len(all)
	if !q.From.IsZero() {
		f := q.From.UnixNano()
		lo = sort.Search(len(all), func(i int) bool { return all[i].StartUnixNano >= f })
	}
	if !q.To.IsZero() {
		t := q.To.UnixNano()
		hi = sort.Search(len(all), func(i int) bool { return all[i].StartUnixNano >= t })
	}
	if hi < lo {
		hi = lo
	}
	out := make([]store.Sample, 0, hi-lo)
	for _, x := range all[lo:hi] {
		if (q.Endpoint == "" || x.Name == q.Endpoint) && (q.Version == "" || x.Version == q.Version) && (q.Tenant == "" || x.Tenant == q.Tenant) && x.DurationNano >= q.MinDurationNano {
			out = append(out, x)
		}
	}
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[len(out)-q.Limit:] // the store keeps the newest
	}
	return out, nil
}

// Traces returns the spans of each known trace.
func (s *Source) Traces(ctx context.Context, ids []store.TraceID) (map[store.TraceID][]store.Span, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make(map[store.TraceID][]store.Span, len(ids))
	for _, id := range ids {
		if t, ok := s.traces[id]; ok {
			out[id] = t
		}
	}
	return out, nil
}

// Trace returns one trace or store.ErrNotFound.
func (s *Source) Trace(ctx context.Context, id store.TraceID) ([]store.Span, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t, ok := s.traces[id]
	if !ok {
		return nil, fmt.Errorf("analysistest: trace %s: %w", id, store.ErrNotFound)
	}
	return t, nil
}

// Endpoints lists the (service, entry span name) pairs with entry spans
// starting in [from, to) rounded out to whole rollup buckets, as stores
// do, ordered by service then name.
func (s *Source) Endpoints(ctx context.Context, from, to time.Time) ([]store.Endpoint, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	step := int64(store.RollupStep(to.Sub(from)))
	f, t := floorTo(from.UnixNano(), step), floorTo(to.UnixNano()+step-1, step)
	counts := map[[2]string]int64{}
	roots := map[[2]string]int64{}
	for svc, ss := range s.byService {
		for _, x := range ss {
			if x.StartUnixNano >= f && x.StartUnixNano < t {
				// Counted as the stores' rollups count: by sampling weight.
				w := store.CountWeight(x.Weight)
				counts[[2]string{svc, x.Name}] += w
				if s.roots[x.SpanID] {
					roots[[2]string{svc, x.Name}] += w
				}
			}
		}
	}
	out := make([]store.Endpoint, 0, len(counts))
	for k, n := range counts {
		out = append(out, store.Endpoint{Service: k[0], Name: k[1], Count: n, Roots: roots[k]})
	}
	slices.SortFunc(out, func(a, b store.Endpoint) int {
		if c := cmp.Compare(a.Service, b.Service); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return out, nil
}
