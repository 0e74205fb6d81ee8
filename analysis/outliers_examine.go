package analysis

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/tailscope/tailscope/store"
)

// exTrace is what the analysis knows about one examined request.
type exTrace struct {
	pos     int // position in the duration order
	sample  int32
	dur     int64
	stratum int8
	// w is the number of requests this one stands for (its stratum's
	// weight; 1 for an outlier when every outlier is examined).
	w float64
	// deps is critical-path time per dependency, calls the request's own
	// time per dependency (self time of its synchronous spans, whether or
	// not on the path: a parallel call's own duration).
	deps  []depNs
	calls []depNs
	vals  []dimVal
	// dominant is the dependency with the largest excess (-1 when none
	// exceeds its typical time); domEx that excess.
	dominant int32
	domEx    int64
}

type depNs struct {
	dep int32
	ns  int64
}

func addDepNs(xs []depNs, d int32, ns int64) []depNs {
	for i := range xs {
		if xs[i].dep == d {
			xs[i].ns += ns
			return xs
		}
	}
	return append(xs, depNs{d, ns})
}

func depTimeIn(xs []depNs, d int32) int64 {
	for _, x := range xs {
		if x.dep == d {
			return x.ns
		}
	}
	return 0
}

// depTime is the request's critical time on d; callTime its own time.
func (t *exTrace) depTime(d int32) int64  { return depTimeIn(t.deps, d) }
func (t *exTrace) callTime(d int32) int64 { return depTimeIn(t.calls, d) }

func (t *exTrace) has(v dimVal) bool { return slices.Contains(t.vals, v) }

func (t *exTrace) matchesAll(vs []dimVal) bool {
	for _, v := range vs {
		if !t.has(v) {
			return false
		}
	}
	return true
}

// dependencies interns dependency keys — a span's Dependency, or its
// service for time in the service's own code — and holds what the
// analysis learns about each.
type dependencies struct {
	ids   map[string]int32
	names []string
	// callers are the services whose spans spent time on the key: the
	// service itself for its own time, the callers for a dependency.
	callers []map[string]bool
	// typical is the median critical time over the baseline, slowAt the
	// cut-off above which a request is slow on it.
	typical, slowAt []int64
	// tail fits the dependency's own time (see outliers_groups.go).
	tail []tailFit
}

func (d *dependencies) init() { d.ids = map[string]int32{} }

// key is the dependency a span's time counts for.
func depKey(sp *store.Span) string {
	if sp.Dependency != "" {
		return sp.Dependency
	}
	return sp.Service
}

func (d *dependencies) id(sp *store.Span) int32 {
	key := depKey(sp)
	id, ok := d.ids[key]
	if !ok {
		id = int32(len(d.names))
		d.ids[key] = id
		d.names = append(d.names, key)
		d.callers = append(d.callers, map[string]bool{})
	}
	if !d.callers[id][sp.Service] {
		d.callers[id][sp.Service] = true
	}
	return id
}

// traceBatch is how many traces one store read asks for.
const traceBatch = 500

// readTraces reads the traces of ids in batches; unknown ids are absent
// from the result.
func readTraces(ctx context.Context, src SpanSource, ids []store.TraceID) (map[store.TraceID][]store.Span, error) {
	return readBatched(ctx, src.Traces, ids)
}

// readShapes is readTraces without the spans' Attributes, Resource and
// Events when src can leave them out (ShapeSource); callers must read none
// of those, so that the fallback to Traces answers the same.
func readShapes(ctx context.Context, src SpanSource, ids []store.TraceID) (map[store.TraceID][]store.Span, error) {
	if ss, ok := src.(ShapeSource); ok {
		return readBatched(ctx, ss.TraceShapes, ids)
	}
	return readTraces(ctx, src, ids)
}

// readRequestShapes is readShapes for the traces of reqs, except that each
// request's own span keeps its Attributes and Resource when src can read
// them so (RequestShapeSource); callers must read no other span's
// attributes, resources or events, nor the requests' events. Batches hold
// traceBatch requests, a trace's requests in one batch.
func readRequestShapes(ctx context.Context, src SpanSource, reqs []store.SpanRef) (map[store.TraceID][]store.Span, error) {
	rs, ok := src.(RequestShapeSource)
	if !ok {
		ids := make([]store.TraceID, len(reqs))
		for i, r := range reqs {
			ids[i] = r.TraceID
		}
		return readTraces(ctx, src, ids)
	}
	reqs = slices.Clone(reqs)
	slices.SortFunc(reqs, func(a, b store.SpanRef) int {
		return cmp.Or(bytes.Compare(a.TraceID[:], b.TraceID[:]), bytes.Compare(a.SpanID[:], b.SpanID[:]))
	})
	reqs = slices.Compact(reqs)
	traces := make(map[store.TraceID][]store.Span, len(reqs))
	for start := 0; start < len(reqs); {
		end := min(start+traceBatch, len(reqs))
		for end < len(reqs) && reqs[end].TraceID == reqs[end-1].TraceID {
			end++
		}
		got, err := rs.RequestShapes(ctx, reqs[start:end])
		if err != nil {
			return nil, fmt.Errorf("read traces: %w", err)
		}
		for id, sp := range got {
			traces[id] = sp
		}
		start = end
	}
	return traces, nil
}

func readBatched(ctx context.Context, read func(context.Context, []store.TraceID) (map[store.TraceID][]store.Span, error),
	ids []store.TraceID) (map[store.TraceID][]store.Span, error) {
	traces := make(map[store.TraceID][]store.Span, len(ids))
	for start := 0; start < len(ids); start += traceBatch {
		got, err := read(ctx, ids[start:min(start+traceBatch, len(ids))])
		if err != nil {
			return nil, fmt.Errorf("read traces: %w", err)
		}
		for id, sp := range got {
			traces[id] = sp
		}
	}
	return traces, nil
}

// examine fetches the picked requests' traces and computes their time per
// dependency and their dimension values.
func (r *outlierRun) examine(ctx context.Context, src SpanSource) error {
	// The trace's shape gives the critical path, hops and the subtree's
	// tenant, payload, versions and hosts; the request's own span its
	// attribute dimensions.
	var reqs []store.SpanRef
	for k := range r.strata {
		for _, pos := range r.strata[k].picked {
			smp := &r.samples[r.ord[pos].i]
			reqs = append(reqs, store.SpanRef{TraceID: smp.TraceID, SpanID: smp.SpanID})
		}
	}
	traces, err := readRequestShapes(ctx, src, reqs)
	if err != nil {
		return fmt.Errorf("analysis: outliers: %w", err)
	}
	r.dims = []*dimension{newDimension(DimTenant), newDimension(DimPayload), newDimension(DimVersion), newDimension(DimHost)}
	attrDim := map[string]int32{}
	explicit := r.q.Attributes != nil
	for _, k := range r.q.Attributes {
		if _, ok := attrDim[k]; !ok && k != "" {
			attrDim[k] = int32(len(r.dims))
			r.dims = append(r.dims, newDimension(attrDimPrefix+k))
		}
	}
	cache := attrCache{m: map[string][]attrKV{}}
	// Attribute values are collected first and turned into dimensions
	// once their cardinality is known.
	pending := map[int][]attrKV{}
	ids2 := &valueIDs{ver: map[hopKey]int32{}, host: map[hopKey]int32{}}
	var e cpEngine
	for k := range r.strata {
		s := &r.strata[k]
		for _, pos := range s.picked {
			si := r.ord[pos].i
			smp := &r.samples[si]
			spans, ok := traces[smp.TraceID]
			if !ok || !e.compute(spans, smp.SpanID) {
				continue
			}
			s.examined++
			t := exTrace{pos: pos, sample: si, dur: r.ord[pos].d, stratum: int8(k), dominant: -1,
				deps: make([]depNs, 0, 8), calls: make([]depNs, 0, 8)}
			e.hopTimes(func(sp *store.Span, ns int64) { t.deps = addDepNs(t.deps, r.deps.id(sp), ns) })
			for _, n := range e.order {
				if self := e.selfTime(n); self > 0 {
					t.calls = addDepNs(t.calls, r.deps.id(e.tree.Span(n)), self)
				}
			}
			r.fixedDims(&t, smp, &e, ids2)
			entry := e.rootSpan()
			kv := append(slices.Clone(cache.scalars(entry.Attributes)), cache.scalars(entry.Resource)...)
			if explicit {
				for _, a := range kv {
					if d, ok := attrDim[a.key]; ok {
						t.vals = appendUnique(t.vals, dimVal{d, r.dims[d].id(a.val)})
					}
				}
			} else if len(kv) > 0 {
				pending[len(r.trace)] = kv
			}
			switch k {
			case stratOutlier:
				r.nOut++
			case stratBaseline:
				r.nBase++
			}
			if k != stratOutlier {
				r.nComp++
			}
			r.trace = append(r.trace, t)
		}
		if s.examined > 0 {
			s.weight = s.wsize / float64(s.examined)
		}
	}
	r.traceWeights()
	if !explicit {
		r.discoverAttributes(pending)
	}
	return nil
}

// traceWeights sets how many requests each examined one stands for: its
// stratum's weight, or, in a stratum examined whole from a sampled stream,
// its own sampling weight scaled so the stratum's examined requests stand
// for all of it (requests whose traces are missing are made up by the
// rest). A stratum's single weight is then their mean, which the
// stratified tables use.
func (r *outlierRun) traceWeights() {
	var own [numStrata]float64
	base := func(t *exTrace) float64 {
		if r.cw == nil || r.strata[t.stratum].pps {
			return 1
		}
		return float64(store.CountWeight(r.samples[t.sample].Weight))
	}
	for i := range r.trace {
		own[r.trace[i].stratum] += base(&r.trace[i])
	}
	for i := range r.trace {
		t := &r.trace[i]
		t.w = base(t) * r.strata[t.stratum].wsize / own[t.stratum]
	}
}

// valueIDs interns downstream versions and hosts per (service, value):
// one map lookup per span, no string building, and the value's owner
// recorded once.
type valueIDs struct{ ver, host map[hopKey]int32 }

// fixedDims records tenant, payload bucket, versions and hosts of the
// request's synchronous subtree (async work does not describe the request),
// and which service each version and host belongs to.
func (r *outlierRun) fixedDims(t *exTrace, smp *store.Sample, e *cpEngine, ids *valueIDs) {
	tenant, payload := smp.Tenant, smp.PayloadBytes
	if smp.Version != "" {
		t.vals = appendUnique(t.vals, r.owned(dimVersionIdx, smp.Version, smp.Service))
	}
	if smp.Host != "" {
		t.vals = appendUnique(t.vals, r.owned(dimHostIdx, smp.Host, smp.Service))
	}
	for _, ni := range e.order {
		sp := e.tree.Span(ni)
		if tenant == "" {
			tenant = sp.Tenant
		}
		payload = max(payload, sp.PayloadBytes)
		if sp.Service != smp.Service && sp.Version != "" {
			k := hopKey{sp.Service, sp.Version}
			id, ok := ids.ver[k]
			if !ok {
				id = r.owned(dimVersionIdx, sp.Service+"@"+sp.Version, sp.Service).val
				ids.ver[k] = id
			}
			t.vals = appendUnique(t.vals, dimVal{dimVersionIdx, id})
		}
		if sp.Host != "" {
			k := hopKey{sp.Service, sp.Host}
			id, ok := ids.host[k]
			if !ok {
				id = r.owned(dimHostIdx, sp.Host, sp.Service).val
				ids.host[k] = id
			}
			t.vals = appendUnique(t.vals, dimVal{dimHostIdx, id})
		}
	}
	if tenant == "" {
		tenant = "(none)"
	}
	t.vals = append(t.vals,
		dimVal{dimTenantIdx, r.dims[dimTenantIdx].id(tenant)},
		dimVal{dimPayloadIdx, r.dims[dimPayloadIdx].id(PayloadBucket(payload))})
}

// owned interns a version or host value and records its service.
func (r *outlierRun) owned(dim int32, value, service string) dimVal {
	v := dimVal{dim, r.dims[dim].id(value)}
	if os := r.owner[v]; !slices.Contains(os, service) {
		r.owner[v] = append(os, service)
	}
	return v
}

func appendUnique(vs []dimVal, v dimVal) []dimVal {
	if slices.Contains(vs, v) {
		return vs
	}
	return append(vs, v)
}

// discoverAttributes keeps attribute keys with 2 to maxAttrValues distinct
// values among outliers and baseline as dimensions.
func (r *outlierRun) discoverAttributes(pending map[int][]attrKV) {
	distinct := map[string]map[string]bool{}
	for ti, kv := range pending {
		if st := r.trace[ti].stratum; st != stratOutlier && st != stratBaseline {
			continue
		}
		for _, a := range kv {
			m := distinct[a.key]
			if m == nil {
				m = map[string]bool{}
				distinct[a.key] = m
			}
			if len(m) <= maxAttrValues {
				m[a.val] = true
			}
		}
	}
	var keys []string
	for k, m := range distinct {
		if len(m) >= 2 && len(m) <= maxAttrValues && !identifierKey(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	keys = keys[:min(len(keys), maxAttrDims)]
	attrDim := map[string]int32{}
	for _, k := range keys {
		attrDim[k] = int32(len(r.dims))
		r.dims = append(r.dims, newDimension(attrDimPrefix+k))
	}
	// Walk traces in order so value ids do not depend on map order.
	for ti := range r.trace {
		for _, a := range pending[ti] {
			if d, ok := attrDim[a.key]; ok {
				r.trace[ti].vals = appendUnique(r.trace[ti].vals, dimVal{d, r.dims[d].id(a.val)})
			}
		}
	}
}
