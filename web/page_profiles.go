package web

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/internal/units"
	"github.com/tailscope/tailscope/profile"
	"github.com/tailscope/tailscope/profile/flameview"
	"github.com/tailscope/tailscope/store"
)

// profileMargin widens a trace's time range when reading its samples:
// profiles are cut every 10–15 s, so a span's samples sit in a profile
// whose window covers the span.
const profileMargin = time.Minute

// maxGroupTraces bounds the traces whose spans make up one side of an
// outlier group's CPU diff.
const maxGroupTraces = 100

// profiledSpans returns the spans of a trace whose subtree has CPU samples:
// the spans that were active while samples were taken, and their
// ancestors (a span's profile includes its children's).
func (s *Server) profiledSpans(ctx context.Context, spans []store.Span) (map[store.SpanID]bool, error) {
	ids := make([]store.SpanID, 0, min(len(spans), store.MaxProfileSpanIDs))
	for i := range spans {
		if len(ids) == store.MaxProfileSpanIDs {
			break
		}
		ids = append(ids, spans[i].SpanID)
	}
	sp, err := s.store.ProfiledSpans(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("profiled spans: %w", err)
	}
	tree := analysis.NewTree(spans)
	out := map[store.SpanID]bool{}
	for _, p := range sp {
		n, ok := tree.Node(p.SpanID)
		if p.Type != store.ProfileCPU || !ok {
			continue
		}
		for ; n >= 0 && !out[tree.Span(n).SpanID]; n = tree.Parent(n) {
			out[tree.Span(n).SpanID] = true
		}
	}
	return out, nil
}

// subtreeIDs lists a span and its descendants, at most MaxProfileSpanIDs.
func subtreeIDs(spans []store.Span, root store.SpanID) []store.SpanID {
	tree := analysis.NewTree(spans)
	n, ok := tree.Node(root)
	if !ok {
		return []store.SpanID{root}
	}
	out := []store.SpanID{}
	tree.WalkFrom(n, 0, func(x int32, _ int) bool {
		if len(out) == store.MaxProfileSpanIDs {
			return false
		}
		out = append(out, tree.Span(x).SpanID)
		return true
	})
	return out
}

// traceWindow is the time range of a trace's spans, widened by margin.
func traceWindow(spans []store.Span, margin time.Duration) (time.Time, time.Time) {
	lo, hi := spans[0].StartUnixNano, spans[0].End()
	for i := range spans {
		lo, hi = min(lo, spans[i].StartUnixNano), max(hi, spans[i].End())
	}
	return time.Unix(0, lo).Add(-margin), time.Unix(0, hi).Add(margin)
}

// cpuTree reads and merges CPU stacks.
func (s *Server) cpuTree(ctx context.Context, q store.StackQuery) (*profile.Node, error) {
	q.Type = store.ProfileCPU
	stacks, err := s.store.Stacks(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("profile stacks: %w", err)
	}
	return profile.Tree(stacks), nil
}

// handleSpanProfile shows the CPU a span and its children burned.
func (s *Server) handleSpanProfile(w http.ResponseWriter, r *http.Request) {
	id, err := parseTraceIDParam(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	spans, _, err := s.trace(r.Context(), id)
	if err != nil {
		s.pageError(w, r, fmt.Errorf("trace %s: %w", id, err))
		return
	}
	target := spans[0]
	if raw := r.URL.Query().Get("span"); raw != "" {
		sid, err := store.ParseSpanID(strings.ToLower(raw))
		if err != nil {
			s.pageError(w, r, badRequest("%v", err))
			return
		}
		found := false
		for i := range spans {
			if spans[i].SpanID == sid {
				target, found = spans[i], true
			}
		}
		if !found {
			s.pageError(w, r, notFound("span %s is not in trace %s", sid, id))
			return
		}
	} else {
		for i := range spans {
			if spans[i].IsRoot() {
				target = spans[i]
			}
		}
	}
	from, to := traceWindow(spans, profileMargin)
	tree, err := s.cpuTree(r.Context(), store.StackQuery{SpanIDs: subtreeIDs(spans, target.SpanID), From: from, To: to})
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	label := "CPU of " + target.Service + " " + target.Name + " and its children"
	v := components.ProfileView{
		Title:    "CPU of " + target.Service + " · " + target.Name,
		Subtitle: fmt.Sprintf("samples taken while this span (%s) or one of its children was active", units.Duration(time.Duration(target.DurationNano))),
		Links: []components.SpanLink{
			{Label: "back to the waterfall", Href: "/traces/" + id.String() + "?span=" + target.SpanID.String()},
		},
		Graph: flameview.Graph(tree, flameview.Options{Label: label, TestID: "span-flame", Unit: store.UnitNanoseconds,
			Empty: "No CPU samples were taken while this span was active: it spent its time waiting (I/O, locks, other services), or the process is not profiled with span labels."}),
	}
	v.Graph.Caution = spanSamplesCaution(v.Graph.Total)
	if r.URL.Query().Get("fragment") == "1" {
		// The waterfall's "CPU profile" tab inserts the graph alone.
		full := cloneValues(r.URL.Query())
		full.Del("fragment")
		page := r.URL.Path
		if len(full) > 0 {
			page += "?" + full.Encode()
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := components.SpanProfileFragment(v.Graph, page).Render(r.Context(), w); err != nil {
			s.log.Error("render span profile fragment", "err", err)
		}
		return
	}
	s.render(w, r, http.StatusOK, s.page(r, v.Title, "search", nil), components.ProfilePage(v))
}

// handleOutlierGroupProfile diffs the CPU of an outlier group's traces
// against baseline traces around the median: the function that got hot in
// the tail stands out in red.
func (s *Server) handleOutlierGroupProfile(w http.ResponseWriter, r *http.Request) {
	q, _, err := s.parseOutlierQuery(r.Context(), r.URL.Query())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	ctx := r.Context()
	rep, err := s.outliers(ctx, q)
	if err != nil {
		s.pageError(w, r, fmt.Errorf("outliers: %w", err))
		return
	}
	n, err := strconv.Atoi(r.URL.Query().Get("group"))
	if err != nil || n < 1 || n > len(rep.Groups) {
		s.pageError(w, r, badRequest("group %q: want a group number from 1 to %d", truncateText(r.URL.Query().Get("group"), 20), len(rep.Groups)))
		return
	}
	g := rep.Groups[n-1]
	outQ := store.TraceQuery{Service: q.Service, Endpoint: q.Endpoint, From: q.From, To: q.To,
		MinDuration: msDuration(rep.ThresholdMs), Limit: maxGroupTraces, Order: store.OrderSlowest,
		Tenant: g.DimensionValues["tenant"], Version: g.DimensionValues["version"]}
	baseQ := store.TraceQuery{Service: q.Service, Endpoint: q.Endpoint, From: q.From, To: q.To,
		MinDuration: msDuration(rep.P50Ms * 0.8), MaxDuration: msDuration(rep.P50Ms * 1.25), Limit: maxGroupTraces}
	outIDs, err := s.groupSpanIDs(ctx, outQ)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	baseIDs, err := s.groupSpanIDs(ctx, baseQ)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	from, to := q.From.Add(-profileMargin), q.To.Add(profileMargin)
	outTree, err := s.cpuTree(ctx, store.StackQuery{SpanIDs: outIDs, From: from, To: to})
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	baseTree, err := s.cpuTree(ctx, store.StackQuery{SpanIDs: baseIDs, From: from, To: to})
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	back := cloneValues(r.URL.Query())
	back.Del("group")
	v := components.ProfileView{
		Title:    fmt.Sprintf("CPU of group %d: %s", n, g.Label),
		Subtitle: fmt.Sprintf("outlier traces (≥ %s) of %s %s against traces around the median (%s)", units.Ms(rep.ThresholdMs), q.Service, q.Endpoint, units.Ms(rep.P50Ms)),
		Links:    []components.SpanLink{{Label: "back to the outliers", Href: "/outliers?" + back.Encode()}},
		Note: fmt.Sprintf("%s of CPU samples in the outliers' spans, %s in the baseline's. Shares are normalised by each side's total, so more traffic on one side does not colour the graph.",
			units.Duration(time.Duration(outTree.Total)), units.Duration(time.Duration(baseTree.Total))),
	}
	v.Note += fewSamplesCaution(outTree.Total, baseTree.Total)
	empty := ""
	if outTree.Total == 0 || baseTree.Total == 0 {
		empty = "Not enough CPU samples on both sides to compare: the outliers spent their time waiting rather than computing, or the services are not profiled with span labels."
	}
	if empty != "" {
		v.Graph = components.FlameGraph{Label: "CPU diff", TestID: "diff-flame", Empty: empty, Diff: true}
	} else {
		v.Graph = flameview.Diff(profile.Diff(baseTree, outTree), flameview.Options{Label: "CPU, outliers against baseline", TestID: "diff-flame", Unit: store.UnitNanoseconds})
	}
	s.render(w, r, http.StatusOK, s.page(r, v.Title, "outliers", nil), components.ProfilePage(v))
}

// cpuSamplePeriod is one CPU sample at pyroscope-go's (and Go's) default
// 100 Hz; fewCPUSamples is where a diff's shares start to be mostly noise.
const (
	cpuSamplePeriod = int64(10 * time.Millisecond)
	fewCPUSamples   = 50
)

// fewSamplesCaution warns, after the note, when the smaller side of a CPU
// diff has so few samples that one sample visibly moves a share.
func fewSamplesCaution(outNs, baseNs int64) string {
	few := min(outNs, baseNs)
	if few <= 0 || few >= fewCPUSamples*cpuSamplePeriod {
		return ""
	}
	n := max(few/cpuSamplePeriod, 1)
	return fmt.Sprintf(" Caution: about %d samples on the smaller side, so one sample moves a share by %.0f points; changes of that size are noise. Widen the window for a steadier picture.",
		n, 100/float64(n))
}

// groupSpanIDs returns the span ids of the traces a search finds.
func (s *Server) groupSpanIDs(ctx context.Context, q store.TraceQuery) ([]store.SpanID, error) {
	found, err := s.store.SearchTraces(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("search traces: %w", err)
	}
	ids := make([]store.TraceID, len(found))
	for i, t := range found {
		ids[i] = t.TraceID
	}
	traces, err := s.store.Traces(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("read traces: %w", err)
	}
	out := []store.SpanID{}
	for _, id := range ids {
		for _, sp := range traces[id] {
			if len(out) == store.MaxProfileSpanIDs {
				return out, nil
			}
			out = append(out, sp.SpanID)
		}
	}
	return out, nil
}

// handleProfilesPage is the profile explorer: one application's profile of
// one type over the window.
func (s *Server) handleProfilesPage(w http.ResponseWriter, r *http.Request) {
	tr, err := s.parseRange(r.URL.Query())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	ctx := r.Context()
	series, err := s.store.ProfileSeries(ctx, tr.From, tr.To)
	if err != nil {
		s.pageError(w, r, fmt.Errorf("profile series: %w", err))
		return
	}
	q := r.URL.Query()
	pick := &components.ProfilePicker{Service: q.Get("service"), Type: q.Get("type"), From: tr.FromText, To: tr.ToText}
	seenSvc, seenType := map[string]bool{}, map[string]bool{}
	for _, ps := range series {
		if !seenSvc[ps.Service] {
			seenSvc[ps.Service] = true
			pick.Services = append(pick.Services, ps.Service)
		}
	}
	sort.Strings(pick.Services)
	if pick.Service == "" && len(pick.Services) > 0 {
		pick.Service = pick.Services[0]
	}
	for _, ps := range series {
		if ps.Service == pick.Service && !seenType[string(ps.Type)] {
			seenType[string(ps.Type)] = true
			pick.Types = append(pick.Types, string(ps.Type))
		}
	}
	if pick.Type == "" {
		pick.Type = string(store.ProfileCPU)
		if !seenType[pick.Type] && len(pick.Types) > 0 {
			pick.Type = pick.Types[0]
		}
	}
	pt := store.ProfileType(pick.Type)
	if !pt.Valid() {
		s.pageError(w, r, badRequest("profile type %q: want one of %v", truncateText(pick.Type, 20), store.ProfileTypes()))
		return
	}
	v := components.ProfileView{
		Title:    "Profiles",
		Subtitle: windowText(tr),
		Picker:   pick,
	}
	if len(series) == 0 {
		v.Note = "No profiles in this window. Point pyroscope-go (or any Pyroscope client) at tailscope's OTLP/HTTP address: " +
			"pyroscope.Start(pyroscope.Config{ApplicationName: \"checkout\", ServerAddress: \"http://127.0.0.1:4318\"}). " +
			"Wrap your TracerProvider with github.com/grafana/otel-profiling-go so samples name their spans."
	}
	stacks, err := s.store.Stacks(ctx, store.StackQuery{Service: pick.Service, Type: pt, From: tr.From, To: tr.To, MaxStacks: 20_000})
	if err != nil && len(series) > 0 {
		s.pageError(w, r, fmt.Errorf("profile stacks: %w", err))
		return
	}
	unit := pt.DefaultUnit()
	for _, ps := range series {
		if ps.Service == pick.Service && ps.Type == pt {
			unit = ps.Unit
		}
	}
	v.Graph = flameview.Graph(profile.Tree(stacks), flameview.Options{
		Label: pick.Type + " profile of " + pick.Service, TestID: "service-flame", Unit: unit,
		Empty: "No samples of this type for this application in the window.",
	})
	s.render(w, r, http.StatusOK, s.page(r, "Profiles", "profiles", &tr), components.ProfilePage(v))
}

func msDuration(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }
