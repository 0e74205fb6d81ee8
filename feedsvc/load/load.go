// Package load is an open-loop load generator for feedsvc (and any HTTP
// endpoint taking tenant and user_id parameters): requests are sent at a
// constant arrival rate on a schedule computed in advance, Poisson or evenly
// spaced, whatever the service does. A slow response never delays the next
// send (no coordinated omission), and latency is measured from the
// scheduled send time, so queueing in the generator counts against the
// service as it would for real users. When the in-flight bound is reached
// a request is dropped and counted, never postponed.
package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Arrival is how send times are spaced.
type Arrival string

// Arrival processes.
const (
	Poisson Arrival = "poisson" // exponential gaps: independent users
	Uniform Arrival = "uniform" // fixed gaps of 1/rate
)

// Weighted is one tenant of the mix and its relative weight.
type Weighted struct {
	Name   string  `json:"name"`
	Weight float64 `json:"weight"`
}

// Request is one scheduled request.
type Request struct {
	Seq      int       // 0, 1, 2… in schedule order
	Intended time.Time // scheduled send time
	Tenant   string
	UserID   int64
}

// Clock is the generator's time source; tests substitute a fake one to
// check the schedule without waiting for it.
type Clock interface {
	Now() time.Time
	// SleepUntil returns when t is reached, or ctx's error first.
	SleepUntil(ctx context.Context, t time.Time) error
}

// StatusError is a non-2xx answer.
type StatusError struct{ Code int }

func (e *StatusError) Error() string { return "status " + strconv.Itoa(e.Code) }

// Config configures Run. Zero values take the defaults noted.
type Config struct {
	// Target is the feed URL, e.g. http://127.0.0.1:8081/v1/feed; tenant,
	// user_id and limit are added to its query. Required unless Do is set.
	Target string
	// Rate is the arrival rate in requests per second (required).
	Rate float64
	// Duration of the schedule (required).
	Duration time.Duration
	// Arrival process (default Poisson).
	Arrival Arrival
	// Tenants is the tenant mix (required; see Zipf and ParseMix).
	Tenants []Weighted
	// Users: user ids are drawn uniformly from 1..Users (default 1000).
	Users int
	// Limit is sent as the limit parameter when > 0.
	Limit int
	// MaxInFlight bounds concurrent requests (default 512).
	MaxInFlight int
	// Timeout bounds each request (default 10s).
	Timeout time.Duration
	// Seed makes the schedule and the mix reproducible.
	Seed uint64
	// Client sends the requests (default: one sized for MaxInFlight).
	Client *http.Client
	// Clock (default: the wall clock).
	Clock Clock
	// Do sends one request instead of the HTTP GET (tests, other targets).
	Do func(ctx context.Context, r Request) error
}

func (c Config) withDefaults() (Config, error) {
	switch {
	case c.Rate <= 0 || math.IsInf(c.Rate, 0) || math.IsNaN(c.Rate) || c.Rate > 1e6:
		return c, fmt.Errorf("load: rate %v: want a number in (0, 1e6] requests per second", c.Rate)
	case c.Duration <= 0:
		return c, fmt.Errorf("load: duration %v: want a positive duration", c.Duration)
	case c.Do == nil && c.Target == "":
		return c, errors.New("load: a target URL is required")
	}
	if c.Arrival == "" {
		c.Arrival = Poisson
	}
	if c.Arrival != Poisson && c.Arrival != Uniform {
		return c, fmt.Errorf("load: arrival %q: want poisson or uniform", c.Arrival)
	}
	if len(c.Tenants) == 0 {
		return c, errors.New("load: a tenant mix is required")
	}
	var total float64
	for _, w := range c.Tenants {
		if w.Name == "" || w.Weight < 0 || math.IsNaN(w.Weight) || math.IsInf(w.Weight, 0) {
			return c, fmt.Errorf("load: tenant %q weight %v: want a name and a finite weight ≥ 0", w.Name, w.Weight)
		}
		total += w.Weight
	}
	if total <= 0 {
		return c, errors.New("load: tenant weights sum to zero")
	}
	if c.Users == 0 {
		c.Users = 1000
	}
	if c.Users < 0 {
		return c, fmt.Errorf("load: users %d: want > 0", c.Users)
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 512
	}
	if c.MaxInFlight < 0 {
		return c, fmt.Errorf("load: max in flight %d: want > 0", c.MaxInFlight)
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Clock == nil {
		c.Clock = WallClock{}
	}
	if c.Do == nil {
		u, err := url.Parse(c.Target)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, fmt.Errorf("load: target %q: want an http(s) URL", c.Target)
		}
		if c.Client == nil {
			c.Client = &http.Client{Transport: &http.Transport{
				MaxIdleConns:        c.MaxInFlight,
				MaxIdleConnsPerHost: c.MaxInFlight,
				IdleConnTimeout:     90 * time.Second,
			}}
		}
		c.Do = httpDo(c.Client, u, c.Limit)
	}
	return c, nil
}

func httpDo(client *http.Client, target *url.URL, limit int) func(context.Context, Request) error {
	return func(ctx context.Context, r Request) error {
		u := *target
		q := u.Query()
		q.Set("tenant", r.Tenant)
		q.Set("user_id", strconv.FormatInt(r.UserID, 10))
		if limit > 0 {
			q.Set("limit", strconv.Itoa(limit))
		}
		u.RawQuery = q.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return &StatusError{Code: resp.StatusCode}
		}
		return nil
	}
}

// WallClock is the real clock, the default of Config.Clock.
type WallClock struct{}

// Now returns time.Now().
func (WallClock) Now() time.Time { return time.Now() }

// SleepUntil sleeps until t or until ctx is done.
func (WallClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Schedule returns the send offsets (from the start) of the first n
// requests of a schedule; Run uses the same sequence. The schedule depends
// only on the arrival process, the rate and the seed: never on responses.
func Schedule(arrival Arrival, rate float64, seed uint64, n int) []time.Duration {
	s := newSchedule(arrival, rate, seed)
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = s.next()
	}
	return out
}

type schedule struct {
	arrival Arrival
	rate    float64
	rng     *rand.Rand
	i       int
	t       float64 // seconds, Poisson's running sum
}

func newSchedule(arrival Arrival, rate float64, seed uint64) *schedule {
	return &schedule{arrival: arrival, rate: rate, rng: rand.New(rand.NewPCG(seed, 0x5c4ed))}
}

func (s *schedule) next() time.Duration {
	defer func() { s.i++ }()
	if s.arrival == Uniform {
		// i/rate computed afresh each time: no accumulated rounding drift.
		return time.Duration(float64(s.i) / s.rate * float64(time.Second))
	}
	if s.i > 0 {
		s.t += s.rng.ExpFloat64() / s.rate
	}
	return time.Duration(s.t * float64(time.Second))
}

// picker draws tenants by weight and user ids uniformly, from its own
// generator so the mix never changes the schedule.
type picker struct {
	names []string
	cum   []float64
	users int
	rng   *rand.Rand
}

func newPicker(ws []Weighted, users int, seed uint64) *picker {
	p := &picker{users: users, rng: rand.New(rand.NewPCG(seed, 0x7e4a47))}
	var sum float64
	for _, w := range ws {
		sum += w.Weight
		p.names = append(p.names, w.Name)
		p.cum = append(p.cum, sum)
	}
	for i := range p.cum {
		p.cum[i] /= sum
	}
	return p
}

func (p *picker) pick() (string, int64) {
	x := p.rng.Float64()
	i := sort.SearchFloat64s(p.cum, x)
	i = min(i, len(p.names)-1)
	return p.names[i], 1 + p.rng.Int64N(int64(p.users))
}

// Run sends the schedule and waits for the requests in flight. A cancelled
// ctx stops the schedule early; Run then returns what it measured and
// ctx's error.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	res := newResult(cfg)
	sched := newSchedule(cfg.Arrival, cfg.Rate, cfg.Seed)
	pick := newPicker(cfg.Tenants, cfg.Users, cfg.Seed)
	clock := cfg.Clock
	sem := make(chan struct{}, cfg.MaxInFlight)
	var wg sync.WaitGroup
	start := clock.Now()
	end := start.Add(cfg.Duration)
	var runErr error
	for seq := 0; ; seq++ {
		at := start.Add(sched.next())
		if !at.Before(end) {
			break
		}
		if err := clock.SleepUntil(ctx, at); err != nil {
			runErr = err
			break
		}
		res.scheduled(clock.Now().Sub(at))
		tenant, user := pick.pick()
		req := Request{Seq: seq, Intended: at, Tenant: tenant, UserID: user}
		select {
		case sem <- struct{}{}:
		default:
			res.drop(tenant)
			continue
		}
		res.sent()
		wg.Go(func() {
			defer func() { <-sem }()
			rctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
			err := cfg.Do(rctx, req)
			cancel()
			// From the scheduled time, not from when the goroutine ran.
			res.record(tenant, clock.Now().Sub(req.Intended), err)
		})
	}
	wg.Wait()
	res.Elapsed = clock.Now().Sub(start)
	return res, runErr
}

// Result is what a run measured. Latencies are of successful requests,
// from their scheduled send time, in microseconds in the histograms.
type Result struct {
	Rate        float64
	Arrival     Arrival
	Duration    time.Duration
	MaxInFlight int
	Elapsed     time.Duration

	Scheduled int64 // send times reached
	Sent      int64 // requests sent (Scheduled − Dropped)
	Dropped   int64 // not sent: MaxInFlight requests were already in flight
	OK        int64
	Failed    int64            // answered non-2xx, timed out or failed to connect
	Cancelled int64            // cut short by the caller's cancellation
	Errors    map[string]int64 // failures by reason ("status 503", "timeout", "transport")
	// MaxSendLag is the worst delay between a scheduled time and the send;
	// it is included in the latencies.
	MaxSendLag time.Duration

	Latency   *hdrhistogram.Histogram
	PerTenant map[string]*TenantResult

	mu sync.Mutex
}

// TenantResult is one tenant's share of a run.
type TenantResult struct {
	Sent, Dropped, OK, Failed int64
	Latency                   *hdrhistogram.Histogram
}

// Histogram range: 1 µs to 5 min, 3 significant digits.
func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(5*time.Minute/time.Microsecond), 3)
}

func newResult(cfg Config) *Result {
	r := &Result{
		Rate: cfg.Rate, Arrival: cfg.Arrival, Duration: cfg.Duration, MaxInFlight: cfg.MaxInFlight,
		Errors: map[string]int64{}, Latency: newHistogram(), PerTenant: map[string]*TenantResult{},
	}
	for _, w := range cfg.Tenants {
		r.PerTenant[w.Name] = &TenantResult{Latency: newHistogram()}
	}
	return r
}

func (r *Result) scheduled(lag time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Scheduled++
	r.MaxSendLag = max(r.MaxSendLag, lag)
}

func (r *Result) sent() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Sent++
}

func (r *Result) drop(tenant string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Dropped++
	r.PerTenant[tenant].Dropped++
}

func (r *Result) record(tenant string, lat time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.PerTenant[tenant]
	t.Sent++
	var se *StatusError
	switch {
	case err == nil:
		r.OK++
		t.OK++
		us := max(lat.Microseconds(), 1)
		_ = r.Latency.RecordValue(us) // beyond 5 min: clamped by the histogram's error, ignored
		_ = t.Latency.RecordValue(us)
		return
	case errors.Is(err, context.Canceled):
		r.Cancelled++
		return
	case errors.As(err, &se):
		r.Errors[se.Error()]++
	case errors.Is(err, context.DeadlineExceeded):
		r.Errors["timeout"]++
	default:
		r.Errors["transport"]++
	}
	r.Failed++
	t.Failed++
}

// Percentile returns the latency at percentile p (0-100) of successful
// requests, 0 when there were none.
func (r *Result) Percentile(p float64) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return time.Duration(r.Latency.ValueAtPercentile(p)) * time.Microsecond
}

// Summary is the human report printed at the end of a run.
func (r *Result) Summary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	// A run stopped early (the demo's load runs until Ctrl-C) says how long
	// it ran, not how long it was meant to.
	ran := r.Duration
	if r.Elapsed > 0 && r.Elapsed < ran {
		ran = r.Elapsed.Round(time.Second)
	}
	fmt.Fprintf(&b, "load: %.1f req/s %s for %v: %d scheduled, %d sent, %d dropped", r.Rate, r.Arrival, ran, r.Scheduled, r.Sent, r.Dropped)
	if r.Dropped > 0 {
		fmt.Fprintf(&b, " (in-flight limit %d reached: dropped, not delayed)", r.MaxInFlight)
	}
	fmt.Fprintf(&b, "\n  ok %d, failed %d", r.OK, r.Failed)
	if r.Cancelled > 0 {
		fmt.Fprintf(&b, ", cancelled %d", r.Cancelled)
	}
	if len(r.Errors) > 0 {
		keys := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s: %d", k, r.Errors[k])
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	}
	fmt.Fprintf(&b, "\n  latency of ok requests from their scheduled send time (no coordinated omission):\n  %s\n", pcts(r.Latency))
	fmt.Fprintf(&b, "  worst send lag behind schedule: %v\n", r.MaxSendLag.Round(time.Microsecond))
	names := make([]string, 0, len(r.PerTenant))
	for n := range r.PerTenant {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		t := r.PerTenant[n]
		if t.Sent+t.Dropped == 0 {
			continue
		}
		fmt.Fprintf(&b, "  %-10s sent %6d ok %6d failed %4d dropped %4d  %s\n", n, t.Sent, t.OK, t.Failed, t.Dropped, pcts(t.Latency))
	}
	return b.String()
}

func pcts(h *hdrhistogram.Histogram) string {
	if h.TotalCount() == 0 {
		return "no successful requests"
	}
	d := func(p float64) time.Duration {
		return (time.Duration(h.ValueAtPercentile(p)) * time.Microsecond).Round(10 * time.Microsecond)
	}
	return fmt.Sprintf("p50 %v  p95 %v  p99 %v  p99.9 %v  max %v", d(50), d(95), d(99), d(99.9),
		(time.Duration(h.Max()) * time.Microsecond).Round(10*time.Microsecond))
}

// Zipf weights names by rank: the k-th (from 1) gets 1/k^s.
func Zipf(names []string, s float64) []Weighted {
	out := make([]Weighted, len(names))
	for i, n := range names {
		out[i] = Weighted{Name: n, Weight: 1 / math.Pow(float64(i+1), s)}
	}
	return out
}

// DefaultMix is the tenant mix `tailscope load` sends when none is given.
const DefaultMix = "acme=5,globex=2,initech=1,umbrella=1,hooli=1"

// ParseMix reads a tenant mix: "acme=5,globex=1" (or "acme:5,globex:1",
// the form people type after other load tools), or plain names
// "acme,globex,initech" for Zipf weights (exponent 1.1) in that order.
func ParseMix(s string) ([]Weighted, error) {
	parts := strings.Split(s, ",")
	var names []string
	var out []Weighted
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, fmt.Errorf("load: tenant mix %q: empty entry", s)
		}
		name, w, hasW := cutWeight(p)
		if name == "" {
			return nil, fmt.Errorf("load: tenant mix %q: entry %q has no tenant name", s, p)
		}
		if !hasW {
			names = append(names, name)
			continue
		}
		v, err := strconv.ParseFloat(w, 64)
		if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, fmt.Errorf("load: tenant mix %q: weight of %s: want a number ≥ 0", s, name)
		}
		out = append(out, Weighted{Name: name, Weight: v})
	}
	switch {
	case len(names) > 0 && len(out) > 0:
		return nil, fmt.Errorf("load: tenant mix %q: give weights for all tenants or for none", s)
	case len(names) > 0:
		return Zipf(names, 1.1), nil
	}
	return out, nil
}

// cutWeight splits a mix entry into name and weight. "=" always separates
// a weight; ":" does only when what follows the last colon is a number, so
// a tenant named "org:acme" stays one name.
func cutWeight(p string) (name, weight string, ok bool) {
	if name, weight, ok := strings.Cut(p, "="); ok {
		return strings.TrimSpace(name), strings.TrimSpace(weight), true
	}
	if i := strings.LastIndexByte(p, ':'); i >= 0 {
		if _, err := strconv.ParseFloat(strings.TrimSpace(p[i+1:]), 64); err == nil {
			return strings.TrimSpace(p[:i]), strings.TrimSpace(p[i+1:]), true
		}
	}
	return p, "", false
}
