package report

import (
	"context"
	"fmt"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/store"
)

// exemplars loads the pinned traces and the worst trace of each
// outlier group and summarises their critical paths.
func (b *builder) exemplars(ctx context.Context, rep *Report) error {
	in, base := b.in, b.opt.Base
	type pick struct {
		id     store.TraceID
		reason string
		pinned bool
	}
	var picks []pick
	seen := map[store.TraceID]bool{}
	for _, id := range in.PinnedTraces {
		if !seen[id] {
			seen[id] = true
			picks = append(picks, pick{id, "pinned by the reviewer", true})
		}
	}
	groups := 0
	for _, e := range rep.Endpoints {
		if e.Outliers == nil {
			continue
		}
		for i, g := range e.Outliers.Groups {
			if len(g.ExampleTraceIDs) == 0 || groups == maxGroupExemplars {
				continue
			}
			id := g.ExampleTraceIDs[0]
			if seen[id] {
				continue
			}
			seen[id] = true
			groups++
			reason := fmt.Sprintf("worst of group %d: %s", i+1, g.Label)
			if len(rep.Endpoints) > 1 {
				reason = fmt.Sprintf("worst of %s group %d: %s", e.Service, i+1, g.Label)
			}
			picks = append(picks, pick{id, reason, false})
		}
	}
	if len(picks) == 0 {
		return nil
	}
	ids := make([]store.TraceID, len(picks))
	for i, p := range picks {
		ids[i] = p.id
	}
	traces, err := b.rec.Traces(ctx, ids)
	if err != nil {
		return fmt.Errorf("exemplar traces: %w", err)
	}
	for _, p := range picks {
		ex := Exemplar{
			TraceID: p.id.String(), Link: base + "/traces/" + p.id.String(), Reason: p.reason, Pinned: p.pinned,
			CriticalPath: []analysis.HopTime{}, Findings: []analysis.Finding{},
		}
		if spans, ok := traces[p.id]; ok && len(spans) > 0 {
			cp := analysis.CriticalPath(spans)
			ex.Stored = true
			ex.SpanCount = len(spans)
			for i := range spans {
				if spans[i].StatusCode == store.StatusError {
					ex.ErrorCount++
				}
				if spans[i].SpanID == cp.RootSpanID {
					ex.RootService, ex.RootName = spans[i].Service, spans[i].Name
				}
			}
			start := time.Unix(0, int64(cp.StartUnixNano)).UTC()
			ex.Start = &start
			ex.DurationMs = cp.DurationMs
			ex.CriticalPath = cp.Hops[:min(len(cp.Hops), exemplarHops)]
			if f := analysis.Findings(spans); f != nil {
				ex.Findings = f
			}
		}
		rep.Exemplars = append(rep.Exemplars, ex)
	}
	return nil
}
