package web

import (
	"fmt"
	"strings"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/components/chart"
	"github.com/tailscope/tailscope/internal/units"
	"github.com/tailscope/tailscope/report"
)

// incidentView lays out a report for the page (export false) or for
// report.html (export true): the same markup from the same numbers.
func incidentView(rep report.Report, export bool) (components.IncidentView, error) {
	in := rep.Incident
	p := report.IncidentPath(in.ID)
	// The report's links carry the base (the server's URL in exports).
	base := strings.TrimSuffix(rep.Links.Incident, p)
	v := components.IncidentView{
		ID: in.ID, Title: in.Title, From: in.From, To: in.To, Duration: report.HumanDuration(in.To.Sub(in.From)),
		Services: in.Services, Export: export, GeneratedAt: rep.GeneratedAt,
		Summary: rep.Summary, Warnings: rep.Warnings, PinAction: p + "/pins",
		Links: components.IncidentLinks{
			Page: rep.Links.Incident, Edit: p + "/edit", Delete: p + "/delete",
			ReportMD: rep.Links.ReportMarkdown, ReportHTML: rep.Links.ReportHTML, ReportJSON: rep.Links.ReportJSON, API: rep.Links.API,
			Finalize: p + "/finalize", Recompute: p + "/recompute",
		},
		Revision: rep.Revision, TracesKept: rep.TracesKept, ReportVersion: rep.TailscopeVersion,
	}
	if rep.FinalizedAt != nil {
		v.FinalizedAt = *rep.FinalizedAt
	}
	timeFmt := components.TimeClock
	if in.From.UTC().Format(time.DateOnly) != in.To.UTC().Format(time.DateOnly) || len(rep.Timeline) > 0 && rep.Timeline[0].Time.UTC().Format(time.DateOnly) != in.To.UTC().Format(time.DateOnly) {
		timeFmt = components.TimeDateTime
	}
	for _, t := range rep.Timeline {
		v.Timeline = append(v.Timeline, components.TimelineRow{Time: t.Time, Fmt: timeFmt, Kind: t.Kind, Text: t.Text, Href: t.Link})
	}
	var markers []chart.Marker
	for _, d := range rep.Deploys {
		markers = append(markers, chart.Marker{T: d.At, Label: d.Version, Href: d.Link, FirstSeen: d.Kind == analysis.KindFirstSeen})
	}
	band := []chart.Band{{From: in.From, To: in.To, Label: "incident"}}
	for _, e := range rep.Endpoints {
		v.Endpoints = append(v.Endpoints, incidentEndpointView(e, base, markers, band))
	}
	for _, d := range rep.Deploys {
		if d.Kind == analysis.KindFirstSeen {
			continue // a first sighting has nothing to compare: the timeline and charts mark it
		}
		dv := components.IncidentDeployView{
			Label: d.Service + " " + d.Version, At: d.At, Source: report.SourceWord(d.Source),
			Note: d.Note, Href: d.Link, InRange: d.InRange, Unavailable: d.Unavailable, FirstSeen: d.Kind == analysis.KindFirstSeen,
		}
		if d.Kind != analysis.KindFirstSeen {
			dv.Ranges, dv.CompareHref = report.CompareRangesText(d), d.ComparisonLink
		}
		if d.Comparison != nil {
			dv.Verdict, dv.VerdictClass, dv.Summary = d.Comparison.Verdict, verdictClass(d.Comparison.Verdict), d.Comparison.Summary
		}
		v.Deploys = append(v.Deploys, dv)
	}
	for _, b := range rep.Budgets {
		v.Budgets = append(v.Budgets, incidentBudgetView(b))
	}
	for _, e := range rep.Exemplars {
		v.Exemplars = append(v.Exemplars, exemplarView(e, p+"/pins"))
	}
	html, err := report.RenderNotes(in.Notes)
	if err != nil {
		return v, err
	}
	v.NotesHTML, v.HasNotes = html, strings.TrimSpace(in.Notes) != ""
	return v, nil
}

// incidentEndpointView lays out one examined endpoint; base prefixes the
// trace links as it prefixes the report's own links.
func incidentEndpointView(e report.Endpoint, base string, markers []chart.Marker, band []chart.Band) components.IncidentEndpointView {
	ev := components.IncidentEndpointView{
		Service: e.Service, Endpoint: e.Endpoint, LatencyHref: e.Links.Latency, OutliersHref: e.Links.Outliers, TracesHref: e.Links.SlowTraces,
		ImpactNote: e.ImpactUnavailable,
	}
	var p50, p99, rate, errs []chart.Point
	for _, pt := range e.Timeline.Points {
		p50 = append(p50, chart.Point{T: pt.Start, V: ptr(pt.P50Ms)})
		p99 = append(p99, chart.Point{T: pt.Start, V: ptr(pt.P99Ms)})
		rate = append(rate, chart.Point{T: pt.Start, V: pt.RatePerS})
		share := 0.0
		if pt.Count > 0 {
			share = float64(pt.Errors) / float64(pt.Count)
		}
		errs = append(errs, chart.Point{T: pt.Start, V: share})
	}
	from, to := e.Timeline.From, e.Timeline.To
	ev.Latency = chart.BuildTimeChart(chart.TimeChartInput{From: from, To: to, Markers: markers, Bands: band, YLabel: "latency", Height: 240,
		Series: []chart.Series{{Name: "p50", Class: "s-p50", Points: p50}, {Name: "p99", Class: "s-p99", Points: p99}}})
	ev.Throughput = chart.BuildTimeChart(chart.TimeChartInput{From: from, To: to, Markers: markers, Bands: band, YLabel: "requests/s", Width: 560, Height: 220,
		YFormat: func(f float64) string { return chart.FormatCount(f) + "/s" },
		Series:  []chart.Series{{Name: "requests per second", Class: "s-count", Points: rate}}})
	ev.ErrorRate = chart.BuildTimeChart(chart.TimeChartInput{From: from, To: to, Markers: markers, Bands: band, YLabel: "error rate", Width: 560, Height: 220,
		YFormat: chart.FormatPercent, Series: []chart.Series{{Name: "error rate", Class: "s-err", Points: errs}}})
	st := e.During
	ev.Facts = []components.Fact{
		{Label: "requests", Value: chart.FormatCount(float64(st.Requests))},
		{Label: "rate", Value: fmt.Sprintf("%.2f/s", st.RatePerS)},
		{Label: "errors", Value: chart.FormatPercent(st.ErrorRate), Bad: st.ErrorRate > 0.01},
		{Label: "p50", Value: units.Ms(st.Percentiles.P50Ms)},
		{Label: "p95", Value: units.Ms(st.Percentiles.P95Ms)},
		{Label: "p99", Value: units.Ms(st.Percentiles.P99Ms)},
	}
	if e.Impact != nil && e.Impact.Baseline == analysis.BaselineNone {
		ev.ImpactNote = "No requests in the window before the incident: nothing to compare with."
	} else if e.Impact != nil {
		cv := comparisonView(*e.Impact, "before", "during")
		cv.APIHref = e.Links.Impact
		cv.LatencyHref = e.Links.Latency
		ev.Impact = &cv
		if e.Impact.Baseline != analysis.BaselineNone {
			ev.Facts = append(ev.Facts, components.Fact{Label: "p99 before", Value: units.Ms(e.Impact.Before.Percentiles.P99Ms)})
		}
	}
	switch o := e.Outliers; {
	case o == nil:
		ev.OutliersNote = e.OutliersUnavailable
	case o.RequestCount == 0:
		ev.OutliersNote = "No requests to this endpoint during the incident."
	case o.OutlierCount == 0:
		ev.OutliersNote = "No request reached the outlier threshold."
	default:
		ev.OutlierFacts = fmt.Sprintf("%d of %d requests at or above the p99 (%s); %d of their traces examined, with %d typical requests (p25–p75) setting each dependency's usual time.",
			o.OutlierCount, o.RequestCount, units.Ms(o.ThresholdMs), o.AnalyzedOutlierCount, o.BaselineCount)
		if note := o.SampledNote(); note != "" {
			ev.OutlierFacts += " Counts and the p99 are " + note + "."
		}
		if len(o.Groups) == 0 {
			ev.OutliersNote = "No cause stands out: the slowest requests do not share a dependency, tenant, payload or version more than chance allows."
		}
		for i, g := range o.Groups {
			if i == report.MaxGroups {
				break
			}
			gv := components.GroupView{Rank: i + 1, Label: g.Label, Count: g.Count, Share: g.Share, ExcessMs: g.ExcessMs,
				CounterfactualP99Ms: g.CounterfactualP99Ms, PayoffMs: g.PayoffMs, P99Ms: o.P99Ms}
			for _, id := range g.ExampleTraceIDs {
				gv.Examples = append(gv.Examples, components.SpanLink{Label: id.String()[:12], Href: base + "/traces/" + id.String()})
			}
			ev.Groups = append(ev.Groups, gv)
		}
	}
	return ev
}

func incidentBudgetView(b report.Budget) components.IncidentBudgetView {
	d := b.During
	bv := components.IncidentBudgetView{
		Name: b.Name, Href: b.Link, Status: budgetStatusClass(d.Status), StatusText: d.StatusText, BurnRates: burnRows(d.BurnRates),
		Objective: report.ObjectiveText(d.Budget),
	}
	if d.WorstHop != "" {
		bv.WorstHop = report.WorstHopText(d.ComplianceReport)
	}
	bv.Facts = []components.Fact{
		{Label: "attainment during", Value: units.SLOPercent(d.Attainment), Bad: d.Total > 0 && !d.Met},
		{Label: "over " + units.Ms(d.Budget.ThresholdMs), Value: fmt.Sprintf("%s of %s", chart.FormatCount(float64(d.Bad)), chart.FormatCount(float64(d.Total)))},
		{Label: "burn rate during", Value: analysis.FormatBurn(b.BurnRateDuring), Bad: b.BurnRateDuring > 1},
		{Label: d.Budget.Period + " budget used", Value: chart.FormatPercent(b.PeriodBudgetSpent), Bad: b.PeriodBudgetSpent >= 0.1},
	}
	return bv
}

func exemplarView(e report.Exemplar, pinAction string) components.ExemplarView {
	ev := components.ExemplarView{
		TraceID: e.TraceID, Short: e.TraceID[:min(12, len(e.TraceID))], Href: e.Link, Reason: e.Reason, Pinned: e.Pinned, Stored: e.Stored,
		DurationMs: e.DurationMs, Spans: e.SpanCount, Errors: e.ErrorCount, PinAction: pinAction,
	}
	if e.Stored {
		ev.Root = e.RootService + " " + e.RootName
	}
	if e.Start != nil {
		ev.Start = e.Start.UTC().Format("2006-01-02 15:04:05.000 UTC")
	}
	for _, h := range e.CriticalPath {
		ev.Hops = append(ev.Hops, components.HopView{Label: h.Label, CriticalMs: h.CriticalMs, Share: h.Share})
	}
	for _, f := range e.Findings {
		ev.Findings = append(ev.Findings, findingText(f))
	}
	return ev
}

// findingText is a one-line anti-pattern callout.
func findingText(f analysis.Finding) string {
	return fmt.Sprintf("%s (%s at stake)", f.Title, units.Ms(f.TimeMs))
}
