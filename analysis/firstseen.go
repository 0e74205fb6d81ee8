package analysis

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/tailscope/tailscope/store"
)

// Marker kinds: what a deploy marker means.
const (
	// KindDeploy: the service ran before the marker; before and after
	// compare.
	KindDeploy = "deploy"
	// KindFirstSeen: the marker is the service's first sighting (its
	// first version ever seen). Nothing ran before it, so it is not a
	// deploy and has no comparison.
	KindFirstSeen = "first_seen"
)

// DeploySource lists deploy markers. store.DeployStore implements it.
type DeploySource interface {
	// Deploys lists markers, newest first.
	Deploys(ctx context.Context, q store.DeployQuery) ([]store.Deploy, error)
}

var _ DeploySource = (store.DeployStore)(nil)

// firstSeenGrace is how far before a first-seen marker its own version's
// requests may start. Ingest puts an automatic marker at the earliest span
// of the batch that first showed a version, and another process of the
// new service can deliver earlier spans in a later batch (exporters batch
// for seconds); those must not turn the first sighting into a deploy.
const firstSeenGrace = time.Minute

// maxEarlierMarkers is how many markers before a service's earliest
// listed one are read to find a different version. Markers of one
// version before it (posted and automatic) are few.
const maxEarlierMarkers = 20

// DeployKinds classifies markers at read time, so markers recorded before
// the distinction existed are classified too. A marker is KindFirstSeen
// when
//
//  1. no marker of its service with another version is earlier (markers
//     are kept when spans expire, so this reaches back past retention),
//  2. no entry span of its service started more than firstSeenGrace
//     before it, on the endpoints the service serves around the marker
//     (one index seek each), and
//  3. no entry span of another version (or of none) started in that
//     grace.
//
// Every other marker is KindDeploy. The result maps marker IDs to kinds.
func DeployKinds(ctx context.Context, spans SampleSource, deploys DeploySource, markers []store.Deploy) (map[int64]string, error) {
	kinds := make(map[int64]string, len(markers))
	bySvc := map[string][]store.Deploy{}
	for _, d := range markers {
		kinds[d.ID] = KindDeploy
		bySvc[d.Service] = append(bySvc[d.Service], d)
	}
	for svc, ds := range bySvc {
		slices.SortFunc(ds, func(a, b store.Deploy) int { return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.ID, b.ID)) })
		first := ds[0]
		earlier, err := deploys.Deploys(ctx, store.DeployQuery{Service: svc, To: first.At, Limit: maxEarlierMarkers})
		if err != nil {
			return nil, fmt.Errorf("analysis: markers of %s before %s: %w", svc, first.At.UTC().Format(time.RFC3339), err)
		}
		if slices.ContainsFunc(earlier, func(e store.Deploy) bool { return e.Version != first.Version }) {
			continue
		}
		// The candidates are the listed markers of the first version up
		// to the first marker of another one.
		for _, d := range ds {
			if d.Version != first.Version {
				break
			}
			seen, err := ranBefore(ctx, spans, d)
			if err != nil {
				return nil, err
			}
			if seen {
				break // and so did every later marker
			}
			kinds[d.ID] = KindFirstSeen
		}
	}
	return kinds, nil
}

// ranBefore reports whether the marker's service had entry spans before
// it (conditions 2 and 3 of DeployKinds).
func ranBefore(ctx context.Context, src SampleSource, d store.Deploy) (bool, error) {
	around, err := src.Samples(ctx, store.SampleQuery{Service: d.Service, From: d.At.Add(-firstSeenGrace), To: d.At.Add(firstSeenGrace)})
	if err != nil {
		return false, fmt.Errorf("analysis: requests of %s around %s: %w", d.Service, d.At.UTC().Format(time.RFC3339), err)
	}
	names := map[string]bool{}
	at := d.At.UnixNano()
	for i := range around {
		s := &around[i]
		if s.StartUnixNano < at && s.Version != d.Version {
			return true, nil
		}
		names[s.Name] = true
	}
	for name := range names {
		older, err := src.Samples(ctx, store.SampleQuery{Service: d.Service, Endpoint: name, To: d.At.Add(-firstSeenGrace), Limit: 1})
		if err != nil {
			return false, fmt.Errorf("analysis: requests of %s %s before %s: %w", d.Service, name, d.At.UTC().Format(time.RFC3339), err)
		}
		if len(older) > 0 {
			return true, nil
		}
	}
	return false, nil
}
