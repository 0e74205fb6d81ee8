package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/store"
)

// redRequest is a parsed operations (RED) request: the page and the API
// read the same parameters.
type redRequest struct {
	Query analysis.REDQuery
	Range TimeRange
	Sort  string // a key of analysis.REDSortKeys, "" for the busiest first
	Desc  bool
}

// maxGroupByLen bounds the attribute key a table may be grouped by.
const maxGroupByLen = 256

func (s *Server) parseREDRequest(r *http.Request) (redRequest, error) {
	tr, err := s.parseRange(r.URL.Query())
	if err != nil {
		return redRequest{}, err
	}
	q := r.URL.Query()
	req := redRequest{Range: tr, Query: analysis.REDQuery{
		From: tr.From, To: tr.To,
		Service: strings.TrimSpace(q.Get("service")),
		GroupBy: strings.TrimSpace(q.Get("group_by")),
	}}
	if !tr.To.After(tr.From) {
		return req, badRequest("the time range is empty")
	}
	// Rollups answer long windows cheaply; grouped by an attribute,
	// every span of the window is read.
	maxRange, what := store.MaxOperationRollupRange, ""
	if req.Query.GroupBy != "" {
		maxRange, what = store.MaxOperationRange, " grouped by an attribute"
	}
	if d := tr.To.Sub(tr.From); d > maxRange {
		return req, badRequest("the time range (%s) is longer than %s%s: pick a shorter one", d.Round(1e9), maxRange, what)
	}
	if len(req.Query.GroupBy) > maxGroupByLen {
		return req, badRequest("group_by is longer than %d bytes", maxGroupByLen)
	}
	if v := strings.TrimSpace(q.Get("limit")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxOperationLimit {
			return req, badRequest("limit must be a whole number from 1 to %d, got %q", store.MaxOperationLimit, truncateText(v, 40))
		}
		req.Query.Limit = n
	}
	req.Sort = strings.ToLower(strings.TrimSpace(q.Get("sort")))
	if req.Sort != "" && !analysis.SortRED(nil, req.Sort, false) {
		return req, badRequest("sort must be one of %s, got %q", strings.Join(analysis.REDSortKeys(), ", "), truncateText(req.Sort, 40))
	}
	switch d := q.Get("dir"); d {
	case "", "desc":
		req.Desc = true
	case "asc":
	default:
		return req, badRequest("dir must be asc or desc, got %q", truncateText(d, 20))
	}
	return req, nil
}

// operationsRED computes (or reads from the cache) the operations of a
// window, sorted as asked.
func (s *Server) operationsRED(ctx context.Context, req redRequest) (analysis.REDReport, error) {
	q := req.Query
	key := queryKey("red", q)
	rep, err := cached(ctx, s, key, func(ctx context.Context) (analysis.REDReport, error) {
		return analysis.OperationsRED(ctx, s.store, q)
	})
	if err != nil {
		return rep, err
	}
	if req.Sort != "" {
		analysis.SortRED(rep.Operations, req.Sort, req.Desc)
	}
	return rep, nil
}

func (s *Server) handleAPIOperations(w http.ResponseWriter, r *http.Request) {
	req, err := s.parseREDRequest(r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	rep, err := s.operationsRED(r.Context(), req)
	if err != nil {
		s.apiError(w, r, fmt.Errorf("operations: %w", err))
		return
	}
	s.writeJSON(w, http.StatusOK, rep)
}
