package ingest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tailscope/tailscope/store"
)

// deployTracker remembers which (service, version) pairs this process has
// seen, so the first commit of a new pair records an automatic deploy
// marker. The set is bounded: when full it is forgotten, which only costs
// repeated RecordDeploy calls the store answers with the existing marker.
type deployTracker struct {
	rec DeployRecorder
	max int

	mu   sync.Mutex
	seen map[deployKey]struct{}
}

type deployKey struct{ service, version string }

func newDeployTracker(rec DeployRecorder, max int) *deployTracker {
	return &deployTracker{rec: rec, max: max, seen: make(map[deployKey]struct{})}
}

// observe returns a marker for each pair in a committed batch not seen
// before, at the earliest start of its spans in the batch, and marks the
// pairs seen. Spans without a version have no deploy to mark.
func (d *deployTracker) observe(batch []store.Span) []store.Deploy {
	var (
		found   map[deployKey]int64 // new pair → earliest start
		last    deployKey           // the previous span's pair…
		lastOld bool                // …and whether it was seen before this batch
	)
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range batch {
		s := &batch[i]
		if s.Version == "" {
			continue
		}
		k := deployKey{s.Service, s.Version}
		if lastOld && k == last {
			continue // the common case: a run of spans from one known pair
		}
		if start, ok := found[k]; ok {
			found[k] = min(start, s.StartUnixNano)
			continue
		}
		last = k
		if _, lastOld = d.seen[k]; lastOld {
			continue
		}
		if len(d.seen) >= d.max {
			clear(d.seen)
		}
		d.seen[k] = struct{}{}
		if found == nil {
			found = make(map[deployKey]int64)
		}
		found[k] = s.StartUnixNano
	}
	out := make([]store.Deploy, 0, len(found))
	for k, start := range found {
		out = append(out, store.Deploy{
			Service: k.service,
			Version: k.version,
			At:      time.Unix(0, start).UTC(),
			Source:  store.DeploySourceAuto,
		})
	}
	return out
}

// record stores one marker. On failure the pair is forgotten so a later
// batch tries again.
func (d *deployTracker) record(ctx context.Context, dep store.Deploy) error {
	if _, err := d.rec.RecordDeploy(ctx, dep); err != nil {
		d.mu.Lock()
		delete(d.seen, deployKey{dep.Service, dep.Version})
		d.mu.Unlock()
		return fmt.Errorf("ingest: record deploy %s@%s: %w", dep.Service, dep.Version, err)
	}
	return nil
}
