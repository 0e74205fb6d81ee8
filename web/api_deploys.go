package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/store"
)

// deployJSON is a deploy marker in the API. Kind is "deploy" or
// "first_seen" (the service's first version ever seen; analysis.DeployKinds).
type deployJSON struct {
	ID      int64     `json:"id"`
	Service string    `json:"service"`
	Version string    `json:"version"`
	At      time.Time `json:"at"`
	Note    string    `json:"note"`
	Source  string    `json:"source"`
	Kind    string    `json:"kind"`
	// Impact is the service's hour before and after the marker, from
	// rollups: for a single marker and the newest 20 of a list.
	Impact *analysis.DeployImpact `json:"impact,omitempty"`
}

func deployToJSON(d store.Deploy, kinds map[int64]string) deployJSON {
	return deployJSON{ID: d.ID, Service: d.Service, Version: d.Version, At: d.At.UTC(), Note: d.Note, Source: d.Source, Kind: kinds[d.ID]}
}

// deploysToJSON classifies markers and converts them for the API.
func (s *Server) deploysToJSON(ctx context.Context, ds []store.Deploy) ([]deployJSON, error) {
	kinds, err := s.deployKinds(ctx, ds)
	if err != nil {
		return nil, err
	}
	out := make([]deployJSON, len(ds))
	for i, d := range ds {
		out[i] = deployToJSON(d, kinds)
		if i < maxListImpacts {
			imp, err := s.deployImpact(ctx, d)
			if err != nil {
				return nil, fmt.Errorf("deploy %d impact: %w", d.ID, err)
			}
			out[i].Impact = &imp
		}
	}
	return out, nil
}

func (s *Server) handleAPIDeploys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	dq := store.DeployQuery{Service: strings.TrimSpace(q.Get("service"))}
	if q.Get("from") != "" || q.Get("to") != "" {
		tr, err := parseTimeRange(q.Get("from"), q.Get("to"), s.now())
		if err != nil {
			s.apiError(w, r, badRequest("%v", err))
			return
		}
		dq.From, dq.To = tr.From, tr.To
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			s.apiError(w, r, badRequest("limit %q: want a whole number from 1 to 1000", truncateText(l, 20)))
			return
		}
		dq.Limit = n
	}
	ds, err := s.store.Deploys(r.Context(), dq)
	if err != nil {
		s.apiError(w, r, fmt.Errorf("list deploys: %w", err))
		return
	}
	out, err := s.deploysToJSON(r.Context(), ds)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"deploys": out})
}

// deployRequest is the body of POST /api/v1/deploys. At is optional (now);
// it accepts RFC 3339 or a relative time like the query parameters.
type deployRequest struct {
	Service string `json:"service"`
	Version string `json:"version"`
	At      string `json:"at"`
	Note    string `json:"note"`
}

// Limits on user-supplied deploy fields.
const (
	maxNameLen = 256
	maxNoteLen = 4096
)

func (req deployRequest) validate(now time.Time) (store.Deploy, error) {
	d := store.Deploy{
		Service: strings.TrimSpace(req.Service),
		Version: strings.TrimSpace(req.Version),
		Note:    strings.TrimSpace(req.Note),
		Source:  store.DeploySourceAPI,
		At:      now,
	}
	switch {
	case d.Service == "":
		return d, badRequest("service is required")
	case d.Version == "":
		return d, badRequest("version is required")
	case utf8.RuneCountInString(d.Service) > maxNameLen || utf8.RuneCountInString(d.Version) > maxNameLen:
		return d, badRequest("service and version must be at most %d characters", maxNameLen)
	case utf8.RuneCountInString(d.Note) > maxNoteLen:
		return d, badRequest("note must be at most %d characters", maxNoteLen)
	case !utf8.ValidString(d.Service+d.Version+d.Note) || strings.ContainsRune(d.Service+d.Version+d.Note, 0):
		return d, badRequest("service, version and note must be valid UTF-8 text")
	}
	if req.At != "" {
		at, err := parseTime(req.At, now)
		if err != nil {
			return d, badRequest("at: %v", err)
		}
		d.At = at
	}
	return d, nil
}

func (s *Server) handleAPIDeployCreate(w http.ResponseWriter, r *http.Request) {
	var req deployRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	d, err := req.validate(s.now())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	d, err = s.store.RecordDeploy(r.Context(), d)
	if err != nil {
		s.apiError(w, r, fmt.Errorf("record deploy: %w", err))
		return
	}
	out, err := s.deploysToJSON(r.Context(), []store.Deploy{d})
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/deploys/%d", d.ID))
	s.writeJSON(w, http.StatusCreated, out[0])
}

// parseIDParam validates a numeric {id} URL parameter.
func parseIDParam(r *http.Request, what string) (int64, error) {
	raw := chi.URLParam(r, "id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id < 1 {
		return 0, badRequest("%s id %q: want a positive whole number", what, truncateText(raw, 30))
	}
	return id, nil
}

func (s *Server) handleAPIDeploy(w http.ResponseWriter, r *http.Request) {
	id, err := parseIDParam(r, "deploy")
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	d, err := s.store.DeployByID(r.Context(), id)
	if err != nil {
		s.apiError(w, r, fmt.Errorf("deploy %d: %w", id, err))
		return
	}
	out, err := s.deploysToJSON(r.Context(), []store.Deploy{d})
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, out[0])
}
