package analysistest

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/tailscope/tailscope/store"
)

// Deploys holds deploy markers in memory and lists them as stores do
// (store.DeployStore.Deploys: [From, To) on the marker time, newest first,
// ties by id). Markers without an ID are numbered in order.
type Deploys []store.Deploy

// NewDeploys numbers the markers 1, 2, … in the order given.
func NewDeploys(ds ...store.Deploy) Deploys {
	out := make(Deploys, len(ds))
	for i, d := range ds {
		d.ID = int64(i + 1)
		if d.Source == "" {
			d.Source = store.DeploySourceAuto
		}
		out[i] = d
	}
	return out
}

// Deploys lists the markers q selects.
func (ds Deploys) Deploys(ctx context.Context, q store.DeployQuery) ([]store.Deploy, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if q.Limit < 0 {
		return nil, fmt.Errorf("analysistest: deploys: %w: negative limit", store.ErrInvalid)
	}
	out := []store.Deploy{}
	for _, d := range ds {
		if (q.Service == "" || d.Service == q.Service) && (q.From.IsZero() || !d.At.Before(q.From)) && (q.To.IsZero() || d.At.Before(q.To)) {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b store.Deploy) int { return cmp.Or(b.At.Compare(a.At), cmp.Compare(b.ID, a.ID)) })
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// SetVersion sets the service.version of every span of service (""
// models a service that reports no version).
func SetVersion(spans []store.Span, service, version string) {
	for i := range spans {
		if spans[i].Service == service {
			spans[i].Version = version
		}
	}
}
