package web

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/internal/href"
	"github.com/tailscope/tailscope/store"
)

// redGroupKeys are attribute keys people group operations by most often.
var redGroupKeys = []string{"db.system", "db.system.name", "http.route", "http.request.method", "http.response.status_code",
	"rpc.service", "rpc.method", "messaging.system", "messaging.destination.name", "server.address", "service.version", "host.name"}

func (s *Server) handleOperationsPage(w http.ResponseWriter, r *http.Request) {
	req, err := s.parseREDRequest(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	rep, err := s.operationsRED(r.Context(), req)
	if err != nil {
		s.pageError(w, r, fmt.Errorf("operations: %w", err))
		return
	}
	eps, err := s.endpoints(r.Context(), req.Range)
	if err != nil {
		s.pageError(w, r, fmt.Errorf("endpoints: %w", err))
		return
	}
	v := operationsView(rep, req, eps)
	v.APIHref = "/api/v1/operations?" + r.URL.Query().Encode()
	s.render(w, r, http.StatusOK, s.page(r, "Operations", "operations", &req.Range), components.OperationsPage(v))
}

// operationsView builds the table: sortable headers (each links to the
// same page sorted by it; again to flip the direction) and per-row links.
func operationsView(rep analysis.REDReport, req redRequest, eps []store.Endpoint) components.OperationsView {
	tr := req.Range
	v := components.OperationsView{
		Window: windowText(tr), Service: req.Query.Service, GroupBy: req.Query.GroupBy,
		GroupKeys: redGroupKeys, Limited: rep.Limited, Limit: rep.Limit,
		Accuracy: fmt.Sprintf("%g%%", rep.RelativeAccuracy*100), From: tr.FromText, To: tr.ToText,
		Source: "Read from the per-operation rollups written at ingest, so a long window costs no more than a short one; " +
			"the window is rounded out to whole minutes (whole hours beyond 6 h).",
	}
	if rep.Source == analysis.REDFromSpans {
		v.Source = fmt.Sprintf("Grouped by an attribute, which rollups do not keep: read from every span of the window "+
			"(at most %d days), so a long window takes longer.", int(store.MaxOperationRange.Hours()/24))
	}
	if rep.Weighted {
		v.Source += " Estimated from sampled spans: each counts as the requests its sampling weight says it stands for."
	}
	entry := map[[2]string]bool{}
	for _, e := range eps {
		entry[[2]string{e.Service, e.Name}] = true
	}
	// The filter offers services with operations but no entry spans too.
	all := slices.Clip(eps)
	for _, o := range rep.Operations {
		all = append(all, store.Endpoint{Service: o.Service, Count: o.Count})
	}
	v.Services, v.MoreServices = serviceChoices(all)
	slices.Sort(v.Services)
	if v.Service != "" && v.MoreServices == 0 && !slices.Contains(v.Services, v.Service) {
		v.Services = append(v.Services, v.Service) // a choice list must offer it
	}
	base := []string{"from", tr.FromText, "to", tr.ToText, "service", req.Query.Service, "group_by", req.Query.GroupBy}
	cols := []struct {
		key, label string
		num        bool
	}{{"service", "Service", false}, {"name", "Operation", false}, {"kind", "Kind", false}, {"group", req.Query.GroupBy, false},
		{"rate", "Rate", true}, {"errors", "Errors", true}, {"p50", "p50", true}, {"p95", "p95", true}, {"p99", "p99", true}}
	for _, c := range cols {
		if c.key == "group" && req.Query.GroupBy == "" {
			continue
		}
		sc := components.SortColumn{Label: c.label, Num: c.num, AriaSort: "none"}
		// Numbers sort largest first, names A to Z; the current column's
		// link flips the direction.
		dir := "asc"
		if c.num {
			dir = "desc"
		}
		if req.Sort == c.key {
			sc.AriaSort, sc.Mark, dir = "ascending", "↑", "desc"
			if req.Desc {
				sc.AriaSort, sc.Mark, dir = "descending", "↓", "asc"
			}
		}
		sc.Href = href.With("/operations", append(base, "sort", c.key, "dir", dir)...)
		v.Columns = append(v.Columns, sc)
	}
	for _, o := range rep.Operations {
		row := components.OperationRow{Service: o.Service, Name: o.Name, Kind: o.Kind, Group: o.Group, Count: o.Count,
			RatePerS: o.RatePerS, ErrorRate: o.ErrorRate, P50Ms: o.P50Ms, P95Ms: o.P95Ms, P99Ms: o.P99Ms,
			Other: o.Other, OtherLimit: store.MaxRollupNames}
		search := []string{"service", o.Service, "endpoint", o.Name, "from", tr.FromText, "to", tr.ToText, "sort", "slowest"}
		if req.Query.GroupBy != "" && o.Group != "" {
			search = append(search, "attr", req.Query.GroupBy+"="+o.Group)
		}
		row.TracesHref = href.With("/search", search...)
		row.Href = row.TracesHref
		if entry[[2]string{o.Service, o.Name}] && (o.Kind == "server" || o.Kind == "consumer") {
			row.Href = href.With("/latency", "service", o.Service, "endpoint", o.Name, "from", tr.FromText, "to", tr.ToText)
		}
		v.Rows = append(v.Rows, row)
	}
	return v
}
