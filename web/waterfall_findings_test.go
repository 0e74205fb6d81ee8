package web

import (
	"testing"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/store"
)

func TestFindingPattern(t *testing.T) {
	tests := []struct{ title, want string }{
		{"N+1: 100 × SELECT rows to db-shard-17", "N+1: N × SELECT rows to db-shard-*"},
		{"N+1: 98 × SELECT rows to db-shard-3", "N+1: N × SELECT rows to db-shard-*"},
		{"Slow postgresql statement: 1.61 s", "Slow postgresql statement: N s"},
		{"Retries: 3 attempts of GET /v2/profile to profile-svc", "Retries: N attempts of GET /v*/profile to profile-svc"},
	}
	for _, tt := range tests {
		if got := findingPattern(tt.title); got != tt.want {
			t.Errorf("findingPattern(%q) = %q, want %q", tt.title, got, tt.want)
		}
	}
}

// TestGroupFindings: findings of one kind and pattern fold into one group
// that counts them and keeps the largest time at stake (parallel shards'
// savings do not add up); groups keep the analysis' order, errors first,
// and only findingsAboveFold stay above the fold.
func TestGroupFindings(t *testing.T) {
	spans := []store.Span{{SpanID: store.SpanID{1}, Service: "gw", Name: "GET /"}}
	tree := analysis.NewTree(spans)
	id := []store.SpanID{spans[0].SpanID}
	fs := []analysis.Finding{
		{Kind: analysis.FindingTimeout, Title: "Timeout: GET /c after 121 ms", TimeMs: 121, SpanIDs: id},
		{Kind: analysis.FindingNPlusOne, Title: "N+1: 100 × SELECT to db-shard-1", TimeMs: 90, SpanIDs: id},
		{Kind: analysis.FindingNPlusOne, Title: "N+1: 99 × SELECT to db-shard-2", TimeMs: 95, SpanIDs: id},
		{Kind: analysis.FindingSequentialFanOut, Title: "Sequential calls to 2 dependencies could run in parallel", TimeMs: 2.2, SpanIDs: id},
		{Kind: analysis.FindingGap, Title: "Uninstrumented time in GET /: 12 ms", TimeMs: 12, SpanIDs: id},
	}
	got := groupFindings(fs, tree)
	want := []struct {
		kind, title string
		count       int
		timeMs      float64
		folded      bool
	}{
		{analysis.FindingTimeout, "Timeout: GET /c after 121 ms", 1, 121, false},
		{analysis.FindingNPlusOne, "SELECT to db-shard-*", 2, 95, false},
		{analysis.FindingSequentialFanOut, "Sequential calls to 2 dependencies could run in parallel", 1, 2.2, false},
		{analysis.FindingGap, "Uninstrumented time in GET /: 12 ms", 1, 12, true},
	}
	if len(got) != len(want) {
		t.Fatalf("%d groups, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Kind != w.kind || g.Title != w.title || g.Count != w.count || g.TimeMs != w.timeMs || g.Folded != w.folded {
			t.Errorf("group %d = %s %q ×%d %.1f ms folded=%v; want %s %q ×%d %.1f ms folded=%v",
				i, g.Kind, g.Title, g.Count, g.TimeMs, g.Folded, w.kind, w.title, w.count, w.timeMs, w.folded)
		}
	}
	if !got[0].Severe || got[1].Severe {
		t.Error("only the timeout is severe")
	}
}
