package web

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/store"
)

// generatedAt matches the one part of each export that says when it was
// rendered: the Markdown header's "Generated:" item, report.html's
// generated-at span and report.json's generated_at.
var generatedAt = regexp.MustCompile(`(\*\*Generated:\*\* |data-testid="generated-at">|"generated_at": ")(?:<time datetime="[^"]+" data-fmt="datetime">)?\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?( UTC|Z)`)

// withoutGenerated blanks an export's generated-at time, the only part
// allowed to change between two exports of the same incident.
func withoutGenerated(t *testing.T, name string, body []byte) string {
	t.Helper()
	out, n := generatedAt.ReplaceAllString(string(body), "${1}<generated>"), len(generatedAt.FindAllIndex(body, -1))
	if n != 1 {
		t.Fatalf("%s has %d generated-at times, want 1", name, n)
	}
	return out
}

// TestIncidentReportBoundedByWindow: an incident's page and exports do
// not move when traffic (a new deploy, a recovery, a new regression)
// arrives after the window and the clock moves on. Read without a cache,
// so every number is computed again.
func TestIncidentReportBoundedByWindow(t *testing.T) {
	f := newRVFixtureSmall(t)
	var clock atomic.Int64
	clock.Store(rvNow().UnixNano())
	h, _ := newTestHandlers(t, rvFixedTimes{f.db}, func() time.Time { return time.Unix(0, clock.Load()).UTC() })
	p := fmt.Sprintf("/incidents/%d", f.incident.ID)
	exports := []string{p + "/report.md", p + "/report.html", p + "/report.json"}
	read := func() map[string]string {
		out := map[string]string{}
		for _, target := range exports {
			w := rvGet(t, h, target)
			if w.Code != http.StatusOK {
				t.Fatalf("%s: status %d: %s", target, w.Code, rvHead(w.Body.String(), 10))
			}
			name := target[len(p)+1:]
			out[name] = withoutGenerated(t, name, w.Body.Bytes())
		}
		return out
	}
	before := read()

	// After the window (it ends at rvStart+50m): v3 of feed-api, slow on
	// every request, deployed at rvStart+52m, traffic until well after the
	// old clock; then the clock moves on by an hour.
	ctx := context.Background()
	slow := analysistest.Cause{Name: "slow-all", Dependency: analysistest.Postgres, Probability: 1, Extra: 2 * time.Second}
	v3 := analysistest.Generate(analysistest.Scenario{Seed: 23, Start: rvStart.Add(52 * time.Minute), Window: 40 * time.Minute, Traces: 600,
		Version: "v3", Parallel: true, ErrorRate: 0.3, Causes: []analysistest.Cause{slow}})
	if err := f.db.WriteSpans(ctx, v3.Spans); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.RecordDeploy(ctx, store.Deploy{Service: analysistest.FeedAPI, Version: "v3", At: rvStart.Add(52 * time.Minute), Source: store.DeploySourceAPI}); err != nil {
		t.Fatal(err)
	}
	clock.Store(rvNow().Add(time.Hour).UnixNano())
	after := read()
	for name, b := range before {
		if after[name] != b {
			t.Errorf("%s changed after traffic past the window, near %q", name, firstDiffText([]byte(b), []byte(after[name])))
		}
	}
}
