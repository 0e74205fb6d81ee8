package web

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/internal/href"
	"github.com/tailscope/tailscope/internal/validate"
	"github.com/tailscope/tailscope/report"
	"github.com/tailscope/tailscope/store"
)

// incidentFormFields places the problems incidentRequest.validate and
// checkServices find on the incident form; the form has no field for the
// pinned traces (editing keeps them), so problems with them are general.
var incidentFormFields = map[string]string{
	incidentFieldTitle:    "title",
	incidentFieldNotes:    "notes",
	incidentFieldRange:    "range",
	incidentFieldServices: "services",
}

func (s *Server) handleIncidentsPage(w http.ResponseWriter, r *http.Request) {
	list, err := s.store.Incidents(r.Context())
	if err != nil {
		s.pageError(w, r, fmt.Errorf("list incidents: %w", err))
		return
	}
	v := components.IncidentsView{NewHref: "/incidents/new"}
	for _, in := range list {
		p := report.IncidentPath(in.ID)
		v.Rows = append(v.Rows, components.IncidentRow{
			ID: in.ID, Title: in.Title, From: in.From, To: in.To, Duration: report.HumanDuration(in.To.Sub(in.From)),
			Services: in.Services, Pinned: len(in.PinnedTraces),
			Href: p, EditHref: p + "/edit", DeleteHref: p + "/delete", ReportHref: p + "/report.html",
		})
	}
	s.render(w, r, http.StatusOK, s.page(r, "Incidents", "incidents", nil), components.IncidentsPage(v))
}

// incidentParam loads the incident named by the {id} URL parameter.
func (s *Server) incidentParam(r *http.Request) (store.Incident, error) {
	id, err := parseIDParam(r, "incident")
	if err != nil {
		return store.Incident{}, err
	}
	in, err := s.store.IncidentByID(r.Context(), id)
	if err != nil {
		return in, fmt.Errorf("incident %d: %w", id, err)
	}
	return in, nil
}

// formTime writes a time for the incident form: RFC 3339 to the second.
func formTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// incidentServiceChoices are the services the form offers: those seen in
// the window checkServices accepts (from a week before the range to an
// hour after), plus any the user checked that are not among them, so a
// rejected form comes back as it was sent.
func (s *Server) incidentServiceChoices(r *http.Request, from, to time.Time, checked []string) ([]components.ServiceChoice, int, error) {
	eps, err := s.store.Endpoints(r.Context(), from.Add(-7*24*time.Hour), to.Add(time.Hour))
	if err != nil {
		return nil, 0, fmt.Errorf("list services: %w", err)
	}
	// Sets, not scans: a URL may name 10,000 services. Past
	// choiceServices, the busiest and the checked ones.
	names, more := serviceChoices(eps)
	known := make(map[string]bool, len(names))
	for _, n := range names {
		known[n] = true
	}
	left := map[string]bool{} // services not among names
	if more > 0 {
		for _, e := range eps {
			left[e.Service] = !known[e.Service]
		}
	}
	isChecked := make(map[string]bool, len(checked))
	for _, c := range checked {
		isChecked[c] = true
		if c = strings.TrimSpace(c); c != "" && !known[c] {
			known[c] = true
			names = append(names, c)
			if left[c] {
				more-- // offered now, as checked
			}
		}
	}
	slices.Sort(names)
	out := make([]components.ServiceChoice, len(names))
	for i, n := range names {
		out[i] = components.ServiceChoice{Name: n, Checked: isChecked[n]}
	}
	return out, more, nil
}

// incidentForm starts a form with the limits filled in.
func incidentForm(heading, action, submit, cancel string) components.IncidentFormView {
	return components.IncidentFormView{
		Heading: heading, Action: action, Submit: submit, CancelHref: cancel,
		Errors: components.FormErrors{}, MaxTitle: maxTitleLen, MaxNotesKiB: maxNotesLen >> 10,
	}
}

// handleIncidentNewPage is the "create incident from this window" form:
// ?from=&to=&service= prefill it, relative times fixed to the moment the
// link was followed, so the incident is the window the user was looking at.
func (s *Server) handleIncidentNewPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := incidentForm("New incident", "/incidents", "Create incident", "/incidents")
	f.Title = q.Get("title")
	from, to := q.Get("from"), q.Get("to")
	if from == "" && to == "" {
		from, to = defaultFrom, defaultTo
	}
	f.From, f.To = from, to
	now := s.now()
	win := TimeRange{From: now.Add(-time.Hour), To: now}
	if tr, err := parseTimeRange(from, to, now); err != nil {
		f.Errors.Add("range", upperFirst(err.Error()))
	} else {
		f.From, f.To, win = formTime(tr.From), formTime(tr.To), tr
	}
	var err error
	if f.Services, f.MoreServices, err = s.incidentServiceChoices(r, win.From, win.To, q["service"]); err != nil {
		s.pageError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, s.page(r, "New incident", "incidents", nil), components.IncidentForm(f))
}

// readIncidentForm reads a posted incident form into the form view (to
// re-render) and the API's request type (to validate).
func readIncidentForm(r *http.Request, f *components.IncidentFormView) incidentRequest {
	pf := r.PostForm
	// Browsers send textarea line breaks as CRLF; the notes are Markdown
	// written on any system, kept with plain newlines.
	f.Title, f.From, f.To = pf.Get("title"), strings.TrimSpace(pf.Get("from")), strings.TrimSpace(pf.Get("to"))
	f.Notes = strings.ReplaceAll(pf.Get("notes"), "\r\n", "\n")
	return incidentRequest{Title: f.Title, From: f.From, To: f.To, Services: pf["services"], Notes: f.Notes}
}

// validateIncidentForm applies the API's rules (incidentRequest.validate
// and checkServices) and, when they refuse, puts the message next to the
// field it is about. It reports false when the form must be shown again.
func (s *Server) validateIncidentForm(w http.ResponseWriter, r *http.Request, req incidentRequest, f *components.IncidentFormView) (store.Incident, bool) {
	in, err := req.validate(s.now())
	if err == nil {
		err = s.checkServices(r, in)
	}
	if err == nil {
		return in, true
	}
	var verr validate.ValidationError
	if !errors.As(err, &verr) {
		s.pageError(w, r, err)
		return in, false
	}
	f.General = append(f.General, placeFieldErrors(verr, incidentFormFields, f.Errors, nil)...)
	win := TimeRange{From: s.now().Add(-time.Hour), To: s.now()}
	if tr, err := parseTimeRange(f.From, f.To, s.now()); err == nil {
		win = tr
	}
	if f.Services, f.MoreServices, err = s.incidentServiceChoices(r, win.From, win.To, req.Services); err != nil {
		s.pageError(w, r, err)
		return in, false
	}
	s.render(w, r, http.StatusBadRequest, s.page(r, f.Heading, "incidents", nil), components.IncidentForm(*f))
	return in, false
}

func (s *Server) handleIncidentCreateForm(w http.ResponseWriter, r *http.Request) {
	if err := parsePostForm(w, r); err != nil {
		s.pageError(w, r, err)
		return
	}
	f := incidentForm("New incident", "/incidents", "Create incident", "/incidents")
	req := readIncidentForm(r, &f)
	in, ok := s.validateIncidentForm(w, r, req, &f)
	if !ok {
		return
	}
	in, err := s.store.CreateIncident(r.Context(), in)
	if err != nil {
		s.pageError(w, r, fmt.Errorf("create incident: %w", err))
		return
	}
	seeOther(w, r, report.IncidentPath(in.ID))
}

func (s *Server) handleIncidentEditPage(w http.ResponseWriter, r *http.Request) {
	in, err := s.incidentParam(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := report.IncidentPath(in.ID)
	f := incidentForm("Edit incident", p, "Save incident", p)
	f.Title, f.From, f.To, f.Notes = in.Title, formTime(in.From), formTime(in.To), in.Notes
	if f.Services, f.MoreServices, err = s.incidentServiceChoices(r, in.From, in.To, in.Services); err != nil {
		s.pageError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, s.page(r, "Edit "+in.Title, "incidents", nil), components.IncidentForm(f))
}

func (s *Server) handleIncidentUpdateForm(w http.ResponseWriter, r *http.Request) {
	old, err := s.incidentParam(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	if err := parsePostForm(w, r); err != nil {
		s.pageError(w, r, err)
		return
	}
	p := report.IncidentPath(old.ID)
	f := incidentForm("Edit incident", p, "Save incident", p)
	req := readIncidentForm(r, &f)
	// The form does not carry the pins: editing keeps them.
	for _, id := range old.PinnedTraces {
		req.PinnedTraceIDs = append(req.PinnedTraceIDs, id.String())
	}
	in, ok := s.validateIncidentForm(w, r, req, &f)
	if !ok {
		return
	}
	in.ID = old.ID
	if _, err := s.store.UpdateIncident(r.Context(), in); err != nil {
		s.pageError(w, r, fmt.Errorf("incident %d: %w", old.ID, err))
		return
	}
	seeOther(w, r, p)
}

func (s *Server) handleIncidentDeletePage(w http.ResponseWriter, r *http.Request) {
	in, err := s.incidentParam(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := report.IncidentPath(in.ID)
	v := components.ConfirmDeleteView{
		Heading:    "Delete incident " + in.Title + "?",
		Message:    fmt.Sprintf("The incident (%s), its notes, its %d pinned traces and its finalized report revisions are removed. Export the report first if you need it; no spans are deleted.", report.HumanRange(in.From, in.To), len(in.PinnedTraces)),
		Action:     p + "/delete",
		Button:     "Delete incident",
		CancelHref: p,
	}
	s.render(w, r, http.StatusOK, s.page(r, "Delete "+in.Title, "incidents", nil), components.ConfirmDeletePage(v))
}

// handleIncidentPinForm pins (action=pin) or unpins (action=unpin) an
// exemplar trace. The incident is saved through the API's validation, so
// the pin limit is the API's.
func (s *Server) handleIncidentPinForm(w http.ResponseWriter, r *http.Request) {
	in, err := s.incidentParam(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	if err := parsePostForm(w, r); err != nil {
		s.pageError(w, r, err)
		return
	}
	raw := strings.TrimSpace(r.PostForm.Get("trace_id"))
	action := r.PostForm.Get("action")
	if action != "pin" && action != "unpin" {
		s.pageError(w, r, badRequest("action %q: want pin or unpin", truncateText(action, 20)))
		return
	}
	id, err := store.ParseTraceID(strings.ToLower(raw))
	if err != nil {
		s.renderIncident(w, r, in, http.StatusBadRequest, raw, upperFirst(err.Error()))
		return
	}
	pins := slices.Clone(in.PinnedTraces)
	switch {
	case action == "unpin":
		pins = slices.DeleteFunc(pins, func(p store.TraceID) bool { return p == id })
	case slices.Contains(pins, id):
		seeOther(w, r, report.IncidentPath(in.ID)+"#exemplars")
		return
	default:
		if _, err := s.store.Trace(r.Context(), id); err != nil {
			if status, _ := errorStatus(err); status == http.StatusNotFound {
				s.renderIncident(w, r, in, http.StatusBadRequest, raw, fmt.Sprintf("No trace %s is stored: check the id, or it may have expired.", id))
				return
			}
			s.pageError(w, r, fmt.Errorf("trace %s: %w", id, err))
			return
		}
		pins = append(pins, id)
	}
	req := incidentRequest{Title: in.Title, From: href.Time(in.From), To: href.Time(in.To), Services: in.Services, Notes: in.Notes}
	for _, p := range pins {
		req.PinnedTraceIDs = append(req.PinnedTraceIDs, p.String())
	}
	upd, err := req.validate(s.now())
	if err != nil {
		if status, msg := errorStatus(err); status < 500 {
			s.renderIncident(w, r, in, http.StatusBadRequest, raw, upperFirst(msg))
			return
		}
		s.pageError(w, r, err)
		return
	}
	upd.ID = in.ID
	if _, err := s.store.UpdateIncident(r.Context(), upd); err != nil {
		s.pageError(w, r, fmt.Errorf("incident %d: %w", in.ID, err))
		return
	}
	seeOther(w, r, report.IncidentPath(in.ID)+"#exemplars")
}

func (s *Server) handleIncidentPage(w http.ResponseWriter, r *http.Request) {
	in, err := s.incidentParam(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.renderIncident(w, r, in, http.StatusOK, "", "")
}

// renderIncident renders the review page; pinValue and pinError echo a
// rejected pin request next to its field.
func (s *Server) renderIncident(w http.ResponseWriter, r *http.Request, in store.Incident, status int, pinValue, pinError string) {
	rev, err := parseRevision(r.URL.Query())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	rep, err := s.incidentReport(r.Context(), in, rev, "")
	if err != nil {
		s.pageError(w, r, fmt.Errorf("incident %d: %w", in.ID, err))
		return
	}
	v, err := incidentView(rep, false)
	if err != nil {
		s.pageError(w, r, fmt.Errorf("incident %d: %w", in.ID, err))
		return
	}
	v.PinValue, v.PinError = pinValue, pinError
	revs, err := s.store.Snapshots(r.Context(), in.ID)
	if err != nil {
		s.pageError(w, r, fmt.Errorf("incident %d: %w", in.ID, err))
		return
	}
	for _, sn := range revs {
		v.Revisions = append(v.Revisions, components.RevisionRow{
			Revision: sn.Revision, At: sn.CreatedAt, Version: sn.Version,
			Href: fmt.Sprintf("%s?revision=%d", report.IncidentPath(in.ID), sn.Revision), Current: sn.Revision == rep.Revision,
		})
	}
	v.Stale = rep.FinalizedAt != nil && in.UpdatedAt.After(*rep.FinalizedAt)
	s.render(w, r, status, s.page(r, in.Title, "incidents", nil), components.IncidentPage(v))
}
