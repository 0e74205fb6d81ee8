package web

import (
	"regexp"
	"strings"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/components"
)

// findingsAboveFold is how many finding groups the trace page shows before
// "more findings": the waterfall must stay near the top of the page.
const findingsAboveFold = 3

// maxGroupLinks bounds the span links of one finding group.
const maxGroupLinks = 12

// identDigits are digits inside an identifier (db-shard-17, op_3, v2):
// the part that differs between findings of one pattern.
var identDigits = regexp.MustCompile(`([A-Za-z_./-])[0-9]+`)

// lonelyNumbers are counts and durations ("59 ×", "2.2 ms"), but not the
// 1 of "N+1".
var lonelyNumbers = regexp.MustCompile(`(^|[^+0-9A-Za-z_./-])[0-9]+(\.[0-9]+)?`)

// findingPattern is a finding's title with the numbers that vary between
// instances of one pattern masked: "N+1: 100 × SELECT to db-shard-17" and
// "N+1: 98 × SELECT to db-shard-3" are both "N+1: N × SELECT to db-shard-*".
func findingPattern(title string) string {
	// Whole numbers first, so the decimals of "1.61 s" are not taken
	// for an identifier's digits.
	p := lonelyNumbers.ReplaceAllString(title, "${1}N")
	return identDigits.ReplaceAllString(p, "${1}*")
}

// groupFindings folds findings of one kind and pattern into a group with a
// count and its largest time at stake, in the analysis' order (errors and
// timeouts first, then time at stake), so 59 near-identical N+1 findings
// take one line.
func groupFindings(fs []analysis.Finding, tree *analysis.Tree) []components.FindingGroup {
	var out []components.FindingGroup
	at := map[string]int{}
	for _, f := range fs {
		pat := findingPattern(f.Title)
		key := f.Kind + "\x00" + pat
		i, ok := at[key]
		if !ok {
			i = len(out)
			at[key] = i
			out = append(out, components.FindingGroup{
				Kind: f.Kind, Label: findingLabel(f.Kind), Title: f.Title, Detail: f.Detail,
				Severe: f.Kind == analysis.FindingError || f.Kind == analysis.FindingTimeout,
			})
		}
		g := &out[i]
		g.Count++
		// The largest, not the sum: findings of one pattern often ran in
		// parallel (one per shard), so their savings do not add up.
		g.TimeMs = max(g.TimeMs, f.TimeMs)
		if g.Count == 2 {
			g.Title = groupTitle(pat)
		}
		for _, id := range f.SpanIDs {
			if len(g.Spans) == maxGroupLinks {
				break
			}
			if n, ok := tree.Node(id); ok {
				sp := tree.Span(n)
				g.Spans = append(g.Spans, components.SpanLink{Label: sp.Service + " " + sp.Name, Href: "?span=" + id.String()})
			}
		}
	}
	for i := range out {
		out[i].Folded = i >= findingsAboveFold
	}
	return out
}

// groupTitle is what a group's count is of: the pattern after its kind
// and per-finding count ("N+1: N × SELECT to db-shard-*" is 59 ×
// "SELECT to db-shard-*" under an N+1 badge).
func groupTitle(pattern string) string {
	if _, rest, ok := strings.Cut(pattern, ": N × "); ok {
		return rest
	}
	return pattern
}

// findingLabel names a finding kind in a few letters for its badge.
func findingLabel(kind string) string {
	switch kind {
	case analysis.FindingNPlusOne:
		return "N+1"
	case analysis.FindingSequentialFanOut:
		return "sequential"
	case analysis.FindingSlowDB:
		return "slow DB"
	case analysis.FindingLargePayload:
		return "payload"
	case analysis.FindingGap:
		return "gap"
	}
	return strings.ReplaceAll(kind, "_", " ")
}
