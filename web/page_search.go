package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/components/chart"
	"github.com/tailscope/tailscope/internal/units"
	"github.com/tailscope/tailscope/store"
)

// searchPageLimit is the page's default result count: enough dots for the
// scatter plot to show the shape of the distribution.
const searchPageLimit = 200

func (s *Server) handleSearchPage(w http.ResponseWriter, r *http.Request) {
	qv := r.URL.Query()
	q, tr, err := s.parseTraceQuery(r)
	var re *RangeError
	if err != nil && errors.As(err, &re) {
		s.pageError(w, r, err)
		return
	}
	if qv.Get("limit") == "" {
		q.Limit = searchPageLimit
	}
	ctx := r.Context()
	v := components.SearchView{Sort: qv.Get("sort"), Limit: q.Limit, Form: searchForm(qv, tr)}
	eps, epErr := s.endpoints(ctx, tr)
	if epErr != nil {
		s.pageError(w, r, fmt.Errorf("endpoints: %w", epErr))
		return
	}
	v.Form.Services, v.Form.MoreServices = serviceChoices(eps)
	if q.Service != "" && v.Form.MoreServices == 0 && !slices.Contains(v.Form.Services, q.Service) {
		v.Form.Services = append(v.Form.Services, q.Service) // a choice list must offer it
	}
	v.Form.Endpoints, _ = endpointChoices(eps, q.Service, choiceEndpoints)
	if name, templated := storedName(eps, q.Service, q.Endpoint); templated {
		v.Form.AsSent, v.Form.Endpoint, q.Endpoint = q.Endpoint, name, name
	}
	if err != nil {
		// A filter that does not parse is shown on the form that holds
		// it, with every value as typed, rather than on a page of its own.
		status, msg := errorStatus(err)
		if status != http.StatusBadRequest {
			s.pageError(w, r, err)
			return
		}
		v.Form.Error = msg
		v.Scatter = chart.BuildScatter(chart.ScatterInput{From: tr.From, To: tr.To, Height: 220})
		s.render(w, r, status, s.page(r, "Traces", "search", &tr), components.SearchPage(v))
		return
	}
	found, err := s.store.SearchTraces(ctx, q)
	if err != nil {
		s.pageError(w, r, fmt.Errorf("search traces: %w", err))
		return
	}
	v.SortDurationHref = sortHref(r, "slowest", "fastest")
	v.SortStartHref = sortHref(r, "newest", "oldest")

	dots := make([]chart.Dot, 0, len(found))
	for _, t := range found {
		href := "/traces/" + t.TraceID.String()
		start := time.Unix(0, t.StartUnixNano).UTC()
		v.Rows = append(v.Rows, components.TraceRow{
			TraceID: t.TraceID.String(), Href: href,
			RootService: t.RootService, RootName: t.RootName,
			Start:      start,
			DurationMs: nsToMs(t.DurationNano), MatchDurationMs: nsToMs(t.MatchDurationNano),
			Spans: t.SpanCount, Errors: t.ErrorCount, Tenant: t.Tenant, Version: t.Version,
		})
		dots = append(dots, chart.Dot{
			T: start, Ms: nsToMs(t.DurationNano), Error: t.ErrorCount > 0, Href: href,
			Title: fmt.Sprintf("%s %s · %s · %d spans · %s UTC", t.RootService, t.RootName, units.Ms(nsToMs(t.DurationNano)), t.SpanCount, start.Format("15:04:05.000")),
		})
	}
	from, to := scatterWindow(found, tr)
	v.ScatterFits = !from.Equal(tr.From) || !to.Equal(tr.To)
	v.Scatter = chart.BuildScatter(chart.ScatterInput{From: from, To: to, Dots: dots, Height: 220})
	s.render(w, r, http.StatusOK, s.page(r, "Traces", "search", &tr), components.SearchPage(v))
}

// searchForm echoes the filters as the user typed them.
func searchForm(qv url.Values, tr TimeRange) components.SearchForm {
	f := components.SearchForm{
		Service: qv.Get("service"), Endpoint: qv.Get("endpoint"), MinMs: qv.Get("min_ms"), MaxMs: qv.Get("max_ms"),
		Tenant: qv.Get("tenant"), Version: qv.Get("version"), Status: qv.Get("status"), Attr: qv.Get("attr"),
		Sort: qv.Get("sort"), Limit: qv.Get("limit"), From: tr.FromText, To: tr.ToText,
	}
	if f.Limit == "" {
		f.Limit = fmt.Sprint(searchPageLimit)
	}
	for i, h := range qv["has"] {
		if h == "" {
			continue
		}
		rest := cloneValues(qv)
		rest["has"] = append(append([]string{}, qv["has"][:i]...), qv["has"][i+1:]...)
		f.Has = append(f.Has, components.HasCondition{Text: strings.ReplaceAll(h, ";", ", "), Value: h, RemoveHref: "/search?" + rest.Encode()})
	}
	return f
}

// scatterWindow is the time axis of the search scatter: the span of the
// results' starts with a margin, within the requested window. The newest
// 200 traces of a busy hour cover seconds; on the hour's axis every dot sat
// on its right edge.
func scatterWindow(found []store.TraceSummary, tr TimeRange) (from, to time.Time) {
	if len(found) == 0 {
		return tr.From, tr.To
	}
	lo, hi := found[0].StartUnixNano, found[0].StartUnixNano
	for _, t := range found[1:] {
		lo, hi = min(lo, t.StartUnixNano), max(hi, t.StartUnixNano)
	}
	// A margin of 5% of the span, at least a second, so the first and last
	// dots do not sit on the axes.
	margin := max(time.Duration(hi-lo)/20, time.Second)
	from, to = time.Unix(0, lo).Add(-margin), time.Unix(0, hi).Add(margin)
	if from.Before(tr.From) {
		from = tr.From
	}
	if to.After(tr.To) {
		to = tr.To
	}
	return from.UTC(), to.UTC()
}

// sortHref toggles between a column's two orders, keeping every filter.
func sortHref(r *http.Request, first, second string) string {
	q := cloneValues(r.URL.Query())
	if q.Get("sort") == first || (first == "newest" && q.Get("sort") == "") {
		q.Set("sort", second)
	} else {
		q.Set("sort", first)
	}
	return "/search?" + q.Encode()
}
