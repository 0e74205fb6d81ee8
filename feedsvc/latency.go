package feedsvc

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// lockedRand is a seeded generator shared by the request goroutines.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newLockedRand(seed, stream uint64) *lockedRand {
	return &lockedRand{r: rand.New(rand.NewPCG(seed, stream))}
}

func (l *lockedRand) Float64() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Float64()
}

func (l *lockedRand) NormFloat64() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.NormFloat64()
}

// latency is a log-normal latency model with an optional slow mode: most
// draws are median·e^(σ·N(0,1)); with probability tailP the draw is
// multiplied by tailX (a GC pause, a cold connection, a noisy neighbour),
// which is what gives real services their long p99 tails.
type latency struct {
	median time.Duration
	sigma  float64
	tailP  float64
	tailX  float64
}

func (m latency) draw(r *lockedRand) time.Duration {
	d := float64(m.median) * math.Exp(m.sigma*r.NormFloat64())
	if m.tailP > 0 && r.Float64() < m.tailP {
		d *= m.tailX
	}
	return time.Duration(d)
}

// jitter returns d scaled by a factor uniform in [1-f, 1+f].
func jitter(r *lockedRand, d time.Duration, f float64) time.Duration {
	return time.Duration(float64(d) * (1 - f + 2*f*r.Float64()))
}

// Latency models of the simulated mode, and of profile-svc in both modes
// (it stands for a third-party service, so there is nothing real to call).
// The database costs are per row visited: a scan of a tenant's rows through
// the single-column tenant index, or of the whole table when the tenant is
// most of it, versus a range scan of the composite index that touches only
// the rows returned.
var (
	profileLatency = latency{median: 18 * time.Millisecond, sigma: 0.45, tailP: 0.01, tailX: 8}
	// analyticsLatency is the event store's write, in both modes.
	analyticsLatency = latency{median: 25 * time.Millisecond, sigma: 0.5, tailP: 0.01, tailX: 6}
	redisLatency     = latency{median: 300 * time.Microsecond, sigma: 0.35, tailP: 0.002, tailX: 10}
	pgBaseLatency    = latency{median: 400 * time.Microsecond, sigma: 0.3, tailP: 0.003, tailX: 12}
)

// Per-row costs of the simulated queries, measured with EXPLAIN ANALYZE on
// the real mode's million-item catalogue (PostgreSQL 15, no parallel
// workers, on the 2-core development machine).
const (
	seqCostPerRow    = 140 * time.Nanosecond // sequential scan, per table row
	bitmapCostPerRow = 200 * time.Nanosecond // bitmap scan of the tenant index, per tenant row
	indexCostPerRow  = 10 * time.Microsecond // composite index range scan, per row returned
	countCostPerRow  = 250 * time.Nanosecond // count and count(DISTINCT) through an index, per row
	pkCostPerRow     = 8 * time.Microsecond  // primary key lookup, per id
	seqScanShare     = 0.3                   // the planner scans the whole table past this share
)

// profileBaselineErrorRate is the external service's normal flakiness,
// which v1's retries turn into extra latency.
const profileBaselineErrorRate = 0.003
