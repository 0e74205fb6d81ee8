package report

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/components/chart"
	"github.com/tailscope/tailscope/internal/href"
	"github.com/tailscope/tailscope/internal/units"
)

// timeline orders the incident's events: its start and end, the
// deploys, and each endpoint's peak p99 and error rate inside the range.
func (b *builder) timeline(rep Report) []Event {
	in, to, base := b.in, b.to, b.opt.Base
	ev := []Event{
		{Time: in.From.UTC(), Kind: eventStart, Text: "Incident window starts", Link: rep.Links.Incident},
		{Time: in.To.UTC(), Kind: eventEnd, Text: "Incident window ends", Link: rep.Links.Incident},
	}
	for _, d := range rep.Deploys {
		text, kind := fmt.Sprintf("Deploy of %s %s (%s)", d.Service, d.Version, SourceWord(d.Source)), eventDeploy
		if d.Kind == analysis.KindFirstSeen {
			text, kind = fmt.Sprintf("%s first seen, version %s (%s)", d.Service, d.Version, SourceWord(d.Source)), eventFirstSeen
		}
		if d.Comparison != nil {
			text += ": " + d.Comparison.Summary
		}
		ev = append(ev, Event{Time: d.At, Kind: kind, Text: text, Link: d.Link})
	}
	for _, e := range rep.Endpoints {
		step := time.Duration(e.Timeline.StepSeconds * float64(time.Second))
		var peak, errPeak *analysis.SeriesPoint
		for i := range e.Timeline.Points {
			p := &e.Timeline.Points[i]
			if p.Start.Before(in.From) || !p.Start.Before(to) {
				continue
			}
			if p.P99Ms != nil && (peak == nil || *p.P99Ms > *peak.P99Ms) {
				peak = p
			}
			if p.Errors > 0 && (errPeak == nil || errShare(p) > errShare(errPeak)) {
				errPeak = p
			}
		}
		window := func(p *analysis.SeriesPoint, extra ...string) string {
			kv := append([]string{"service", e.Service, "endpoint", e.Endpoint, "from", href.Time(p.Start), "to", href.Time(p.Start.Add(step))}, extra...)
			return base + href.With("/search", kv...)
		}
		if peak != nil {
			ev = append(ev, Event{Time: peak.Start, Kind: eventP99Peak, Link: window(peak, "sort", "slowest"),
				Text: fmt.Sprintf("p99 of %s %s peaks at %s (%d requests in the %s from %s)", e.Service, e.Endpoint,
					units.Ms(*peak.P99Ms), peak.Count, units.Duration(step), peak.Start.UTC().Format("15:04:05"))})
		}
		if errPeak != nil {
			ev = append(ev, Event{Time: errPeak.Start, Kind: eventErrorPeak, Link: window(errPeak, "status", "error"),
				Text: fmt.Sprintf("Error rate of %s %s peaks at %s (%d of %d requests in the %s from %s)", e.Service, e.Endpoint,
					chart.FormatPercent(errShare(errPeak)), errPeak.Errors, errPeak.Count, units.Duration(step), errPeak.Start.UTC().Format("15:04:05"))})
		}
	}
	order := map[string]int{eventStart: 1, eventDeploy: 0, eventFirstSeen: 0, eventP99Peak: 2, eventErrorPeak: 3, eventEnd: 4}
	slices.SortStableFunc(ev, func(a, b Event) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(order[a.Kind], order[b.Kind]))
	})
	return ev
}

func errShare(p *analysis.SeriesPoint) float64 {
	if p.Count == 0 {
		return 0
	}
	return float64(p.Errors) / float64(p.Count)
}

// summaryItems is how many endpoints, deploys and budgets the summary names.
const summaryItems = 2

// summary writes the report's opening paragraph from its numbers.
func summary(rep Report) string {
	var parts []string
	in := rep.Incident
	parts = append(parts, fmt.Sprintf("%s, %s (%s).", in.Title, HumanRange(in.From, in.To), HumanDuration(in.To.Sub(in.From))))
	// The summary must fit one screen: at most two endpoints, two
	// deploys and two budgets; the sections below carry the rest.
	for i, e := range rep.Endpoints {
		if i == summaryItems {
			parts = append(parts, fmt.Sprintf("%d more endpoints are examined below.", len(rep.Endpoints)-i))
			break
		}
		st := e.During
		s := fmt.Sprintf("%s %s served %s requests during the incident (%s errors); p99 %s, p50 %s.",
			e.Service, e.Endpoint, chart.FormatCount(float64(st.Requests)), chart.FormatPercent(st.ErrorRate),
			units.Ms(st.Percentiles.P99Ms), units.Ms(st.Percentiles.P50Ms))
		if e.Impact != nil && e.Impact.Before.Count > 0 {
			s += fmt.Sprintf(" Against the %s before: %s.", HumanDuration(e.Impact.Before.To.Sub(e.Impact.Before.From)), e.Impact.Summary)
		}
		if e.Outliers != nil && len(e.Outliers.Groups) > 0 {
			g := e.Outliers.Groups[0]
			s += fmt.Sprintf(" The slowest requests were mostly %s (%s of the tail, %s excess each); fixing it would bring p99 from %s to %s.",
				g.Label, chart.FormatPercent(g.Share), units.Ms(g.ExcessMs), units.Ms(e.Outliers.P99Ms), units.Ms(g.CounterfactualP99Ms))
		}
		parts = append(parts, s)
	}
	deploys := 0
	for _, d := range rep.Deploys {
		if d.Comparison == nil || d.Comparison.Verdict == analysis.VerdictNoChange || d.Comparison.Baseline == analysis.BaselineNone || deploys == summaryItems {
			continue
		}
		deploys++
		when := "during"
		if !d.InRange {
			when = HumanDuration(in.From.Sub(d.At)) + " before"
		}
		parts = append(parts, fmt.Sprintf("Deploy %s %s at %s UTC, %s the incident: %s.", d.Service, d.Version,
			d.At.UTC().Format("15:04"), when, d.Comparison.Summary))
	}
	budgets := 0
	for _, b := range rep.Budgets {
		if b.During.Total == 0 || budgets == summaryItems {
			continue
		}
		budgets++
		parts = append(parts, fmt.Sprintf("Budget %s: %s of requests under %s during the incident (target %s); the incident used %s of the %s error budget.",
			b.Name, units.SLOPercent(b.During.Attainment), units.Ms(b.During.Budget.ThresholdMs),
			units.SLOPercent(b.During.Budget.Target), chart.FormatPercent(b.PeriodBudgetSpent), b.During.Budget.Period))
	}
	return strings.Join(parts, " ")
}
