package web

import (
	"fmt"
	"github.com/tailscope/tailscope/internal/units"
	"github.com/tailscope/tailscope/internal/wire"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/components/chart"
)

// reportMarkdown writes report.md: GitHub-flavoured Markdown that pastes
// cleanly into an incident document (Google Docs, Confluence, GitHub and
// Notion all take headings, pipe tables and links). Everything comes from
// the report, so the numbers are the page's. Text from users and from the
// traces is escaped; the reviewer's notes are pasted as Markdown, with
// raw HTML and script links defused (sanitizeNotesMarkdown).
func reportMarkdown(rep IncidentReport) string {
	var b strings.Builder
	in := rep.Incident
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }

	line("# Postmortem: %s", mdInline(in.Title))
	line("")
	line("- **Window:** %s (%s)", humanRange(in.From, in.To), humanDuration(in.To.Sub(in.From)))
	if len(in.Services) > 0 {
		line("- **Services:** %s", mdInline(strings.Join(in.Services, ", ")))
	} else {
		line("- **Services:** not named (the system's busiest entry point is examined)")
	}
	line("- **Report:** generated %s from %s · %s · %s", rep.GeneratedAt.UTC().Format("2006-01-02 15:04:05 UTC"),
		mdLink("incident page", rep.Links.Incident), mdLink("HTML report", rep.Links.ReportHTML), mdLink("JSON", rep.Links.ReportJSON))
	line("")

	line("## Summary")
	line("")
	line("%s", mdText(rep.Summary))
	for _, w := range rep.Warnings {
		line("")
		line("> %s", mdText(w))
	}
	line("")

	line("## Impact")
	line("")
	if len(rep.Endpoints) == 0 {
		line("No endpoint had requests during the incident.")
		line("")
	} else {
		line("| Endpoint | Requests | Errors | p50 | p95 | p99 | p99 before | Change in p99 |")
		line("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
		for _, e := range rep.Endpoints {
			st := e.During
			before, change := "–", mdCell(e.ImpactUnavailable)
			switch {
			case e.Impact != nil && e.Impact.Baseline == analysis.BaselineNone:
				change = "new — no baseline"
			case e.Impact != nil:
				before = units.Ms(e.Impact.Before.Percentiles.P99Ms)
				change = mdCell(percentileChange(*e.Impact, 99))
			}
			line("| %s | %d | %s (%d) | %s | %s | %s | %s | %s |", mdLink(e.Service+" "+e.Endpoint, e.Links.Latency), st.Requests,
				chart.FormatPercent(st.ErrorRate), st.Errors, units.Ms(st.Percentiles.P50Ms), units.Ms(st.Percentiles.P95Ms),
				units.Ms(st.Percentiles.P99Ms), before, change)
		}
		line("")
		for _, e := range rep.Endpoints {
			if e.Impact == nil {
				continue
			}
			line("### %s %s: the %s before vs the incident", mdInline(e.Service), mdInline(e.Endpoint), humanDuration(e.Impact.Before.To.Sub(e.Impact.Before.From)))
			line("")
			writeComparisonMarkdown(&b, *e.Impact, "Before", "During", e.Links.Impact)
		}
	}
	if len(rep.Budgets) > 0 {
		for _, bu := range rep.Budgets {
			d := bu.During
			line("- Budget %s (%s): %s of requests under %s during the incident, %d of %d over; burn rate %s; %s of the %s error budget used.",
				mdLink(bu.Name, bu.Link), budgetObjectiveText(d.Budget), units.SLOPercent(d.Attainment), units.Ms(d.Budget.ThresholdMs),
				d.Bad, d.Total, analysis.FormatBurn(bu.BurnRateDuring), chart.FormatPercent(bu.PeriodBudgetSpent), d.Budget.Period)
		}
		line("")
	}

	line("## Timeline")
	line("")
	line("| Time (UTC) | Event |")
	line("| --- | --- |")
	for _, t := range rep.Timeline {
		line("| %s | %s |", t.Time.UTC().Format("2006-01-02 15:04:05"), mdLink(t.Text, t.Link))
	}
	line("")

	line("## Contributing factors")
	line("")
	line("What the slowest requests (at or above the p99) of the incident shared that the faster requests did not; groups are ranked by how much p99 fixing each would save.")
	line("")
	for _, e := range rep.Endpoints {
		line("### %s %s", mdInline(e.Service), mdInline(e.Endpoint))
		line("")
		o := e.Outliers
		switch {
		case o == nil:
			line("Not analysed: %s", mdInline(e.OutliersUnavailable))
		case o.OutlierCount == 0:
			line("No request reached the outlier threshold.")
		case len(o.Groups) == 0:
			line("%d of %d requests were at or above the p99 (%s); they do not share a dependency, tenant, payload or version more than chance allows.",
				o.OutlierCount, o.RequestCount, units.Ms(o.ThresholdMs))
		default:
			line("%d of %d requests were at or above the p99 (%s); %d of their traces were examined, with %d typical requests (p25–p75) setting each dependency's usual time.",
				o.OutlierCount, o.RequestCount, units.Ms(o.ThresholdMs), o.AnalyzedOutlierCount, o.BaselineCount)
			line("")
			for i, g := range o.Groups {
				if i == maxReviewGroups {
					break
				}
				var ex []string
				for _, id := range g.ExampleTraceIDs {
					ex = append(ex, mdLink(id.String()[:12], traceLink(rep, id.String())))
				}
				line("%d. **%s**: %s of the tail (%d requests), %s mean excess each; p99 would be %s if fixed (saves %s). Examples: %s",
					i+1, mdInline(g.Label), chart.FormatPercent(g.Share), g.Count, units.Ms(g.ExcessMs),
					units.Ms(g.CounterfactualP99Ms), units.Ms(g.PayoffMs), strings.Join(ex, ", "))
			}
		}
		line("")
		line("%s · %s", mdLink("Full outlier analysis", e.Links.Outliers), mdLink("slowest traces", e.Links.SlowTraces))
		line("")
	}
	if len(rep.Endpoints) == 0 {
		line("Nothing to analyse: no requests during the incident.")
		line("")
	}

	line("## Deploy comparison")
	line("")
	if len(rep.Deploys) == 0 {
		line("No deploy markers for these services from two hours before the range to its end.")
		line("")
	}
	for _, d := range rep.Deploys {
		when := "during the incident"
		if !d.InRange {
			when = humanDuration(in.From.Sub(d.At)) + " before the incident"
		}
		kind := ""
		if d.Kind == analysis.KindFirstSeen {
			kind = "first seen, "
		}
		line("### %s %s at %s (%s%s, %s)", mdInline(d.Service), mdInline(d.Version), d.At.UTC().Format("2006-01-02 15:04:05 UTC"), kind, sourceWord(d.Source), when)
		line("")
		if d.Note != "" {
			line("%s", mdText(d.Note))
			line("")
		}
		if d.Kind == analysis.KindFirstSeen {
			line("The first version of %s tailscope saw: it had no requests before, so this is not a deploy to compare.", mdInline(d.Service))
			line("")
			continue
		}
		if d.Comparison == nil {
			line("No comparison: %s", mdInline(d.Unavailable))
			line("")
			continue
		}
		writeComparisonMarkdown(&b, *d.Comparison, "Before", "After", d.Link)
	}

	line("## Budget impact")
	line("")
	if len(rep.Budgets) == 0 {
		line("No latency budget covers these services.")
		line("")
	} else {
		line("| Budget | Objective | Attainment during | Over threshold | Burn rate during | Period budget used | Burn rates at the end (1h / 6h / 24h) | Hop that cost the budget most |")
		line("| --- | --- | ---: | ---: | ---: | ---: | --- | --- |")
		for _, bu := range rep.Budgets {
			d := bu.During
			var burns []string
			for _, br := range d.BurnRates {
				s := analysis.FormatBurn(br.BurnRate)
				if br.Alerting {
					s += " **alert**"
				}
				burns = append(burns, s)
			}
			line("| %s | %s | %s | %d of %d | %s | %s | %s | %s |", mdLink(bu.Name, bu.Link), budgetObjectiveText(d.Budget),
				units.SLOPercent(d.Attainment), d.Bad, d.Total, analysis.FormatBurn(bu.BurnRateDuring), chart.FormatPercent(bu.PeriodBudgetSpent),
				strings.Join(burns, " / "), mdCell(worstHopText(d.ComplianceReport)))
		}
		line("")
	}

	line("## Exemplar traces")
	line("")
	if len(rep.Exemplars) == 0 {
		line("None: nothing is pinned and no outlier group formed.")
		line("")
	} else {
		line("| Trace | Why | Root | Duration | Critical path |")
		line("| --- | --- | --- | ---: | --- |")
		for _, e := range rep.Exemplars {
			if !e.Stored {
				line("| %s | %s | no longer stored | – | – |", mdLink(e.TraceID[:12], e.Link), mdCell(e.Reason))
				continue
			}
			var hops []string
			for _, h := range e.CriticalPath {
				hops = append(hops, fmt.Sprintf("%s %s (%s)", h.Label, units.Ms(h.CriticalMs), chart.FormatPercent(h.Share)))
			}
			line("| %s | %s | %s | %s | %s |", mdLink(e.TraceID[:12], e.Link), mdCell(e.Reason), mdCell(e.RootService+" "+e.RootName),
				units.Ms(e.DurationMs), mdCell(strings.Join(hops, "; ")))
		}
		line("")
	}

	line("## Notes")
	line("")
	if strings.TrimSpace(in.Notes) == "" {
		line("_No notes._")
	} else {
		line("%s", strings.TrimRight(sanitizeNotesMarkdown(in.Notes), "\n"))
	}
	line("")

	line("## Links")
	line("")
	line("- %s", mdLink("Incident page", rep.Links.Incident))
	for _, e := range rep.Endpoints {
		line("- %s %s: %s · %s · %s", mdInline(e.Service), mdInline(e.Endpoint), mdLink("latency", e.Links.Latency),
			mdLink("outliers", e.Links.Outliers), mdLink("slowest traces", e.Links.SlowTraces))
	}
	for _, d := range rep.Deploys {
		line("- %s", mdLink("Deploy "+d.Service+" "+d.Version+": before and after", d.Link))
	}
	for _, bu := range rep.Budgets {
		line("- %s", mdLink("Budget "+bu.Name, bu.Link))
	}
	return b.String()
}

// writeComparisonMarkdown writes a comparison's verdict, its percentile
// table, the error-rate and traffic change and the largest hop changes.
func writeComparisonMarkdown(b *strings.Builder, c analysis.Comparison, before, after, href string) {
	line := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	line("**%s:** %s", verdictWord(c.Verdict), mdInline(c.Summary))
	line("")
	if c.Baseline == analysis.BaselineNone {
		line("Requests: none %s, %d %s (%.2f/s); error rate %s.", strings.ToLower(before), c.After.Count, strings.ToLower(after),
			c.After.RatePerS, chart.FormatPercent(c.After.ErrorRate))
		line("")
		line("%s", mdLink("Details", href))
		line("")
		return
	}
	ci := units.SLOPercent(c.CILevel) + " CI of the change"
	line("| Percentile | %s | %s | Change | %s |", before, after, ci)
	line("| --- | ---: | ---: | ---: | --- |")
	for _, p := range c.Percentiles {
		interval := "not tested (too few requests in the tail)"
		if p.Tested {
			interval = fmt.Sprintf("%s … %s (%s … %s)", units.SignedMs(p.CILowMs), units.SignedMs(p.CIHighMs), units.SignedPercent(p.CILowPct), units.SignedPercent(p.CIHighPct))
			if p.Significant {
				interval += ", significant"
			}
		}
		line("| p%s | %s | %s | %s (%s) | %s |", strconv.FormatFloat(p.Percentile, 'f', -1, 64), units.Ms(p.BeforeMs),
			units.Ms(p.AfterMs), units.SignedMs(p.DeltaMs), units.SignedPercent(p.DeltaPct), interval)
	}
	line("")
	sigWord := "not significant"
	if c.ErrorRate.Significant {
		sigWord = "significant"
	}
	line("Requests %d → %d (%.2f/s → %.2f/s); error rate %s → %s (%s, p = %.2g).", c.Before.Count, c.After.Count,
		c.Throughput.BeforePerS, c.Throughput.AfterPerS, chart.FormatPercent(c.ErrorRate.RateA), chart.FormatPercent(c.ErrorRate.RateB),
		sigWord, c.ErrorRate.PValue)
	line("")
	if len(c.Dependencies) > 0 {
		line("| Hop | Tail %s | Tail %s | Tail change | Mean change |", strings.ToLower(before), strings.ToLower(after))
		line("| --- | ---: | ---: | ---: | ---: |")
		for i, d := range c.Dependencies {
			if i == 5 {
				break
			}
			line("| %s | %s | %s | %s | %s |", mdCell(d.Label), units.Ms(d.BeforeTailMs), units.Ms(d.AfterTailMs),
				units.SignedMs(d.TailDeltaMs), units.SignedMs(d.DeltaMs))
		}
		line("")
	}
	line("%s", mdLink("Details", href))
	line("")
}

// percentileChange writes "+330% [CI +250% … +410%], regression" for one
// percentile of a comparison.
func percentileChange(c analysis.Comparison, pct float64) string {
	for _, p := range c.Percentiles {
		if p.Percentile != pct {
			continue
		}
		s := units.SignedPercent(p.DeltaPct)
		if p.Tested {
			s += fmt.Sprintf(" [CI %s … %s]", units.SignedPercent(p.CILowPct), units.SignedPercent(p.CIHighPct))
		}
		switch {
		case !p.Tested:
			s += ", too few requests to test"
		case p.Significant && p.DeltaMs > 0:
			s += ", slower"
		case p.Significant:
			s += ", faster"
		default:
			s += ", no significant change"
		}
		return s
	}
	return "–"
}

func budgetObjectiveText(b wire.Budget) string {
	return fmt.Sprintf("%s under %s over %s", units.SLOPercent(b.Target), units.Ms(b.ThresholdMs), b.Period)
}

// verdictWord heads a verdict line.
func verdictWord(v string) string {
	switch v {
	case analysis.VerdictRegressed:
		return "Regression"
	case analysis.VerdictImproved:
		return "Improvement"
	case analysis.VerdictNew:
		return "New — no baseline"
	default:
		return "No significant change"
	}
}

// traceLink is a trace's page, with the report's base.
func traceLink(rep IncidentReport, id string) string {
	return strings.TrimSuffix(rep.Links.Incident, incidentPath(rep.Incident.ID)) + "/traces/" + id
}

// mdLineStart matches text that would start a list at the start of a line.
var mdLineStart = regexp.MustCompile(`^(\d+)([.)])|^([-+])`)

// mdText escapes text from users and traces for a line of Markdown; at
// the start of a line "1. Outage" or "- x" must stay text, not a list.
func mdText(s string) string {
	s = mdInline(s)
	if m := mdLineStart.FindStringSubmatchIndex(s); m != nil {
		if m[2] >= 0 {
			s = s[:m[4]] + `\` + s[m[4]:]
		} else {
			s = `\` + s
		}
	}
	return s
}

// mdInline escapes text placed inside a line (table cells, link text,
// headings after their marker). It escapes only what would turn into
// syntax, so the text still reads well where Markdown is not rendered:
// emphasis and code marks, HTML, table pipes, "](" that would close a
// link, underscores at word edges, and a "#" or ">" that starts the text.
func mdInline(s string) string { return mdEscape(s, false) }

// mdEscape is mdInline; brackets escapes every "[" and "]" too, as link
// text needs (an unbalanced bracket there would move the link).
func mdEscape(s string, brackets bool) string {
	rs := []rune(s)
	var b strings.Builder
	b.Grow(len(s))
	word := func(i int) bool {
		return i >= 0 && i < len(rs) && (unicode.IsLetter(rs[i]) || unicode.IsDigit(rs[i]))
	}
	for i, r := range rs {
		switch {
		case r == '\n' || r == '\r':
			b.WriteByte(' ')
			continue
		case strings.ContainsRune("\\`*<|~", r),
			r == '_' && !(word(i-1) && word(i+1)),
			r == ']' && i+1 < len(rs) && strings.ContainsRune("([:", rs[i+1]),
			brackets && (r == '[' || r == ']'),
			(r == '#' || r == '>') && i == 0:
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// mdCell is mdInline for a table cell, never empty.
func mdCell(s string) string {
	if strings.TrimSpace(s) == "" {
		return "–"
	}
	return mdInline(s)
}

// mdLink writes [text](url) with both escaped; without a URL it is text.
func mdLink(text, url string) string {
	if url == "" {
		return mdInline(text)
	}
	return "[" + mdEscape(text, true) + "](" + mdURL.Replace(url) + ")"
}

// mdURL keeps a link destination in one piece.
var mdURL = strings.NewReplacer(" ", "%20", "(", "%28", ")", "%29", "<", "%3C", ">", "%3E", "\n", "", "\r", "")
