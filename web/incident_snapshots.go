package web

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tailscope/tailscope/report"
	"github.com/tailscope/tailscope/store"
)

// Finalizing stores an incident's report as a snapshot revision: from
// then on its page and exports render from the stored report, so they say
// the same thing tomorrow. Finalize stores the first revision (and is a
// no-op after); Recompute stores a new one from the spans stored now.

// revisionJSON is one snapshot revision in the API.
type revisionJSON struct {
	IncidentID       int64         `json:"incident_id"`
	Revision         int           `json:"revision"`
	CreatedAt        time.Time     `json:"created_at"`
	TailscopeVersion string        `json:"tailscope_version"`
	Links            revisionLinks `json:"links"`
}

type revisionLinks struct {
	Page       string `json:"page"`
	ReportMD   string `json:"report_md"`
	ReportHTML string `json:"report_html"`
	ReportJSON string `json:"report_json"`
}

func toRevisionJSON(sn store.IncidentSnapshot, base string) revisionJSON {
	p := base + report.IncidentPath(sn.IncidentID)
	q := fmt.Sprintf("?revision=%d", sn.Revision)
	return revisionJSON{
		IncidentID: sn.IncidentID, Revision: sn.Revision, CreatedAt: sn.CreatedAt.UTC(), TailscopeVersion: sn.Version,
		Links: revisionLinks{Page: p + q, ReportMD: p + "/report.md" + q, ReportHTML: p + "/report.html" + q, ReportJSON: p + "/report.json" + q},
	}
}

// snapshotFor stores a new revision (recompute), or with recompute false
// returns the latest one when there is one. created says a revision was
// stored.
func (s *Server) snapshotFor(r *http.Request, recompute bool) (sn store.IncidentSnapshot, created bool, err error) {
	in, err := s.incidentParam(r)
	if err != nil {
		return sn, false, err
	}
	if !recompute {
		sn, err := s.store.Snapshot(r.Context(), in.ID, 0)
		if err == nil {
			sn.Body = nil
			return sn, false, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return sn, false, fmt.Errorf("incident %d: %w", in.ID, err)
		}
	}
	sn, err = s.finalize(r.Context(), in)
	sn.Body = nil
	return sn, err == nil, err
}

func (s *Server) snapshotForm(recompute bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sn, _, err := s.snapshotFor(r, recompute)
		if err != nil {
			s.pageError(w, r, err)
			return
		}
		seeOther(w, r, report.IncidentPath(sn.IncidentID))
	}
}

func (s *Server) snapshotAPI(recompute bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sn, created, err := s.snapshotFor(r, recompute)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		s.writeJSON(w, status, toRevisionJSON(sn, s.linkBase(r)))
	}
}

func (s *Server) handleAPIIncidentRevisions(w http.ResponseWriter, r *http.Request) {
	in, err := s.incidentParam(r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	list, err := s.store.Snapshots(r.Context(), in.ID)
	if err != nil {
		s.apiError(w, r, fmt.Errorf("incident %d: %w", in.ID, err))
		return
	}
	out := make([]revisionJSON, len(list))
	for i, sn := range list {
		out[i] = toRevisionJSON(sn, s.linkBase(r))
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"revisions": out})
}
