package web

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"

	"github.com/a-h/templ"

	"github.com/tailscope/tailscope/components"
)

// navSections are the main navigation entries, in order.
var navSections = []struct{ section, label, path string }{
	{"services", "Services", "/"},
	{"servicemap", "Map", "/servicemap"},
	{"operations", "Operations", "/operations"},
	{"search", "Traces", "/search"},
	{"latency", "Latency", "/latency"},
	{"outliers", "Outliers", "/outliers"},
	{"budgets", "Budgets", "/budgets"},
	{"deploys", "Deploys", "/deploys"},
	{"incidents", "Incidents", "/incidents"},
	{"profiles", "Profiles", "/profiles"},
}

// page builds the layout model for a page. When tr is given the page shows
// the range picker and navigation links keep the window (and the service
// and endpoint) when moving between pages.
func (s *Server) page(r *http.Request, title, section string, tr *TimeRange) components.Page {
	p := components.Page{
		Title:   title,
		Section: section,
		CSS:     s.assets.Path("app.css"),
		JS:      s.assets.Path("app.js"),
		Version: s.version,
		Notice:  s.replicaNotice(r.Context()),
	}
	if pr := principal(r); pr.Via == "session" {
		p.User = pr.Name
	}
	keep := url.Values{}
	q := r.URL.Query()
	for _, k := range []string{"from", "to", "service", "endpoint"} {
		if v := q.Get(k); v != "" {
			keep.Set(k, v)
		}
	}
	for _, n := range navSections {
		href := n.path
		switch {
		case len(keep) == 0, n.section == "deploys", n.section == "incidents", n.section == "budgets":
		case n.section == "profiles":
			// Profiles are per application, not per traced service.
			if tv := timeOnly(keep); tv != "" {
				href += "?" + tv
			}
		default:
			href += "?" + keep.Encode()
		}
		p.Nav = append(p.Nav, components.NavItem{Section: n.section, Label: n.label, Href: href})
	}
	if tr != nil {
		p.Range = s.rangePicker(r, *tr)
	}
	return p
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// render writes a full page. It renders into a buffer first so a template
// error becomes a clean 500 instead of half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, p components.Page, body templ.Component) {
	var buf bytes.Buffer
	ctx := templ.WithChildren(r.Context(), body)
	if err := components.Layout(p).Render(ctx, &buf); err != nil {
		s.log.Error("render page", "path", r.URL.Path, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if _, err := buf.WriteTo(w); err != nil {
		s.log.Debug("write page", "err", err)
	}
}

// pageError renders err as an HTML error page with the status errorStatus
// picks, logging only server errors.
func (s *Server) pageError(w http.ResponseWriter, r *http.Request, err error) {
	var re *RangeError
	if errors.As(err, &re) {
		s.rangeErrorPage(w, r, re)
		return
	}
	status, msg := errorStatus(err)
	if status >= 500 {
		s.log.Error("page request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	if status == 499 {
		return
	}
	setRetryAfter(w, err)
	title := http.StatusText(status)
	switch status {
	case http.StatusServiceUnavailable:
		title = "Busy: try again shortly"
	case http.StatusUnprocessableEntity:
		title = "This analysis is too large"
	case http.StatusNotFound:
		title = "Not found"
	case http.StatusBadRequest:
		title = "That request does not work"
	}
	s.render(w, r, status, s.page(r, title, "", nil), components.ErrorPage(status, title, msg))
}

// parseRange parses the from/to window of a page or an API call against the
// quantised clock; an absent window is the last hour.
func (s *Server) parseRange(q url.Values) (TimeRange, error) {
	// A *RangeError is a 400 that pages show next to the range form.
	return parseTimeRange(q.Get("from"), q.Get("to"), s.analysisNow())
}

// timeOnly keeps only the window of a query.
func timeOnly(v url.Values) string {
	out := url.Values{}
	for _, k := range []string{"from", "to"} {
		if x := v.Get(k); x != "" {
			out.Set(k, x)
		}
	}
	return out.Encode()
}
