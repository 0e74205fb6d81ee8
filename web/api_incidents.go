package web

import (
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tailscope/tailscope/internal/validate"
	"github.com/tailscope/tailscope/store"
)

// incidentJSON is an incident in the API.
type incidentJSON struct {
	ID             int64     `json:"id"`
	Title          string    `json:"title"`
	From           time.Time `json:"from"`
	To             time.Time `json:"to"`
	Services       []string  `json:"services"`
	Notes          string    `json:"notes"`
	PinnedTraceIDs []string  `json:"pinned_trace_ids"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

func incidentToJSON(in store.Incident) incidentJSON {
	out := incidentJSON{
		ID: in.ID, Title: in.Title, From: in.From.UTC(), To: in.To.UTC(),
		Services: in.Services, Notes: in.Notes,
		CreatedAt: in.CreatedAt.UTC(), UpdatedAt: in.UpdatedAt.UTC(),
		PinnedTraceIDs: make([]string, len(in.PinnedTraces)),
	}
	if out.Services == nil {
		out.Services = []string{}
	}
	for i, id := range in.PinnedTraces {
		out.PinnedTraceIDs[i] = id.String()
	}
	return out
}

// incidentRequest is the body of POST and PUT; times accept RFC 3339 or
// relative values ("now-2h").
type incidentRequest struct {
	Title          string   `json:"title"`
	From           string   `json:"from"`
	To             string   `json:"to"`
	Services       []string `json:"services"`
	Notes          string   `json:"notes"`
	PinnedTraceIDs []string `json:"pinned_trace_ids"`
}

// Limits on incident fields.
const (
	maxTitleLen      = 200
	maxNotesLen      = 64 << 10
	maxPinned        = 20
	maxIncidentRange = 31 * 24 * time.Hour
)

// Incident fields as validate and checkServices name them in their
// FieldErrors.
const (
	incidentFieldTitle    = "title"
	incidentFieldNotes    = "notes"
	incidentFieldRange    = "range"
	incidentFieldServices = "services"
	incidentFieldPinned   = "pinned_trace_ids"
)

// validate turns a request into an incident or returns every problem as a
// validate.ValidationError. Service names are checked against what
// tailscope has seen by the caller (checkServices).
func (req incidentRequest) validate(now time.Time) (store.Incident, error) {
	in := store.Incident{
		Title: strings.TrimSpace(req.Title),
		Notes: req.Notes,
	}
	var probs validate.ValidationError
	add := func(field, format string, args ...any) { probs = append(probs, validate.Field(field, format, args...)) }
	switch n := utf8.RuneCountInString(in.Title); {
	case n == 0:
		add(incidentFieldTitle, "title is required")
	case n > maxTitleLen:
		add(incidentFieldTitle, "title is %d characters; the limit is %d", n, maxTitleLen)
	case !utf8.ValidString(in.Title) || strings.ContainsRune(in.Title, 0):
		add(incidentFieldTitle, "title must be valid UTF-8 text")
	}
	switch {
	case len(in.Notes) > maxNotesLen:
		add(incidentFieldNotes, "notes are %d bytes; the limit is %d KiB", len(in.Notes), maxNotesLen>>10)
	case !utf8.ValidString(in.Notes) || strings.ContainsRune(in.Notes, 0):
		add(incidentFieldNotes, "notes must be valid UTF-8 text")
	}
	if req.From == "" || req.To == "" {
		add(incidentFieldRange, "from and to are required")
	} else if tr, err := parseTimeRange(req.From, req.To, now); err != nil {
		add(incidentFieldRange, "%v", err)
	} else if tr.To.Sub(tr.From) > maxIncidentRange {
		add(incidentFieldRange, "an incident covers at most %d days", int(maxIncidentRange.Hours()/24))
	} else {
		in.From, in.To = tr.From, tr.To
	}
	seen := map[string]bool{}
	for i, svc := range req.Services {
		svc = strings.TrimSpace(svc)
		if svc == "" || seen[svc] {
			continue
		}
		if utf8.RuneCountInString(svc) > maxNameLen {
			probs = append(probs, validate.Element(incidentFieldServices, i, "service name over %d characters", maxNameLen))
			continue
		}
		seen[svc] = true
		in.Services = append(in.Services, svc)
	}
	if len(req.PinnedTraceIDs) > maxPinned {
		add(incidentFieldPinned, "at most %d pinned traces", maxPinned)
	}
	for i, raw := range req.PinnedTraceIDs {
		id, err := store.ParseTraceID(strings.ToLower(strings.TrimSpace(raw)))
		if err != nil {
			probs = append(probs, validate.Element(incidentFieldPinned, i, "pinned trace: %v", err))
			continue
		}
		in.PinnedTraces = append(in.PinnedTraces, id)
	}
	return in, probs.Err()
}

// checkServices rejects service names tailscope has never seen around the
// incident, so a typo does not produce an empty review.
func (s *Server) checkServices(r *http.Request, in store.Incident) error {
	if len(in.Services) == 0 {
		return nil
	}
	// Look a little beyond the range: a service that went silent during the
	// incident is exactly one a reviewer names.
	eps, err := s.store.Endpoints(r.Context(), in.From.Add(-7*24*time.Hour), in.To.Add(time.Hour))
	if err != nil {
		return fmt.Errorf("list services: %w", err)
	}
	known := map[string]bool{}
	for _, e := range eps {
		known[e.Service] = true
	}
	var probs validate.ValidationError
	for _, svc := range in.Services {
		if !known[svc] {
			probs = append(probs, validate.Field(incidentFieldServices, "unknown service %q: no traces from it in or up to 7 days before the range", truncateText(svc, 60)))
		}
	}
	return probs.Err()
}

func (s *Server) handleAPIIncidents(w http.ResponseWriter, r *http.Request) {
	list, err := s.store.Incidents(r.Context())
	if err != nil {
		s.apiError(w, r, fmt.Errorf("list incidents: %w", err))
		return
	}
	out := make([]incidentJSON, len(list))
	for i, in := range list {
		out[i] = incidentToJSON(in)
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"incidents": out})
}

func (s *Server) decodeIncident(w http.ResponseWriter, r *http.Request) (store.Incident, error) {
	var req incidentRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return store.Incident{}, err
	}
	in, err := req.validate(s.now())
	if err != nil {
		return in, err
	}
	return in, s.checkServices(r, in)
}

func (s *Server) handleAPIIncidentCreate(w http.ResponseWriter, r *http.Request) {
	in, err := s.decodeIncident(w, r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	in, err = s.store.CreateIncident(r.Context(), in)
	if err != nil {
		s.apiError(w, r, fmt.Errorf("create incident: %w", err))
		return
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/incidents/%d", in.ID))
	s.writeJSON(w, http.StatusCreated, incidentToJSON(in))
}

func (s *Server) handleAPIIncident(w http.ResponseWriter, r *http.Request) {
	id, err := parseIDParam(r, "incident")
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	in, err := s.store.IncidentByID(r.Context(), id)
	if err != nil {
		s.apiError(w, r, fmt.Errorf("incident %d: %w", id, err))
		return
	}
	s.writeJSON(w, http.StatusOK, incidentToJSON(in))
}

func (s *Server) handleAPIIncidentUpdate(w http.ResponseWriter, r *http.Request) {
	id, err := parseIDParam(r, "incident")
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	in, err := s.decodeIncident(w, r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	in.ID = id
	in, err = s.store.UpdateIncident(r.Context(), in)
	if err != nil {
		s.apiError(w, r, fmt.Errorf("incident %d: %w", id, err))
		return
	}
	s.writeJSON(w, http.StatusOK, incidentToJSON(in))
}

func (s *Server) handleAPIIncidentDelete(w http.ResponseWriter, r *http.Request) {
	id, err := parseIDParam(r, "incident")
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	if err := s.store.DeleteIncident(r.Context(), id); err != nil {
		s.apiError(w, r, fmt.Errorf("incident %d: %w", id, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
