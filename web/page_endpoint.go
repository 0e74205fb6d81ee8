package web

import (
	"fmt"
	"math"
	"net/http"
	"slices"
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

// pickEndpoint resolves the service and endpoint of a page: from the URL,
// or the busiest endpoint in the window (of the named service, or of all).
func (s *Server) pickEndpoint(r *http.Request, tr TimeRange, action string) (components.EndpointPicker, error) {
	q := r.URL.Query()
	p := components.EndpointPicker{
		Action: action, From: tr.FromText, To: tr.ToText,
		Service: strings.TrimSpace(q.Get("service")), Endpoint: strings.TrimSpace(q.Get("endpoint")),
	}
	eps, err := s.endpoints(r.Context(), tr)
	if err != nil {
		return p, fmt.Errorf("endpoints: %w", err)
	}
	if p.Service == "" {
		var best store.Endpoint
		for _, e := range eps {
			if analysis.Busier(e, best) {
				best = e
			}
		}
		p.Service = best.Service
		if p.Endpoint == "" {
			p.Endpoint = best.Name
		}
	}
	if p.Service == "" {
		return p, notFound("no requests in this window (%s); widen the time range or send traces first", windowText(tr))
	}
	if name, templated := storedName(eps, p.Service, p.Endpoint); templated {
		p.AsSent, p.Endpoint = p.Endpoint, name
	}
	var best store.Endpoint
	for _, e := range eps {
		if e.Service == p.Service && analysis.Busier(e, best) {
			best = e
		}
	}
	p.Services, p.MoreServices = serviceChoices(eps)
	p.Endpoints, p.MoreEndpoints = endpointChoices(eps, p.Service, choiceEndpoints)
	if p.Endpoint == "" {
		p.Endpoint = best.Name
	}
	if p.Endpoint == "" {
		return p, notFound("service %q has no requests in this window (%s)", truncateText(p.Service, 80), windowText(tr))
	}
	if p.MoreServices == 0 && !contains(p.Services, p.Service) {
		p.Services = append(p.Services, p.Service) // a choice list must offer it
	}
	if p.MoreEndpoints == 0 && !contains(p.Endpoints, p.Endpoint) {
		p.Endpoints = append(p.Endpoints, p.Endpoint) // a choice list must offer it
	}
	sort.Strings(p.Endpoints)
	return p, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (s *Server) handleLatencyPage(w http.ResponseWriter, r *http.Request) {
	tr, err := s.parseRange(r.URL.Query())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p, err := s.pickEndpoint(r, tr, "/latency")
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	ctx := r.Context()
	p.TenantFilter, p.Tenant = true, strings.TrimSpace(r.URL.Query().Get("tenant"))
	rep, err := s.latency(ctx, analysis.LatencyQuery{Service: p.Service, Endpoint: p.Endpoint, Tenant: p.Tenant, From: tr.From, To: tr.To})
	if err != nil {
		s.pageError(w, r, fmt.Errorf("latency: %w", err))
		return
	}
	tenants, err := s.tenants(ctx, analysis.TenantsQuery{Service: p.Service, Endpoint: p.Endpoint, From: tr.From, To: tr.To})
	if err != nil {
		s.pageError(w, r, fmt.Errorf("tenants: %w", err))
		return
	}
	deploys, err := s.store.Deploys(ctx, store.DeployQuery{Service: p.Service, From: tr.From, To: tr.To, Limit: 50})
	if err != nil {
		s.pageError(w, r, fmt.Errorf("deploys: %w", err))
		return
	}
	kinds, err := s.deployKinds(ctx, deploys)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	for _, t := range tenants.Tenants {
		p.Tenants = append(p.Tenants, t.Tenant)
	}
	v := latencyView(rep, p, tr, kindMarkers(deploys, kinds))
	v.Tenants = tenantsTable(tenants, p, tr)
	if p.Tenant != "" && rep.Method != analysis.MethodRollups {
		// Say why a tenant's long window was read from spans.
		rolled, err := s.store.RolledUpTenant(ctx, p.Tenant)
		if err != nil {
			s.pageError(w, r, fmt.Errorf("tenant rollups: %w", err))
			return
		}
		if !rolled {
			v.MethodNote += fmt.Sprintf(" Read from spans: tenant %q has no rollups (the store keeps those of its first %d tenants).",
				truncateText(p.Tenant, 80), store.MaxRollupTenants)
		}
	}
	if p.Endpoint != "" && rep.Method != analysis.MethodRollups {
		// And why an endpoint's long window was.
		named, err := s.store.RolledUpName(ctx, p.Service, p.Endpoint)
		if err != nil {
			s.pageError(w, r, fmt.Errorf("rollup names: %w", err))
			return
		}
		if !named {
			v.MethodNote += fmt.Sprintf(" Read from spans: %s has more than %d span names, and the rollups keep the first %d; "+
				"this one's requests are summed up with the others'.", truncateText(p.Service, 80), store.MaxRollupNames, store.MaxRollupNames)
		}
	}
	title := p.Service + " " + p.Endpoint + " latency"
	if p.Tenant != "" {
		title += " · tenant " + p.Tenant
	}
	s.render(w, r, http.StatusOK, s.page(r, title, "latency", &tr), components.LatencyPage(v))
}

// deployMarkers turns deploy markers into chart markers linking to their
// comparison.
func deployMarkers(deploys []store.Deploy) []chart.Marker { return kindMarkers(deploys, nil) }

// kindMarkers is deployMarkers drawing a service's first sighting as such
// (kinds from deployKinds).
func kindMarkers(deploys []store.Deploy, kinds map[int64]string) []chart.Marker {
	var ms []chart.Marker
	for _, d := range deploys {
		ms = append(ms, chart.Marker{T: d.At, Label: d.Version, Href: fmt.Sprintf("/deploys/%d", d.ID), FirstSeen: kinds[d.ID] == analysis.KindFirstSeen})
	}
	return ms
}

// latencyFacts are the latency page's headline numbers.
func latencyFacts(rep analysis.LatencyReport) []components.Fact {
	pc := rep.Percentiles
	return []components.Fact{
		{Label: "requests", Value: chart.FormatCount(float64(rep.Count))},
		{Label: "rate", Value: fmt.Sprintf("%.2f/s", rep.RatePerS)},
		{Label: "errors", Value: chart.FormatPercent(rep.ErrorRate), Bad: rep.ErrorRate > 0.01},
		{Label: "p50", Value: units.Ms(pc.P50Ms)},
		{Label: "p90", Value: units.Ms(pc.P90Ms)},
		{Label: "p95", Value: units.Ms(pc.P95Ms)},
		{Label: "p99", Value: units.Ms(pc.P99Ms)},
		{Label: "p99.9", Value: units.Ms(pc.P999Ms)},
		{Label: "max", Value: units.Ms(pc.MaxMs)},
	}
}

func latencyView(rep analysis.LatencyReport, p components.EndpointPicker, tr TimeRange, markers []chart.Marker) components.LatencyView {
	window := []string{"service", p.Service, "endpoint", p.Endpoint, "from", tr.FromText, "to", tr.ToText}
	// Trace links keep the tenant filter; the outliers page compares
	// every tenant (tenant is one of the dimensions it tests).
	base, only := window, []string{"service", p.Service, "endpoint", p.Endpoint}
	if p.Tenant != "" {
		base = append(slices.Clip(window), "tenant", p.Tenant)
		only = append(only, "tenant", p.Tenant)
	}
	v := components.LatencyView{
		Picker:         p,
		Facts:          latencyFacts(rep),
		OutliersHref:   href.With("/outliers", window...),
		TracesHref:     href.With("/search", base...),
		SlowTracesHref: href.With("/search", append(slices.Clip(base), "sort", "slowest")...),
		Selection: components.ChartSelection{
			TracesURL:   href.With("/search", append(slices.Clip(only), "sort", "slowest")...),
			OutliersURL: href.With("/outliers", "service", p.Service, "endpoint", p.Endpoint),
			From:        tr.FromText, To: tr.ToText,
		},
	}
	switch rep.Method {
	case analysis.MethodRollups:
		v.MethodNote = fmt.Sprintf("Read from the rollups written at ingest: percentiles within %s relative error, "+
			"counts exact over %s – %s UTC (the window rounded out to whole rollup buckets). "+
			"Attribute filters are on the outliers and search pages, which read spans.",
			chart.FormatPercent(rep.RelativeError), rep.From.Format("2006-01-02 15:04"), rep.To.Format("2006-01-02 15:04"))
	case analysis.MethodSketch:
		v.MethodNote = fmt.Sprintf("Percentiles from mergeable sketches, within %s relative error.", chart.FormatPercent(rep.RelativeError))
	default:
		v.MethodNote = "Percentiles are exact."
	}
	switch {
	case rep.Weighted:
		v.MethodNote += " Estimated from sampled spans: each counts as the requests its sampling weight says it stands for."
	case rep.Method == analysis.MethodRollups:
		v.MethodNote += " Sampled spans count as their sampling weight."
	}
	var p50, p95, p99, rate, errs []chart.Point
	step := time.Duration(rep.Series.StepSeconds * float64(time.Second))
	for _, pt := range rep.Series.Points {
		// The bucket that ends after the window (now, for a live range) is
		// still filling: its spans are partly not written yet.
		partial := pt.Start.Add(step).After(tr.To)
		p50 = append(p50, chart.Point{T: pt.Start, V: ptr(pt.P50Ms), Partial: partial})
		p95 = append(p95, chart.Point{T: pt.Start, V: ptr(pt.P95Ms), Partial: partial})
		p99 = append(p99, chart.Point{T: pt.Start, V: ptr(pt.P99Ms), Partial: partial})
		rate = append(rate, chart.Point{T: pt.Start, V: pt.RatePerS, Partial: partial})
		// Errors per second over the same part of the bucket as the
		// request rate.
		e := 0.0
		if pt.CoveredS > 0 {
			e = float64(pt.Errors) / max(pt.CoveredS, 1)
		}
		errs = append(errs, chart.Point{T: pt.Start, V: e, Partial: partial})
	}
	v.Series = chart.BuildTimeChart(chart.TimeChartInput{
		From: tr.From, To: tr.To, Markers: markers, YLabel: "latency",
		Series: []chart.Series{{Name: "p50", Class: "s-p50", Points: p50}, {Name: "p95", Class: "s-p95", Points: p95}, {Name: "p99", Class: "s-p99", Points: p99}},
	})
	v.Traffic = chart.BuildTimeChart(chart.TimeChartInput{
		From: tr.From, To: tr.To, Markers: markers, YLabel: "per second", Width: 560, Height: 260,
		YFormat: func(f float64) string { return chart.FormatCount(f) + "/s" },
		Series:  []chart.Series{{Name: "requests", Class: "s-count", Points: rate}, {Name: "errors", Class: "s-err", Points: errs}},
	})
	var bars []chart.Bar
	for _, b := range rep.Histogram {
		bar := chart.Bar{LoMs: b.LowerMs, HiMs: b.UpperMs, Count: int64(b.Count),
			Href: href.With("/search", append(base, "min_ms", fmt.Sprintf("%g", b.LowerMs), "max_ms", fmt.Sprintf("%g", b.UpperMs), "sort", "slowest")...)}
		if b.LowerMs >= rep.Percentiles.P99Ms && rep.Percentiles.P99Ms > 0 {
			bar.Class = "tail"
		}
		bars = append(bars, bar)
	}
	v.Histogram = chart.BuildHistogram(chart.HistogramInput{Bars: bars, Width: 560, Height: 260, Lines: []chart.VLine{
		{Ms: rep.Percentiles.P50Ms, Label: "p50", Class: "s-p50"}, {Ms: rep.Percentiles.P99Ms, Label: "p99", Class: "s-p99"},
	}})
	hm := rep.Heatmap
	var cells []chart.Cell
	step = time.Duration(hm.StepSeconds * float64(time.Second))
	for c, col := range hm.Counts {
		if c >= len(hm.Times) {
			break
		}
		for row, n := range col {
			if n == 0 || row+1 >= len(hm.BoundsMs) {
				continue
			}
			from, to := hm.Times[c], hm.Times[c].Add(step)
			cells = append(cells, chart.Cell{From: from, To: to, LoMs: hm.BoundsMs[row], HiMs: hm.BoundsMs[row+1], Count: int64(n),
				Href: href.With("/search", append(slices.Clip(only), "from", href.Time(from), "to", href.Time(to),
					"min_ms", fmt.Sprintf("%g", hm.BoundsMs[row]), "max_ms", fmt.Sprintf("%g", hm.BoundsMs[row+1]), "sort", "slowest")...)})
		}
	}
	v.Heatmap = chart.BuildHeatmap(chart.HeatmapInput{From: tr.From, To: tr.To, Cells: cells})
	return v
}

func ptr(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// endpointPage reads the window and the endpoint of a page about one
// endpoint (outliers, shape): on failure it has answered with the error
// page and reports false.
func (s *Server) endpointPage(w http.ResponseWriter, r *http.Request, action string) (TimeRange, components.EndpointPicker, bool) {
	tr, err := s.parseRange(r.URL.Query())
	if err != nil {
		s.pageError(w, r, err)
		return tr, components.EndpointPicker{}, false
	}
	p, err := s.pickEndpoint(r, tr, action)
	if err != nil {
		s.pageError(w, r, err)
		return tr, p, false
	}
	return tr, p, true
}
