package web

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/store"
)

// traceDetail is a trace with its analysis: the body of
// GET /api/v1/traces/{id}, and what the waterfall page draws.
type traceDetail struct {
	TraceID      string                      `json:"trace_id"`
	Spans        []spanJSON                  `json:"spans"`
	CriticalPath []store.SpanID              `json:"critical_path"`
	Findings     []analysis.Finding          `json:"findings"`
	Analysis     analysis.CriticalPathResult `json:"critical_path_detail"`
	// Kept is set when retention removed the trace and this is the copy
	// an incident's report kept.
	Kept *keptInfo `json:"kept,omitempty"`

	spans []store.Span
}

// traceDetail reads and analyses a trace, and remembers it in s.traces
// for the requests its page makes next (recentTraceDetail).
func (s *Server) traceDetail(ctx context.Context, id store.TraceID) (*traceDetail, error) {
	now := time.Now()
	if s.now != nil {
		now = s.now()
	}
	spans, kept, err := s.trace(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("trace %s: %w", id, err)
	}
	cp := analysis.CriticalPath(spans)
	d := &traceDetail{
		Kept:         kept,
		TraceID:      id.String(),
		Spans:        make([]spanJSON, len(spans)),
		CriticalPath: cp.SpanIDs,
		Findings:     analysis.Findings(spans),
		Analysis:     cp,
		spans:        spans,
	}
	if d.CriticalPath == nil {
		d.CriticalPath = []store.SpanID{}
	}
	if d.Findings == nil {
		d.Findings = []analysis.Finding{}
	}
	for i := range spans {
		d.Spans[i] = spanToJSON(&spans[i])
	}
	s.traces.put(id, d, now)
	return d, nil
}

// recentTraceDetail is traceDetail, taken from s.traces when the trace was
// read moments ago: what the waterfall rows and span details use, right
// after their page read the trace. Callers must not modify it.
func (s *Server) recentTraceDetail(ctx context.Context, id store.TraceID) (*traceDetail, error) {
	now := time.Now()
	if s.now != nil {
		now = s.now()
	}
	if d, ok := s.traces.get(id, now); ok {
		return d, nil
	}
	return s.traceDetail(ctx, id)
}

func (s *Server) handleAPITrace(w http.ResponseWriter, r *http.Request) {
	id, err := parseTraceIDParam(r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	d, err := s.traceDetail(r.Context(), id)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, d)
}
