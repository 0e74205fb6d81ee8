package web

import (
	"errors"
	"fmt"
	"github.com/tailscope/tailscope/internal/href"
	"github.com/tailscope/tailscope/internal/units"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/components/chart"
	"github.com/tailscope/tailscope/internal/validate"
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

// maxReviewGroups is how many outlier groups per endpoint the review lists.
const maxReviewGroups = 5

func (s *Server) handleIncidentsPage(w http.ResponseWriter, r *http.Request) {
	list, err := s.store.Incidents(r.Context())
	if err != nil {
		s.pageError(w, r, fmt.Errorf("list incidents: %w", err))
		return
	}
	v := components.IncidentsView{NewHref: "/incidents/new"}
	for _, in := range list {
		p := incidentPath(in.ID)
		v.Rows = append(v.Rows, components.IncidentRow{
			ID: in.ID, Title: in.Title, Window: humanRange(in.From, in.To), Duration: humanDuration(in.To.Sub(in.From)),
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
func (s *Server) incidentServiceChoices(r *http.Request, from, to time.Time, checked []string) ([]components.ServiceChoice, error) {
	eps, err := s.store.Endpoints(r.Context(), from.Add(-7*24*time.Hour), to.Add(time.Hour))
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	names := endpointServices(eps)
	for _, c := range checked {
		if c = strings.TrimSpace(c); c != "" && !slices.Contains(names, c) {
			names = append(names, c)
		}
	}
	slices.Sort(names)
	out := make([]components.ServiceChoice, len(names))
	for i, n := range names {
		out[i] = components.ServiceChoice{Name: n, Checked: slices.Contains(checked, n)}
	}
	return out, nil
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
	if f.Services, err = s.incidentServiceChoices(r, win.From, win.To, q["service"]); err != nil {
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
	if f.Services, err = s.incidentServiceChoices(r, win.From, win.To, req.Services); err != nil {
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
	seeOther(w, r, incidentPath(in.ID))
}

func (s *Server) handleIncidentEditPage(w http.ResponseWriter, r *http.Request) {
	in, err := s.incidentParam(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := incidentPath(in.ID)
	f := incidentForm("Edit incident", p, "Save incident", p)
	f.Title, f.From, f.To, f.Notes = in.Title, formTime(in.From), formTime(in.To), in.Notes
	if f.Services, err = s.incidentServiceChoices(r, in.From, in.To, in.Services); err != nil {
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
	p := incidentPath(old.ID)
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
	p := incidentPath(in.ID)
	v := components.ConfirmDeleteView{
		Heading:    "Delete incident " + in.Title + "?",
		Message:    fmt.Sprintf("The incident (%s), its notes and its %d pinned traces are removed. Export the report first if you need it; no spans are deleted.", humanRange(in.From, in.To), len(in.PinnedTraces)),
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
		seeOther(w, r, incidentPath(in.ID)+"#exemplars")
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
	seeOther(w, r, incidentPath(in.ID)+"#exemplars")
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
	rep, err := s.incidentReport(r, in, "")
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
	s.render(w, r, status, s.page(r, in.Title, "incidents", nil), components.IncidentPage(v))
}

// incidentView lays out a report for the page (export false) or for
// report.html (export true): the same markup from the same numbers.
func incidentView(rep IncidentReport, export bool) (components.IncidentView, error) {
	in := rep.Incident
	p := incidentPath(in.ID)
	// The report's links carry the base (the server's URL in exports).
	base := strings.TrimSuffix(rep.Links.Incident, p)
	v := components.IncidentView{
		ID: in.ID, Title: in.Title, Window: humanRange(in.From, in.To), Duration: humanDuration(in.To.Sub(in.From)),
		Services: in.Services, Export: export, GeneratedAt: rep.GeneratedAt.UTC().Format("2006-01-02 15:04:05 UTC"),
		Summary: rep.Summary, Warnings: rep.Warnings, PinAction: p + "/pins",
		Links: components.IncidentLinks{
			Page: rep.Links.Incident, Edit: p + "/edit", Delete: p + "/delete",
			ReportMD: rep.Links.ReportMarkdown, ReportHTML: rep.Links.ReportHTML, ReportJSON: rep.Links.ReportJSON, API: rep.Links.API,
		},
	}
	timeLayout := "15:04:05"
	if in.From.Format("2006-01-02") != in.To.Format("2006-01-02") || len(rep.Timeline) > 0 && rep.Timeline[0].Time.Format("2006-01-02") != in.To.Format("2006-01-02") {
		timeLayout = "2006-01-02 15:04:05"
	}
	for _, t := range rep.Timeline {
		v.Timeline = append(v.Timeline, components.TimelineRow{Time: t.Time.UTC().Format(timeLayout), Kind: t.Kind, Text: t.Text, Href: t.Link})
	}
	var markers []chart.Marker
	for _, d := range rep.Deploys {
		markers = append(markers, chart.Marker{T: d.At, Label: d.Version, Href: d.Link, FirstSeen: d.Kind == analysis.KindFirstSeen})
	}
	band := []chart.Band{{From: in.From, To: in.To, Label: "incident"}}
	for _, e := range rep.Endpoints {
		v.Endpoints = append(v.Endpoints, incidentEndpointView(e, base, markers, band))
	}
	for _, d := range rep.Deploys {
		dv := components.IncidentDeployView{
			Label: d.Service + " " + d.Version, At: d.At.UTC().Format("2006-01-02 15:04:05 UTC"), Source: sourceWord(d.Source),
			Note: d.Note, Href: d.Link, InRange: d.InRange, Unavailable: d.Unavailable, FirstSeen: d.Kind == analysis.KindFirstSeen,
		}
		if d.Comparison != nil {
			dv.Verdict, dv.VerdictClass, dv.Summary = d.Comparison.Verdict, verdictClass(d.Comparison.Verdict), d.Comparison.Summary
		}
		v.Deploys = append(v.Deploys, dv)
	}
	for _, b := range rep.Budgets {
		v.Budgets = append(v.Budgets, incidentBudgetView(b))
	}
	for _, e := range rep.Exemplars {
		v.Exemplars = append(v.Exemplars, exemplarView(e, p+"/pins"))
	}
	html, err := renderNotes(in.Notes)
	if err != nil {
		return v, err
	}
	v.NotesHTML, v.HasNotes = html, strings.TrimSpace(in.Notes) != ""
	return v, nil
}

// incidentEndpointView lays out one examined endpoint; base prefixes the
// trace links as it prefixes the report's own links.
func incidentEndpointView(e ReportEndpoint, base string, markers []chart.Marker, band []chart.Band) components.IncidentEndpointView {
	ev := components.IncidentEndpointView{
		Service: e.Service, Endpoint: e.Endpoint, LatencyHref: e.Links.Latency, OutliersHref: e.Links.Outliers, TracesHref: e.Links.SlowTraces,
		ImpactNote: e.ImpactUnavailable,
	}
	var p50, p99, rate, errs []chart.Point
	for _, pt := range e.Timeline.Points {
		p50 = append(p50, chart.Point{T: pt.Start, V: ptr(pt.P50Ms)})
		p99 = append(p99, chart.Point{T: pt.Start, V: ptr(pt.P99Ms)})
		rate = append(rate, chart.Point{T: pt.Start, V: pt.RatePerS})
		share := 0.0
		if pt.Count > 0 {
			share = float64(pt.Errors) / float64(pt.Count)
		}
		errs = append(errs, chart.Point{T: pt.Start, V: share})
	}
	from, to := e.Timeline.From, e.Timeline.To
	ev.Latency = chart.BuildTimeChart(chart.TimeChartInput{From: from, To: to, Markers: markers, Bands: band, YLabel: "latency", Height: 240,
		Series: []chart.Series{{Name: "p50", Class: "s-p50", Points: p50}, {Name: "p99", Class: "s-p99", Points: p99}}})
	ev.Throughput = chart.BuildTimeChart(chart.TimeChartInput{From: from, To: to, Markers: markers, Bands: band, YLabel: "requests/s", Width: 560, Height: 220,
		YFormat: func(f float64) string { return chart.FormatCount(f) + "/s" },
		Series:  []chart.Series{{Name: "requests per second", Class: "s-count", Points: rate}}})
	ev.ErrorRate = chart.BuildTimeChart(chart.TimeChartInput{From: from, To: to, Markers: markers, Bands: band, YLabel: "error rate", Width: 560, Height: 220,
		YFormat: chart.FormatPercent, Series: []chart.Series{{Name: "error rate", Class: "s-err", Points: errs}}})
	st := e.During
	ev.Facts = []components.Fact{
		{Label: "requests", Value: chart.FormatCount(float64(st.Requests))},
		{Label: "rate", Value: fmt.Sprintf("%.2f/s", st.RatePerS)},
		{Label: "errors", Value: chart.FormatPercent(st.ErrorRate), Bad: st.ErrorRate > 0.01},
		{Label: "p50", Value: units.Ms(st.Percentiles.P50Ms)},
		{Label: "p95", Value: units.Ms(st.Percentiles.P95Ms)},
		{Label: "p99", Value: units.Ms(st.Percentiles.P99Ms)},
	}
	if e.Impact != nil {
		cv := comparisonView(*e.Impact, "before", "during")
		cv.APIHref = e.Links.Impact
		cv.LatencyHref = e.Links.Latency
		ev.Impact = &cv
		if e.Impact.Baseline != analysis.BaselineNone {
			ev.Facts = append(ev.Facts, components.Fact{Label: "p99 before", Value: units.Ms(e.Impact.Before.Percentiles.P99Ms)})
		}
	}
	switch o := e.Outliers; {
	case o == nil:
		ev.OutliersNote = e.OutliersUnavailable
	case o.RequestCount == 0:
		ev.OutliersNote = "No requests to this endpoint during the incident."
	case o.OutlierCount == 0:
		ev.OutliersNote = "No request reached the outlier threshold."
	default:
		ev.OutlierFacts = fmt.Sprintf("%d of %d requests at or above the p99 (%s); %d of their traces examined, with %d typical requests (p25–p75) setting each dependency's usual time.",
			o.OutlierCount, o.RequestCount, units.Ms(o.ThresholdMs), o.AnalyzedOutlierCount, o.BaselineCount)
		if len(o.Groups) == 0 {
			ev.OutliersNote = "No cause stands out: the slowest requests do not share a dependency, tenant, payload or version more than chance allows."
		}
		for i, g := range o.Groups {
			if i == maxReviewGroups {
				break
			}
			gv := components.GroupView{Rank: i + 1, Label: g.Label, Count: g.Count, Share: g.Share, ExcessMs: g.ExcessMs,
				CounterfactualP99Ms: g.CounterfactualP99Ms, PayoffMs: g.PayoffMs, P99Ms: o.P99Ms}
			for _, id := range g.ExampleTraceIDs {
				gv.Examples = append(gv.Examples, components.SpanLink{Label: id.String()[:12], Href: base + "/traces/" + id.String()})
			}
			ev.Groups = append(ev.Groups, gv)
		}
	}
	return ev
}

func incidentBudgetView(b ReportBudget) components.IncidentBudgetView {
	d := b.During
	bv := components.IncidentBudgetView{
		Name: b.Name, Href: b.Link, Status: budgetStatusClass(d.Status), StatusText: d.StatusText, BurnRates: burnRows(d.BurnRates),
		Objective: budgetObjectiveText(d.Budget),
	}
	if d.WorstHop != "" {
		bv.WorstHop = worstHopText(d.ComplianceReport)
	}
	bv.Facts = []components.Fact{
		{Label: "attainment during", Value: units.SLOPercent(d.Attainment), Bad: d.Total > 0 && !d.Met},
		{Label: "over " + units.Ms(d.Budget.ThresholdMs), Value: fmt.Sprintf("%s of %s", chart.FormatCount(float64(d.Bad)), chart.FormatCount(float64(d.Total)))},
		{Label: "burn rate during", Value: analysis.FormatBurn(b.BurnRateDuring), Bad: b.BurnRateDuring > 1},
		{Label: d.Budget.Period + " budget used", Value: chart.FormatPercent(b.PeriodBudgetSpent), Bad: b.PeriodBudgetSpent >= 0.1},
	}
	return bv
}

func exemplarView(e ReportExemplar, pinAction string) components.ExemplarView {
	ev := components.ExemplarView{
		TraceID: e.TraceID, Short: e.TraceID[:min(12, len(e.TraceID))], Href: e.Link, Reason: e.Reason, Pinned: e.Pinned, Stored: e.Stored,
		DurationMs: e.DurationMs, Spans: e.SpanCount, Errors: e.ErrorCount, PinAction: pinAction,
	}
	if e.Stored {
		ev.Root = e.RootService + " " + e.RootName
	}
	if e.Start != nil {
		ev.Start = e.Start.UTC().Format("2006-01-02 15:04:05.000 UTC")
	}
	for _, h := range e.CriticalPath {
		ev.Hops = append(ev.Hops, components.HopView{Label: h.Label, CriticalMs: h.CriticalMs, Share: h.Share})
	}
	for _, f := range e.Findings {
		ev.Findings = append(ev.Findings, findingText(f))
	}
	return ev
}

// findingText is a one-line anti-pattern callout.
func findingText(f analysis.Finding) string {
	return fmt.Sprintf("%s (%s at stake)", f.Title, units.Ms(f.TimeMs))
}
