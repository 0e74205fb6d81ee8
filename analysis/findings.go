package analysis

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tailscope/tailscope/internal/units"
	"github.com/tailscope/tailscope/store"
)

// Finding kinds.
const (
	FindingSequentialFanOut = "sequential_fanout"
	FindingNPlusOne         = "n_plus_one"
	FindingRetries          = "retries"
	FindingSlowDB           = "slow_db_statement"
	FindingLargePayload     = "large_payload"
	FindingGap              = "uninstrumented_gap"
)

// Finding is an anti-pattern in one trace: what it is, the spans involved
// and the time at stake.
type Finding struct {
	Kind    string         `json:"kind"`
	Title   string         `json:"title"`
	Service string         `json:"service"`
	SpanIDs []store.SpanID `json:"span_ids"`
	// TimeMs is the time at stake: what parallelising, batching or not
	// retrying would save, or the duration of the slow span.
	TimeMs float64 `json:"time_ms"`
	Detail string  `json:"detail"`
}

// FindingOptions tunes what is reported. Zero fields take the defaults.
type FindingOptions struct {
	// MinTime is the least time at stake worth a finding (default 1 ms).
	MinTime time.Duration
	// NPlusOne is how many similar sibling calls make an N+1 (default 5).
	NPlusOne int
	// SlowDB is the duration from which a database call is slow
	// (default 100 ms).
	SlowDB time.Duration
	// LargePayload is the size from which a payload is large (default 1 MiB).
	LargePayload int64
	// MinGap and MinGapShare: an uninstrumented gap is reported when it is
	// at least MinGap (default 10 ms) and MinGapShare of the trace
	// (default 0.1).
	MinGap      time.Duration
	MinGapShare float64
}

func (o *FindingOptions) defaults() {
	if o.MinTime <= 0 {
		o.MinTime = time.Millisecond
	}
	if o.NPlusOne <= 1 {
		o.NPlusOne = 5
	}
	if o.SlowDB <= 0 {
		o.SlowDB = 100 * time.Millisecond
	}
	if o.LargePayload <= 0 {
		o.LargePayload = 1 << 20
	}
	if o.MinGap <= 0 {
		o.MinGap = 10 * time.Millisecond
	}
	if o.MinGapShare <= 0 {
		o.MinGapShare = 0.1
	}
}

// Findings returns the anti-patterns of one trace with default options:
// errors and timeouts first, then the largest time at stake first.
func Findings(spans []store.Span) []Finding {
	return FindingsWith(spans, FindingOptions{})
}

// FindingsWith is Findings with options.
func FindingsWith(spans []store.Span, o FindingOptions) []Finding {
	o.defaults()
	out := []Finding{}
	if len(spans) == 0 {
		return out
	}
	tree := NewTree(spans)
	// Sibling patterns look at the calls (spans with a dependency) each
	// parent waited for, in start order; async calls (fire-and-forget,
	// message hand-offs) did not delay it. Orphans whose parent never
	// arrived are siblings too.
	var calls []int32
	siblings := func(parent *store.Span) {
		if len(calls) >= 2 { // every sibling pattern needs two calls
			out = append(out, sequentialFanOut(tree, parent, calls, o)...)
			out = append(out, repeatedCalls(tree, calls, o)...)
		}
	}
	for p := range int32(tree.Len()) {
		calls = calls[:0]
		for _, c := range tree.Children(p) {
			if tree.Span(c).Dependency != "" && !tree.Tie(c).Async() {
				calls = append(calls, c)
			}
		}
		siblings(tree.Span(p))
	}
	orphans := map[store.SpanID][]int32{}
	var missing []store.SpanID
	for _, r := range tree.Roots() {
		if sp := tree.Span(r); !sp.ParentSpanID.IsZero() && sp.Dependency != "" {
			if orphans[sp.ParentSpanID] == nil {
				missing = append(missing, sp.ParentSpanID)
			}
			orphans[sp.ParentSpanID] = append(orphans[sp.ParentSpanID], r)
		}
	}
	for _, id := range missing {
		calls = append(calls[:0], orphans[id]...) // roots are in start order
		siblings(nil)
	}
	for n := range int32(tree.Len()) {
		sp := tree.Span(n)
		if f, ok := slowDB(sp, o); ok {
			out = append(out, f)
		}
		if sp.PayloadBytes >= o.LargePayload {
			out = append(out, Finding{
				Kind:    FindingLargePayload,
				Title:   fmt.Sprintf("Large payload: %s in %s", units.Bytes(float64(sp.PayloadBytes)), sp.Name),
				Service: sp.Service, SpanIDs: []store.SpanID{sp.SpanID},
				TimeMs: round3(nsToMs(sp.DurationNano)),
				Detail: fmt.Sprintf("%s moved %s and took %s; large bodies cost serialisation, transfer and downstream work in proportion.",
					spanRef(sp), units.Bytes(float64(sp.PayloadBytes)), units.Ms(nsToMs(sp.DurationNano))),
			})
		}
	}
	out = append(out, gapFindings(spans, tree, o)...)
	out = append(out, errorFindings(tree)...)
	slices.SortStableFunc(out, func(a, b Finding) int {
		if sa, sb := severe(a.Kind), severe(b.Kind); sa != sb {
			if sa {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(b.TimeMs, a.TimeMs); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return bytes.Compare(a.SpanIDs[0][:], b.SpanIDs[0][:])
	})
	return out
}

// sequentialFanOut finds runs of calls to different dependencies made one
// after another by the same parent. Calls that overlap form a stage; a
// run is two or more consecutive single-call stages before the parent's
// first parallel stage: a parent that already runs calls in parallel has
// shown it parallelises what it can, and a call after a parallel stage
// usually needs its results (rank after fetching candidates, features and
// profile). The saving assumes calls to the same dependency stay
// sequential: the run's time minus the longest per-dependency total. It
// must reach MinTime and, when only two dependencies are involved, a fifth
// of the parent's duration: a cache miss falling back to the database is
// two dependent calls where the cheap lookup is all there is to gain.
func sequentialFanOut(tree *Tree, parent *store.Span, calls []int32, o FindingOptions) []Finding {
	var out []Finding
	var stages [][]int32
	var stageEnd int64
	for _, i := range calls {
		sp := tree.Span(i)
		if len(stages) > 0 && sp.StartUnixNano < stageEnd {
			stages[len(stages)-1] = append(stages[len(stages)-1], i)
			stageEnd = max(stageEnd, sp.End())
			continue
		}
		stages = append(stages, []int32{i})
		stageEnd = sp.End()
	}
	flush := func(run []int32) {
		if len(run) < 2 {
			return
		}
		perDep := map[string]int64{}
		var total int64
		for _, i := range run {
			perDep[tree.Span(i).Dependency] += tree.Span(i).DurationNano
			total += tree.Span(i).DurationNano
		}
		if len(perDep) < 2 {
			return
		}
		var longest int64
		deps := make([]string, 0, len(perDep))
		for d, v := range perDep {
			longest = max(longest, v)
			deps = append(deps, d)
		}
		slices.Sort(deps)
		save := total - longest
		if save < int64(o.MinTime) || (len(deps) == 2 && parent != nil && 5*save < parent.DurationNano) {
			return
		}
		ids := make([]store.SpanID, len(run))
		for k, i := range run {
			ids[k] = tree.Span(i).SpanID
		}
		first := tree.Span(run[0])
		out = append(out, Finding{
			Kind:    FindingSequentialFanOut,
			Title:   fmt.Sprintf("Sequential calls to %d dependencies could run in parallel", len(deps)),
			Service: first.Service, SpanIDs: ids, TimeMs: round3(nsToMs(save)),
			Detail: fmt.Sprintf("%s calls %s one after another (%d calls, %s in total); run in parallel they would take about %s, saving %s if the calls do not depend on each other.",
				first.Service, strings.Join(deps, ", "), len(run), units.Ms(nsToMs(total)),
				units.Ms(nsToMs(longest)), units.Ms(nsToMs(save))),
		})
	}
	var run []int32
	for _, st := range stages {
		if len(st) > 1 {
			break
		}
		run = append(run, st[0])
	}
	flush(run)
	return out
}

// repeatedCalls finds N+1 patterns (many similar sibling calls) and
// retries (a similar call made again after one failed).
func repeatedCalls(tree *Tree, calls []int32, o FindingOptions) []Finding {
	type key struct{ service, name, dep string }
	groups := map[key][]int32{}
	var keys []key
	for _, i := range calls {
		sp := tree.Span(i)
		k := key{sp.Service, sp.Name, sp.Dependency}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], i)
	}
	var out []Finding
	for _, k := range keys {
		g := groups[k] // in start order
		ids := make([]store.SpanID, len(g))
		for n, i := range g {
			ids[n] = tree.Span(i).SpanID
		}
		if len(g) >= o.NPlusOne {
			var longest int64
			for _, i := range g {
				longest = max(longest, tree.Span(i).DurationNano)
			}
			wall := unionTime(tree, g)
			save := wall - longest
			if save >= int64(o.MinTime) {
				out = append(out, Finding{
					Kind:    FindingNPlusOne,
					Title:   fmt.Sprintf("N+1: %d × %s to %s", len(g), k.name, k.dep),
					Service: k.service, SpanIDs: ids, TimeMs: round3(nsToMs(save)),
					Detail: fmt.Sprintf("%s made %d similar calls %q to %s, busy for %s; one batched call would take about as long as the slowest (%s).",
						k.service, len(g), k.name, k.dep, units.Ms(nsToMs(wall)), units.Ms(nsToMs(longest))),
				})
			}
		}
		// Retries: attempts after the first failed one.
		firstErr := -1
		for n, i := range g {
			if tree.Span(i).StatusCode == store.StatusError {
				firstErr = n
				break
			}
		}
		if firstErr < 0 || firstErr == len(g)-1 {
			continue
		}
		failed := 0
		for _, i := range g[firstErr:] {
			if tree.Span(i).StatusCode == store.StatusError {
				failed++
			}
		}
		last := tree.Span(g[len(g)-1])
		first := tree.Span(g[firstErr])
		lost := last.StartUnixNano - first.StartUnixNano
		if lost < int64(o.MinTime) {
			continue
		}
		attempts := len(g) - firstErr
		out = append(out, Finding{
			Kind:    FindingRetries,
			Title:   fmt.Sprintf("Retries: %d attempts of %s to %s", attempts, k.name, k.dep),
			Service: k.service, SpanIDs: ids[firstErr:], TimeMs: round3(nsToMs(lost)),
			Detail: fmt.Sprintf("%s called %s %d times, %d failed; %s went to failed attempts and waiting before the last one. Bound retries and back off with jitter.",
				k.service, k.dep, attempts, failed, units.Ms(nsToMs(lost))),
		})
	}
	return out
}

// unionTime is the wall time covered by the spans' intervals.
func unionTime(tree *Tree, idx []int32) int64 {
	iv := make([][2]int64, len(idx))
	for n, i := range idx {
		iv[n] = [2]int64{tree.Span(i).StartUnixNano, tree.Span(i).End()}
	}
	slices.SortFunc(iv, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	var total int64
	lo, hi := iv[0][0], iv[0][1]
	for _, x := range iv[1:] {
		if x[0] > hi {
			total += hi - lo
			lo, hi = x[0], x[1]
			continue
		}
		hi = max(hi, x[1])
	}
	return total + hi - lo
}

// slowDB reports a database call slower than o.SlowDB, with its statement.
func slowDB(sp *store.Span, o FindingOptions) (Finding, bool) {
	if sp.DurationNano < int64(o.SlowDB) || !bytes.Contains(sp.Attributes, []byte(`"db.`)) {
		return Finding{}, false
	}
	m, err := sp.Attributes.Decode()
	if err != nil {
		return Finding{}, false
	}
	system, _ := m["db.system"].(string)
	if system == "" {
		system, _ = m["db.system.name"].(string)
	}
	if system == "" {
		return Finding{}, false
	}
	stmt := ""
	for _, k := range []string{"db.query.text", "db.statement", "db.operation.name", "db.operation"} {
		if s, ok := m[k].(string); ok && s != "" {
			stmt = s
			break
		}
	}
	if stmt == "" {
		stmt = sp.Name
	}
	if r := []rune(stmt); len(r) > 200 {
		stmt = string(r[:200]) + "…"
	}
	return Finding{
		Kind:    FindingSlowDB,
		Title:   fmt.Sprintf("Slow %s statement: %s", system, units.Ms(nsToMs(sp.DurationNano))),
		Service: sp.Service, SpanIDs: []store.SpanID{sp.SpanID}, TimeMs: round3(nsToMs(sp.DurationNano)),
		Detail: fmt.Sprintf("%s waited %s on %s for: %s", sp.Service, units.Ms(nsToMs(sp.DurationNano)), system, stmt),
	}, true
}

// gapFindings reports large stretches of the critical path inside spans
// that have children but where none ran.
func gapFindings(spans []store.Span, tree *Tree, o FindingOptions) []Finding {
	cp := CriticalPath(spans)
	if cp.DurationNs <= 0 {
		return nil
	}
	minNs := max(int64(o.MinGap), int64(o.MinGapShare*float64(cp.DurationNs)))
	var out []Finding
	for _, g := range cp.Gaps {
		if g.DurationNs < minNs {
			continue
		}
		var sp *store.Span
		if n, ok := tree.Node(g.SpanID); ok {
			sp = tree.Span(n)
		}
		title := fmt.Sprintf("Uninstrumented time in %s: %s", g.Name, units.Ms(g.DurationMs))
		detail := fmt.Sprintf("%s spent %s on the critical path with no child span running (from %s into the trace); add spans there to see what it does.",
			spanRef(sp), units.Ms(g.DurationMs), units.Ms(g.OffsetMs))
		if sp != nil && sp.Kind == store.KindClient && sp.Dependency != "" {
			title = fmt.Sprintf("Time outside the server in call to %s: %s", sp.Dependency, units.Ms(g.DurationMs))
			detail = fmt.Sprintf("%s spent %s waiting on %s outside any server span: network, connection pool or queueing.",
				spanRef(sp), units.Ms(g.DurationMs), sp.Dependency)
		}
		out = append(out, Finding{
			Kind: FindingGap, Title: title, Service: g.Service, SpanIDs: []store.SpanID{g.SpanID},
			TimeMs: g.DurationMs, Detail: detail,
		})
	}
	return out
}

// spanRef names a span in prose: "feed-api GET /v1/feed".
func spanRef(sp *store.Span) string {
	if sp == nil {
		return "a span"
	}
	return sp.Service + " " + sp.Name
}
