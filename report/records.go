package report

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/internal/href"
	"github.com/tailscope/tailscope/internal/units"
	"github.com/tailscope/tailscope/store"
)

// deploys lists the deploys of the incident's services in or just
// before the range, nearest to its start first when there are too many.
// Each is compared over stated ranges that end where the analysis ends:
// after is from the marker to an hour later or the window's end, whichever
// is first, and before is as long, just before the marker. Traffic after
// the window (a later deploy, a recovery) never moves the verdict.
func (b *builder) deploys(ctx context.Context, rep *Report) error {
	in, to, base := b.in, b.to, b.opt.Base
	ds, err := b.rec.Deploys(ctx, store.DeployQuery{From: in.From.Add(-deployLookback), To: to, Limit: 200})
	if err != nil {
		return fmt.Errorf("deploys: %w", err)
	}
	var picked []store.Deploy
	for _, d := range ds {
		if len(in.Services) == 0 || slices.Contains(in.Services, d.Service) {
			picked = append(picked, d)
		}
	}
	dist := func(d store.Deploy) time.Duration {
		if d.At.Before(in.From) {
			return in.From.Sub(d.At)
		}
		return 0
	}
	slices.SortStableFunc(picked, func(a, b store.Deploy) int {
		return cmp.Or(cmp.Compare(dist(a), dist(b)), a.At.Compare(b.At), cmp.Compare(a.ID, b.ID))
	})
	if len(picked) > maxDeploys {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d deploys in or before the range; the %d nearest its start are compared.", len(picked), maxDeploys))
		picked = picked[:maxDeploys]
	}
	slices.SortFunc(picked, func(a, b store.Deploy) int { return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.ID, b.ID)) })
	kinds, err := b.an.DeployKinds(ctx, picked)
	if err != nil {
		return err
	}
	// The comparisons read the store independently: run them side by
	// side, each into its own deploy.
	out := make([]Deploy, len(picked))
	g, gctx := errgroup.WithContext(ctx)
	for i, d := range picked {
		out[i] = Deploy{
			ID: d.ID, Service: d.Service, Version: d.Version, At: d.At.UTC(), Source: d.Source, Note: d.Note, Kind: kinds[d.ID],
			InRange: !d.At.Before(in.From), Link: base + fmt.Sprintf("/deploys/%d", d.ID),
		}
		rd := &out[i]
		if rd.Kind == analysis.KindFirstSeen {
			continue
		}
		rd.After = Range{From: d.At.UTC(), To: minTime(d.At.Add(deployWindow), to).UTC()}
		rd.Before = Range{From: d.At.Add(-rd.After.To.Sub(rd.After.From)).UTC(), To: d.At.UTC()}
		if !rd.After.To.After(rd.After.From) {
			rd.Unavailable = "The deploy is at the end of the incident: there is no time after it inside the window to compare."
			continue
		}
		q := url.Values{}
		q.Set("service", d.Service)
		q.Set("before_from", href.Time(rd.Before.From))
		q.Set("before_to", href.Time(rd.Before.To))
		q.Set("after_from", href.Time(rd.After.From))
		q.Set("after_to", href.Time(rd.After.To))
		rd.ComparisonLink = base + "/api/v1/compare?" + q.Encode()
		g.Go(func() error {
			c, err := b.an.Compare(gctx, q)
			if err := answer(c, err, &rd.Comparison, &rd.Unavailable); err != nil {
				return fmt.Errorf("deploy %d comparison: %w", d.ID, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	rep.Deploys = append(rep.Deploys, out...)
	return nil
}

// budgets computes the burn of the incident's services' budgets.
func (b *builder) budgets(ctx context.Context, rep *Report) error {
	in, to, base := b.in, b.to, b.opt.Base
	bs, err := b.rec.Budgets(ctx)
	if err != nil {
		return fmt.Errorf("budgets: %w", err)
	}
	n := 0
	for _, bu := range bs {
		if len(in.Services) > 0 && !slices.Contains(in.Services, bu.Service) {
			continue
		}
		if n == maxBudgets {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("Only %d budgets are shown.", maxBudgets))
			break
		}
		n++
		during, err := b.an.Compliance(ctx, bu, in.From, to, to)
		if err != nil {
			return fmt.Errorf("budget %d during the incident: %w", bu.ID, err)
		}
		// Only the period's error budget is used: without its hops the
		// computation reads no traces.
		counts := bu
		counts.Hops = nil
		period, err := b.an.Compliance(ctx, counts, to.Add(-bu.Period), to, to)
		if err != nil {
			return fmt.Errorf("budget %d over its period: %w", bu.ID, err)
		}
		rb := Budget{ID: bu.ID, Name: BudgetName(bu), During: during,
			Link:              base + href.With(fmt.Sprintf("/budgets/%d", bu.ID), "from", href.Time(in.From), "to", href.Time(to)),
			PeriodErrorBudget: period.ErrorBudget}
		if during.Total > 0 {
			rb.BurnRateDuring = units.Round(float64(during.Bad)/float64(during.Total)/(1-bu.Target), 3)
		}
		if period.ErrorBudget > 0 {
			rb.PeriodBudgetSpent = units.Round(float64(during.Bad)/period.ErrorBudget, 4)
		}
		rep.Budgets = append(rep.Budgets, rb)
	}
	return nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
