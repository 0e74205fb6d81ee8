package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tailscope/tailscope/analysis"
)

// /api/v1/services bounds what it lists as the Services page does
// (endpoint_choices.go): a service.name carrying a pod name makes
// thousands of services, and a span named after its raw path an endpoint
// per request; with 20,000 endpoints the answer ran to megabytes. It
// lists the busiest services and, of each, the busiest endpoints, and
// sums up the rest, so totals still add up; services=all and
// endpoints=all list every one.
const (
	// apiServices is how many services the answer lists by default.
	apiServices = overviewServices
	// apiEndpoints is how many endpoints of a service it lists by
	// default: as many as a picker suggests.
	apiEndpoints = choiceEndpoints
	// maxAPIListed bounds a number asked for; "all" has no bound.
	maxAPIListed = 100_000
)

// servicesAnswer is /api/v1/services: the overview with its lists cut.
type servicesAnswer struct {
	From     time.Time       `json:"from"`
	To       time.Time       `json:"to"`
	Services []serviceAnswer `json:"services"`
	// ServicesTotal counts every service with requests in the window;
	// OtherServices sums up those not listed.
	ServicesTotal int        `json:"services_total"`
	OtherServices *notListed `json:"other_services,omitempty"`
}

// serviceAnswer is a service of the answer, its endpoints cut.
type serviceAnswer struct {
	analysis.ServiceSummary
	EndpointsTotal int        `json:"endpoints_total"`
	OtherEndpoints *notListed `json:"other_endpoints,omitempty"`
}

// notListed sums up the services or endpoints a list left out.
type notListed struct {
	N      int `json:"n"`
	Count  int `json:"count"`
	Errors int `json:"errors"`
}

func (s *Server) handleAPIServices(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tr, err := s.parseRange(q)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	nsvc, err := listBound(q, "services", apiServices)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	neps, err := listBound(q, "endpoints", apiEndpoints)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	rep, err := s.services(r.Context(), tr)
	if err != nil {
		s.apiError(w, r, fmt.Errorf("services: %w", err))
		return
	}
	s.writeJSON(w, http.StatusOK, boundServices(rep, nsvc, neps))
}

// listBound reads a list's bound from q[name]: a whole number, or "all"
// (-1: no bound); def when absent.
func listBound(q url.Values, name string, def int) (int, error) {
	v := strings.TrimSpace(q.Get(name))
	switch {
	case v == "":
		return def, nil
	case strings.EqualFold(v, "all"):
		return -1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxAPIListed {
		return 0, badRequest("%s must be all or a whole number from 1 to %d, got %q", name, maxAPIListed, truncateText(v, 40))
	}
	return n, nil
}

// boundServices lists rep's nsvc busiest services (by requests; all when
// nsvc < 0) and each one's neps busiest endpoints, in rep's order, and
// sums up the rest.
func boundServices(rep analysis.ServicesReport, nsvc, neps int) servicesAnswer {
	out := servicesAnswer{From: rep.From, To: rep.To, Services: []serviceAnswer{}, ServicesTotal: len(rep.Services)}
	svcs := rep.Services
	var rest notListed
	for i, listed := range busiest(len(svcs), nsvc, func(i int) int { return svcs[i].Count }) {
		svc := svcs[i]
		if !listed {
			rest.add(svc.RequestStats)
			continue
		}
		sa := serviceAnswer{ServiceSummary: svc, EndpointsTotal: len(svc.Endpoints)}
		if eps := svc.Endpoints; neps >= 0 && len(eps) > neps {
			var more notListed
			sa.Endpoints = make([]analysis.EndpointSummary, 0, neps)
			for j, shown := range busiest(len(eps), neps, func(j int) int { return eps[j].Count }) {
				if shown {
					sa.Endpoints = append(sa.Endpoints, eps[j])
				} else {
					more.add(eps[j].RequestStats)
				}
			}
			sa.OtherEndpoints = &more
		}
		out.Services = append(out.Services, sa)
	}
	if rest.N > 0 {
		out.OtherServices = &rest
	}
	return out
}

// busiest marks, of n items, the bound with the largest counts (all when
// bound < 0).
func busiest(n, bound int, count func(int) int) []bool {
	if bound < 0 {
		bound = n
	}
	return markBusiest(n, bound, count, func(int) bool { return false })
}

func (n *notListed) add(st analysis.RequestStats) {
	n.N++
	n.Count += st.Count
	n.Errors += st.Errors
}
