package analysis

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
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

// settleAfter is how long after a marker the spans around it are taken
// as complete, so a DeployClassifier can remember what they said.
const settleAfter = 10 * time.Minute

// maxRemembered bounds a DeployClassifier's memory; when full it forgets.
const maxRemembered = 100_000

// DeployClassifier classifies markers like DeployKinds and remembers the
// span evidence of markers older than settleAfter, which no longer
// changes: a page listing markers pays for the span look-ups once per
// process, and only the marker query (one per listed service) each time.
// Its zero value remembers nothing until Spans and Deploys are set; it is
// safe for concurrent use.
type DeployClassifier struct {
	Spans   SampleSource
	Deploys DeploySource

	mu  sync.Mutex
	ran map[int64]bool // marker id → its service ran before it
}

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
	c := DeployClassifier{Spans: spans, Deploys: deploys}
	return c.Kinds(ctx, markers, time.Time{})
}

// Kinds is DeployKinds, remembering the span evidence of markers settled
// by now (a zero now remembers nothing).
func (c *DeployClassifier) Kinds(ctx context.Context, markers []store.Deploy, now time.Time) (map[int64]string, error) {
	kinds := make(map[int64]string, len(markers))
	bySvc := map[string][]store.Deploy{}
	for _, d := range markers {
		kinds[d.ID] = KindDeploy
		bySvc[d.Service] = append(bySvc[d.Service], d)
	}
	for svc, ds := range bySvc {
		slices.SortFunc(ds, func(a, b store.Deploy) int { return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.ID, b.ID)) })
		first := ds[0]
		earlier, err := c.Deploys.Deploys(ctx, store.DeployQuery{Service: svc, To: first.At, Limit: maxEarlierMarkers})
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
			seen, err := c.ranBefore(ctx, d, now)
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
// it (conditions 2 and 3 of DeployKinds), from memory once settled.
func (c *DeployClassifier) ranBefore(ctx context.Context, d store.Deploy, now time.Time) (bool, error) {
	settled := !now.IsZero() && now.After(d.At.Add(settleAfter))
	if settled {
		c.mu.Lock()
		ran, ok := c.ran[d.ID]
		c.mu.Unlock()
		if ok {
			return ran, nil
		}
	}
	ran, err := ranBefore(ctx, c.Spans, d)
	if err != nil || !settled {
		return ran, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ran == nil || len(c.ran) >= maxRemembered {
		c.ran = map[int64]bool{}
	}
	c.ran[d.ID] = ran
	return ran, nil
}

// ranBefore looks the evidence up in the spans around the marker: one
// read of the minute either side, then one index seek per endpoint found.
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
