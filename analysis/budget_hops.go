package analysis

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/tailscope/tailscope/store"
)

// The hop table of a budget.
//
// What a hop's time is. Each stretch of a request's critical path (see
// critpath.go) belongs to exactly one hop, so the hops' times and the
// unbudgeted rest add up to the request's duration:
//   - the span the stretch is spent in, when its (service, dependency) is
//     a budgeted hop: a service's own time, or a client span's own time
//     (network and queueing around the call);
//   - otherwise, when the budget measures whole calls (store.HopWholeCall,
//     the default), the nearest enclosing client span whose (service,
//     dependency) is a budgeted call hop: the server's work and its own
//     calls count towards the call that waits for them, unless they are
//     budgeted themselves (then the innermost budgeted hop takes them);
//   - otherwise nobody's: the unbudgeted rest.
//
// So under the whole-call measure a call the caller waits for alone
// counts its client span's duration; of parallel calls, only the one the
// request waited for longest counts (the others ended earlier and cost
// the request nothing), and work the caller does not wait for is off the
// critical path. Because the hops are disjoint their allocations share
// the threshold, which ValidateBudget checks.
//
// Contribution. For a request over the threshold T, with hop times t_h,
// allocations a_h and the unbudgeted rest t_u against a_u = T − Σa_h:
// Σ(t_h − a_h) + (t_u − a_u) is exactly its time over the threshold,
// d − T > 0. Each row's excess x = max(0, t − a) is what it overran its
// own allocation by, and the request's time over the threshold is split
// over the rows in proportion to their excess: c = (d − T)·x/Σx, which
// adds up to d − T. A row's contribution is the sum of its c over the
// sampled slow requests divided by the sum of their d − T: its share of
// the time the window's slow requests spent over the threshold. Rows
// rank by it, so a hop that overruns by 2 ms in every request ranks below
// one that overruns by a second in one request of fifty.

const (
	// hopSampleSize is the most requests the overrun rates are measured
	// on: a 95% interval of a rate near 2% is then about ±0.9 points.
	hopSampleSize = 1000
	// slowSampleSize is the most requests over the threshold the
	// contributions are measured on.
	slowSampleSize = 300
	// hopExamples is how many example traces each hop lists.
	hopExamples = 3
	// hopConfidence is the level of the overrun rates' intervals, and
	// hopZ its two-sided normal quantile.
	hopConfidence = 0.95
	hopZ          = 1.959963984540054
)

// HopCompliance is one row of the hop table.
type HopCompliance struct {
	Service      string  `json:"service"`
	Dependency   string  `json:"dependency"`
	Label        string  `json:"label"`
	AllocationMs float64 `json:"allocation_ms"`
	// Requests is the sampled requests measured, Overruns those in which
	// the hop took longer than its allocation, OverrunRate their share.
	Requests    int     `json:"requests"`
	Overruns    int     `json:"overruns"`
	OverrunRate float64 `json:"overrun_rate"`
	// OverrunRateLow and OverrunRateHigh bound the window's overrun rate
	// at ConfidenceLevel (a Wilson score interval, see wilson); both equal
	// OverrunRate when every request of the window was measured.
	OverrunRateLow  float64 `json:"overrun_rate_low"`
	OverrunRateHigh float64 `json:"overrun_rate_high"`
	// MeanOverrunMs and MaxOverrunMs are over the overrunning requests.
	MeanOverrunMs float64 `json:"mean_overrun_ms"`
	MaxOverrunMs  float64 `json:"max_overrun_ms"`
	// P50Ms and P95Ms are the hop's time per request.
	P50Ms float64 `json:"p50_ms"`
	P95Ms float64 `json:"p95_ms"`
	// Contribution is the hop's share of the time the sampled slow
	// requests spent over the threshold (see the comment at the top of
	// budget_hops.go); ContributionMs is the same time per slow request.
	Contribution   float64 `json:"contribution"`
	ContributionMs float64 `json:"contribution_ms"`
	// ExampleTraceIDs are sampled requests in which the hop overran its
	// allocation by the most.
	ExampleTraceIDs []store.TraceID `json:"example_trace_ids"`
}

// hopRequest is one measured request: its time per budgeted hop and the
// unbudgeted rest.
type hopRequest struct {
	trace store.TraceID
	per   []int64
	rest  int64
	// w is how many requests this one stands for: its sampling weight
	// (store.CountWeight; 1 unless the stream was sampled). Rates,
	// percentiles and contributions weigh each measured request by it, so
	// a tail-sampled stream's slow requests do not count as the majority
	// they are of the stored ones.
	w float64
}

func (r *hopRequest) duration() int64 {
	d := r.rest
	for _, t := range r.per {
		d += t
	}
	return d
}

// hopCompliance measures the sampled requests and fills the hop table. A
// budget without hops has no table: nothing is read.
func hopCompliance(ctx context.Context, src SpanSource, b store.Budget, all, slow []store.Sample, rep *ComplianceReport) error {
	if len(b.Hops) == 0 {
		rep.Unbudgeted = HopCompliance{Label: "unbudgeted", AllocationMs: round3(durMs(b.Threshold)), ExampleTraceIDs: []store.TraceID{}}
		return nil
	}
	ids := make([]store.TraceID, 0, len(all)+len(slow))
	for _, ss := range [][]store.Sample{all, slow} {
		for _, s := range ss {
			ids = append(ids, s.TraceID)
		}
	}
	slices.SortFunc(ids, func(a, b store.TraceID) int { return bytes.Compare(a[:], b[:]) })
	// The hop meter reads the trace tree, kinds, times, services,
	// dependencies and links, never attributes or events: shapes suffice.
	traces, err := readShapes(ctx, src, slices.Compact(ids))
	if err != nil {
		return fmt.Errorf("analysis: compliance: %w", err)
	}
	m := newHopMeter(b)
	type reqID struct {
		trace store.TraceID
		span  store.SpanID
	}
	done := map[reqID]*hopRequest{}
	measure := func(ss []store.Sample) []*hopRequest {
		var out []*hopRequest
		for _, s := range ss {
			id := reqID{s.TraceID, s.SpanID}
			r, seen := done[id]
			if !seen {
				r = &hopRequest{trace: s.TraceID, per: make([]int64, len(b.Hops)), w: float64(store.CountWeight(s.Weight))}
				var ok bool
				if r.rest, ok = m.measure(traces[s.TraceID], s.SpanID, r.per); !ok {
					r = nil
				}
				done[id] = r
			}
			if r != nil {
				out = append(out, r)
			}
		}
		return out
	}
	uni, slw := measure(all), measure(slow)
	rep.SampledRequests, rep.SampledSlowRequests = len(uni), len(slw)
	rep.SampleComplete = len(uni) == rep.Total

	allocs := make([]int64, len(b.Hops)+1) // the last is the unbudgeted row's
	left := int64(b.Threshold)
	for i, h := range b.Hops {
		allocs[i] = int64(h.Allocation)
		left -= allocs[i]
	}
	allocs[len(b.Hops)] = left
	rows := make([]HopCompliance, len(b.Hops)+1)
	for i, h := range b.Hops {
		rows[i] = hopRow(h.Service, h.Dependency, HopLabel(h.Service, h.Dependency), allocs[i], hopColumn(uni, i), rep.SampleComplete)
	}
	rows[len(b.Hops)] = hopRow("", "", "unbudgeted", left, hopColumn(uni, -1), rep.SampleComplete)
	hopContributions(slw, allocs, int64(b.Threshold), rows)
	measured := make([]*hopRequest, 0, len(done))
	for _, r := range done {
		if r != nil {
			measured = append(measured, r)
		}
	}
	hopExampleTraces(measured, allocs, rows)

	rep.Unbudgeted = rows[len(b.Hops)]
	rep.Hops = rows[:len(b.Hops)]
	slices.SortStableFunc(rep.Hops, rankHops)
	if len(rep.Hops) > 0 {
		worst := rep.Hops[0]
		if rep.Unbudgeted.Contribution > worst.Contribution {
			worst = rep.Unbudgeted
		}
		if worst.Contribution > 0 {
			rep.WorstHop, rep.WorstHopContribution = worst.Label, worst.Contribution
		}
	}
	return nil
}

// rankHops orders hop rows by contribution to the overrun, then by how
// often they overran, by how much, and by label.
func rankHops(a, b HopCompliance) int {
	return cmp.Or(cmp.Compare(b.Contribution, a.Contribution), cmp.Compare(b.OverrunRate, a.OverrunRate),
		cmp.Compare(b.MeanOverrunMs, a.MeanOverrunMs), cmp.Compare(a.Label, b.Label))
}

// hopColumn is hop i's time in each request (-1: the unbudgeted rest),
// with the request's weight.
func hopColumn(rs []*hopRequest, i int) []weightedValue {
	out := make([]weightedValue, len(rs))
	for j, r := range rs {
		out[j].w = r.w
		if i < 0 {
			out[j].v = r.rest
		} else {
			out[j].v = r.per[i]
		}
	}
	return out
}

// hopRow summarises one hop's times against its allocation. Requests and
// Overruns count measured requests; the rate, the mean overrun and the
// percentiles weigh each by the requests it stands for, and the rate's
// interval uses the sample's effective size when weights differ.
func hopRow(service, dep, label string, alloc int64, times []weightedValue, complete bool) HopCompliance {
	h := HopCompliance{Service: service, Dependency: dep, Label: label, AllocationMs: round3(nsToMs(alloc)),
		Requests: len(times), ExampleTraceIDs: []store.TraceID{}}
	if len(times) == 0 {
		return h
	}
	var total, total2, overW, sum float64
	var most int64
	for _, t := range times {
		total += t.w
		total2 += t.w * t.w
		if over := t.v - alloc; over > 0 {
			h.Overruns++
			overW += t.w
			sum += t.w * float64(over)
			most = max(most, over)
		}
	}
	rate := overW / total
	h.OverrunRate = round4(rate)
	h.OverrunRateLow, h.OverrunRateHigh = h.OverrunRate, h.OverrunRate
	if !complete {
		n := len(times)
		x := h.Overruns
		if total2 != total { // some weight above 1: Kish's effective size
			n = max(int(math.Round(total*total/total2)), 1)
			x = int(math.Round(rate * float64(n)))
		}
		lo, hi := wilson(x, n, hopZ)
		h.OverrunRateLow, h.OverrunRateHigh = round4(lo), round4(hi)
	}
	if h.Overruns > 0 {
		h.MeanOverrunMs = round3(sum / overW / 1e6)
		h.MaxOverrunMs = round3(nsToMs(most))
	}
	s := slices.Clone(times)
	sortWeighted(s)
	h.P50Ms = round3(nsToMs(sortedWeightedQuantile(s, total, 0.5)))
	h.P95Ms = round3(nsToMs(sortedWeightedQuantile(s, total, 0.95)))
	return h
}

// hopContributions splits each slow request's time over the threshold
// over the rows in proportion to how much each overran its allocation
// (the comment at the top of this file) and sets each row's share.
func hopContributions(slow []*hopRequest, allocs []int64, threshold int64, rows []HopCompliance) {
	n := len(allocs)
	sums := make([]float64, n)
	excess := make([]float64, n)
	var total, requests float64
	for _, r := range slow {
		requests += r.w
		over := r.duration() - threshold
		if over <= 0 {
			continue // measured at most the threshold: nothing to split
		}
		var sx float64
		for i := range n {
			t := r.rest
			if i < len(r.per) {
				t = r.per[i]
			}
			excess[i] = float64(max(t-allocs[i], 0))
			sx += excess[i]
		}
		// Σ(t − a) = over > 0, so some row overran: sx ≥ over > 0.
		for i := range n {
			sums[i] += r.w * float64(over) * excess[i] / sx
		}
		total += r.w * float64(over)
	}
	if total == 0 {
		return
	}
	for i := range rows {
		rows[i].Contribution = round4(sums[i] / total)
		rows[i].ContributionMs = round3(sums[i] / requests / 1e6)
	}
}

// hopExampleTraces lists, per row, the measured requests in which it
// overran its allocation by the most.
func hopExampleTraces(rs []*hopRequest, allocs []int64, rows []HopCompliance) {
	type ex struct {
		trace store.TraceID
		over  int64
	}
	for i := range rows {
		var top []ex
		for _, r := range rs {
			t := r.rest
			if i < len(r.per) {
				t = r.per[i]
			}
			if over := t - allocs[i]; over > 0 {
				top = append(top, ex{r.trace, over})
			}
		}
		slices.SortFunc(top, func(a, b ex) int {
			return cmp.Or(cmp.Compare(b.over, a.over), bytes.Compare(a.trace[:], b.trace[:]))
		})
		for _, e := range top {
			if len(rows[i].ExampleTraceIDs) == hopExamples {
				break
			}
			if !slices.Contains(rows[i].ExampleTraceIDs, e.trace) {
				rows[i].ExampleTraceIDs = append(rows[i].ExampleTraceIDs, e.trace)
			}
		}
	}
}

// hopMeter splits requests' critical paths over a budget's hops. It is the
// one place budgets meet the critical path (measure), so what the path is
// (the trace Tree's dedup and root rules, async branches off the path)
// reaches the table, the contributions and the examples at once.
type hopMeter struct {
	index     map[hopKey]int
	wholeCall bool
	e         cpEngine
	owner     []int32 // per tree node: enclosing budgeted call hop; see callOwner
	path      []int32
}

const (
	ownerUnknown = -2
	ownerNone    = -1
)

func newHopMeter(b store.Budget) *hopMeter {
	m := &hopMeter{index: make(map[hopKey]int, len(b.Hops)), wholeCall: HopMeasureOf(b) == store.HopWholeCall}
	for i, h := range b.Hops {
		m.index[hopKey{h.Service, h.Dependency}] = i
	}
	return m
}

// measure computes the critical path of the request whose entry span is
// entry (the trace's root when absent) and adds each stretch of it to the
// budgeted hop it belongs to, per[i] for the budget's hop i, returning the
// rest. It reports false when the trace has no usable root.
func (m *hopMeter) measure(spans []store.Span, entry store.SpanID, per []int64) (rest int64, ok bool) {
	if len(spans) == 0 || !m.e.compute(spans, entry) {
		return 0, false
	}
	clear(per)
	t := &m.e.tree
	if m.wholeCall {
		m.owner = resize(m.owner, t.Len())
		for i := range m.owner {
			m.owner[i] = ownerUnknown
		}
	}
	m.e.hopTimes(func(sp *store.Span, ns int64) {
		i, ok := m.index[hopKey{sp.Service, sp.Dependency}]
		if !ok && m.wholeCall {
			if n, found := t.Node(sp.SpanID); found && n != m.e.root {
				i = m.callOwner(t.Parent(n))
				ok = i >= 0
			}
		}
		if ok {
			per[i] += ns
		} else {
			rest += ns
		}
	})
	return rest, true
}

// callOwner returns the budgeted call hop of tree node n or of its nearest
// ancestor that is one, looking no higher than the request's entry span
// (ownerNone when there is none). Results are kept per node, so a trace
// costs one walk up per span at most.
func (m *hopMeter) callOwner(n int32) int {
	t := &m.e.tree
	res := ownerNone
	m.path = m.path[:0]
	for n >= 0 {
		if o := m.owner[n]; o != ownerUnknown {
			res = int(o)
			break
		}
		m.path = append(m.path, n)
		if sp := t.Span(n); sp.Dependency != "" {
			if i, ok := m.index[hopKey{sp.Service, sp.Dependency}]; ok {
				res = i
				break
			}
		}
		if n == m.e.root {
			break
		}
		n = t.Parent(n)
	}
	for _, j := range m.path {
		m.owner[j] = int32(res)
	}
	return res
}
