package report

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tailscope/tailscope/store"
)

// Options are what a report depends on besides the incident.
type Options struct {
	// Base prefixes every link. web builds with "" (site-relative links,
	// as a snapshot stores them) and adds the public URL for exports with
	// Report.WithBase, so one stored report serves every base.
	Base string
	// Now is the analysis clock: an incident reaching past it is analysed
	// up to it, and the timeline charts stop there.
	Now time.Time
	// GeneratedAt is the report's time stamp.
	GeneratedAt time.Time
	// Version is tailscope's version, recorded in the report.
	Version string
	// MaxRange is the longest window the outlier analysis and comparisons
	// read; a longer incident gets the timeline and stats only.
	MaxRange time.Duration
}

// builder carries what every section of one report reads.
type builder struct {
	an  Analyses
	rec Records
	in  store.Incident
	to  time.Time // where the analysis stops: in.To, or Now if earlier
	opt Options
}

// Build gathers what the incident page and its exports show.
func Build(ctx context.Context, an Analyses, rec Records, in store.Incident, opt Options) (Report, error) {
	b := builder{an: an, rec: rec, in: in, to: in.To, opt: opt}
	if opt.Now.Before(b.to) {
		b.to = opt.Now
	}
	rep := b.skeleton()
	if !b.to.After(in.From) {
		rep.Incident.AnalyzedTo = in.From.UTC()
		rep.Warnings = append(rep.Warnings, "The incident starts after the report was generated: there is nothing to analyse yet.")
	} else if err := b.sections(ctx, &rep); err != nil {
		return rep, err
	}
	if err := b.exemplars(ctx, &rep); err != nil {
		return rep, err
	}
	rep.Timeline = b.timeline(rep)
	rep.Summary = summary(rep)
	return rep, nil
}

// skeleton is the report before any analysis: the incident, its links,
// and empty (not null) lists.
func (b *builder) skeleton() Report {
	in, base := b.in, b.opt.Base
	rep := Report{
		ReportVersion:    Version,
		GeneratedAt:      b.opt.GeneratedAt.UTC(),
		TailscopeVersion: b.opt.Version,
		Parameters: Parameters{
			MaxEndpoints: maxEndpoints, MaxDeploys: maxDeploys, MaxBudgets: maxBudgets, MaxGroupExemplars: maxGroupExemplars,
			DeployLookback: deployLookback.String(), DeployWindow: deployWindow.String(),
			TimelineBefore: timelinePad(in.To.Sub(in.From)).String(), MaxRange: b.opt.MaxRange.String(),
		},
		Incident: Incident{
			ID: in.ID, Title: in.Title, From: in.From.UTC(), To: in.To.UTC(), AnalyzedTo: b.to.UTC(),
			DurationS: in.To.Sub(in.From).Seconds(), Services: nonNilStrings(in.Services), Notes: in.Notes,
			PinnedTraceIDs: []string{}, CreatedAt: in.CreatedAt.UTC(), UpdatedAt: in.UpdatedAt.UTC(),
		},
		Links: Links{
			Incident:       base + IncidentPath(in.ID),
			ReportMarkdown: base + IncidentPath(in.ID) + "/report.md",
			ReportHTML:     base + IncidentPath(in.ID) + "/report.html",
			ReportJSON:     base + IncidentPath(in.ID) + "/report.json",
			API:            base + fmt.Sprintf("/api/v1/incidents/%d", in.ID),
		},
		Endpoints: []Endpoint{}, Timeline: []Event{}, Deploys: []Deploy{},
		Budgets: []Budget{}, Exemplars: []Exemplar{}, Warnings: []string{},
	}
	for _, id := range in.PinnedTraces {
		rep.Incident.PinnedTraceIDs = append(rep.Incident.PinnedTraceIDs, id.String())
	}
	return rep
}

// sections fills the endpoints, deploys and budgets. They read the store
// independently: run them side by side, each into its own part, merged in
// a fixed order so the report does not depend on which finished first.
func (b *builder) sections(ctx context.Context, rep *Report) error {
	var parts [3]Report
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return b.endpoints(gctx, &parts[0]) })
	g.Go(func() error { return b.deploys(gctx, &parts[1]) })
	g.Go(func() error { return b.budgets(gctx, &parts[2]) })
	if err := g.Wait(); err != nil {
		return err
	}
	rep.Endpoints = append(rep.Endpoints, parts[0].Endpoints...)
	rep.Deploys = append(rep.Deploys, parts[1].Deploys...)
	rep.Budgets = append(rep.Budgets, parts[2].Budgets...)
	for _, p := range parts {
		rep.Warnings = append(rep.Warnings, p.Warnings...)
	}
	return nil
}

// IncidentPath is an incident's page.
func IncidentPath(id int64) string { return fmt.Sprintf("/incidents/%d", id) }

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
