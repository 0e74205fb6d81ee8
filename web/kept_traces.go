package web

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/report"
	"github.com/tailscope/tailscope/store"
)

// Exemplar traces of a finalized report are kept with the incident
// (store.KeepTraces), so the evidence a postmortem links to opens after
// retention has dropped the spans: the trace page and API fall back to the
// kept copy and say whose copy it is.

// maxKeptSpans bounds the copy of one trace: a report cites at most a few
// dozen traces, and a trace past this is a batch job's, not a request's;
// its report row keeps the summary and critical path.
const maxKeptSpans = 50_000

// keptInfo says a trace was read from an incident's kept copy.
type keptInfo struct {
	IncidentID int64     `json:"incident_id"`
	KeptAt     time.Time `json:"kept_at"`
}

// keepExemplars stores copies of the report's stored exemplar traces
// with the incident, before its snapshot is written; all says every one
// was kept (none was over maxKeptSpans or gone since the report read it).
func (s *Server) keepExemplars(ctx context.Context, incidentID int64, rep report.Report) (all bool, err error) {
	all = true
	var ids []store.TraceID
	for _, e := range rep.Exemplars {
		if !e.Stored {
			continue
		}
		if e.SpanCount > maxKeptSpans {
			all = false
			continue
		}
		id, err := store.ParseTraceID(e.TraceID)
		if err != nil {
			return false, fmt.Errorf("exemplar %q: %w", e.TraceID, err)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return all, nil
	}
	traces, err := s.store.Traces(ctx, ids)
	if err != nil {
		return false, fmt.Errorf("read exemplar traces: %w", err)
	}
	if len(traces) < len(ids) {
		all = false
	}
	if err := s.store.KeepTraces(ctx, incidentID, traces); err != nil {
		return false, fmt.Errorf("keep exemplar traces: %w", err)
	}
	return all, nil
}

// trace reads a trace from the store, or the copy an incident kept when
// retention has removed it (kept non-nil).
func (s *Server) trace(ctx context.Context, id store.TraceID) (spans []store.Span, kept *keptInfo, err error) {
	spans, err = s.store.Trace(ctx, id)
	if !errors.Is(err, store.ErrNotFound) {
		return spans, nil, err
	}
	k, kerr := s.store.KeptTrace(ctx, id)
	if kerr != nil {
		if errors.Is(kerr, store.ErrNotFound) {
			return nil, nil, err
		}
		return nil, nil, kerr
	}
	return k.Spans, &keptInfo{IncidentID: k.IncidentID, KeptAt: k.KeptAt.UTC()}, nil
}

// keptBanner tells the trace page's reader that retention removed the
// trace and they see the copy an incident kept.
func keptBanner(k *keptInfo) *components.Banner {
	if k == nil {
		return nil
	}
	return &components.Banner{
		TestID:   "kept-trace",
		Text:     fmt.Sprintf("Retention has removed this trace from the store; this is the copy kept on %s with incident %d's report.", k.KeptAt.Format("2006-01-02 15:04 UTC"), k.IncidentID),
		LinkText: "Open the incident",
		Href:     fmt.Sprintf("/incidents/%d", k.IncidentID),
	}
}
