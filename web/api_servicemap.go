package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/store"
)

// serviceMapQuery reads the window and the sample size of a service map
// request (the page and the API read the same parameters).
func (s *Server) serviceMapQuery(r *http.Request) (analysis.ServiceMapQuery, TimeRange, error) {
	tr, err := s.parseRange(r.URL.Query())
	if err != nil {
		return analysis.ServiceMapQuery{}, tr, err
	}
	q := analysis.ServiceMapQuery{From: tr.From, To: tr.To}
	if v := strings.TrimSpace(r.URL.Query().Get("traces")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > analysis.MaxMapTraces {
			return q, tr, badRequest("traces must be a whole number from 1 to %d, got %q", analysis.MaxMapTraces, truncateText(v, 40))
		}
		q.Traces = n
	}
	if !q.To.After(q.From) {
		return q, tr, badRequest("the time range is empty")
	}
	return q, tr, nil
}

// serviceMap computes (or reads from the cache) the map of a window.
func (s *Server) serviceMap(ctx context.Context, q analysis.ServiceMapQuery) (analysis.ServiceMap, error) {
	key := queryKey("servicemap", q)
	return cached(ctx, s, key, func(ctx context.Context) (analysis.ServiceMap, error) {
		return analysis.BuildServiceMap(ctx, pageEndpoints{Store: s.store, s: s}, q)
	})
}

// pageEndpoints reads the store, but lists endpoints through the cache
// every page shares: the listing is the one read of the map that grows
// with traffic (a count over the window's entry spans), and the Services
// page or a picker has usually just paid for it.
type pageEndpoints struct {
	Store
	s *Server
}

func (p pageEndpoints) Endpoints(ctx context.Context, from, to time.Time) ([]store.Endpoint, error) {
	return p.s.endpoints(ctx, TimeRange{From: from, To: to})
}

func (s *Server) handleAPIServiceMap(w http.ResponseWriter, r *http.Request) {
	q, _, err := s.serviceMapQuery(r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	m, err := s.serviceMap(r.Context(), q)
	if err != nil {
		s.apiError(w, r, fmt.Errorf("service map: %w", err))
		return
	}
	s.writeJSON(w, http.StatusOK, m)
}
