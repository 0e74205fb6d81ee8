package web

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/components/chart"
	"github.com/tailscope/tailscope/internal/units"
)

// searchPageLimit is the page's default result count: enough dots for the
// scatter plot to show the shape of the distribution.
const searchPageLimit = 200

func (s *Server) handleSearchPage(w http.ResponseWriter, r *http.Request) {
	q, tr, err := s.parseTraceQuery(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	if r.URL.Query().Get("limit") == "" {
		q.Limit = searchPageLimit
	}
	ctx := r.Context()
	found, err := s.store.SearchTraces(ctx, q)
	if err != nil {
		s.pageError(w, r, fmt.Errorf("search traces: %w", err))
		return
	}
	eps, err := s.endpoints(ctx, tr)
	if err != nil {
		s.pageError(w, r, fmt.Errorf("endpoints: %w", err))
		return
	}
	v := components.SearchView{Sort: r.URL.Query().Get("sort"), Limit: q.Limit}
	qv := r.URL.Query()
	v.Form = components.SearchForm{
		Service: q.Service, Endpoint: q.Endpoint, MinMs: qv.Get("min_ms"), MaxMs: qv.Get("max_ms"),
		Tenant: q.Tenant, Version: q.Version, Status: qv.Get("status"), Attr: qv.Get("attr"),
		Sort: qv.Get("sort"), Limit: strconv.Itoa(q.Limit), From: tr.FromText, To: tr.ToText,
	}
	for i, h := range qv["has"] {
		if h == "" {
			continue
		}
		rest := cloneValues(qv)
		rest["has"] = append(append([]string{}, qv["has"][:i]...), qv["has"][i+1:]...)
		v.Form.Has = append(v.Form.Has, components.HasCondition{Text: strings.ReplaceAll(h, ";", ", "), Value: h, RemoveHref: "/search?" + rest.Encode()})
	}
	seenSvc, seenEp := map[string]bool{}, map[string]bool{}
	for _, e := range eps {
		if !seenSvc[e.Service] {
			seenSvc[e.Service] = true
			v.Form.Services = append(v.Form.Services, e.Service)
		}
		if (q.Service == "" || e.Service == q.Service) && !seenEp[e.Name] {
			seenEp[e.Name] = true
			v.Form.Endpoints = append(v.Form.Endpoints, e.Name)
		}
	}
	sort.Strings(v.Form.Endpoints)
	v.SortDurationHref = sortHref(r, "slowest", "fastest")
	v.SortStartHref = sortHref(r, "newest", "oldest")

	dots := make([]chart.Dot, 0, len(found))
	for _, t := range found {
		href := "/traces/" + t.TraceID.String()
		start := time.Unix(0, t.StartUnixNano).UTC()
		v.Rows = append(v.Rows, components.TraceRow{
			TraceID: t.TraceID.String(), Href: href,
			RootService: t.RootService, RootName: t.RootName,
			Start:      start.Format("2006-01-02 15:04:05.000"),
			DurationMs: nsToMs(t.DurationNano), MatchDurationMs: nsToMs(t.MatchDurationNano),
			Spans: t.SpanCount, Errors: t.ErrorCount, Tenant: t.Tenant, Version: t.Version,
		})
		dots = append(dots, chart.Dot{
			T: start, Ms: nsToMs(t.DurationNano), Error: t.ErrorCount > 0, Href: href,
			Title: fmt.Sprintf("%s %s · %s · %d spans · %s", t.RootService, t.RootName, units.Ms(nsToMs(t.DurationNano)), t.SpanCount, start.Format("15:04:05")),
		})
	}
	v.Scatter = chart.BuildScatter(chart.ScatterInput{From: tr.From, To: tr.To, Dots: dots, Height: 220})
	s.render(w, r, http.StatusOK, s.page(r, "Traces", "search", &tr), components.SearchPage(v))
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
