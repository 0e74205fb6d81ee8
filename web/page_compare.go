package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/internal/href"
	"github.com/tailscope/tailscope/internal/units"
	"github.com/tailscope/tailscope/store"
)

// typicalWindow is how far either side of a trace "compare with a typical
// trace" looks for the endpoint's median request.
const typicalWindow = 30 * time.Minute

// compareIDs reads a and b (trace ids) of a comparison; b may be empty.
func compareIDs(q url.Values) (a store.TraceID, b store.TraceID, hasB bool, err error) {
	a, err = store.ParseTraceID(strings.ToLower(strings.TrimSpace(q.Get("a"))))
	if err != nil {
		return a, b, false, badRequest("a: %v", err)
	}
	raw := strings.ToLower(strings.TrimSpace(q.Get("b")))
	if raw == "" || raw == "typical" {
		return a, b, false, nil
	}
	if b, err = store.ParseTraceID(raw); err != nil {
		return a, b, false, badRequest("b: %v", err)
	}
	return a, b, true, nil
}

// typicalFor picks the typical trace to compare trace a with: the median
// request of a's root endpoint within typicalWindow of it.
func (s *Server) typicalFor(ctx context.Context, a store.TraceID, spans []store.Span) (store.TraceID, error) {
	tree := analysis.NewTree(spans)
	if tree.Root() < 0 {
		return store.TraceID{}, notFound("trace %s has no spans", a)
	}
	root := tree.Span(tree.Root())
	id, err := analysis.TypicalTrace(ctx, s.store, root.Service, root.Name, root.Version, time.Unix(0, root.StartUnixNano), typicalWindow, a)
	if errors.Is(err, store.ErrNotFound) {
		return id, notFound("no other request of %s %s within %s of trace %s to compare it with", root.Service, root.Name, typicalWindow, a)
	}
	return id, err
}

// traceDiff reads both traces (picking b when absent) and compares them.
func (s *Server) traceDiff(ctx context.Context, q url.Values) (analysis.TraceDiff, error) {
	a, b, hasB, err := compareIDs(q)
	if err != nil {
		return analysis.TraceDiff{}, err
	}
	sa, _, err := s.trace(ctx, a)
	if err != nil {
		return analysis.TraceDiff{}, fmt.Errorf("trace %s: %w", a, err)
	}
	if !hasB {
		if b, err = s.typicalFor(ctx, a, sa); err != nil {
			return analysis.TraceDiff{}, err
		}
	}
	if a == b {
		return analysis.TraceDiff{}, badRequest("a and b are the same trace: pick two different traces")
	}
	sb, _, err := s.trace(ctx, b)
	if err != nil {
		return analysis.TraceDiff{}, fmt.Errorf("trace %s: %w", b, err)
	}
	d, err := analysis.CompareTraces(sa, sb)
	if errors.Is(err, analysis.ErrEmptyTrace) {
		return d, badRequest("%v", err)
	}
	return d, err
}

func (s *Server) handleAPITraceCompare(w http.ResponseWriter, r *http.Request) {
	d, err := s.traceDiff(r.Context(), r.URL.Query())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, d)
}

func (s *Server) handleTraceComparePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d, err := s.traceDiff(r.Context(), q)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	if _, _, hasB, _ := compareIDs(q); !hasB {
		// A permalink names both traces: the typical one picked today
		// may not be tomorrow's.
		http.Redirect(w, r, href.With("/traces/compare", "a", d.A.TraceID.String(), "b", d.B.TraceID.String()), http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, s.page(r, "Compare traces", "search", nil), components.TraceComparePage(traceCompareView(d)))
}

func traceCompareView(d analysis.TraceDiff) components.TraceCompareView {
	a, b := d.A.TraceID.String(), d.B.TraceID.String()
	v := components.TraceCompareView{
		A:        compareSide("A", d.A),
		B:        compareSide("B", d.B),
		Summary:  d.Summary,
		SwapHref: href.With("/traces/compare", "a", b, "b", a),
		APIHref:  href.With("/api/v1/traces/compare", "a", a, "b", b),
		Facts: []components.Fact{
			{Label: "Δ duration", Value: units.SignedMs(d.DeltaMs)},
			{Label: "Aligned spans", Value: strconv.Itoa(d.Matched)},
			{Label: "Only in A", Value: strconv.Itoa(d.OnlyA)},
			{Label: "Only in B", Value: strconv.Itoa(d.OnlyB)},
		},
	}
	if d.A.Service != "" && d.A.Service == d.B.Service && d.A.Name == d.B.Name {
		at := time.Unix(0, int64(d.A.StartUnixNano))
		v.ShapeHref = href.With("/shape", "service", d.A.Service, "endpoint", d.A.Name,
			"from", href.Time(at.Add(-typicalWindow)), "to", href.Time(at.Add(typicalWindow)))
	}
	for i, n := range d.Nodes {
		row := components.CompareRow{Indent: min(n.Depth, maxIndent), Service: n.Service, Name: n.Name, Ordinal: n.Ordinal,
			AMs: -1, BMs: -1, DeltaMs: n.DeltaMs, CritDeltaMs: n.CriticalDeltaMs, Culprit: i == d.Culprit}
		if n.A != nil {
			row.AMs, row.AHref, row.Async, row.Error = n.A.DurationMs, href.With("/traces/"+a, "span", n.A.SpanID.String()), n.A.Async, n.A.Error
		} else {
			row.Only = "B"
		}
		if n.B != nil {
			row.BMs, row.BHref = n.B.DurationMs, href.With("/traces/"+b, "span", n.B.SpanID.String())
			row.Async = row.Async || n.B.Async
			row.Error = row.Error || n.B.Error
		} else {
			row.Only = "A"
		}
		v.Rows = append(v.Rows, row)
	}
	return v
}

func compareSide(label string, t analysis.DiffTrace) components.CompareSide {
	return components.CompareSide{Label: label, TraceID: t.TraceID.String(), Href: "/traces/" + t.TraceID.String(),
		Root: t.Service + " " + t.Name, DurationMs: t.DurationMs, Spans: t.Spans}
}

// parseShapeQuery reads the parameters of /shape and /api/v1/shape.
func parseShapeQuery(q url.Values, tr TimeRange) (analysis.ShapeQuery, error) {
	sq := analysis.ShapeQuery{Service: strings.TrimSpace(q.Get("service")), Endpoint: strings.TrimSpace(q.Get("endpoint")), From: tr.From, To: tr.To}
	if sq.Service == "" || sq.Endpoint == "" {
		return sq, badRequest("service and endpoint are required")
	}
	if raw := strings.TrimSpace(q.Get("percentile")); raw != "" {
		p, err := strconv.ParseFloat(raw, 64)
		if err != nil || !(p > 0 && p < 100) {
			return sq, badRequest("percentile %q: want a number between 0 and 100 (exclusive)", raw)
		}
		sq.Percentile = p
	}
	return sq, nil
}

func (s *Server) handleAPIShape(w http.ResponseWriter, r *http.Request) {
	tr, err := s.parseRange(r.URL.Query())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	sq, err := parseShapeQuery(r.URL.Query(), tr)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	rep, err := analysis.CohortShape(r.Context(), s.store, sq)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, rep)
}

func (s *Server) handleShapePage(w http.ResponseWriter, r *http.Request) {
	tr, p, ok := s.endpointPage(w, r, "/shape")
	if !ok {
		return
	}
	q := r.URL.Query()
	q.Set("service", p.Service)
	q.Set("endpoint", p.Endpoint)
	v := components.ShapeView{Picker: p, Percentile: q.Get("percentile")}
	if v.Percentile != "" {
		p.Extra = []components.KV{{Key: "percentile", Value: v.Percentile}}
		v.Picker = p
	}
	if p.Service == "" || p.Endpoint == "" {
		v.Empty, v.Summary = true, "No requests in this window: pick another range."
		s.render(w, r, http.StatusOK, s.page(r, "Shape of slow requests", "outliers", &tr), components.ShapePage(v))
		return
	}
	sq, err := parseShapeQuery(q, tr)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	rep, err := analysis.CohortShape(r.Context(), s.store, sq)
	if err != nil {
		s.pageError(w, r, fmt.Errorf("shape: %w", err))
		return
	}
	s.render(w, r, http.StatusOK, s.page(r, "Shape of slow requests", "outliers", &tr), components.ShapePage(shapeView(v, rep, tr)))
}

func shapeView(v components.ShapeView, rep analysis.ShapeReport, tr TimeRange) components.ShapeView {
	v.Summary = rep.Summary
	from, to := href.Time(tr.From), href.Time(tr.To)
	v.APIHref = href.With("/api/v1/shape", "service", rep.Service, "endpoint", rep.Endpoint, "from", from, "to", to, "percentile", v.Percentile)
	v.OutliersHref = href.With("/outliers", "service", rep.Service, "endpoint", rep.Endpoint, "from", from, "to", to)
	if len(rep.Nodes) == 0 {
		v.Empty = true
		return v
	}
	requests := strconv.Itoa(rep.Requests)
	if rep.Weighted {
		requests += " (estimated from " + strconv.Itoa(rep.SampledCount) + " sampled requests, each counted as many times as its sampler's rate says)"
	}
	v.Facts = []components.Fact{
		{Label: "Requests", Value: requests},
		{Label: "Slow threshold", Value: "p" + strconv.FormatFloat(rep.Percentile, 'f', -1, 64) + " = " + units.Ms(rep.ThresholdMs)},
		{Label: "Slow examined", Value: strconv.Itoa(rep.SlowCount)},
		{Label: "Typical examined", Value: strconv.Itoa(rep.TypicalCount)},
	}
	for _, id := range rep.SlowExamples {
		v.SlowHrefs = append(v.SlowHrefs, components.KV{Key: id.String()[:12], Value: "/traces/" + id.String()})
	}
	for _, id := range rep.TypicalExamples {
		v.TypicalHrefs = append(v.TypicalHrefs, components.KV{Key: id.String()[:12], Value: "/traces/" + id.String()})
	}
	slowMs := strconv.FormatFloat(rep.ThresholdMs, 'f', -1, 64)
	for i, n := range rep.Nodes {
		v.Rows = append(v.Rows, components.ShapeRow{
			Indent: min(n.Depth, maxIndent), Service: n.Service, Name: n.Name, Async: n.Async, Culprit: i == rep.Culprit,
			SlowPresence: n.Slow.Presence, TypPresence: n.Typical.Presence, SlowCalls: n.Slow.Calls, TypCalls: n.Typical.Calls,
			SlowMs: n.Slow.MeanMs, TypMs: n.Typical.MeanMs, SlowCritMs: n.Slow.CriticalMs, TypCritMs: n.Typical.CriticalMs,
			CritDeltaMs: n.CriticalDeltaMs,
			// Slow traces of the endpoint that contain this span.
			SearchHref: href.With("/search", "service", n.Service, "endpoint", n.Name, "from", from, "to", to,
				"min_ms", slowMsFor(i, slowMs)),
		})
	}
	return v
}

// slowMsFor filters the root row's search to slow requests; deeper rows
// list every trace with the span (their own duration is not the
// request's).
func slowMsFor(i int, thresholdMs string) string {
	if i == 0 {
		return thresholdMs
	}
	return ""
}
