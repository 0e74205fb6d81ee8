package scenario

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tailscope/tailscope/feedsvc"
)

func TestScenariosAreConsistent(t *testing.T) {
	names := map[string]bool{}
	for _, s := range All() {
		t.Run(s.Name, func(t *testing.T) {
			if names[s.Name] {
				t.Fatal("duplicate name")
			}
			names[s.Name] = true
			tenants := feedsvc.DefaultTenants()
			if s.Tenants != nil {
				tenants = s.Tenants
			}
			if err := s.Validate(tenants); err != nil {
				t.Fatal(err)
			}
			ranks := map[int]bool{}
			for _, c := range s.Causes {
				if c.Rank > 0 && ranks[c.Rank] {
					t.Fatalf("two causes ranked %d", c.Rank)
				}
				ranks[c.Rank] = true
			}
		})
	}
	for _, want := range []string{"slow-profile-for-acme", "large-payload", "two-causes", "stampede", "pool-exhaustion", "v1-to-v2", "regression"} {
		if !names[want] {
			t.Errorf("scenario %s missing", want)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	base, err := Lookup("slow-profile-for-acme")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*Scenario)
	}{
		{"unknown version", func(s *Scenario) { s.Version = "v7" }},
		{"cause not injected", func(s *Scenario) { s.Causes = []Cause{{Fault: feedsvc.FaultStampede}} }},
		{"unknown tenant", func(s *Scenario) { s.Causes[0].Tenant = "nobody" }},
		{"unknown service", func(s *Scenario) { s.Causes[0].Service = "db" }},
		{"no causes", func(s *Scenario) { s.Causes = nil }},
		{"step after the end", func(s *Scenario) { s.Steps = []Step{{After: time.Hour, Version: feedsvc.V2}} }},
		{"deploy without verdict", func(s *Scenario) {
			s.Steps = []Step{{After: time.Second, Version: feedsvc.V2}}
			s.Causes = []Cause{{Fault: CauseDeploy, Version: feedsvc.V2}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base
			s.Causes = slices.Clone(base.Causes)
			tt.edit(&s)
			if err := s.Validate(feedsvc.DefaultTenants()); err == nil {
				t.Fatal("Validate accepted it")
			}
		})
	}
}

func TestLookupUnknown(t *testing.T) {
	if _, err := Lookup("nope"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("err = %v, want ErrUnknown", err)
	}
}

// recorder is a Controller that logs what it is told, with the fake time.
type recorder struct {
	clock *stepClock
	calls []string
}

func (r *recorder) SetVersion(_ context.Context, v string) error {
	r.calls = append(r.calls, fmt.Sprintf("%v version %s", r.clock.now.Sub(r.clock.start), v))
	return nil
}

func (r *recorder) SetFaults(_ context.Context, f feedsvc.Faults) error {
	r.calls = append(r.calls, fmt.Sprintf("%v faults %v", r.clock.now.Sub(r.clock.start), f.Active()))
	return nil
}

type stepClock struct{ start, now time.Time }

func (c *stepClock) Now() time.Time { return c.now }

func (c *stepClock) SleepUntil(ctx context.Context, t time.Time) error {
	if t.After(c.now) {
		c.now = t
	}
	return ctx.Err()
}

func TestRunAppliesSteps(t *testing.T) {
	s := Scenario{
		Name: "t", Version: feedsvc.V1,
		Faults: feedsvc.Faults{GCPressure: &feedsvc.GCPressure{}},
		Steps: []Step{
			{After: time.Minute, Version: feedsvc.V2},
			{After: 90 * time.Second, Faults: &feedsvc.Faults{}},
		},
	}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &stepClock{start: now, now: now}
	r := &recorder{clock: clock}
	if err := s.Run(context.Background(), r, clock); err != nil {
		t.Fatal(err)
	}
	want := []string{"0s version v1", "0s faults [gc-pressure]", "1m0s version v2", "1m30s faults []"}
	if !slices.Equal(r.calls, want) {
		t.Fatalf("calls %q, want %q", r.calls, want)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	s, _ := Lookup("v1-to-v2")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	now := time.Now()
	clock := &stepClock{start: now, now: now}
	if err := s.Run(ctx, &recorder{clock: clock}, clock); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want Canceled", err)
	}
}

// TestScenarioOnCluster plays a scenario's start on a simulated cluster
// and checks the cluster took its state.
func TestScenarioOnCluster(t *testing.T) {
	s, err := Lookup("two-causes")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := feedsvc.Start(ctx, s.Configure(feedsvc.Config{OTLPEndpoint: "http://127.0.0.1:1", CatalogItems: 10000}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = c.Close(cctx) // nothing listens at the endpoint: the flush fails, as expected
	}()
	if err := s.Run(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	if c.Version() != s.Version || !slices.Equal(c.Faults().Active(), s.Faults.Active()) {
		t.Fatalf("cluster at %s with %v, want %s with %v", c.Version(), c.Faults().Active(), s.Version, s.Faults.Active())
	}
	lc := s.LoadConfig(c.FeedURL(), c.Tenants())
	if lc.Rate != s.Rate || len(lc.Tenants) != len(c.Tenants()) {
		t.Fatalf("load config %+v", lc)
	}
}
