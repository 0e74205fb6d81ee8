package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/report"
)

// reportCSP forbids every request from an exported report opened in a
// browser: it is self-contained (inline styles and SVG only), and a
// report must never phone home or run script.
const reportCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// exportReport loads the incident of the {id} URL parameter and its
// report (?revision=N of its snapshot, the latest, or computed now when it
// is not finalized) with absolute links, so they work outside tailscope.
func (s *Server) exportReport(r *http.Request) (report.Report, error) {
	in, err := s.incidentParam(r)
	if err != nil {
		return report.Report{}, err
	}
	rev, err := parseRevision(r.URL.Query())
	if err != nil {
		return report.Report{}, err
	}
	rep, err := s.incidentReport(r.Context(), in, rev, s.linkBase(r))
	if err != nil {
		return rep, fmt.Errorf("incident %d report: %w", in.ID, err)
	}
	return rep, nil
}

// writeExport sends an export inline with a file name for "save as".
func (s *Server) writeExport(w http.ResponseWriter, contentType, filename string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`inline; filename="%s"`, filename))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(body); err != nil {
		s.log.Debug("write report", "err", err)
	}
}

func (s *Server) handleReportJSON(w http.ResponseWriter, r *http.Request) {
	rep, err := s.exportReport(r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		s.apiError(w, r, fmt.Errorf("encode report: %w", err))
		return
	}
	s.writeExport(w, "application/json; charset=utf-8", fmt.Sprintf("incident-%d-report.json", rep.Incident.ID), append(b, '\n'))
}

func (s *Server) handleReportMarkdown(w http.ResponseWriter, r *http.Request) {
	rep, err := s.exportReport(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.writeExport(w, "text/markdown; charset=utf-8", fmt.Sprintf("incident-%d-report.md", rep.Incident.ID), []byte(report.Markdown(rep)))
}

func (s *Server) handleReportHTML(w http.ResponseWriter, r *http.Request) {
	rep, err := s.exportReport(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	b, err := s.reportHTML(r, rep)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	w.Header().Set("Content-Security-Policy", reportCSP)
	s.writeExport(w, "text/html; charset=utf-8", fmt.Sprintf("incident-%d-report.html", rep.Incident.ID), b)
}

// reportHTML renders report.html: the incident page's body with the
// stylesheet inlined and no script, one file that opens anywhere and
// prints to PDF.
func (s *Server) reportHTML(r *http.Request, rep report.Report) ([]byte, error) {
	v, err := incidentView(rep, true)
	if err != nil {
		return nil, err
	}
	doc := components.ReportDocument{Title: "Postmortem: " + rep.Incident.Title, Incident: v, Version: s.version}
	if s.assets != nil {
		doc.CSS = string(s.assets.Content("app.css"))
	}
	var buf bytes.Buffer
	if err := components.ReportHTML(doc).Render(r.Context(), &buf); err != nil {
		return nil, fmt.Errorf("render report.html: %w", err)
	}
	return buf.Bytes(), nil
}

// linkBase is the base of the absolute links in exports: the configured
// public URL, or the URL this request reached.
func (s *Server) linkBase(r *http.Request) string {
	if s.publicURL != "" {
		return s.publicURL
	}
	return requestBase(r)
}
