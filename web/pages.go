package web

import (
	"bytes"
	"cmp"
	"net/http"
	"net/url"
	"slices"

	"github.com/a-h/templ"

	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/internal/href"
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

// rangePresets are the quick ranges of the time-range picker.
var rangePresets = []struct{ label, from string }{
	{"15m", "now-15m"}, {"1h", "now-1h"}, {"6h", "now-6h"}, {"24h", "now-24h"}, {"7d", "now-7d"},
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

// rangePicker keeps every other query parameter of the page so changing the
// window changes nothing else.
func (s *Server) rangePicker(r *http.Request, tr TimeRange) *components.RangePicker {
	rp := &components.RangePicker{
		Action:       r.URL.Path,
		From:         tr.FromText,
		To:           tr.ToText,
		Resolved:     tr.From.UTC().Format("2006-01-02 15:04:05") + " → " + tr.To.UTC().Format("2006-01-02 15:04:05") + " UTC",
		IncidentHref: IncidentFromWindowLink(tr.FromText, tr.ToText, r.URL.Query().Get("service")),
	}
	q := r.URL.Query()
	for k, vs := range q {
		if k == "from" || k == "to" {
			continue
		}
		for _, v := range vs {
			rp.Hidden = append(rp.Hidden, components.KV{Key: k, Value: v})
		}
	}
	slices.SortFunc(rp.Hidden, func(a, b components.KV) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Value, b.Value))
	})
	if tr.Relative() {
		// A relative range ("now-1h") shows other data tomorrow: freezing
		// it links the same page at the absolute times it resolved to.
		u := cloneValues(q)
		u.Set("from", href.Time(tr.From))
		u.Set("to", href.Time(tr.To))
		rp.FreezeHref = r.URL.Path + "?" + u.Encode()
	}
	for _, pr := range rangePresets {
		u := cloneValues(q)
		u.Set("from", pr.from)
		u.Set("to", "now")
		rp.Presets = append(rp.Presets, components.Preset{
			Label:  pr.label,
			Href:   r.URL.Path + "?" + u.Encode(),
			Active: tr.FromText == pr.from && tr.ToText == "now",
		})
	}
	return rp
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
	tr, err := parseTimeRange(q.Get("from"), q.Get("to"), s.analysisNow())
	if err != nil {
		return tr, badRequest("%v", err)
	}
	return tr, nil
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
