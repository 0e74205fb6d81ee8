package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/report"
	"github.com/tailscope/tailscope/store"
)

// TestIncidentSnapshots: a finalized incident's exports render from its
// snapshot, identical but for the generated-at time whatever arrives or
// changes afterwards; Recompute stores a new revision, older ones stay
// readable with ?revision=N, and the revisions are listed.
func TestIncidentSnapshots(t *testing.T) {
	f := newRVFixtureSmall(t)
	ctx := context.Background()
	var clock atomic.Int64
	clock.Store(rvNow().UnixNano())
	h, _ := newTestHandlers(t, f.db, func() time.Time { return time.Unix(0, clock.Load()).UTC() })
	p := fmt.Sprintf("/incidents/%d", f.incident.ID)
	api := "/api/v1" + p
	read := func(query string) map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, name := range []string{"report.md", "report.html", "report.json"} {
			w := rvGet(t, h, p+"/"+name+query)
			if w.Code != http.StatusOK {
				t.Fatalf("%s%s: status %d: %s", name, query, w.Code, rvHead(w.Body.String(), 10))
			}
			out[name] = withoutGenerated(t, name, w.Body.Bytes())
		}
		return out
	}
	post := func(target string, want int) revisionJSON {
		t.Helper()
		w := rvDo(t, h, http.MethodPost, target, "")
		if w.Code != want {
			t.Fatalf("POST %s: status %d, want %d: %s", target, w.Code, want, rvHead(w.Body.String(), 10))
		}
		var rv revisionJSON
		if err := json.Unmarshal(w.Body.Bytes(), &rv); err != nil {
			t.Fatal(err)
		}
		return rv
	}

	live := read("")
	if !strings.Contains(live["report.md"], "not finalized") {
		t.Errorf("report.md of an incident not finalized does not say so")
	}
	if rv := post(api+"/finalize", http.StatusCreated); rv.Revision != 1 || !strings.HasSuffix(rv.Links.ReportMD, p+"/report.md?revision=1") {
		t.Fatalf("finalize = %+v, want revision 1 with its links", rv)
	}
	if rv := post(api+"/finalize", http.StatusOK); rv.Revision != 1 {
		t.Errorf("finalize again = revision %d, want the first (1) again", rv.Revision)
	}
	first := read("")
	if !regexp.MustCompile(`revision 1, finalized \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC by tailscope test`).MatchString(first["report.md"]) ||
		!strings.Contains(first["report.md"], "/report.html?revision=1") {
		t.Errorf("report.md does not name its revision:\n%s", rvHead(first["report.md"], 8))
	}
	var rep report.Report
	if err := json.Unmarshal([]byte(strings.Replace(first["report.json"], "<generated>", "2026-01-01T00:00:00Z", 1)), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Revision != 1 || rep.FinalizedAt == nil || rep.TailscopeVersion != "test" || rep.Parameters.DeployWindow != "1h0m0s" {
		t.Errorf("report.json revision %d finalized %v version %q parameters %+v", rep.Revision, rep.FinalizedAt, rep.TailscopeVersion, rep.Parameters)
	}

	// Afterwards: traffic and a deploy after the window, an edited
	// incident, the clock an hour on.
	v3 := analysistest.Generate(analysistest.Scenario{Seed: 24, Start: rvStart.Add(52 * time.Minute), Window: 30 * time.Minute, Traces: 300, Version: "v3", ErrorRate: 0.5})
	if err := f.db.WriteSpans(ctx, v3.Spans); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.RecordDeploy(ctx, store.Deploy{Service: analysistest.FeedAPI, Version: "v3", At: rvStart.Add(52 * time.Minute), Source: store.DeploySourceAPI}); err != nil {
		t.Fatal(err)
	}
	edited := f.incident
	edited.Notes = "## Follow-up\n\n- [ ] add an index\n"
	edited.From = rvStart.Add(20 * time.Minute)
	if _, err := f.db.UpdateIncident(ctx, edited); err != nil {
		t.Fatal(err)
	}
	clock.Store(rvNow().Add(time.Hour).UnixNano())
	for name, b := range read("") {
		if first[name] != b {
			t.Errorf("%s of revision 1 changed afterwards, near %q", name, firstDiffText([]byte(first[name]), []byte(b)))
		}
	}
	if page := rvGet(t, h, p).Body.String(); !strings.Contains(page, `data-testid="report-stale"`) || !strings.Contains(page, "Revision 1") {
		t.Errorf("the page of an edited finalized incident does not show revision 1 and say it is stale")
	}

	if rv := post(api+"/recompute", http.StatusCreated); rv.Revision != 2 {
		t.Fatalf("recompute = revision %d, want 2", rv.Revision)
	}
	second := read("")
	if !strings.Contains(second["report.md"], "- [ ] add an index") || !strings.Contains(second["report.md"], "revision 2,") {
		t.Errorf("revision 2 lacks the edit or does not name itself")
	}
	for name, b := range read("?revision=1") {
		if first[name] != b {
			t.Errorf("%s?revision=1 differs from revision 1 as first exported, near %q", name, firstDiffText([]byte(first[name]), []byte(b)))
		}
	}
	w := rvGet(t, h, api+"/revisions")
	var list struct{ Revisions []revisionJSON }
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || len(list.Revisions) != 2 || list.Revisions[0].Revision != 2 {
		t.Errorf("revisions = %s, want 2 then 1", w.Body.String())
	}
	if page := rvGet(t, h, p).Body.String(); !strings.Contains(page, "2 finalized revisions") || strings.Contains(page, `data-testid="report-stale"`) {
		t.Errorf("the page does not list two revisions, or says revision 2 is stale")
	}
	for target, want := range map[string]int{
		p + "/report.md?revision=0": http.StatusBadRequest, p + "/report.json?revision=x": http.StatusBadRequest,
		p + "/report.html?revision=9": http.StatusNotFound, p + "?revision=9": http.StatusNotFound,
		"/api/v1/incidents/999/finalize": http.StatusNotFound,
	} {
		method := http.MethodGet
		if strings.HasSuffix(target, "/finalize") {
			method = http.MethodPost
		}
		if w := rvDo(t, h, method, target, ""); w.Code != want {
			t.Errorf("%s %s: status %d, want %d", method, target, w.Code, want)
		}
	}
}
