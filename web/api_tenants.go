package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/tailscope/tailscope/analysis"
)

// maxTenantLimit bounds the tenants one table lists.
const maxTenantLimit = 1000

func (s *Server) tenants(ctx context.Context, q analysis.TenantsQuery) (analysis.TenantsReport, error) {
	return cached(ctx, s, queryKey("tenants", q), func(ctx context.Context) (analysis.TenantsReport, error) {
		return analysis.Tenants(ctx, s.store, q)
	})
}

// handleAPITenants answers GET /api/v1/tenants?service=&endpoint=&from=&to=&limit=
// (docs/API.md): an endpoint's (or, without one, a service's) busiest
// tenants, from the tenant rollups.
func (s *Server) handleAPITenants(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	eq, err := s.parseEndpointQuery(r.Context(), v, false)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	q := analysis.TenantsQuery{Service: eq.Service, Endpoint: eq.Endpoint, From: eq.Range.From, To: eq.Range.To}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxTenantLimit {
			s.apiError(w, r, badRequest("limit %q: want a whole number from 1 to %d", truncateText(l, 20), maxTenantLimit))
			return
		}
		q.Limit = n
	}
	rep, err := s.tenants(r.Context(), q)
	if err != nil {
		s.apiError(w, r, fmt.Errorf("tenants: %w", err))
		return
	}
	s.writeJSON(w, http.StatusOK, rep)
}
