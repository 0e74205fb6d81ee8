package web

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/internal/duration"
	"github.com/tailscope/tailscope/internal/href"
)

// rangePresets are the quick ranges of the time-range picker.
var rangePresets = []struct{ label, from string }{
	{"15m", "now-15m"}, {"1h", "now-1h"}, {"6h", "now-6h"}, {"24h", "now-24h"}, {"7d", "now-7d"},
}

// minZoom is the narrowest window zooming in goes to: below it the charts'
// buckets hold a handful of requests each.
const minZoom = time.Minute

// rangePicker keeps every other query parameter of the page so changing the
// window changes nothing else.
func (s *Server) rangePicker(r *http.Request, tr TimeRange) *components.RangePicker {
	rp := rangeForm(r, tr.FromText, tr.ToText)
	rp.Resolved = components.TimeSpan{From: tr.From, To: tr.To}
	rp.IncidentHref = IncidentFromWindowLink(tr.FromText, tr.ToText, r.URL.Query().Get("service"))
	q := r.URL.Query()
	if tr.Relative() {
		// A relative range ("now-1h") shows other data tomorrow: freezing
		// it links the same page at the absolute times it resolved to.
		u := cloneValues(q)
		u.Set("from", href.Time(tr.From))
		u.Set("to", href.Time(tr.To))
		rp.FreezeHref = r.URL.Path + "?" + u.Encode()
	}
	abs := cloneValues(q)
	abs.Set("from", href.Time(tr.From))
	abs.Set("to", href.Time(tr.To))
	rp.CopyHref = s.linkBase(r) + r.URL.Path + "?" + abs.Encode()
	for i := range rp.Presets {
		rp.Presets[i].Active = tr.FromText == rangePresets[i].from && tr.ToText == "now"
	}
	link := func(fromText, toText string) string {
		u := cloneValues(q)
		u.Set("from", fromText)
		u.Set("to", toText)
		return r.URL.Path + "?" + u.Encode()
	}
	for _, z := range zooms(tr, s.analysisNow()) {
		l := link(z.from, z.to)
		switch z.kind {
		case "out":
			rp.ZoomOutHref = l
		case "in":
			rp.ZoomInHref = l
		case "earlier":
			rp.EarlierHref = l
		case "later":
			rp.LaterHref = l
		}
	}
	return rp
}

// rangeForm is the part of the picker that needs no valid range: the form
// with what was typed, the other parameters and the quick ranges.
func rangeForm(r *http.Request, fromText, toText string) *components.RangePicker {
	rp := &components.RangePicker{Action: r.URL.Path, From: fromText, To: toText}
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
	for _, pr := range rangePresets {
		u := cloneValues(q)
		u.Set("from", pr.from)
		u.Set("to", "now")
		rp.Presets = append(rp.Presets, components.Preset{Label: pr.label, Href: r.URL.Path + "?" + u.Encode()})
	}
	return rp
}

// zoom is one window next to the current one.
type zoom struct{ kind, from, to string }

// zooms are the windows of the zoom and shift buttons, as Grafana has them:
// out doubles the window and in halves it around its middle; earlier and
// later move it by half its length. A window ending "now" stays relative
// (zooming "now-1h" gives "now-2h" and "now-30m"), so it keeps following
// new data; later is offered only for a window that ends in the past.
func zooms(tr TimeRange, now time.Time) []zoom {
	d := tr.To.Sub(tr.From)
	mid := tr.From.Add(d / 2)
	live := strings.TrimSpace(tr.ToText) == "now"
	var out []zoom
	if 2*d <= maxRange {
		if live {
			out = append(out, zoom{"out", "now-" + duration.Format(2*d), "now"})
		} else {
			to := mid.Add(d)
			if to.After(now) {
				to = now
			}
			out = append(out, zoom{"out", href.Time(to.Add(-2 * d)), href.Time(to)})
		}
	}
	if half := (d / 2).Round(time.Second); half >= minZoom {
		if live {
			out = append(out, zoom{"in", "now-" + duration.Format(half), "now"})
		} else {
			out = append(out, zoom{"in", href.Time(mid.Add(-half / 2)), href.Time(mid.Add(half - half/2))})
		}
	}
	out = append(out, zoom{"earlier", href.Time(tr.From.Add(-d / 2)), href.Time(tr.To.Add(-d / 2))})
	if !live && tr.To.Before(now) {
		to := tr.To.Add(d / 2)
		if to.After(now) {
			to = now
		}
		out = append(out, zoom{"later", href.Time(to.Add(-d)), href.Time(to)})
	}
	return out
}

// rangeErrorPage answers a page whose window does not parse with the page's
// own range form, as typed, and the problem next to the input it is about:
// one edit fixes it, where an error page of its own lost what was typed.
func (s *Server) rangeErrorPage(w http.ResponseWriter, r *http.Request, re *RangeError) {
	q := r.URL.Query()
	rp := rangeForm(r, q.Get("from"), q.Get("to"))
	rp.Error, rp.ErrorField = re.Error(), re.Field
	if rp.ErrorField == "" {
		rp.ErrorField = "from"
	}
	section, title := "", "Fix the time range"
	for _, n := range navSections {
		if n.path == r.URL.Path || (n.path != "/" && strings.HasPrefix(r.URL.Path, n.path+"/")) {
			section, title = n.section, n.label
		}
	}
	p := s.page(r, title, section, nil)
	p.Range = rp
	s.render(w, r, http.StatusBadRequest, p, components.RangeErrorBody(title))
}
