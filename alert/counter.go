package alert

import (
	"context"
	"fmt"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/store"
)

// readChunk is how much of the window one read of samples covers.
const readChunk = time.Hour

// bucket is the resolution of the burn windows: a 5-minute window is
// exact to 10 s.
const bucket = 10 * time.Second

// counter keeps a budget's requests and slow requests per bucket over the
// longest window, so an evaluation reads only the requests that arrived
// since the last one.
type counter struct {
	b        store.Budget
	total    map[int64]int // bucket start (ns) → requests
	bad      map[int64]int
	lastRead time.Time
}

func newCounter(b store.Budget) *counter {
	return &counter{b: b, total: map[int64]int{}, bad: map[int64]int{}}
}

// sameBudget reports whether b still counts the same way: a changed
// endpoint or threshold starts the counts over.
func (c *counter) sameBudget(b store.Budget) bool {
	return c.b.Service == b.Service && c.b.Endpoint == b.Endpoint && c.b.Threshold == b.Threshold && c.b.Target == b.Target
}

func bucketOf(ns int64) int64 { return ns - ns%int64(bucket) }

// update re-reads the requests from the last read (less lateness) to now,
// replacing those buckets, and forgets buckets older than the longest
// window.
func (c *counter) update(ctx context.Context, src analysis.SampleSource, now time.Time, longest, lateness time.Duration) error {
	from := now.Add(-longest)
	if !c.lastRead.IsZero() && c.lastRead.Add(-lateness).After(from) {
		from = c.lastRead.Add(-lateness)
	}
	from = time.Unix(0, bucketOf(from.UnixNano()))
	for k := range c.total {
		if k >= from.UnixNano() || k < now.Add(-longest).UnixNano()-int64(bucket) {
			delete(c.total, k)
			delete(c.bad, k)
		}
	}
	// An hour at a time: the first evaluation reads the longest window (a
	// day by default), which on a busy endpoint is millions of requests;
	// only their counts are kept.
	for lo := from; lo.Before(now); lo = lo.Add(readChunk) {
		hi := lo.Add(readChunk)
		if hi.After(now) {
			hi = now
		}
		samples, err := src.Samples(ctx, store.SampleQuery{Service: c.b.Service, Endpoint: c.b.Endpoint, From: lo, To: hi})
		if err != nil {
			return fmt.Errorf("read samples: %w", err)
		}
		for _, s := range samples {
			// Weighted as the budget pages count (analysis: a sampled
			// request stands for its span's weight).
			w := int(store.CountWeight(s.Weight))
			k := bucketOf(s.StartUnixNano)
			c.total[k] += w
			if s.DurationNano > int64(c.b.Threshold) {
				c.bad[k] += w
			}
		}
	}
	c.lastRead = now
	return nil
}

// burnRate is a window's requests and burn rate.
type burnRate struct {
	total, bad int
	rate       float64
}

// burn is the burn rate over [now-window, now): the bad share over the
// share the target allows.
func (c *counter) burn(now time.Time, window time.Duration) burnRate {
	var r burnRate
	lo := bucketOf(now.Add(-window).UnixNano())
	for k, n := range c.total {
		if k >= lo {
			r.total += n
			r.bad += c.bad[k]
		}
	}
	if allowed := 1 - c.b.Target; r.total > 0 && allowed > 0 {
		r.rate = float64(r.bad) / float64(r.total) / allowed
	}
	return r
}
