package load

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock jumps to each scheduled time instead of waiting for it, late
// by lateBy, and records every time it was asked to sleep until.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	lateBy  time.Duration
	sleeps  []time.Time
	onSleep func(n int) // called after the n-th sleep, outside the lock
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, t)
	// Late even for a time already reached (the first send is due at the
	// start): every wake-up is lateBy behind its schedule, as a
	// generator's scheduler lag would make it.
	if late := t.Add(c.lateBy); late.After(c.now) {
		c.now = late
	}
	n := len(c.sleeps)
	c.mu.Unlock()
	if c.onSleep != nil {
		c.onSleep(n)
	}
	return ctx.Err()
}

func (c *fakeClock) slept() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sleeps)
}

var mix = []Weighted{{Name: "acme", Weight: 3}, {Name: "globex", Weight: 1}}

// blockingTarget never answers until release is closed: the slowest
// possible service.
type blockingTarget struct {
	release  chan struct{}
	mu       sync.Mutex
	intended []time.Time
}

func (b *blockingTarget) do(ctx context.Context, r Request) error {
	b.mu.Lock()
	b.intended = append(b.intended, r.Intended)
	b.mu.Unlock()
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestScheduleHoldsWhenTargetBlocks: with a target that does not answer,
// every request is still sent at exactly start + i/rate.
func TestScheduleHoldsWhenTargetBlocks(t *testing.T) {
	tests := []struct {
		name        string
		maxInFlight int
		wantSent    int64
	}{
		{"room for all", 1000, 199},
		{"in-flight bound reached", 5, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			start := clock.Now()
			target := &blockingTarget{release: make(chan struct{})}
			const n = 200
			clock.onSleep = func(k int) {
				if k == n {
					close(target.release) // the schedule is over: let the requests finish
				}
			}
			res, err := Run(context.Background(), Config{
				Rate: 100, Duration: 2 * time.Second, Arrival: Uniform, Tenants: mix,
				MaxInFlight: tt.maxInFlight, Timeout: time.Minute, Clock: clock, Do: target.do,
			})
			if err != nil {
				t.Fatal(err)
			}
			sleeps := clock.slept()
			if len(sleeps) != n {
				t.Fatalf("%d send times, want %d", len(sleeps), n)
			}
			for i, at := range sleeps {
				if want := start.Add(time.Duration(i) * 10 * time.Millisecond); !at.Equal(want) {
					t.Fatalf("send %d scheduled at +%v, want +%v: the schedule drifted", i, at.Sub(start), want.Sub(start))
				}
			}
			// The target is released at the last send time, just before the
			// last request is dispatched, which may then find a free slot.
			if res.Scheduled != n || res.Sent+res.Dropped != n || res.OK != res.Sent ||
				res.Sent < tt.wantSent || res.Sent > tt.wantSent+1 {
				t.Fatalf("scheduled %d sent %d dropped %d ok %d; want %d scheduled, %d (or one more) sent and ok, the rest dropped",
					res.Scheduled, res.Sent, res.Dropped, res.OK, n, tt.wantSent)
			}
			for i, at := range target.intended {
				if !slices.Contains(sleeps, at) {
					t.Fatalf("request %d carried intended time +%v, not on the schedule", i, at.Sub(start))
				}
			}
			if tt.maxInFlight < n && !strings.Contains(res.Summary(), "dropped, not delayed") {
				t.Errorf("summary does not say requests were dropped:\n%s", res.Summary())
			}
		})
	}
}

// TestPoissonScheduleIgnoresResponses: the same seed gives the same send
// times whether the target answers at once or never.
func TestPoissonScheduleIgnoresResponses(t *testing.T) {
	run := func(do func(context.Context, Request) error, onSleep func(int)) []time.Time {
		clock := newFakeClock()
		clock.onSleep = onSleep
		_, err := Run(context.Background(), Config{
			Rate: 500, Duration: 4 * time.Second, Tenants: mix, Seed: 42, Timeout: time.Minute, Clock: clock, Do: do,
		})
		if err != nil {
			t.Fatal(err)
		}
		return clock.slept()
	}
	fast := run(func(context.Context, Request) error { return nil }, nil)
	target := &blockingTarget{release: make(chan struct{})}
	var once sync.Once
	slow := run(target.do, func(k int) {
		if k == len(fast) {
			once.Do(func() { close(target.release) })
		}
	})
	if !slices.EqualFunc(fast, slow, time.Time.Equal) {
		t.Fatalf("schedules differ: %d vs %d sends", len(fast), len(slow))
	}
	// 2000 expected arrivals; a Poisson count is within ±5σ (≈ ±224) for sure.
	if len(fast) < 1776 || len(fast) > 2224 {
		t.Fatalf("%d arrivals in 4s at 500/s", len(fast))
	}
	var gaps []float64
	for i := 1; i < len(fast); i++ {
		gaps = append(gaps, fast[i].Sub(fast[i-1]).Seconds())
	}
	// Exponential gaps: the standard deviation equals the mean.
	var sum, sq float64
	for _, g := range gaps {
		sum += g
	}
	mean := sum / float64(len(gaps))
	for _, g := range gaps {
		sq += (g - mean) * (g - mean)
	}
	sd := math.Sqrt(sq / float64(len(gaps)))
	if r := sd / mean; r < 0.85 || r > 1.15 {
		t.Fatalf("gap sd/mean = %.2f, want ≈ 1 for Poisson arrivals", r)
	}
}

// TestLatencyCountsSendLag: a send that leaves late is measured from its
// scheduled time, so the generator's own lag is never hidden.
func TestLatencyCountsSendLag(t *testing.T) {
	clock := newFakeClock()
	clock.lateBy = 3 * time.Millisecond
	res, err := Run(context.Background(), Config{
		Rate: 50, Duration: time.Second, Arrival: Uniform, Tenants: mix, Clock: clock,
		Do: func(context.Context, Request) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 50 || res.MaxSendLag != 3*time.Millisecond {
		t.Fatalf("ok %d, max send lag %v; want 50 and 3ms", res.OK, res.MaxSendLag)
	}
	if got := res.Percentile(1); got < 3*time.Millisecond-10*time.Microsecond {
		t.Fatalf("p1 latency %v: the 3ms send lag was not counted", got)
	}
}

// TestTenantMix: the seeded mix sends tenants 3:1. The fake clock
// schedules all ~4,000 requests at once, so the in-flight bound is set
// above that: with the default 512, how many were dropped depended on how
// fast the goroutines ran (1,219 sent under -race on a loaded machine),
// and the share of a smaller sample strayed past the bound.
func TestTenantMix(t *testing.T) {
	counts := map[string]int{}
	var mu sync.Mutex
	res, err := Run(context.Background(), Config{
		Rate: 1000, Duration: 4 * time.Second, Tenants: mix, Users: 7, Seed: 1, Clock: newFakeClock(),
		MaxInFlight: 10_000,
		Do: func(_ context.Context, r Request) error {
			mu.Lock()
			defer mu.Unlock()
			if r.UserID < 1 || r.UserID > 7 {
				t.Errorf("user id %d outside 1..7", r.UserID)
			}
			counts[r.Tenant]++
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Dropped != 0 {
		t.Fatalf("%d sent, %d dropped; want none dropped", res.Sent, res.Dropped)
	}
	share := float64(counts["acme"]) / float64(counts["acme"]+counts["globex"])
	if share < 0.72 || share > 0.78 { // weight 3:1 → 0.75; ±0.03 is > 6σ at n≈4000
		t.Fatalf("acme share %.3f, want ≈ 0.75 (%v)", share, counts)
	}
}

func TestHTTPTarget(t *testing.T) {
	var seen atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("user_id") == "" || q.Get("limit") != "7" || q.Get("keep") != "1" {
			t.Errorf("query %v: want user_id, limit=7 and the target's own keep=1", q)
		}
		seen.Add(1)
		if q.Get("tenant") == "globex" {
			http.Error(w, "no", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Config{
		Target: srv.URL + "/v1/feed?keep=1", Rate: 200, Duration: 500 * time.Millisecond, Arrival: Uniform,
		Tenants: mix, Limit: 7, Seed: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 100 || seen.Load() != 100 {
		t.Fatalf("sent %d, server saw %d; want 100", res.Sent, seen.Load())
	}
	if res.Failed != res.PerTenant["globex"].Failed || res.Errors["status 503"] != res.Failed || res.OK != res.PerTenant["acme"].OK || res.OK+res.Failed != 100 {
		t.Fatalf("ok %d failed %d errors %v per tenant acme %+v globex %+v", res.OK, res.Failed, res.Errors,
			*res.PerTenant["acme"], *res.PerTenant["globex"])
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	ok := Config{Target: "http://127.0.0.1:1/v1/feed", Rate: 1, Duration: time.Second, Tenants: mix}
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"zero rate", func(c *Config) { c.Rate = 0 }},
		{"NaN rate", func(c *Config) { c.Rate = math.NaN() }},
		{"no duration", func(c *Config) { c.Duration = 0 }},
		{"no target", func(c *Config) { c.Target = "" }},
		{"target not http", func(c *Config) { c.Target = "ftp://x" }},
		{"bad arrival", func(c *Config) { c.Arrival = "bursty" }},
		{"no tenants", func(c *Config) { c.Tenants = nil }},
		{"negative weight", func(c *Config) { c.Tenants = []Weighted{{"a", -1}} }},
		{"zero weights", func(c *Config) { c.Tenants = []Weighted{{"a", 0}} }},
		{"negative in flight", func(c *Config) { c.MaxInFlight = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			if _, err := Run(context.Background(), c); err == nil {
				t.Fatal("Run accepted the config")
			}
		})
	}
}

func TestParseMix(t *testing.T) {
	tests := []struct {
		in      string
		want    []Weighted
		wantErr bool
	}{
		{in: "acme=5,globex=1", want: []Weighted{{"acme", 5}, {"globex", 1}}},
		{in: "acme,globex", want: Zipf([]string{"acme", "globex"}, 1.1)},
		{in: "acme=x", wantErr: true},
		{in: "acme=1,globex", wantErr: true},
		{in: "acme,,globex", wantErr: true},
		{in: "acme=-1", wantErr: true},
		// The colon form: tailscope load's default was "acme:5,…" and
		// used to make a tenant literally named "acme:5".
		{in: "acme:5,globex:1", want: []Weighted{{"acme", 5}, {"globex", 1}}},
		{in: "org:acme,globex", want: Zipf([]string{"org:acme", "globex"}, 1.1)},
		{in: "org:acme=2,globex=1", want: []Weighted{{"org:acme", 2}, {"globex", 1}}},
		{in: "=5", wantErr: true},
		{in: ":5", wantErr: true},
		{in: DefaultMix, want: []Weighted{{"acme", 5}, {"globex", 2}, {"initech", 1}, {"umbrella", 1}, {"hooli", 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseMix(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCancelStopsSchedule(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	clock := newFakeClock()
	clock.onSleep = func(n int) {
		if n == 10 {
			cancel()
		}
	}
	res, err := Run(ctx, Config{Rate: 100, Duration: time.Hour, Tenants: mix, Clock: clock,
		Do: func(context.Context, Request) error { return nil }})
	if !errors.Is(err, context.Canceled) || res == nil || res.Scheduled != 9 {
		t.Fatalf("err %v, result %+v; want Canceled after 9 sends", err, res)
	}
}
