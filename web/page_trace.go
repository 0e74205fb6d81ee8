package web

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/components/chart"
	"github.com/tailscope/tailscope/internal/href"
	"github.com/tailscope/tailscope/internal/units"
	"github.com/tailscope/tailscope/store"
)

// collapseThreshold is the span count above which the waterfall starts with
// deep subtrees collapsed (the critical path stays open), so a 10,000-span
// trace opens instantly and is readable.
const collapseThreshold = 500

// collapseDepth is the depth whose subtrees start collapsed in large traces.
const collapseDepth = 2

// firstPaintRows bounds the rows a large trace's page carries: enough to
// fill a screen (and to read the trace without JavaScript), few enough
// that a 50,000-span trace paints from under 300 KB. The page script
// renders every row from the trace's waterfall JSON.
const firstPaintRows = 150

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
	if s.assets != nil {
		v.Scripts = []string{s.assets.Path("waterfall_parts.js"), s.assets.Path("waterfall.js")}
	}
	if err := s.linkProfiles(r.Context(), d, &v); err != nil {
		// Profiles enrich the page; a failure to read them must not hide
		// the trace.
		s.log.Warn("waterfall: profiled spans", "trace", id, "err", err)
	}
	page := s.page(r, "Trace "+v.RootName, "search", nil)
	page.Banner = keptBanner(d.Kept)
	s.render(w, r, http.StatusOK, page, components.WaterfallPage(v))
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

// paletteSize is the number of service colours in app.css (.svc-0 …).
const paletteSize = 12

// serviceClasses gives the services of one trace distinct colours (in name
// order, so the same trace always looks the same).
func serviceClasses(tree *analysis.Tree) map[string]string {
	var names []string
	seen := map[string]bool{}
	for n := range int32(tree.Len()) {
		if svc := tree.Span(n).Service; !seen[svc] {
			seen[svc] = true
			names = append(names, svc)
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
}

// buildWaterfall turns a trace and its analysis into the waterfall view:
// the trace Tree's spans in preorder (children by start time), positioned
// in percent of the trace's extent. In a large trace, subtrees below
// collapseDepth start collapsed, except along the critical path, the
// selected span and search matches, and the page carries the first
// firstPaintRows open rows (the script renders the rest from JSON).
func buildWaterfall(d *traceDetail, opts waterfallOptions) components.WaterfallView {
	spans := d.spans
	cp := d.Analysis
	v := components.WaterfallView{
		TraceID:       d.TraceID,
		APIHref:       "/api/v1/traces/" + d.TraceID,
		RowsHref:      "/api/v1/traces/" + d.TraceID + "/waterfall",
		DetailHref:    "/traces/" + d.TraceID + "/spans/",
		ExpandAllHref: "/traces/" + d.TraceID + "?expand=all",
		Find:          opts.Find,
	}
	tree := analysis.NewTree(spans)
	if tree.Len() == 0 {
		return v
	}
	start, end := tree.Extent()
	lay := wfLayout{start: start, extent: float64(max(end-start, 1))}
	rows := newRowBuilder(tree, cp, lay)
	v.Findings = groupFindings(d.Findings, tree)
	findingKinds := rowFindings(d.Findings)

	v.Collapsed = tree.Len() > collapseThreshold && !opts.ExpandAll
	keepOpen, matches := openSpans(tree, cp, opts, v.Collapsed)
	v.Matches = len(matches)
	size := tree.SubtreeSizes()

	tree.Walk(func(n int32, depth int) bool {
		if v.Collapsed && len(v.Rows) == firstPaintRows {
			v.Truncated = true
			return false
		}
		expanded := !v.Collapsed || depth < collapseDepth || keepOpen[n]
		row := rows.row(n, depth)
		row.Expanded = expanded
		row.Findings = findingKinds[tree.Span(n).SpanID]
		row.Match = matches[n]
		if !expanded {
			row.HiddenDescendants = size[n] - 1
		}
		v.Rows = append(v.Rows, row)
		return expanded
	})
	summarize(&v, tree, cp, lay)
	if sel, err := store.ParseSpanID(opts.Selected); err == nil {
		if n, ok := tree.Node(sel); ok {
			v.Selected = spanDetailView(tree.Span(n), rows.self[sel])
		}
	}
	return v
}

// wfLayout places times on the waterfall's axis.
type wfLayout struct {
	start  int64
	extent float64
}

func (l wfLayout) pct(ns int64) float64   { return 100 * float64(ns-l.start) / l.extent }
func (l wfLayout) width(ns int64) float64 { return 100 * float64(ns) / l.extent }

// rowBuilder makes the row of one span from the trace's analysis.
type rowBuilder struct {
	tree    *analysis.Tree
	lay     wfLayout
	classes map[string]string
	self    map[store.SpanID]analysis.SpanTime
	onPath  map[store.SpanID]bool
	segs    map[store.SpanID][]components.Seg
	gaps    map[store.SpanID][]components.Seg
}

func newRowBuilder(tree *analysis.Tree, cp analysis.CriticalPathResult, lay wfLayout) *rowBuilder {
	b := &rowBuilder{
		tree: tree, lay: lay, classes: serviceClasses(tree),
		self: map[store.SpanID]analysis.SpanTime{}, onPath: map[store.SpanID]bool{},
		segs: map[store.SpanID][]components.Seg{}, gaps: map[store.SpanID][]components.Seg{},
	}
	for _, st := range cp.Spans {
		b.self[st.SpanID] = st
	}
	for _, id := range cp.SpanIDs {
		b.onPath[id] = true
	}
	for _, sg := range cp.Segments {
		b.segs[sg.SpanID] = append(b.segs[sg.SpanID], components.Seg{LeftPct: lay.pct(int64(sg.StartUnixNano)), WidthPct: lay.width(int64(sg.EndUnixNano - sg.StartUnixNano))})
	}
	for _, g := range cp.Gaps {
		b.gaps[g.SpanID] = append(b.gaps[g.SpanID], components.Seg{LeftPct: lay.pct(int64(g.StartUnixNano)), WidthPct: lay.width(int64(g.EndUnixNano - g.StartUnixNano))})
	}
	return b
}

func (b *rowBuilder) row(n int32, depth int) components.WFRow {
	sp := b.tree.Span(n)
	tie := b.tree.Tie(n)
	row := components.WFRow{
		SpanID:      sp.SpanID.String(),
		Depth:       depth,
		Indent:      min(depth, maxIndent),
		Service:     sp.Service,
		Name:        sp.Name,
		Class:       b.classes[sp.Service],
		Bar:         components.Seg{LeftPct: b.lay.pct(sp.StartUnixNano), WidthPct: b.lay.width(sp.DurationNano)},
		DurationMs:  nsToMs(sp.DurationNano),
		SelfMs:      b.self[sp.SpanID].SelfMs,
		OnCritical:  b.onPath[sp.SpanID],
		Critical:    b.segs[sp.SpanID],
		Gaps:        b.gaps[sp.SpanID],
		Error:       sp.StatusCode == store.StatusError,
		HasChildren: len(b.tree.Children(n)) > 0,
		Async:       b.self[sp.SpanID].Async || tie.Async(),
		Search:      strings.ToLower(sp.Service + " " + sp.Name),
		Href:        "?span=" + sp.SpanID.String(),
	}
	if tie.Async() {
		row.AsyncTie = tie.String()
	}
	if p := b.tree.Parent(n); p >= 0 {
		row.ParentID = b.tree.Span(p).SpanID.String()
	}
	row.Label = units.Ms(row.DurationMs)
	if row.SelfMs > 0 && row.HasChildren {
		row.Label += " (self " + units.Ms(row.SelfMs) + ")"
	}
	// Labels go right of the bar unless the bar ends near the edge.
	if row.Bar.LeftPct+row.Bar.WidthPct < 78 {
		row.LabelLeftPct = row.Bar.LeftPct + row.Bar.WidthPct + 0.5
	} else {
		row.LabelLeftPct = math.Max(0, row.Bar.LeftPct-22)
	}
	return row
}

// rowFindings returns the finding labels of each span for its row's badges.
// An error finding adds none: the row's error badge already says it.
func rowFindings(fs []analysis.Finding) map[store.SpanID][]string {
	kinds := map[store.SpanID][]string{}
	for _, f := range fs {
		if f.Kind == analysis.FindingError {
			continue
		}
		for _, id := range f.SpanIDs {
			kinds[id] = appendUnique(kinds[id], findingLabel(f.Kind))
		}
	}
	return kinds
}

// openSpans returns the spans whose subtree stays open in a collapsed
// waterfall (ancestors of the critical path, of the selected span and of
// find matches) and the find matches.
func openSpans(tree *analysis.Tree, cp analysis.CriticalPathResult, opts waterfallOptions, collapsed bool) (keepOpen, matches map[int32]bool) {
	keepOpen, matches = map[int32]bool{}, map[int32]bool{}
	openAbove := func(n int32) {
		for p := tree.Parent(n); p >= 0 && !keepOpen[p]; p = tree.Parent(p) {
			keepOpen[p] = true
		}
	}
	if collapsed {
		for _, id := range cp.SpanIDs {
			if n, ok := tree.Node(id); ok {
				openAbove(n)
			}
		}
		if sel, err := store.ParseSpanID(opts.Selected); err == nil {
			if n, ok := tree.Node(sel); ok {
				openAbove(n)
			}
		}
	}
	if find := strings.ToLower(opts.Find); find != "" {
		for n := range int32(tree.Len()) {
			if sp := tree.Span(n); strings.Contains(strings.ToLower(sp.Service+" "+sp.Name), find) {
				matches[n] = true
				openAbove(n)
			}
		}
	}
	return keepOpen, matches
}

// summarize fills the page's header: root, facts, hops, legend and axis.
func summarize(v *components.WaterfallView, tree *analysis.Tree, cp analysis.CriticalPathResult, lay wfLayout) {
	classes := serviceClasses(tree)
	services := map[string]bool{}
	errorsN := 0
	for n := range int32(tree.Len()) {
		sp := tree.Span(n)
		services[sp.Service] = true
		if sp.StatusCode == store.StatusError {
			errorsN++
		}
	}
	root := tree.Span(tree.Root())
	v.RootName = root.Service + " " + root.Name
	v.RootSpanID = root.SpanID.String()
	v.Start = time.Unix(0, lay.start).UTC().Format("2006-01-02 15:04:05.000 UTC")
	v.Detached = cp.DetachedSpans
	v.Async = cp.AsyncSpans
	if root.IsEntry() {
		v.OutliersHref = href.With("/outliers", "service", root.Service, "endpoint", root.Name,
			"from", href.Time(time.Unix(0, lay.start).Add(-30*time.Minute)), "to", href.Time(time.Unix(0, lay.start).Add(30*time.Minute)))
		v.CompareHref = href.With("/traces/compare", "a", root.TraceID.String())
	}
	v.Facts = []components.Fact{
		{Label: "Duration", Value: units.Ms(lay.extent / 1e6)},
		{Label: "Spans", Value: chart.FormatCount(float64(tree.Len()))},
		{Label: "Services", Value: fmt.Sprint(len(services))},
		{Label: "Errors", Value: fmt.Sprint(errorsN), Bad: errorsN > 0},
		{Label: "Critical path", Value: fmt.Sprintf("%d spans", len(cp.SpanIDs))},
	}
	if cp.AsyncSpans > 0 {
		v.Facts = append(v.Facts, components.Fact{Label: "Async", Value: fmt.Sprintf("%d spans", cp.AsyncSpans)})
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
		v.Ticks = append(v.Ticks, components.WFTick{LeftPct: float64(i) * 25, Label: units.Ms(nsToMs(int64(float64(i) / 4 * lay.extent)))})
	}
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
