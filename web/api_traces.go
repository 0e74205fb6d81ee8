package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/tailscope/tailscope/store"
)

// traceSummaryJSON is one row of GET /api/v1/traces.
type traceSummaryJSON struct {
	TraceID         string    `json:"trace_id"`
	RootService     string    `json:"root_service"`
	RootName        string    `json:"root_name"`
	Start           time.Time `json:"start"`
	DurationMs      float64   `json:"duration_ms"`
	MatchDurationMs float64   `json:"match_duration_ms"`
	SpanCount       int       `json:"span_count"`
	ErrorCount      int       `json:"error_count"`
	Tenant          string    `json:"tenant"`
	Version         string    `json:"version"`
}

func summaryJSON(t store.TraceSummary) traceSummaryJSON {
	return traceSummaryJSON{
		TraceID:         t.TraceID.String(),
		RootService:     t.RootService,
		RootName:        t.RootName,
		Start:           time.Unix(0, t.StartUnixNano).UTC(),
		DurationMs:      nsToMs(t.DurationNano),
		MatchDurationMs: nsToMs(t.MatchDurationNano),
		SpanCount:       t.SpanCount,
		ErrorCount:      t.ErrorCount,
		Tenant:          t.Tenant,
		Version:         t.Version,
	}
}

// spanJSON is one span of GET /api/v1/traces/{id}. Start times are strings
// of Unix nanoseconds, as in OTLP JSON, because they exceed the integers a
// JavaScript number holds exactly.
type spanJSON struct {
	SpanID        string           `json:"span_id"`
	ParentSpanID  string           `json:"parent_span_id"`
	Service       string           `json:"service"`
	Name          string           `json:"name"`
	Kind          string           `json:"kind"`
	StartUnixNano string           `json:"start_unix_nano"`
	DurationNs    int64            `json:"duration_ns"`
	DurationMs    float64          `json:"duration_ms"`
	StatusCode    string           `json:"status_code"`
	StatusMessage string           `json:"status_message"`
	Tenant        string           `json:"tenant"`
	Version       string           `json:"version"`
	Dependency    string           `json:"dependency"`
	PayloadBytes  int64            `json:"payload_bytes"`
	Host          string           `json:"host"`
	Weight        float64          `json:"weight"`
	Attributes    store.Attributes `json:"attributes"`
	Resource      store.Attributes `json:"resource"`
	Events        []store.Event    `json:"events"`
	Links         []store.Link     `json:"links"`
}

func spanToJSON(sp *store.Span) spanJSON {
	parent := ""
	if !sp.ParentSpanID.IsZero() {
		parent = sp.ParentSpanID.String()
	}
	events, links := sp.Events, sp.Links
	if events == nil {
		events = []store.Event{}
	}
	if links == nil {
		links = []store.Link{}
	}
	return spanJSON{
		SpanID:        sp.SpanID.String(),
		ParentSpanID:  parent,
		Service:       sp.Service,
		Name:          sp.Name,
		Kind:          sp.Kind.String(),
		StartUnixNano: strconv.FormatInt(sp.StartUnixNano, 10),
		DurationNs:    sp.DurationNano,
		DurationMs:    nsToMs(sp.DurationNano),
		StatusCode:    sp.StatusCode.String(),
		StatusMessage: sp.StatusMessage,
		Tenant:        sp.Tenant,
		Version:       sp.Version,
		Dependency:    sp.Dependency,
		PayloadBytes:  sp.PayloadBytes,
		Host:          sp.Host,
		Weight:        store.NormWeight(sp.Weight),
		Attributes:    sp.Attributes,
		Resource:      sp.Resource,
		Events:        events,
		Links:         links,
	}
}

func nsToMs(ns int64) float64 { return float64(ns) / 1e6 }

// parseTraceQuery reads the trace search filters shared by the API and the
// search page.
func (s *Server) parseTraceQuery(r *http.Request) (store.TraceQuery, TimeRange, error) {
	q := r.URL.Query()
	tr, err := parseTimeRange(q.Get("from"), q.Get("to"), s.now())
	if err != nil {
		return store.TraceQuery{}, tr, err
	}
	tq := store.TraceQuery{
		Service:  strings.TrimSpace(q.Get("service")),
		Endpoint: strings.TrimSpace(q.Get("endpoint")),
		Tenant:   strings.TrimSpace(q.Get("tenant")),
		Version:  strings.TrimSpace(q.Get("version")),
		From:     tr.From,
		To:       tr.To,
	}
	if tq.MinDuration, err = parseMs(q.Get("min_ms"), "min_ms"); err != nil {
		return tq, tr, err
	}
	if tq.MaxDuration, err = parseMs(q.Get("max_ms"), "max_ms"); err != nil {
		return tq, tr, err
	}
	if tq.MinDuration > 0 && tq.MaxDuration > 0 && tq.MinDuration > tq.MaxDuration {
		return tq, tr, badRequest("min_ms (%s) is above max_ms (%s)", q.Get("min_ms"), q.Get("max_ms"))
	}
	switch st := q.Get("status"); st {
	case "", "any", "all":
	case "ok":
		tq.Status = store.StatusFilterOK
	case "error":
		tq.Status = store.StatusFilterErr
	default:
		return tq, tr, badRequest("status %q: want ok, error or empty", truncateText(st, 40))
	}
	if n := len(q["attr"]); n > store.MaxAttributeFilters {
		return tq, tr, badRequest("attr: at most %d filters, not %d", store.MaxAttributeFilters, n)
	}
	for _, a := range q["attr"] {
		if a == "" {
			continue
		}
		k, v, ok := strings.Cut(a, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return tq, tr, badRequest("attr %q: want key=value", truncateText(a, 60))
		}
		if tq.Attributes == nil {
			tq.Attributes = map[string]string{}
		}
		tq.Attributes[k] = strings.TrimSpace(v)
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return tq, tr, badRequest("limit %q: want a whole number from 1 to 1000", truncateText(l, 20))
		}
		tq.Limit = n
	}
	if tq.Has, err = parseHas(q); err != nil {
		return tq, tr, err
	}
	switch o := q.Get("sort"); o {
	case "", "newest":
		tq.Order = store.OrderNewest
	case "oldest":
		tq.Order = store.OrderOldest
	case "slowest", "duration":
		tq.Order = store.OrderSlowest
	case "fastest":
		tq.Order = store.OrderFastest
	default:
		return tq, tr, badRequest("sort %q: want newest, oldest, slowest or fastest", truncateText(o, 40))
	}
	return tq, tr, nil
}

// parseMs parses a non-negative millisecond value ("" means unset).
func parseMs(v, name string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f >= 0 && f <= 1e9) { // NaN fails both
		return 0, badRequest("%s %q: want milliseconds, a number ≥ 0", name, truncateText(v, 40))
	}
	return time.Duration(f * float64(time.Millisecond)), nil
}

func (s *Server) handleAPITraceSearch(w http.ResponseWriter, r *http.Request) {
	q, _, err := s.parseTraceQuery(r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	found, err := s.store.SearchTraces(r.Context(), q)
	if err != nil {
		s.apiError(w, r, fmt.Errorf("search traces: %w", err))
		return
	}
	out := make([]traceSummaryJSON, len(found))
	for i, t := range found {
		out[i] = summaryJSON(t)
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"traces": out})
}

// parseTraceIDParam validates the {traceID} URL parameter.
func parseTraceIDParam(r *http.Request) (store.TraceID, error) {
	raw := chi.URLParam(r, "traceID")
	id, err := store.ParseTraceID(strings.ToLower(raw))
	if err != nil {
		return id, badRequest("%v", err)
	}
	return id, nil
}
