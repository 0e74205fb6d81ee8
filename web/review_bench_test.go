package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tailscope/tailscope/report"
	"github.com/tailscope/tailscope/static"
)

// BenchmarkIncidentReport builds the fixture incident's report with no
// cache: the timeline, impact comparison, outlier analysis, deploy
// comparison, budget compliance (range and period) and exemplars, over
// 3,000 requests (33k spans) in SQLite. The cache makes repeated views
// of an incident cheap; this is the cost of the first.
func BenchmarkIncidentReport(b *testing.B) {
	f := newRVFixture(b)
	s := New(Config{Store: rvFixedTimes{f.db}, Now: rvNow})
	in, err := f.db.IncidentByID(context.Background(), f.incident.ID)
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/incidents/1", nil)
	for b.Loop() {
		if _, err := s.incidentReport(r.Context(), in, 0, rvBase); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReportRender renders each export from a built report: the
// part of an export that is not analysis.
func BenchmarkReportRender(b *testing.B) {
	f := newRVFixture(b)
	s := New(Config{Store: rvFixedTimes{f.db}, Now: rvNow})
	in, err := f.db.IncidentByID(context.Background(), f.incident.ID)
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/incidents/1", nil)
	rep, err := s.incidentReport(r.Context(), in, 0, rvBase)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("md", func(b *testing.B) {
		for b.Loop() {
			_ = report.Markdown(rep)
		}
	})
	b.Run("html", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.reportHTML(r, rep); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.MarshalIndent(rep, "", "  "); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRenderNotes renders the fixture's notes (Markdown with a table
// and a link) as the incident page does on every view: goldmark, then
// bluemonday's UGC policy, both built per call.
func BenchmarkRenderNotes(b *testing.B) {
	for b.Loop() {
		if _, err := report.RenderNotes(rvNotes); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIncidentExports serves the incident page and report.md of the
// fixture incident (3,000 requests, 33k spans in SQLite) with no analysis
// cache, as the first viewer after a restart sees them: cold (computed
// from the spans) and from a finalized snapshot.
func BenchmarkIncidentExports(b *testing.B) {
	f := newRVFixture(b)
	assets, err := static.Load()
	if err != nil {
		b.Fatal(err)
	}
	h := New(Config{Store: f.db, Now: rvNow, Version: "bench", Assets: assets}).Handler()
	p := fmt.Sprintf("/incidents/%d", f.incident.ID)
	run := func(b *testing.B, target string) {
		for b.Loop() {
			if w := rvGet(b, h, target); w.Code != http.StatusOK {
				b.Fatalf("%s: status %d", target, w.Code)
			}
		}
	}
	b.Run("cold/page", func(b *testing.B) { run(b, p) })
	b.Run("cold/report.md", func(b *testing.B) { run(b, p+"/report.md") })
	if w := rvDo(b, h, http.MethodPost, "/api/v1"+p+"/finalize", ""); w.Code != http.StatusCreated {
		b.Fatalf("finalize: status %d", w.Code)
	}
	b.Run("snapshot/page", func(b *testing.B) { run(b, p) })
	b.Run("snapshot/report.md", func(b *testing.B) { run(b, p+"/report.md") })
	b.Run("snapshot/report.html", func(b *testing.B) { run(b, p+"/report.html") })
}
