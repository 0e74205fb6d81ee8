package report

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/components/chart"
	"github.com/tailscope/tailscope/internal/units"
	"github.com/tailscope/tailscope/internal/wire"
)

// Markdown writes report.md: GitHub-flavoured Markdown that pastes
// cleanly into an incident document (Google Docs, Confluence, GitHub and
// Notion all take headings, pipe tables and links). Everything comes from
// the report, so the numbers are the page's. Text from users and from the
// traces is escaped; the reviewer's notes are pasted as written, since
// they are Markdown already.
func Markdown(rep Report) string {
	w := &mdWriter{}
	for _, section := range []func(*mdWriter, Report){
		mdHeader, mdSummary, mdFactors, mdTimeline, mdEvidence, mdExemplars, mdNotes, mdLinks,
	} {
		section(w, rep)
	}
	return w.String()
}

// mdWriter collects report.md line by line.
type mdWriter struct{ strings.Builder }

func (w *mdWriter) line(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }

// heading starts a section.
func (w *mdWriter) heading(title string) { w.line("## %s", title); w.line("") }

// paragraph writes a line of fixed text and a blank line.
func (w *mdWriter) paragraph(text string) { w.line("%s", text); w.line("") }

// table writes a table's header row and its alignment row.
func (w *mdWriter) table(header, align string) { w.line("%s", header); w.line("%s", align) }

// mdHeader writes the title and the incident's window, services and links.
func mdHeader(w *mdWriter, rep Report) {
	in := rep.Incident

	w.line("# Postmortem: %s", mdInline(in.Title))
	w.line("")
	w.line("- **Window:** %s (%s)", HumanRange(in.From, in.To), HumanDuration(in.To.Sub(in.From)))
	if len(in.Services) > 0 {
		w.line("- **Services:** %s", mdInline(strings.Join(in.Services, ", ")))
	} else {
		w.line("- **Services:** not named (the system's busiest entry point is examined)")
	}
	w.line("- **Report:** %s · %s · %s · %s", RevisionText(rep),
		mdLink("incident page", rep.Links.Incident), mdLink("HTML report", rep.Links.ReportHTML), mdLink("JSON", rep.Links.ReportJSON))
	w.line("- **Generated:** %s", rep.GeneratedAt.UTC().Format("2006-01-02 15:04:05 UTC"))
	w.line("")
}

// mdSummary writes the Summary section: the opening paragraph and the warnings.
func mdSummary(w *mdWriter, rep Report) {
	w.heading("Summary")
	w.line("%s", mdText(rep.Summary))
	for _, warning := range rep.Warnings {
		w.line("")
		w.line("> %s", mdText(warning))
	}
	w.line("")
}

// mdImpact writes the Impact section: each endpoint's numbers during the incident against the window before, and the budgets' burn.
func mdImpact(w *mdWriter, rep Report) {
	w.line("### Impact")
	w.line("")
	if len(rep.Endpoints) == 0 {
		w.paragraph("No endpoint had requests during the incident.")
	} else {
		w.table("| Endpoint | Requests | Errors | p50 | p95 | p99 | p99 before | Change in p99 |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
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
			w.line("| %s | %d | %s (%d) | %s | %s | %s | %s | %s |", mdLink(e.Service+" "+e.Endpoint, e.Links.Latency), st.Requests,
				chart.FormatPercent(st.ErrorRate), st.Errors, units.Ms(st.Percentiles.P50Ms), units.Ms(st.Percentiles.P95Ms),
				units.Ms(st.Percentiles.P99Ms), before, change)
		}
		w.line("")
		for _, e := range rep.Endpoints {
			if e.Impact == nil || e.Impact.Baseline == analysis.BaselineNone {
				continue // no baseline: the table says so, and there is nothing to tabulate
			}
			w.line("#### %s %s: the %s before vs the incident", mdInline(e.Service), mdInline(e.Endpoint), HumanDuration(e.Impact.Before.To.Sub(e.Impact.Before.From)))
			w.line("")
			mdComparison(w, *e.Impact, "Before", "During", e.Links.Impact)
		}
	}
}

// mdTimeline writes the Timeline section: the events in time order.
func mdTimeline(w *mdWriter, rep Report) {
	w.heading("Timeline")
	w.table("| Time (UTC) | Event |", "| --- | --- |")
	for _, t := range rep.Timeline {
		w.line("| %s | %s |", t.Time.UTC().Format("2006-01-02 15:04:05"), mdLink(t.Text, t.Link))
	}
	w.line("")
}

// mdFactors writes the Contributing factors section: what the slowest requests shared, per endpoint.
func mdFactors(w *mdWriter, rep Report) {
	w.heading("Contributing factors")
	w.paragraph("What the slowest requests (at or above the p99) of the incident shared that the faster requests did not; groups are ranked by how much p99 fixing each would save.")
	for _, e := range rep.Endpoints {
		w.line("### %s %s", mdInline(e.Service), mdInline(e.Endpoint))
		w.line("")
		o := e.Outliers
		switch {
		case o == nil:
			w.line("Not analysed: %s", mdInline(e.OutliersUnavailable))
		case o.OutlierCount == 0:
			w.line("No request reached the outlier threshold.")
		case len(o.Groups) == 0:
			w.line("%d of %d requests were at or above the p99 (%s); they do not share a dependency, tenant, payload or version more than chance allows.",
				o.OutlierCount, o.RequestCount, units.Ms(o.ThresholdMs))
		default:
			w.line("%d of %d requests were at or above the p99 (%s); %d of their traces were examined, with %d typical requests (p25–p75) setting each dependency's usual time.",
				o.OutlierCount, o.RequestCount, units.Ms(o.ThresholdMs), o.AnalyzedOutlierCount, o.BaselineCount)
			if note := o.SampledNote(); note != "" {
				w.line("")
				w.line("The counts and the p99 are %s.", note)
			}
			w.line("")
			for i, g := range o.Groups {
				if i == MaxGroups {
					break
				}
				var ex []string
				for _, id := range g.ExampleTraceIDs {
					ex = append(ex, mdLink(id.String()[:12], traceLink(rep, id.String())))
				}
				w.line("%d. **%s**: %s of the tail (%d requests), %s mean excess each; p99 would be %s if fixed (saves %s). Examples: %s",
					i+1, mdInline(g.Label), chart.FormatPercent(g.Share), g.Count, units.Ms(g.ExcessMs),
					units.Ms(g.CounterfactualP99Ms), units.Ms(g.PayoffMs), strings.Join(ex, ", "))
			}
		}
		w.line("")
		w.line("%s · %s", mdLink("Full outlier analysis", e.Links.Outliers), mdLink("slowest traces", e.Links.SlowTraces))
		w.line("")
	}
	if len(rep.Endpoints) == 0 {
		w.paragraph("Nothing to analyse: no requests during the incident.")
	}
}

// mdDeploys writes the Deploy comparison section: each deploy's before/after comparison.
func mdDeploys(w *mdWriter, rep Report) {
	in := rep.Incident
	w.line("### Deploys")
	w.line("")
	n := 0
	for _, d := range rep.Deploys {
		if d.Kind != analysis.KindFirstSeen {
			n++
		}
	}
	if n == 0 {
		w.paragraph("No deploys of these services from two hours before the range to its end.")
	}
	for _, d := range rep.Deploys {
		if d.Kind == analysis.KindFirstSeen {
			continue // a first sighting is not a deploy: the timeline lists it
		}
		when := "during the incident"
		if !d.InRange {
			when = HumanDuration(in.From.Sub(d.At)) + " before the incident"
		}
		w.line("#### %s %s at %s (%s, %s)", mdInline(d.Service), mdInline(d.Version), d.At.UTC().Format("2006-01-02 15:04:05 UTC"), SourceWord(d.Source), when)
		w.line("")
		if d.Note != "" {
			w.line("%s", mdText(d.Note))
			w.line("")
		}
		w.line("Compared: %s.", CompareRangesText(d))
		w.line("")
		if d.Comparison == nil {
			w.line("No comparison: %s", mdInline(d.Unavailable))
			w.line("")
			continue
		}
		if d.Comparison.Baseline == analysis.BaselineNone {
			w.line("No comparison: no requests before the deploy to compare with.")
			w.line("")
			continue
		}
		mdComparison(w, *d.Comparison, "Before", "After", d.ComparisonLink)
	}
}

// mdEvidence writes the Evidence section: the impact in numbers, the
// deploys and the budgets' burn.
func mdEvidence(w *mdWriter, rep Report) {
	w.heading("Evidence")
	mdImpact(w, rep)
	mdDeploys(w, rep)
	mdBudgets(w, rep)
}

// mdBudgets writes the Budget impact section: each budget's attainment, burn and costliest hop.
func mdBudgets(w *mdWriter, rep Report) {
	w.line("### Budgets")
	w.line("")
	if len(rep.Budgets) == 0 {
		w.paragraph("No latency budget covers these services.")
	} else {
		w.table("| Budget | Objective | Attainment during | Over threshold | Burn rate during | Period budget used | Burn rates at the end (1h / 6h / 24h) | Hop that cost the budget most |", "| --- | --- | ---: | ---: | ---: | ---: | --- | --- |")
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
			w.line("| %s | %s | %s | %d of %d | %s | %s | %s | %s |", mdLink(bu.Name, bu.Link), ObjectiveText(d.Budget),
				units.SLOPercent(d.Attainment), d.Bad, d.Total, analysis.FormatBurn(bu.BurnRateDuring), chart.FormatPercent(bu.PeriodBudgetSpent),
				strings.Join(burns, " / "), mdCell(WorstHopText(d.ComplianceReport)))
		}
		w.line("")
	}
}

// mdExemplars writes the Exemplar traces section: the pinned and worst traces with their critical paths.
func mdExemplars(w *mdWriter, rep Report) {
	w.heading("Exemplar traces")
	if len(rep.Exemplars) == 0 {
		w.paragraph("None: nothing is pinned and no outlier group formed.")
	} else {
		if rep.Revision > 0 {
			if rep.TracesKept {
				w.paragraph(fmt.Sprintf("Summaries taken when revision %d was finalized; the traces were kept with the incident, so their links open after retention too.", rep.Revision))
			} else {
				w.paragraph(fmt.Sprintf("Summaries taken when revision %d was finalized; a trace link opens only while retention keeps the trace.", rep.Revision))
			}
		}
		w.table("| Trace | Why | Root | Duration | Critical path |", "| --- | --- | --- | ---: | --- |")
		for _, e := range rep.Exemplars {
			if !e.Stored {
				w.line("| %s | %s | no longer stored | – | – |", mdLink(e.TraceID[:12], e.Link), mdCell(e.Reason))
				continue
			}
			var hops []string
			for _, h := range e.CriticalPath {
				hops = append(hops, fmt.Sprintf("%s %s (%s)", h.Label, units.Ms(h.CriticalMs), chart.FormatPercent(h.Share)))
			}
			w.line("| %s | %s | %s | %s | %s |", mdLink(e.TraceID[:12], e.Link), mdCell(e.Reason), mdCell(e.RootService+" "+e.RootName),
				units.Ms(e.DurationMs), mdCell(strings.Join(hops, "; ")))
		}
		w.line("")
	}
}

// mdNotes writes the Notes section: the reviewer's notes, pasted as
// Markdown with their headings under the section's (NotesMarkdown) and raw
// HTML and script links defused (sanitizeNotesMarkdown).
func mdNotes(w *mdWriter, rep Report) {
	in := rep.Incident
	w.heading("Notes")
	if strings.TrimSpace(in.Notes) == "" {
		w.line("_No notes._")
	} else {
		w.line("%s", strings.TrimRight(sanitizeNotesMarkdown(NotesMarkdown(in.Notes)), "\n"))
	}
	w.line("")
}

// mdLinks writes the Links section: every page behind the report.
func mdLinks(w *mdWriter, rep Report) {
	w.heading("Links")
	w.line("- %s", mdLink("Incident page", rep.Links.Incident))
	for _, e := range rep.Endpoints {
		w.line("- %s %s: %s · %s · %s", mdInline(e.Service), mdInline(e.Endpoint), mdLink("latency", e.Links.Latency),
			mdLink("outliers", e.Links.Outliers), mdLink("slowest traces", e.Links.SlowTraces))
	}
	for _, d := range rep.Deploys {
		if d.Kind != analysis.KindFirstSeen {
			w.line("- %s", mdLink("Deploy "+d.Service+" "+d.Version+": before and after", d.Link))
		}
	}
	for _, bu := range rep.Budgets {
		w.line("- %s", mdLink("Budget "+bu.Name, bu.Link))
	}
}

// mdComparison writes a comparison's verdict, its percentile
// table, the error-rate and traffic change and the largest hop changes.
func mdComparison(w *mdWriter, c analysis.Comparison, before, after, href string) {
	w.line("**%s:** %s", verdictWord(c.Verdict), mdInline(c.Summary))
	w.line("")
	if c.Before.Weighted || c.After.Weighted {
		w.line("The traces were sampled: counts, rates and percentiles are estimated from %d and %d stored requests, each counted as many times as its sampler's rate says.",
			c.Before.SampledCount, c.After.SampledCount)
		w.line("")
	}
	if c.Baseline == analysis.BaselineNone {
		w.line("Requests: none %s, %d %s (%.2f/s); error rate %s.", strings.ToLower(before), c.After.Count, strings.ToLower(after),
			c.After.RatePerS, chart.FormatPercent(c.After.ErrorRate))
		w.line("")
		w.line("%s", mdLink("Details", href))
		w.line("")
		return
	}
	ci := units.SLOPercent(c.CILevel) + " CI of the change"
	w.line("| Percentile | %s | %s | Change | %s |", before, after, ci)
	w.line("| --- | ---: | ---: | ---: | --- |")
	for _, p := range c.Percentiles {
		interval := "not tested (too few requests in the tail)"
		if p.Tested {
			interval = fmt.Sprintf("%s … %s (%s … %s)", units.SignedMs(p.CILowMs), units.SignedMs(p.CIHighMs), units.SignedPercent(p.CILowPct), units.SignedPercent(p.CIHighPct))
			if p.Significant {
				interval += ", significant"
			}
		}
		w.line("| p%s | %s | %s | %s (%s) | %s |", strconv.FormatFloat(p.Percentile, 'f', -1, 64), units.Ms(p.BeforeMs),
			units.Ms(p.AfterMs), units.SignedMs(p.DeltaMs), units.SignedPercent(p.DeltaPct), interval)
	}
	w.line("")
	sigWord := "not significant"
	if c.ErrorRate.Significant {
		sigWord = "significant"
	}
	w.line("Requests %d → %d (%.2f/s → %.2f/s); error rate %s → %s (%s, p = %.2g).", c.Before.Count, c.After.Count,
		c.Throughput.BeforePerS, c.Throughput.AfterPerS, chart.FormatPercent(c.ErrorRate.RateA), chart.FormatPercent(c.ErrorRate.RateB),
		sigWord, c.ErrorRate.PValue)
	w.line("")
	if len(c.Dependencies) > 0 {
		w.line("Tail: each side's %s, the percentile the summary leads with.", c.TailLabel())
		w.line("")
		w.line("| Hop | Tail %s | Tail %s | Tail change | Mean change |", strings.ToLower(before), strings.ToLower(after))
		w.line("| --- | ---: | ---: | ---: | ---: |")
		for i, d := range c.Dependencies {
			if i == 5 {
				break
			}
			w.line("| %s | %s | %s | %s | %s |", mdCell(d.Label), units.Ms(d.BeforeTailMs), units.Ms(d.AfterTailMs),
				units.SignedMs(d.TailDeltaMs), units.SignedMs(d.DeltaMs))
		}
		w.line("")
	}
	w.line("%s", mdLink("Details", href))
	w.line("")
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

// RevisionText says what a report's numbers are: a finalized revision,
// or computed from the spans stored when it was generated.
func RevisionText(rep Report) string {
	if rep.Revision == 0 || rep.FinalizedAt == nil {
		return "not finalized: numbers computed from the spans stored when generated"
	}
	v := ""
	if rep.TailscopeVersion != "" {
		v = " by tailscope " + mdInline(rep.TailscopeVersion)
	}
	return fmt.Sprintf("revision %d, finalized %s%s", rep.Revision, rep.FinalizedAt.UTC().Format("2006-01-02 15:04:05 UTC"), v)
}

// CompareRangesText states a deploy comparison's ranges:
// "before 14:10:00 – 14:30:00 UTC vs after 14:30:00 – 14:50:00 UTC".
func CompareRangesText(d Deploy) string {
	return "before " + HumanRange(d.Before.From, d.Before.To) + " vs after " + HumanRange(d.After.From, d.After.To)
}

// MaxGroups is how many outlier groups per endpoint a review lists.
const MaxGroups = 5

// WorstHopText names the hop that costs the budget most with its share of
// the time over the threshold: "feed-api → profile-svc (99%)".
func WorstHopText(rep analysis.ComplianceReport) string {
	switch rep.WorstHop {
	case "":
		return "–"
	case rep.Unbudgeted.Label:
		return fmt.Sprintf("hops without an allocation (%s)", chart.FormatPercent(rep.WorstHopContribution))
	}
	return fmt.Sprintf("%s (%s)", rep.WorstHop, chart.FormatPercent(rep.WorstHopContribution))
}

// ObjectiveText writes a budget's objective: "99% under 300 ms over 30d".
func ObjectiveText(b wire.Budget) string {
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
func traceLink(rep Report, id string) string {
	return strings.TrimSuffix(rep.Links.Incident, IncidentPath(rep.Incident.ID)) + "/traces/" + id
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
