package report

import (
	"context"
	"fmt"
	"net/url"

	"golang.org/x/sync/errgroup"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/internal/href"
	"github.com/tailscope/tailscope/store"
)

// pickEndpoints picks the endpoints a review examines: each listed
// service's busiest endpoint, or the system's busiest entry point.
func (b *builder) pickEndpoints(ctx context.Context) ([]store.Endpoint, []string, error) {
	in := b.in
	eps, err := b.an.Endpoints(ctx, in.From, b.to)
	if err != nil {
		return nil, nil, fmt.Errorf("endpoints: %w", err)
	}
	var out []store.Endpoint
	var warnings []string
	if len(in.Services) == 0 {
		var best store.Endpoint
		for _, e := range eps {
			if analysis.Busier(e, best) {
				best = e
			}
		}
		if best.Name == "" {
			return nil, []string{"No requests reached any service during the incident."}, nil
		}
		return []store.Endpoint{best}, nil, nil
	}
	for i, svc := range in.Services {
		if i == maxEndpoints {
			warnings = append(warnings, fmt.Sprintf("Only the first %d services are examined; %d more are listed.", maxEndpoints, len(in.Services)-maxEndpoints))
			break
		}
		var best store.Endpoint
		for _, e := range eps {
			if e.Service == svc && analysis.Busier(e, best) {
				best = e
			}
		}
		if best.Name == "" {
			warnings = append(warnings, fmt.Sprintf("No requests to %s during the incident.", svc))
			continue
		}
		out = append(out, best)
	}
	return out, warnings, nil
}

// endpoints fills each examined endpoint's numbers: the timeline
// series, the incident's own stats, the impact against the window before,
// and the outlier groups.
func (b *builder) endpoints(ctx context.Context, rep *Report) error {
	in, to, base := b.in, b.to, b.opt.Base
	eps, warnings, err := b.pickEndpoints(ctx)
	if err != nil {
		return err
	}
	rep.Warnings = append(rep.Warnings, warnings...)
	d := to.Sub(in.From)
	pad := timelinePad(d)
	// The charts show the time before the incident for context, and stop
	// where the analysis stops: traffic after the window must not change
	// the report.
	tlFrom, tlTo := in.From.Add(-pad), to
	// Each endpoint's four analyses read the store independently: run
	// them side by side, each filling its own fields.
	out := make([]Endpoint, len(eps))
	g, gctx := errgroup.WithContext(ctx)
	for i, ep := range eps {
		out[i] = Endpoint{Service: ep.Service, Endpoint: ep.Name}
		e := &out[i]
		inRange := []string{"service", ep.Service, "endpoint", ep.Name, "from", href.Time(in.From), "to", href.Time(to)}
		e.Links = EndpointLinks{
			Latency:    base + href.With("/latency", "service", ep.Service, "endpoint", ep.Name, "from", href.Time(tlFrom), "to", href.Time(tlTo)),
			Outliers:   base + href.With("/outliers", inRange...),
			SlowTraces: base + href.With("/search", append(inRange, "sort", "slowest")...),
		}
		g.Go(func() error {
			lat, err := b.an.Latency(gctx, analysis.LatencyQuery{Service: ep.Service, Endpoint: ep.Name, From: tlFrom, To: tlTo})
			if err != nil {
				return fmt.Errorf("incident timeline %s %s: %w", ep.Service, ep.Name, err)
			}
			e.Timeline = EndpointSeries{From: lat.From, To: lat.To, StepSeconds: lat.Series.StepSeconds, Points: lat.Series.Points}
			return nil
		})
		g.Go(func() error {
			during, err := b.an.Latency(gctx, analysis.LatencyQuery{Service: ep.Service, Endpoint: ep.Name, From: in.From, To: to})
			if err != nil {
				return fmt.Errorf("incident latency %s %s: %w", ep.Service, ep.Name, err)
			}
			e.During = WindowStats{
				From: during.From, To: during.To, Requests: during.Count, Errors: during.ErrorCount,
				ErrorRate: during.ErrorRate, RatePerS: during.RatePerS, Method: during.Method, Percentiles: during.Percentiles,
			}
			return nil
		})
		if d > b.opt.MaxRange {
			msg := fmt.Sprintf("The incident is longer than %d days: the before/after comparison and the outlier analysis cover at most that. Narrow the range to the worst part.", int(b.opt.MaxRange.Hours()/24))
			e.ImpactUnavailable, e.OutliersUnavailable = msg, msg
			continue
		}
		q := url.Values{}
		q.Set("service", ep.Service)
		q.Set("endpoint", ep.Name)
		q.Set("before_from", href.Time(in.From.Add(-d)))
		q.Set("before_to", href.Time(in.From))
		q.Set("after_from", href.Time(in.From))
		q.Set("after_to", href.Time(to))
		e.Links.Impact = base + "/api/v1/compare?" + q.Encode()
		g.Go(func() error {
			c, err := b.an.Compare(gctx, q)
			if err := answer(c, err, &e.Impact, &e.ImpactUnavailable); err != nil {
				return fmt.Errorf("incident impact %s %s: %w", ep.Service, ep.Name, err)
			}
			return nil
		})
		g.Go(func() error {
			o, err := b.an.Outliers(gctx, analysis.OutlierQuery{Service: ep.Service, Endpoint: ep.Name, From: in.From, To: to})
			if err := answer(o, err, &e.Outliers, &e.OutliersUnavailable); err != nil {
				return fmt.Errorf("incident outliers %s %s: %w", ep.Service, ep.Name, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	rep.Endpoints = append(rep.Endpoints, out...)
	return nil
}
