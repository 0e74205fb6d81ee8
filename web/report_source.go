package web

import (
	"context"
	"errors"
	"net/url"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/internal/wire"
	"github.com/tailscope/tailscope/report"
	"github.com/tailscope/tailscope/store"
)

// incidentReport builds an incident's report from the computations the
// pages and the API use (cached alike). base prefixes every link ("" on
// the page, the server's URL in exports).
func (s *Server) incidentReport(ctx context.Context, in store.Incident, base string) (report.Report, error) {
	return report.Build(ctx, reportAnalyses{s}, s.store, in, report.Options{
		Base: base, Now: s.analysisNow(), GeneratedAt: s.now(), MaxRange: maxAnalysisRange,
	})
}

// reportAnalyses is report.Analyses over the server's cached
// computations. A 4xx of the API's parsers becomes report.Unavailable: the
// report states it ("too few requests") instead of failing.
type reportAnalyses struct{ s *Server }

var _ report.Analyses = reportAnalyses{}

func (a reportAnalyses) Endpoints(ctx context.Context, from, to time.Time) ([]store.Endpoint, error) {
	return a.s.endpoints(ctx, TimeRange{From: from, To: to})
}

func (a reportAnalyses) Latency(ctx context.Context, q analysis.LatencyQuery) (analysis.LatencyReport, error) {
	return a.s.latency(ctx, q)
}

func (a reportAnalyses) Outliers(ctx context.Context, q analysis.OutlierQuery) (analysis.OutlierReport, error) {
	rep, err := a.s.outliers(ctx, q)
	return rep, asUnavailable(err)
}

func (a reportAnalyses) Compare(ctx context.Context, q url.Values) (analysis.Comparison, error) {
	_, c, err := a.s.compareWith(ctx, q)
	return c, asUnavailable(err)
}

func (a reportAnalyses) Compliance(ctx context.Context, b store.Budget, from, to, now time.Time) (wire.Compliance, error) {
	return a.s.compliance(ctx, b, TimeRange{From: from, To: to}, now)
}

func (a reportAnalyses) DeployKinds(ctx context.Context, ds []store.Deploy) (map[int64]string, error) {
	return a.s.deployKinds(ctx, ds)
}

// asUnavailable turns a client error (4xx) into report.Unavailable.
func asUnavailable(err error) error {
	var e *Error
	if errors.As(err, &e) && e.Status < 500 {
		return &report.Unavailable{Reason: e.Message}
	}
	return err
}
