package web

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/components/chart"
	"github.com/tailscope/tailscope/internal/href"
	"github.com/tailscope/tailscope/internal/units"
)

func (s *Server) handleServiceMapPage(w http.ResponseWriter, r *http.Request) {
	q, tr, err := s.serviceMapQuery(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	m, err := s.serviceMap(r.Context(), q)
	if err != nil {
		s.pageError(w, r, fmt.Errorf("service map: %w", err))
		return
	}
	v := serviceMapView(m, tr)
	v.APIHref = "/api/v1/servicemap?" + r.URL.Query().Encode()
	s.render(w, r, http.StatusOK, s.page(r, "Service map", "servicemap", &tr), components.ServiceMapPage(v))
}

// serviceMapView turns the map into the page's view: names, numbers and
// links (a service opens its latency page; an edge into a service opens
// the callee endpoint's latency and outliers, an edge into a dependency the
// caller endpoint's, whose outliers rank that dependency's share of the
// tail).
func serviceMapView(m analysis.ServiceMap, tr TimeRange) components.ServiceMapView {
	v := components.ServiceMapView{
		Window:  windowText(tr),
		Sampled: mapSampled(m),
	}
	names := map[string]analysis.MapNode{}
	for _, n := range m.Nodes {
		names[n.ID] = n
	}
	// A dependency opens the endpoint that calls it most.
	depHref := map[string]string{}
	depCalls := map[string]float64{}
	span := func(svc, ep string) []string {
		return []string{"service", svc, "endpoint", ep, "from", tr.FromText, "to", tr.ToText}
	}
	var edges []components.MapEdgeView
	for _, e := range m.Edges {
		ev := components.MapEdgeView{
			From: e.From, To: e.To, FromName: names[e.From].Name, ToName: names[e.To].Name, Kind: string(e.Kind),
			RatePerS: e.RatePerS, ErrorRate: e.ErrorRate, P50Ms: e.P50Ms, P99Ms: e.P99Ms,
			TailShare: e.TailShare, TypicalShare: e.TypicalShare, Hot: e.Hot,
		}
		target := span(e.CallerService, e.CallerEndpoint)
		if names[e.To].Kind == analysis.NodeService {
			target = span(names[e.To].Name, e.CalleeEndpoint)
		}
		ev.Href, ev.OutliersHref = href.With("/latency", target...), href.With("/outliers", target...)
		ev.Title = fmt.Sprintf("%s → %s (%s): %s/s, %s errors, p99 %s; %s of the slow requests' critical time, %s of typical",
			ev.FromName, ev.ToName, e.Kind, strconv.FormatFloat(e.RatePerS, 'f', 2, 64), chart.FormatPercent(e.ErrorRate), units.Ms(e.P99Ms),
			chart.FormatPercent(e.TailShare), chart.FormatPercent(e.TypicalShare))
		if e.Hot {
			ev.Title += " — on the tail's critical path more than its share"
		}
		edges = append(edges, ev)
		if names[e.To].Kind != analysis.NodeService && e.Calls > depCalls[e.To] && e.CallerEndpoint != "" {
			depCalls[e.To], depHref[e.To] = e.Calls, href.With("/outliers", span(e.CallerService, e.CallerEndpoint)...)
		}
	}
	for _, n := range m.Nodes {
		nv := components.MapNodeView{
			ID: n.ID, Name: n.Name, Kind: string(n.Kind), Entry: n.Entry, Layer: n.Layer, Row: n.Row,
			Detail: strconv.FormatFloat(n.RatePerS, 'f', 2, 64) + "/s · p99 " + units.Ms(n.P99Ms),
		}
		nv.Title = fmt.Sprintf("%s (%s): %s/s, %s errors, p99 %s", n.Name, n.Kind, strconv.FormatFloat(n.RatePerS, 'f', 2, 64), chart.FormatPercent(n.ErrorRate), units.Ms(n.P99Ms))
		if n.Kind == analysis.NodeService {
			nv.Href = href.With("/latency", span(n.Name, n.Endpoint)...)
		} else {
			nv.Href = depHref[n.ID]
			nv.Title += " — opens the outliers of its busiest caller"
		}
		if nv.Href == "" {
			nv.Href = href.With("/", "from", tr.FromText, "to", tr.ToText)
		}
		v.Nodes = append(v.Nodes, nv)
	}
	v.Edges = edges
	components.PlaceServiceMap(&v)
	return v
}

// mapSampled says what the map was drawn from.
func mapSampled(m analysis.ServiceMap) string {
	s := strconv.Itoa(m.TypicalTraces) + " typical and " + strconv.Itoa(m.TailTraces) + " slow traces"
	if m.RootEndpointsRead < m.RootEndpoints {
		s += " of " + strconv.Itoa(m.RootEndpointsRead) + " of the " + strconv.Itoa(m.RootEndpoints) +
			" endpoints where traces start (the busiest, and a draw of the rest by their traffic, each standing for the endpoints it was drawn for)"
	}
	if m.Weighted {
		s += " of a sampled stream, picked and counted by their sampling weight (rates and percentiles are estimates)"
	}
	return s
}
