package web

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/components/chart"
	"github.com/tailscope/tailscope/internal/href"
	"github.com/tailscope/tailscope/internal/units"
	"github.com/tailscope/tailscope/store"
)

// dimensionOrder is how the outliers page lists dimensions; attributes
// (attr:KEY) follow in name order.
var dimensionOrder = map[string]int{"dependency": 0, "tenant": 1, "payload": 2, "version": 3, "host": 4}

// dimensionTitles are the headings of known dimensions.
var dimensionTitles = map[string]string{
	"dependency": "Dependency (slow on the critical path)",
	"tenant":     "Tenant",
	"payload":    "Payload size",
	"version":    "Version",
	"host":       "Host",
}

// maxDimValues is how many values of a dimension the page draws.
const maxDimValues = 8

func (s *Server) handleOutliersPage(w http.ResponseWriter, r *http.Request) {
	tr, p, ok := s.endpointPage(w, r, "/outliers")
	if !ok {
		return
	}
	// parseOutlierQuery reads the same parameters as the API.
	q := r.URL.Query()
	q.Set("service", p.Service)
	q.Set("endpoint", p.Endpoint)
	oq, _, err := s.parseOutlierQuery(r.Context(), q)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	rep, err := s.outliers(r.Context(), oq)
	if err != nil {
		s.pageError(w, r, fmt.Errorf("outliers: %w", err))
		return
	}
	p.Extra = []components.KV{}
	for _, k := range []string{"percentile", "threshold_ms"} {
		if v := q.Get(k); v != "" {
			p.Extra = append(p.Extra, components.KV{Key: k, Value: v})
		}
	}
	v := outliersView(rep, p, tr, q.Get("percentile"), q.Get("threshold_ms"))
	v.APIHref = "/api/v1/outliers?" + q.Encode()
	v.ShapeHref = href.With("/shape", "service", p.Service, "endpoint", p.Endpoint, "from", href.Time(tr.From), "to", href.Time(tr.To), "percentile", q.Get("percentile"))
	if s.hasCPUProfiles(r.Context(), tr) {
		for i := range v.Groups {
			gq := cloneValues(q)
			gq.Set("group", strconv.Itoa(i+1))
			v.Groups[i].ProfileHref = "/outliers/profile?" + gq.Encode()
		}
	}
	s.render(w, r, http.StatusOK, s.page(r, "Outliers of "+p.Service+" "+p.Endpoint, "outliers", &tr), components.OutliersPage(v))
}

func outliersView(rep analysis.OutlierReport, p components.EndpointPicker, tr TimeRange, percentile, threshold string) components.OutliersView {
	base := []string{"service", p.Service, "endpoint", p.Endpoint, "from", tr.FromText, "to", tr.ToText}
	defn := "≥ p99"
	if rep.Percentile > 0 && rep.Percentile != 99 {
		defn = fmt.Sprintf("≥ p%g", rep.Percentile)
	} else if rep.Percentile == 0 {
		defn = "≥ " + units.Ms(rep.ThresholdMs)
	}
	v := components.OutliersView{
		Picker: p, Percentile: percentile, ThresholdMs: threshold,
		Facts: []components.Fact{
			{Label: "requests", Value: chart.FormatCount(float64(rep.RequestCount))},
			{Label: "p50", Value: units.Ms(rep.P50Ms)},
			{Label: "p99", Value: units.Ms(rep.P99Ms)},
			{Label: "outliers " + defn, Value: fmt.Sprintf("%d (≥ %s)", rep.OutlierCount, units.Ms(rep.ThresholdMs))},
			{Label: "traces examined", Value: fmt.Sprintf("%d + %d baseline", rep.AnalyzedOutlierCount, rep.BaselineCount)},
		},
		Ungrouped: rep.UngroupedCount,
		Verdict:   rep.Verdict, NoDominantCause: rep.NoDominantCause,
		P99Ms: rep.P99Ms, FixAllP99Ms: rep.FixAllP99Ms, FixAllPayoffMs: rep.FixAllPayoffMs,
		LatencyHref: href.With("/latency", base...),
		TracesHref:  href.With("/search", append(base, "min_ms", fmt.Sprintf("%g", rep.ThresholdMs), "sort", "slowest")...),
	}
	switch {
	case rep.RequestCount == 0:
		v.Note = "No requests to this endpoint in the window. Widen the time range."
	case rep.OutlierCount == 0:
		v.Note = "No request reached the outlier threshold."
	case rep.AnalyzedOutlierCount == 0:
		v.Note = "The outliers' traces are not stored (yet): they may still be arriving. Try again in a few seconds."
	case rep.Stored() < 200:
		v.Note = fmt.Sprintf("Only %d requests stored in this window: with so few, p99 is a handful of requests and the groups below are weak evidence. Widen the time range.", rep.Stored())
	case rep.Weighted:
		v.Note = "The traces were sampled: requests, percentiles and outliers are " + rep.SampledNote() + "."
	}
	for i, g := range rep.Groups {
		v.Groups = append(v.Groups, outlierGroupView(rep, i, g, base))
	}
	for _, d := range rep.DependencyExcess {
		v.DependencyExcess = append(v.DependencyExcess, components.HopView{Label: d.Dependency, CriticalMs: d.MeanExcessMs, Share: d.Share})
	}
	v.Dimensions = dimensionViews(rep, base)
	return v
}

// outlierGroupView lays out group i of rep; base is the page's window.
func outlierGroupView(rep analysis.OutlierReport, i int, g analysis.OutlierGroup, base []string) components.GroupView {
	gv := components.GroupView{
		Rank: i + 1, Label: g.Label, Count: g.Count, Share: g.Share, ExcessMs: g.ExcessMs,
		CounterfactualP99Ms: g.CounterfactualP99Ms, PayoffMs: g.PayoffMs, P99Ms: rep.P99Ms,
		Evidence: g.Evidence,
	}
	keys := make([]string, 0, len(g.DimensionValues))
	for k := range g.DimensionValues {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool {
		return dimRank(keys[a]) < dimRank(keys[b]) || (dimRank(keys[a]) == dimRank(keys[b]) && keys[a] < keys[b])
	})
	var dims []string
	for _, k := range keys {
		gv.Values = append(gv.Values, components.KV{Key: k, Value: g.DimensionValues[k]})
		dims = append(dims, k, g.DimensionValues[k])
	}
	gv.TracesHref = slowSearch(base, rep.ThresholdMs, dims...)
	for _, id := range g.ExampleTraceIDs {
		gv.Examples = append(gv.Examples, components.SpanLink{Label: id.String()[:12], Href: "/traces/" + id.String()})
	}
	return gv
}

// dimensionViews lays out the dimension tables, in dimRank order, at most
// maxDimValues values each.
func dimensionViews(rep analysis.OutlierReport, base []string) []components.DimensionView {
	var out []components.DimensionView
	names := make([]string, 0, len(rep.Dimensions))
	for n := range rep.Dimensions {
		names = append(names, n)
	}
	sort.Slice(names, func(a, b int) bool {
		if dimRank(names[a]) != dimRank(names[b]) {
			return dimRank(names[a]) < dimRank(names[b])
		}
		return names[a] < names[b]
	})
	for _, n := range names {
		vals := rep.Dimensions[n]
		if len(vals) == 0 {
			continue
		}
		dv := components.DimensionView{Name: n, Title: dimensionTitles[n]}
		if dv.Title == "" {
			dv.Title = "Attribute " + strings.TrimPrefix(n, "attr:")
		}
		for i, x := range vals {
			if i == maxDimValues {
				dv.More = len(vals) - maxDimValues
				break
			}
			item := components.DimValueView{
				Value: x.Value, OutlierShare: x.OutlierShare, BaselineShare: x.BaselineShare,
				OutlierCount: x.OutlierCount, BaselineCount: x.BaselineCount,
				Lift: x.Lift, QValue: x.QValue, Significant: x.Significant,
			}
			// A value no outlier has would list nothing.
			if _, _, ok := dimensionParam(n, x.Value); ok && x.OutlierCount > 0 {
				item.Href = slowSearch(base, rep.ThresholdMs, n, x.Value)
			}
			dv.Values = append(dv.Values, item)
		}
		out = append(out, dv)
	}
	return out
}

// hasCPUProfiles reports whether any CPU profile overlaps the window, so
// pages only link to flame graphs that can have content.
func (s *Server) hasCPUProfiles(ctx context.Context, tr TimeRange) bool {
	series, err := s.store.ProfileSeries(ctx, tr.From, tr.To)
	if err != nil {
		s.log.Warn("profile series", "err", err)
		return false
	}
	for _, ps := range series {
		if ps.Type == store.ProfileCPU {
			return true
		}
	}
	return false
}

func dimRank(name string) int {
	if r, ok := dimensionOrder[name]; ok {
		return r
	}
	return len(dimensionOrder)
}
