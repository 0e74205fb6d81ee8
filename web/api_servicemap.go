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
//
// The map starts from the window's endpoint listing, itself an analysis
// every page shares through the cache (the one read of the map that grows
// with traffic; the Services page or a picker has usually just paid for
// it). It is read here, before the map's own run takes an analysis slot,
// never from inside that run: with one slot (the default on a machine of
// up to seven cores) a run that waits for a second slot waits for itself
// until the queue wait ends, and the page answered 503 busy.
func (s *Server) serviceMap(ctx context.Context, q analysis.ServiceMapQuery) (analysis.ServiceMap, error) {
	eps, err := s.endpoints(ctx, TimeRange{From: q.From, To: q.To})
	if err != nil {
		return analysis.ServiceMap{}, err
	}
	key := queryKey("servicemap", q)
	return cached(ctx, s, key, func(ctx context.Context) (analysis.ServiceMap, error) {
		return analysis.BuildServiceMap(ctx, listedEndpoints{Store: s.store, from: q.From, to: q.To, eps: eps}, q)
	})
}

// listedEndpoints reads the store, but answers the listing of [from, to)
// with eps, read before.
type listedEndpoints struct {
	Store
	from, to time.Time
	eps      []store.Endpoint
}

func (l listedEndpoints) Endpoints(ctx context.Context, from, to time.Time) ([]store.Endpoint, error) {
	if from.Equal(l.from) && to.Equal(l.to) {
		return l.eps, nil
	}
	return l.Store.Endpoints(ctx, from, to)
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
