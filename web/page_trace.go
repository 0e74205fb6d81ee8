package web

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/components/chart"
	"github.com/tailscope/tailscope/store"
)

// collapseThreshold is the span count above which the waterfall starts with
// deep subtrees collapsed (the critical path stays open), so a 10,000-span
// trace opens instantly and is readable.
const collapseThreshold = 500

// collapseDepth is the depth whose subtrees start collapsed in large traces.
const collapseDepth = 2

// maxIndent caps indentation so very deep traces keep their names visible.
const maxIndent = 24

func (s *Server) handleTracePage(w http.ResponseWriter, r *http.Request) {
	id, err := parseTraceIDParam(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	d, err := s.traceDetail(r.Context(), id)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	q := r.URL.Query()
	v := buildWaterfall(d, waterfallOptions{
		Selected:  q.Get("span"),
		Find:      strings.TrimSpace(q.Get("find")),
		ExpandAll: q.Get("expand") == "all",
	})
	if err := s.linkProfiles(r.Context(), d, &v); err != nil {
		// Profiles enrich the page; a failure to read them must not hide
		// the trace.
		s.log.Warn("waterfall: profiled spans", "trace", id, "err", err)
	}
	s.render(w, r, http.StatusOK, s.page(r, "Trace "+v.RootName, "search", nil), components.WaterfallPage(v))
}

// linkProfiles gives spans with CPU samples (in their subtree) a link to
// their flame graph.
func (s *Server) linkProfiles(ctx context.Context, d *traceDetail, v *components.WaterfallView) error {
	prof, err := s.profiledSpans(ctx, d.spans)
	if err != nil || len(prof) == 0 {
		return err
	}
	href := func(id string) string { return "/traces/" + d.TraceID + "/profile?span=" + id }
	for i := range v.Rows {
		if sid, err := store.ParseSpanID(v.Rows[i].SpanID); err == nil && prof[sid] {
			v.Rows[i].ProfileHref = href(v.Rows[i].SpanID)
		}
	}
	if v.Selected != nil && v.Selected.SpanID != "" {
		if sid, err := store.ParseSpanID(v.Selected.SpanID); err == nil && prof[sid] {
			v.Selected.ProfileHref = href(v.Selected.SpanID)
		}
	}
	if sid, err := store.ParseSpanID(v.RootSpanID); err == nil && prof[sid] {
		v.ProfileHref = href(v.RootSpanID)
	}
	return nil
}

// handleTraceSubtree returns the rows under one span of a large trace's
// waterfall: what the page script inserts when a lazily collapsed row is
// expanded.
func (s *Server) handleTraceSubtree(w http.ResponseWriter, r *http.Request) {
	id, err := parseTraceIDParam(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	under, err := store.ParseSpanID(strings.ToLower(chi.URLParam(r, "spanID")))
	if err != nil {
		s.pageError(w, r, badRequest("%v", err))
		return
	}
	d, err := s.traceDetail(r.Context(), id)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	v := buildWaterfall(d, waterfallOptions{Under: under})
	if v.Rows == nil {
		s.pageError(w, r, notFound("span %s is not in trace %s", under, id))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := components.WaterfallRows(v.Rows).Render(r.Context(), w); err != nil {
		s.log.Error("render subtree", "err", err)
	}
}

// paletteSize is the number of service colours in app.css (.svc-0 …).
const paletteSize = 12

// serviceClasses gives the services of one trace distinct colours (in name
// order, so the same trace always looks the same).
func serviceClasses(spans []store.Span) map[string]string {
	var names []string
	seen := map[string]bool{}
	for i := range spans {
		if !seen[spans[i].Service] {
			seen[spans[i].Service] = true
			names = append(names, spans[i].Service)
		}
	}
	sort.Strings(names)
	out := make(map[string]string, len(names))
	for i, n := range names {
		out[n] = fmt.Sprintf("svc-%d", i%paletteSize)
	}
	return out
}

// waterfallOptions select what the waterfall shows.
type waterfallOptions struct {
	// Selected is the span whose details the page opens with.
	Selected string
	// Find opens the ancestors of spans whose service or name contains it.
	Find string
	// ExpandAll renders every span even in a large trace.
	ExpandAll bool
	// Under, when set, builds only the rows below that span (the subtree
	// fragment of a lazily collapsed row).
	Under store.SpanID
}

// buildWaterfall turns a trace and its analysis into the waterfall view:
// spans in tree order (children by start time), positioned in percent of
// the trace's extent. In a large trace, subtrees below collapseDepth start
// collapsed and are left out of the page (fetched when expanded), except
// along the critical path, the selected span and search matches.
func buildWaterfall(d *traceDetail, opts waterfallOptions) components.WaterfallView {
	selected := opts.Selected
	spans := d.spans
	cp := d.Analysis
	v := components.WaterfallView{
		TraceID:       d.TraceID,
		APIHref:       "/api/v1/traces/" + d.TraceID,
		SubtreeHref:   "/traces/" + d.TraceID + "/subtree/",
		ExpandAllHref: "/traces/" + d.TraceID + "?expand=all",
		Find:          opts.Find,
	}
	if len(spans) == 0 {
		return v
	}
	start, end := spans[0].StartUnixNano, spans[0].End()
	for i := range spans {
		start = min(start, spans[i].StartUnixNano)
		end = max(end, spans[i].End())
	}
	extent := float64(max(end-start, 1))
	pct := func(ns int64) float64 { return 100 * float64(ns-start) / extent }
	width := func(ns int64) float64 { return 100 * float64(ns) / extent }

	byID := map[store.SpanID]int{}
	for i := range spans {
		byID[spans[i].SpanID] = i
	}
	children := map[store.SpanID][]int{}
	var roots []int
	for i := range spans {
		p := spans[i].ParentSpanID
		if _, ok := byID[p]; ok && !p.IsZero() && p != spans[i].SpanID {
			children[p] = append(children[p], i)
		} else {
			roots = append(roots, i)
		}
	}
	byStart := func(idx []int) {
		sort.SliceStable(idx, func(a, b int) bool {
			sa, sb := &spans[idx[a]], &spans[idx[b]]
			if sa.StartUnixNano != sb.StartUnixNano {
				return sa.StartUnixNano < sb.StartUnixNano
			}
			return sa.SpanID.String() < sb.SpanID.String()
		})
	}
	// The true root first, then spans whose parent never arrived.
	byStart(roots)
	sort.SliceStable(roots, func(a, b int) bool {
		return spans[roots[a]].IsRoot() && !spans[roots[b]].IsRoot()
	})
	for k := range children {
		byStart(children[k])
	}

	self := map[store.SpanID]analysis.SpanTime{}
	for _, st := range cp.Spans {
		self[st.SpanID] = st
	}
	onPath := map[store.SpanID]bool{}
	for _, id := range cp.SpanIDs {
		onPath[id] = true
	}
	segs := map[store.SpanID][]components.Seg{}
	for _, sg := range cp.Segments {
		segs[sg.SpanID] = append(segs[sg.SpanID], components.Seg{LeftPct: pct(int64(sg.StartUnixNano)), WidthPct: width(int64(sg.EndUnixNano - sg.StartUnixNano))})
	}
	gaps := map[store.SpanID][]components.Seg{}
	for _, g := range cp.Gaps {
		gaps[g.SpanID] = append(gaps[g.SpanID], components.Seg{LeftPct: pct(int64(g.StartUnixNano)), WidthPct: width(int64(g.EndUnixNano - g.StartUnixNano))})
	}
	findingKinds := map[store.SpanID][]string{}
	for _, f := range d.Findings {
		fv := components.FindingView{Kind: f.Kind, Title: f.Title, Detail: f.Detail, TimeMs: f.TimeMs}
		for _, id := range f.SpanIDs {
			findingKinds[id] = appendUnique(findingKinds[id], strings.ReplaceAll(f.Kind, "_", " "))
			if i, ok := byID[id]; ok && len(fv.Spans) < 12 {
				fv.Spans = append(fv.Spans, components.SpanLink{
					Label: spans[i].Service + " " + spans[i].Name,
					Href:  "?span=" + id.String(),
				})
			}
		}
		v.Findings = append(v.Findings, fv)
	}

	v.Collapsed = len(spans) > collapseThreshold && !opts.ExpandAll
	lazy := v.Collapsed
	size := subtreeSizes(spans, children)
	// Keep the critical path and the selected span visible when collapsing.
	keepOpen := map[store.SpanID]bool{}
	open := func(id store.SpanID) {
		for guard := 0; guard < len(spans); guard++ {
			i, ok := byID[id]
			if !ok || keepOpen[id] {
				return
			}
			keepOpen[id] = true
			id = spans[i].ParentSpanID
		}
	}
	if v.Collapsed {
		for _, id := range cp.SpanIDs {
			if i, ok := byID[id]; ok {
				open(spans[i].ParentSpanID)
			}
		}
		if sel, err := store.ParseSpanID(selected); err == nil {
			if i, ok := byID[sel]; ok {
				open(spans[i].ParentSpanID)
			}
		}
	}
	find := strings.ToLower(opts.Find)
	matches := map[store.SpanID]bool{}
	if find != "" {
		for i := range spans {
			if strings.Contains(strings.ToLower(spans[i].Service+" "+spans[i].Name), find) {
				matches[spans[i].SpanID] = true
				open(spans[i].ParentSpanID)
			}
		}
		v.Matches = len(matches)
	}

	classes := serviceClasses(spans)
	services := map[string]bool{}
	var errorsN int
	// Iterative depth-first walk: traces can be 10,000 spans deep.
	type item struct {
		idx, depth int
		hidden     bool
	}
	stack := make([]item, 0, len(roots))
	baseDepth := 0
	if !opts.Under.IsZero() {
		ui, ok := byID[opts.Under]
		if !ok {
			return v
		}
		baseDepth = depthOf(spans, byID, ui) + 1
		kids := children[opts.Under]
		for i := len(kids) - 1; i >= 0; i-- {
			stack = append(stack, item{kids[i], baseDepth, false})
		}
		v.Rows = []components.WFRow{}
	} else {
		for i := len(roots) - 1; i >= 0; i-- {
			stack = append(stack, item{roots[i], 0, false})
		}
	}
	visited := make([]bool, len(spans))
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if visited[it.idx] {
			continue
		}
		visited[it.idx] = true
		sp := &spans[it.idx]
		kids := children[sp.SpanID]
		expanded := !v.Collapsed || it.depth-baseDepth < collapseDepth || keepOpen[sp.SpanID]
		row := components.WFRow{
			SpanID:      sp.SpanID.String(),
			Depth:       it.depth,
			Indent:      min(it.depth, maxIndent),
			Service:     sp.Service,
			Name:        sp.Name,
			Class:       classes[sp.Service],
			Bar:         components.Seg{LeftPct: pct(sp.StartUnixNano), WidthPct: width(sp.DurationNano)},
			DurationMs:  nsToMs(sp.DurationNano),
			SelfMs:      self[sp.SpanID].SelfMs,
			OnCritical:  onPath[sp.SpanID],
			Critical:    segs[sp.SpanID],
			Gaps:        gaps[sp.SpanID],
			Error:       sp.StatusCode == store.StatusError,
			HasChildren: len(kids) > 0,
			Expanded:    expanded,
			Hidden:      it.hidden,
			Findings:    findingKinds[sp.SpanID],
			Match:       matches[sp.SpanID],
			Search:      strings.ToLower(sp.Service + " " + sp.Name),
			Href:        "?span=" + sp.SpanID.String(),
		}
		if !sp.ParentSpanID.IsZero() {
			row.ParentID = sp.ParentSpanID.String()
		}
		row.Label = chart.FormatMs(row.DurationMs)
		if row.SelfMs > 0 && len(kids) > 0 {
			row.Label += " (self " + chart.FormatMs(row.SelfMs) + ")"
		}
		// Labels go right of the bar unless the bar ends near the edge.
		if row.Bar.LeftPct+row.Bar.WidthPct < 78 {
			row.LabelLeftPct = row.Bar.LeftPct + row.Bar.WidthPct + 0.5
		} else {
			row.LabelLeftPct = math.Max(0, row.Bar.LeftPct-22)
		}
		if !expanded {
			row.HiddenDescendants = size[it.idx] - 1
		}
		if lazy && !expanded && len(kids) > 0 {
			// Leave the subtree out of the page; the script fetches it.
			row.Lazy = true
			kids = nil
		}
		v.Rows = append(v.Rows, row)
		for i := len(kids) - 1; i >= 0; i-- {
			stack = append(stack, item{kids[i], it.depth + 1, it.hidden || !expanded})
		}
	}
	for i := range spans {
		services[spans[i].Service] = true
		if spans[i].StatusCode == store.StatusError {
			errorsN++
		}
	}
	if !opts.Under.IsZero() {
		return v
	}
	// Spans in a parent cycle are unreachable from any root; list them too
	// (unless the page left their subtree out on purpose).
	for i := range spans {
		if !visited[i] && !lazy {
			sp := &spans[i]
			v.Rows = append(v.Rows, components.WFRow{
				SpanID: sp.SpanID.String(), Service: sp.Service, Name: sp.Name, Class: classes[sp.Service],
				Bar:   components.Seg{LeftPct: pct(sp.StartUnixNano), WidthPct: width(sp.DurationNano)},
				Label: chart.FormatMs(nsToMs(sp.DurationNano)), Search: strings.ToLower(sp.Service + " " + sp.Name),
				Href: "?span=" + sp.SpanID.String(), Error: sp.StatusCode == store.StatusError,
			})
		}
	}

	root := &spans[roots[0]]
	v.RootName = root.Service + " " + root.Name
	v.RootSpanID = root.SpanID.String()
	v.Start = time.Unix(0, start).UTC().Format("2006-01-02 15:04:05.000 UTC")
	v.Detached = cp.DetachedSpans
	if root.IsEntry() {
		v.OutliersHref = link("/outliers", "service", root.Service, "endpoint", root.Name,
			"from", timeText(time.Unix(0, start).Add(-30*time.Minute)), "to", timeText(time.Unix(0, start).Add(30*time.Minute)))
	}
	v.Facts = []components.Fact{
		{Label: "Duration", Value: chart.FormatMs(nsToMs(end - start))},
		{Label: "Spans", Value: chart.FormatCount(float64(len(spans)))},
		{Label: "Services", Value: fmt.Sprint(len(services))},
		{Label: "Errors", Value: fmt.Sprint(errorsN), Bad: errorsN > 0},
		{Label: "Critical path", Value: fmt.Sprintf("%d spans", len(cp.SpanIDs))},
	}
	if root.Tenant != "" {
		v.Facts = append(v.Facts, components.Fact{Label: "Tenant", Value: root.Tenant})
	}
	if root.Version != "" {
		v.Facts = append(v.Facts, components.Fact{Label: "Version", Value: root.Version})
	}
	for _, h := range cp.Hops {
		v.Hops = append(v.Hops, components.HopView{Label: h.Label, CriticalMs: h.CriticalMs, Share: h.Share})
	}
	names := make([]string, 0, len(services))
	for n := range services {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v.Services = append(v.Services, components.ServiceLegend{Name: n, Class: classes[n]})
	}
	for i := 0; i <= 4; i++ {
		v.Ticks = append(v.Ticks, components.WFTick{LeftPct: float64(i) * 25, Label: chart.FormatMs(nsToMs(int64(float64(i) / 4 * extent)))})
	}
	if sel, err := store.ParseSpanID(selected); err == nil {
		if i, ok := byID[sel]; ok {
			v.Selected = spanDetailView(&spans[i], self[sel])
		}
	}
	return v
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// subtreeSizes returns, per span index, the size of its subtree (itself
// included), iteratively: traces can be 10,000 spans deep.
func subtreeSizes(spans []store.Span, children map[store.SpanID][]int) []int {
	size := make([]int, len(spans))
	order := make([]int, 0, len(spans))
	seen := make([]bool, len(spans))
	for i := range spans {
		if seen[i] {
			continue
		}
		stack := []int{i}
		for len(stack) > 0 {
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[n] {
				continue
			}
			seen[n] = true
			order = append(order, n)
			stack = append(stack, children[spans[n].SpanID]...)
		}
	}
	for _, n := range order {
		size[n] = 1
	}
	// Children come after their parents in order: accumulate backwards.
	idx := make(map[store.SpanID]int, len(spans))
	for i := range spans {
		idx[spans[i].SpanID] = i
	}
	for k := len(order) - 1; k >= 0; k-- {
		n := order[k]
		if p, ok := idx[spans[n].ParentSpanID]; ok && p != n && !spans[n].ParentSpanID.IsZero() {
			size[p] += size[n]
		}
	}
	return size
}

// depthOf counts a span's ancestors present in the trace.
func depthOf(spans []store.Span, byID map[store.SpanID]int, i int) int {
	d := 0
	for guard := 0; guard < len(spans); guard++ {
		p, ok := byID[spans[i].ParentSpanID]
		if !ok || spans[i].ParentSpanID.IsZero() || p == i {
			return d
		}
		d++
		i = p
	}
	return d
}
