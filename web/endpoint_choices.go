package web

import (
	"cmp"
	"maps"
	"slices"

	"github.com/tailscope/tailscope/internal/spanname"
	"github.com/tailscope/tailscope/store"
)

// Pages bound the endpoints they list. An endpoint is a service's entry
// span name, and an instrumentation that names spans after the raw path
// ("GET /users/12345", no route template) gives a service as many
// endpoints as requests: with 20,000 of them the Services page was 25 MB
// and every endpoint picker 0.9–1.2 MB of options (docs/PERFORMANCE.md,
// "Endpoints by the thousand"). A list holds the busiest; a picker past
// its bound becomes a text field that suggests them and takes any name.
const (
	// choiceEndpoints bounds a picker's or a form's endpoint suggestions.
	choiceEndpoints = 200
	// overviewEndpoints bounds a service's endpoint rows on the Services
	// page; the rest are summed up in one row.
	overviewEndpoints = 50
	// overviewServices bounds the services the Services page lists unless
	// asked for all; the rest are summed up below the table.
	overviewServices = 300
	// choiceServices bounds a picker's service choices: a service.name
	// that carries a pod or host name makes a service per pod.
	choiceServices = 200
)

// serviceChoices returns the services of eps a picker offers: every one,
// in order of first appearance, or, past choiceServices, the busiest
// (analysis.Busier's order, summed over a service's endpoints) sorted by
// name, with more: how many were left out. A picker with more becomes a
// text field that suggests them and takes any name.
func serviceChoices(eps []store.Endpoint) (names []string, more int) {
	type load struct{ roots, count int64 }
	byService := map[string]*load{}
	for _, e := range eps {
		l := byService[e.Service]
		if l == nil {
			l = &load{}
			byService[e.Service] = l
			names = append(names, e.Service)
		}
		l.roots += e.Roots
		l.count += e.Count
	}
	if len(names) <= choiceServices {
		return names, 0
	}
	slices.SortFunc(names, func(a, b string) int {
		la, lb := byService[a], byService[b]
		return cmp.Or(cmp.Compare(lb.roots, la.roots), cmp.Compare(lb.count, la.count), cmp.Compare(a, b))
	})
	more, names = len(names)-choiceServices, names[:choiceServices]
	slices.Sort(names)
	return names, more
}

// endpointChoices returns the names of the n busiest endpoints of
// service (of every service when service is ""; a name several services
// share counts once), sorted by name, with more: how many names were left
// out.
func endpointChoices(eps []store.Endpoint, service string, n int) (names []string, more int) {
	busiest := map[string]store.Endpoint{}
	for _, e := range eps {
		if service != "" && e.Service != service {
			continue
		}
		if b, ok := busiest[e.Name]; !ok || busierFirst(e, b) < 0 {
			busiest[e.Name] = e
		}
	}
	list := slices.Collect(maps.Values(busiest))
	if len(list) > n {
		slices.SortFunc(list, busierFirst)
		more, list = len(list)-n, list[:n]
	}
	names = make([]string, len(list))
	for i, e := range list {
		names[i] = e.Name
	}
	slices.Sort(names)
	return names, more
}

// busierFirst orders endpoints busiest first (analysis.Busier: requests
// starting there, then requests), then by service and name.
func busierFirst(a, b store.Endpoint) int {
	return cmp.Or(cmp.Compare(b.Roots, a.Roots), cmp.Compare(b.Count, a.Count), cmp.Compare(a.Service, b.Service), cmp.Compare(a.Name, b.Name))
}

// storedName returns the name an endpoint asked for is stored under, and
// whether that is its template: ingest stores a span named after its raw
// path as the path's template (internal/spanname), so a name pasted from a
// log ("GET /users/12345") finds "GET /users/{id}" — when service (any
// service when "") has no endpoint of the name itself and has the
// template's.
func storedName(eps []store.Endpoint, service, name string) (string, bool) {
	has := func(n string) bool {
		return slices.ContainsFunc(eps, func(e store.Endpoint) bool { return e.Name == n && (service == "" || e.Service == service) })
	}
	if name == "" || has(name) {
		return name, false
	}
	if t, ok := spanname.Template(name); ok && has(t) {
		return t, true
	}
	return name, false
}
