package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/internal/wire"
	"github.com/tailscope/tailscope/report"
	"github.com/tailscope/tailscope/store"
)

// reportMemoRows bounds a report's memo (spans, and as many samples):
// what the outlier examination, the hop tables and the comparisons'
// samples read together on a busy incident (a few thousand traces of tens
// of spans) and the windows' samples, while a report over giant traces or
// windows stops keeping them instead of holding them all.
const reportMemoRows = 200_000

// computeReport builds an incident's report from the computations the
// pages and the API use (cached alike), with site-relative links
// (report.Report.WithBase adds the public URL for exports). Its analyses
// read through one memo, so a trace that several of them read (a slow
// request is an outlier, a budget's slow request and a comparison's tail)
// and a window's samples (outliers, impact, compliance) are read once;
// the memo goes with the report. Latency reads the store's spans itself
// (Server.spanLatency), exact and bounded by the window, never rollups.
func (s *Server) computeReport(ctx context.Context, in store.Incident) (report.Report, error) {
	return s.buildReport(ctx, in, analysis.NewSpanMemo(s.store, reportMemoRows))
}

// buildReport builds the report with its analyses reading spans from src.
func (s *Server) buildReport(ctx context.Context, in store.Incident, src analysis.SpanSource) (report.Report, error) {
	an := reportAnalyses{s: s, src: src, turns: make(chan struct{}, s.pool.Limits().Concurrency)}
	return report.Build(ctx, an, reportRecords{Records: s.store, src: src}, in, report.Options{
		Now: s.analysisNow(), GeneratedAt: s.now(), MaxRange: maxAnalysisRange, Version: s.version,
	})
}

// parseRevision reads ?revision=N: 0 (absent) is the latest snapshot.
func parseRevision(q url.Values) (int, error) {
	raw := q.Get("revision")
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 {
		return 0, badRequest("revision %q: want a snapshot revision, 1 or more", truncateText(raw, 20))
	}
	return n, nil
}

// incidentReport is what an incident's page and exports show: revision
// rev of its snapshot (0: the latest) once it is finalized, or the
// report computed now when it has none. base prefixes every link.
func (s *Server) incidentReport(ctx context.Context, in store.Incident, rev int, base string) (report.Report, error) {
	sn, err := s.store.Snapshot(ctx, in.ID, rev)
	switch {
	case errors.Is(err, store.ErrNotFound) && rev == 0:
		rep, err := s.computeReport(ctx, in)
		return rep.WithBase(base), err
	case errors.Is(err, store.ErrNotFound):
		return report.Report{}, fmt.Errorf("incident %d has no revision %d: %w", in.ID, rev, store.ErrNotFound)
	case err != nil:
		return report.Report{}, fmt.Errorf("incident %d snapshot: %w", in.ID, err)
	}
	rep, err := decodeSnapshot(sn)
	if err != nil {
		return rep, err
	}
	rep.GeneratedAt = s.now().UTC()
	return rep.WithBase(base), nil
}

// decodeSnapshot reads a stored report; the revision and its time come
// from the row, which the store numbered after the body was computed.
func decodeSnapshot(sn store.IncidentSnapshot) (report.Report, error) {
	var rep report.Report
	if err := json.Unmarshal(sn.Body, &rep); err != nil {
		return rep, fmt.Errorf("incident %d snapshot %d: decode: %w", sn.IncidentID, sn.Revision, err)
	}
	return rep.AsRevision(sn.Revision, sn.CreatedAt), nil
}

// finalize computes an incident's report and stores it as its next
// snapshot revision.
func (s *Server) finalize(ctx context.Context, in store.Incident) (store.IncidentSnapshot, error) {
	rep, err := s.computeReport(ctx, in)
	if err != nil {
		return store.IncidentSnapshot{}, fmt.Errorf("incident %d report: %w", in.ID, err)
	}
	// The traces first: a snapshot that says its traces are kept must
	// never exist without them.
	if rep.TracesKept, err = s.keepExemplars(ctx, in.ID, rep); err != nil {
		return store.IncidentSnapshot{}, fmt.Errorf("incident %d: %w", in.ID, err)
	}
	body, err := json.Marshal(rep)
	if err != nil {
		return store.IncidentSnapshot{}, fmt.Errorf("encode incident %d report: %w", in.ID, err)
	}
	sn, err := s.store.CreateSnapshot(ctx, store.IncidentSnapshot{IncidentID: in.ID, Version: s.version, Body: body})
	if err != nil {
		return sn, fmt.Errorf("incident %d: %w", in.ID, err)
	}
	return sn, nil
}

// reportAnalyses is report.Analyses over the server's cached
// computations, reading traces from src. A 4xx of the API's parsers
// becomes report.Unavailable: the report states it ("too few requests")
// instead of failing.
//
// A report runs its analyses side by side, a dozen or more at once, while
// the analysis pool runs as many as it has slots (one on a machine of up
// to seven cores) and each waits for a slot at most the queue wait: queued
// all at once behind each other, the last ones timed out once the first
// ones together took longer than that (TestAnalysesDoNotNest). So at most
// a slot's worth of them are started at a time (turns); each then waits
// only for other requests' analyses, as a page's does.
type reportAnalyses struct {
	s     *Server
	src   analysis.SpanSource
	turns chan struct{}
}

// turn runs fn once fewer than cap(turns) of the report's analyses run.
func turn[T any](ctx context.Context, a reportAnalyses, fn func() (T, error)) (T, error) {
	select {
	case a.turns <- struct{}{}:
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
	defer func() { <-a.turns }()
	return fn()
}

// reportRecords are the store's records, with the exemplars' traces read
// from src like the analyses' (the worst trace of an outlier group has
// been read by the outlier analysis).
type reportRecords struct {
	report.Records
	src analysis.SpanSource
}

func (r reportRecords) Traces(ctx context.Context, ids []store.TraceID) (map[store.TraceID][]store.Span, error) {
	return r.src.Traces(ctx, ids)
}

var _ report.Analyses = reportAnalyses{}

func (a reportAnalyses) Endpoints(ctx context.Context, from, to time.Time) ([]store.Endpoint, error) {
	return turn(ctx, a, func() ([]store.Endpoint, error) { return a.s.endpoints(ctx, TimeRange{From: from, To: to}) })
}

func (a reportAnalyses) Latency(ctx context.Context, q analysis.LatencyQuery) (analysis.LatencyReport, error) {
	return turn(ctx, a, func() (analysis.LatencyReport, error) { return a.s.spanLatency(ctx, q) })
}

func (a reportAnalyses) Outliers(ctx context.Context, q analysis.OutlierQuery) (analysis.OutlierReport, error) {
	return turn(ctx, a, func() (analysis.OutlierReport, error) {
		rep, err := a.s.outliersFrom(ctx, a.src, q)
		return rep, asUnavailable(err)
	})
}

func (a reportAnalyses) Compare(ctx context.Context, q url.Values) (analysis.Comparison, error) {
	return turn(ctx, a, func() (analysis.Comparison, error) {
		_, c, err := a.s.compareWith(ctx, a.src, q)
		return c, asUnavailable(err)
	})
}

func (a reportAnalyses) Compliance(ctx context.Context, b store.Budget, from, to, now time.Time) (wire.Compliance, error) {
	return turn(ctx, a, func() (wire.Compliance, error) {
		return a.s.complianceFrom(ctx, a.src, b, TimeRange{From: from, To: to}, now)
	})
}

func (a reportAnalyses) DeployKinds(ctx context.Context, ds []store.Deploy) (map[int64]string, error) {
	return turn(ctx, a, func() (map[int64]string, error) { return a.s.deployKinds(ctx, ds) })
}

// asUnavailable turns a client error (4xx) into report.Unavailable.
func asUnavailable(err error) error {
	var e *Error
	if errors.As(err, &e) && e.Status < 500 {
		return &report.Unavailable{Reason: e.Message}
	}
	return err
}
