package web

import (
	"compress/gzip"
	"encoding/json"
	"math"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/store"
)

// Row flags of wfRowsJSON.Flags.
const (
	rowCritical = 1 << iota
	rowError
	rowAsync
	rowProfile
)

// wfRowsJSON is every row of a trace's waterfall, laid out and in column
// form: what static/waterfall.js renders on screen (a window of rows at a
// time), so a 50,000-span trace costs the page a few hundred visible rows
// instead of a 30 MiB document. Rows are the trace Tree's preorder
// (children by start time); Parent is a row index (-1 for top-level
// rows), so a subtree is a contiguous run of rows. Times are milliseconds
// from the trace's start, rounded to the microsecond. Sparse columns are
// maps from row index.
type wfRowsJSON struct {
	TraceID  string  `json:"trace_id"`
	ExtentMs float64 `json:"extent_ms"`
	// Collapsed says the page opens with subtrees below CollapseDepth
	// closed, except those holding the critical path.
	Collapsed     bool               `json:"collapsed"`
	CollapseDepth int                `json:"collapse_depth"`
	MaxIndent     int                `json:"max_indent"`
	Services      []string           `json:"services"`
	Classes       []string           `json:"classes"`
	Names         []string           `json:"names"`
	ID            []string           `json:"id"`
	Parent        []int32            `json:"parent"`
	Depth         []int32            `json:"depth"`
	Service       []int32            `json:"service"`
	Name          []int32            `json:"name"`
	Start         []float64          `json:"start"`
	Duration      []float64          `json:"duration"`
	Self          []float64          `json:"self"`
	Flags         []int              `json:"flags"`
	AsyncTie      map[int32]string   `json:"async_tie"`
	Findings      map[int32][]string `json:"findings"`
	// Critical and Gaps are [start, duration, start, duration, …] in ms.
	Critical map[int32][]float64 `json:"critical"`
	Gaps     map[int32][]float64 `json:"gaps"`
}

// buildWaterfallRows lays out every span of the trace; prof names the spans
// with CPU samples.
func buildWaterfallRows(d *traceDetail, prof map[store.SpanID]bool) wfRowsJSON {
	tree := analysis.NewTree(d.spans)
	out := wfRowsJSON{
		TraceID: d.TraceID, CollapseDepth: collapseDepth, MaxIndent: maxIndent,
		AsyncTie: map[int32]string{}, Findings: map[int32][]string{},
		Critical: map[int32][]float64{}, Gaps: map[int32][]float64{},
		Services: []string{}, Classes: []string{}, Names: []string{},
	}
	if tree.Len() == 0 {
		return out
	}
	start, end := tree.Extent()
	out.ExtentMs = ms3(end - start)
	out.Collapsed = tree.Len() > collapseThreshold
	cp := d.Analysis
	self := map[store.SpanID]analysis.SpanTime{}
	for _, st := range cp.Spans {
		self[st.SpanID] = st
	}
	onPath := map[store.SpanID]bool{}
	for _, id := range cp.SpanIDs {
		onPath[id] = true
	}
	kinds := rowFindings(d.Findings)
	classes := serviceClasses(tree)
	svcIdx, nameIdx := map[string]int32{}, map[string]int32{}
	intern := func(idx map[string]int32, list *[]string, s string) int32 {
		i, ok := idx[s]
		if !ok {
			i = int32(len(*list))
			idx[s] = i
			*list = append(*list, s)
		}
		return i
	}
	n := tree.Len()
	rowOf := make([]int32, n)
	out.ID, out.Parent, out.Depth = make([]string, 0, n), make([]int32, 0, n), make([]int32, 0, n)
	out.Service, out.Name, out.Flags = make([]int32, 0, n), make([]int32, 0, n), make([]int, 0, n)
	out.Start, out.Duration, out.Self = make([]float64, 0, n), make([]float64, 0, n), make([]float64, 0, n)
	tree.Walk(func(node int32, depth int) bool {
		sp := tree.Span(node)
		row := int32(len(out.ID))
		rowOf[node] = row
		parent := int32(-1)
		if p := tree.Parent(node); p >= 0 {
			parent = rowOf[p]
		}
		si := intern(svcIdx, &out.Services, sp.Service)
		if int(si) == len(out.Classes) {
			out.Classes = append(out.Classes, classes[sp.Service])
		}
		flags := 0
		if onPath[sp.SpanID] {
			flags |= rowCritical
		}
		if sp.StatusCode == store.StatusError {
			flags |= rowError
		}
		tie := tree.Tie(node)
		if self[sp.SpanID].Async || tie.Async() {
			flags |= rowAsync
		}
		if tie.Async() {
			out.AsyncTie[row] = tie.String()
		}
		if prof[sp.SpanID] {
			flags |= rowProfile
		}
		if k := kinds[sp.SpanID]; k != nil {
			out.Findings[row] = k
		}
		out.ID = append(out.ID, sp.SpanID.String())
		out.Parent = append(out.Parent, parent)
		out.Depth = append(out.Depth, int32(depth))
		out.Service = append(out.Service, si)
		out.Name = append(out.Name, intern(nameIdx, &out.Names, sp.Name))
		out.Start = append(out.Start, ms3(sp.StartUnixNano-start))
		out.Duration = append(out.Duration, ms3(sp.DurationNano))
		out.Self = append(out.Self, math.Round(self[sp.SpanID].SelfMs*1e3)/1e3)
		out.Flags = append(out.Flags, flags)
		return true
	})
	segs := func(dst map[int32][]float64, id store.SpanID, from, to analysis.UnixNano) {
		if n, ok := tree.Node(id); ok {
			r := rowOf[n]
			dst[r] = append(dst[r], ms3(int64(from)-start), ms3(int64(to-from)))
		}
	}
	for _, sg := range cp.Segments {
		segs(out.Critical, sg.SpanID, sg.StartUnixNano, sg.EndUnixNano)
	}
	for _, g := range cp.Gaps {
		segs(out.Gaps, g.SpanID, g.StartUnixNano, g.EndUnixNano)
	}
	return out
}

// ms3 is nanoseconds as milliseconds rounded to the microsecond: enough for
// a pixel of any waterfall, and short in JSON.
func ms3(ns int64) float64 { return math.Round(float64(ns)/1e3) / 1e3 }

// handleTraceRows serves wfRowsJSON, gzipped when the client accepts it
// (the rows of 50,000 spans are ~3 MiB of JSON and ~0.6 MiB gzipped).
func (s *Server) handleTraceRows(w http.ResponseWriter, r *http.Request) {
	id, err := parseTraceIDParam(r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	d, err := s.recentTraceDetail(r.Context(), id)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	prof, err := s.profiledSpans(r.Context(), d.spans)
	if err != nil {
		// Profile links enrich the rows; a failure to read them must not
		// hide the trace.
		s.log.Warn("waterfall rows: profiled spans", "trace", id, "err", err)
	}
	body, err := json.Marshal(buildWaterfallRows(d, prof))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Add("Vary", "Accept-Encoding")
	if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		if _, err := w.Write(body); err != nil {
			s.log.Debug("write waterfall rows", "err", err)
		}
		return
	}
	h.Set("Content-Encoding", "gzip")
	zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed) // a valid level never fails
	if _, err := zw.Write(body); err != nil {
		s.log.Debug("write waterfall rows", "err", err)
	}
	if err := zw.Close(); err != nil {
		s.log.Debug("write waterfall rows", "err", err)
	}
}

// handleSpanDetail serves one span's detail panel as an HTML fragment: what
// the page script shows when a row is selected, without loading the whole
// trace's JSON.
func (s *Server) handleSpanDetail(w http.ResponseWriter, r *http.Request) {
	id, err := parseTraceIDParam(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	sid, err := store.ParseSpanID(strings.ToLower(chi.URLParam(r, "spanID")))
	if err != nil {
		s.pageError(w, r, badRequest("%v", err))
		return
	}
	d, err := s.recentTraceDetail(r.Context(), id)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	tree := analysis.NewTree(d.spans)
	n, ok := tree.Node(sid)
	if !ok {
		s.pageError(w, r, notFound("span %s is not in trace %s", sid, id))
		return
	}
	var st analysis.SpanTime
	for _, x := range d.Analysis.Spans {
		if x.SpanID == sid {
			st = x
			break
		}
	}
	v := spanDetailView(tree.Span(n), st)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := components.SpanDetailBody(*v).Render(r.Context(), w); err != nil {
		s.log.Error("render span detail", "err", err)
	}
}
