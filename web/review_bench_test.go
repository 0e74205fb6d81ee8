package web

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/tailscope/tailscope/report"
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
