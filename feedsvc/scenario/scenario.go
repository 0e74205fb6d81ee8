// Package scenario names feedsvc's demo and test situations: a starting
// version, injected faults, timed steps (deploys, faults switched on), and
// — machine-readable — the causes tailscope's analysis should find. Tests of
// the analysis run a scenario and compare its findings with Causes;
// `tailscope demo --scenario NAME` and `feedsvc --scenario NAME` play it.
package scenario

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tailscope/tailscope/feedsvc"
	"github.com/tailscope/tailscope/feedsvc/load"
)

// Endpoint is where every scenario's causes show: feed-api's root span.
const Endpoint = "feed-api GET /v1/feed"

// Cause kinds that are not injected faults (those use the feedsvc.Fault*
// names).
const (
	CausePayload = "payload" // the heavy tenant's large payloads
	CauseDeploy  = "deploy"  // a version change
)

// Cause is one thing the analysis of Endpoint should report. Empty fields
// are not part of the expectation.
type Cause struct {
	// Rank is the expected position among the outlier groups ordered by
	// payoff (1 = first); 0 means "found, in any position".
	Rank int `json:"rank,omitempty"`
	// Fault is a feedsvc.Fault* name, CausePayload or CauseDeploy.
	Fault string `json:"fault"`
	// Service is where the excess time is spent (a service.name).
	Service string `json:"service,omitempty"`
	// Dependency is the value of tailscope's dependency dimension that
	// should be over-represented: a peer.service (the HTTP hop from
	// feed-api) or a db.system.
	Dependency string `json:"dependency,omitempty"`
	// Tenant that should be over-represented in the outliers.
	Tenant string `json:"tenant,omitempty"`
	// Payload is "large" when the largest payload bucket should be
	// over-represented.
	Payload string `json:"payload,omitempty"`
	// Version and Verdict are for deploy causes: the deploy comparison of
	// Version against the one before should say Verdict.
	Version string `json:"version,omitempty"`
	Verdict string `json:"verdict,omitempty"` // "improved" | "regressed"
}

// Step is a change at a time after the scenario started.
type Step struct {
	After   time.Duration   `json:"after"`
	Version string          `json:"version,omitempty"` // deploy this version
	Faults  *feedsvc.Faults `json:"faults,omitempty"`  // replace the active faults
	Note    string          `json:"note"`
}

// Scenario is a named situation.
type Scenario struct {
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Version     string         `json:"version"` // at the start
	Faults      feedsvc.Faults `json:"faults"`  // at the start
	// Tenants replaces feedsvc.DefaultTenants when set.
	Tenants []feedsvc.Tenant `json:"tenants,omitempty"`
	Steps   []Step           `json:"steps,omitempty"`
	// Rate and Duration are the load the causes are stated for.
	Rate     float64       `json:"rate"`
	Duration time.Duration `json:"duration"`
	// Percentile is the outlier threshold at which Causes come out.
	Percentile float64 `json:"percentile"`
	Causes     []Cause `json:"causes"`
	// Innocent are dependencies that must be in no outlier group however
	// slow they are: work the request does not wait for.
	Innocent []string `json:"innocent,omitempty"`
}

const (
	acme   = "acme"
	heavy  = feedsvc.HeavyTenant
	minute = time.Minute
)

func ms(d int) feedsvc.Duration { return feedsvc.Duration(time.Duration(d) * time.Millisecond) }

// heavier returns the default tenants with the heavy tenant's candidate
// count and body size raised.
func heavier(candidates, bodyBytes int) []feedsvc.Tenant {
	ts := feedsvc.DefaultTenants()
	for i := range ts {
		if ts[i].Name == heavy {
			ts[i].Candidates, ts[i].BodyBytes = candidates, bodyBytes
		}
	}
	return ts
}

// All returns every scenario, in a stable order.
func All() []Scenario {
	return []Scenario{
		{
			Name: "slow-profile-for-acme",
			Description: "v1; profile-svc answers ~900 ms later for 5% of acme's calls. " +
				"The p99 outliers are acme requests waiting on profile-svc.",
			Version:    feedsvc.V1,
			Faults:     feedsvc.Faults{SlowProfile: &feedsvc.SlowProfile{Tenant: acme, Delay: ms(900), Probability: 0.05}},
			Rate:       15,
			Duration:   3 * minute,
			Percentile: 99,
			Causes: []Cause{{Rank: 1, Fault: feedsvc.FaultSlowProfile, Service: feedsvc.ProfileSvc,
				Dependency: feedsvc.ProfileSvc, Tenant: acme}},
		},
		{
			Name: "slow-analytics",
			Description: "v1; feed-api's fire-and-forget analytics call (which it never waits for) takes ~1.5 s on " +
				"every request, while profile-svc answers ~900 ms later for 5% of acme's calls. The async call " +
				"outlives every request; the outliers are still acme requests waiting on profile-svc.",
			Version: feedsvc.V1,
			Faults: feedsvc.Faults{SlowProfile: &feedsvc.SlowProfile{Tenant: acme, Delay: ms(900), Probability: 0.05},
				SlowAnalytics: &feedsvc.SlowAnalytics{Delay: ms(1500), Probability: 1}},
			Rate:       15,
			Duration:   3 * minute,
			Percentile: 99,
			Causes: []Cause{{Rank: 1, Fault: feedsvc.FaultSlowProfile, Service: feedsvc.ProfileSvc,
				Dependency: feedsvc.ProfileSvc, Tenant: acme}},
			Innocent: []string{feedsvc.Analytics},
		},
		{
			Name: "large-payload",
			Description: "v2; the heavy tenant, grown to 800 candidates with 2 kB bodies, makes large responses " +
				"that feed-api decodes and that the ranker scores with a 6-model ensemble (lists of 500 or more), " +
				"so its CPU grows with the payload (feature-svc also derives features on cache misses).",
			Version:    feedsvc.V2,
			Faults:     feedsvc.Faults{HeavyRanking: &feedsvc.HeavyRanking{MinCandidates: 500, Passes: 6}},
			Tenants:    heavier(800, 2000),
			Rate:       15,
			Duration:   3 * minute,
			Percentile: 99,
			// The large payloads cost time in three hops: feed-api
			// decoding each 1.6 MB candidate list (outside the client span,
			// so in feed-api's own time), the ranker scoring 800 candidates
			// six times, feature-svc deriving features on cache misses.
			// Without the ensemble the three were of similar size and the
			// ranker's group came and went with the machine's load; with it
			// the ranker is the largest, but which group leads still
			// depends on cache warmth, so the first group is stated by
			// tenant and payload, and the ranker's by its presence.
			Causes: []Cause{
				{Rank: 1, Fault: CausePayload, Tenant: heavy, Payload: "large"},
				{Fault: CausePayload, Service: feedsvc.Ranker, Dependency: feedsvc.Ranker, Tenant: heavy},
			},
		},
		{
			Name: "two-causes",
			Description: "v1; slow profile-svc for 3% of acme's calls AND candidate-svc's connection pool " +
				"exhausted (3 of 4 connections held), so every tenant queues for the database.",
			Version: feedsvc.V1,
			Faults: feedsvc.Faults{
				SlowProfile:    &feedsvc.SlowProfile{Tenant: acme, Delay: ms(900), Probability: 0.03},
				PoolExhaustion: &feedsvc.PoolExhaustion{Service: feedsvc.CandidateSvc, Held: 3},
			},
			Rate:       15,
			Duration:   3 * minute,
			Percentile: 95,
			Causes: []Cause{
				{Fault: feedsvc.FaultSlowProfile, Service: feedsvc.ProfileSvc, Dependency: feedsvc.ProfileSvc, Tenant: acme},
				{Fault: feedsvc.FaultPoolExhaustion, Service: feedsvc.CandidateSvc, Dependency: feedsvc.CandidateSvc},
			},
		},
		{
			Name: "stampede",
			Description: "v2; the heavy tenant (grown to 800 candidates) has its feature cache flushed " +
				"every 2 s, so its requests miss, read Postgres and re-derive 800 items' features at once.",
			Version:    feedsvc.V2,
			Tenants:    heavier(800, feedsvc.DefaultTenants()[2].BodyBytes),
			Faults:     feedsvc.Faults{Stampede: &feedsvc.Stampede{Tenant: heavy, Every: ms(2000)}},
			Rate:       15,
			Duration:   3 * minute,
			Percentile: 99,
			Causes: []Cause{{Rank: 1, Fault: feedsvc.FaultStampede, Service: feedsvc.FeatureSvc,
				Dependency: feedsvc.FeatureSvc, Tenant: heavy}},
		},
		{
			Name: "pool-exhaustion",
			Description: "v1; 3 of candidate-svc's 4 database connections are held, so its slow v1 queries " +
				"queue behind each other (pool.acquire spans).",
			Version:    feedsvc.V1,
			Faults:     feedsvc.Faults{PoolExhaustion: &feedsvc.PoolExhaustion{Service: feedsvc.CandidateSvc, Held: 3}},
			Rate:       15,
			Duration:   3 * minute,
			Percentile: 99,
			Causes: []Cause{{Rank: 1, Fault: feedsvc.FaultPoolExhaustion, Service: feedsvc.CandidateSvc,
				Dependency: feedsvc.CandidateSvc}},
		},
		{
			Name: "flaky-profile",
			Description: "v1; profile-svc fails 20% of calls and v1 retries at once without limit, " +
				"so unlucky requests pay for several sequential attempts.",
			Version:    feedsvc.V1,
			Faults:     feedsvc.Faults{Errors: &feedsvc.ErrorRate{Service: feedsvc.ProfileSvc, Rate: 0.2}},
			Rate:       15,
			Duration:   3 * minute,
			Percentile: 99,
			Causes: []Cause{{Rank: 1, Fault: feedsvc.FaultErrors, Service: feedsvc.ProfileSvc,
				Dependency: feedsvc.ProfileSvc}},
		},
		{
			Name: "gc-pressure",
			Description: "v2; every feed request allocates 16 MiB of garbage, so collection slows all " +
				"six services (they share one process).",
			Version:    feedsvc.V2,
			Faults:     feedsvc.Faults{GCPressure: &feedsvc.GCPressure{BytesPerRequest: 16 << 20}},
			Rate:       15,
			Duration:   3 * minute,
			Percentile: 99,
			Causes:     []Cause{{Fault: feedsvc.FaultGCPressure, Service: feedsvc.FeedAPI}},
		},
		{
			Name: "hot-tenant",
			Description: "v1; hooli, normally the smallest tenant, sends 20 extra requests per second, " +
				"loading the database everyone shares.",
			Version:    feedsvc.V1,
			Faults:     feedsvc.Faults{HotTenant: &feedsvc.HotTenant{Tenant: "hooli", Rate: 20}},
			Rate:       10,
			Duration:   3 * minute,
			Percentile: 99,
			Causes:     []Cause{{Fault: feedsvc.FaultHotTenant, Service: feedsvc.CandidateSvc, Tenant: "hooli"}},
		},
		{
			Name: "v1-to-v2",
			Description: "v1 for two minutes, then the v2 deploy (parallel fan-out, deadlines, cache, " +
				"composite index, bounded retries): p99 drops.",
			Version: feedsvc.V1,
			Steps: []Step{{After: 2 * minute, Version: feedsvc.V2,
				Note: "deploy v2: parallel fan-out, cache, composite index, one retry"}},
			Rate:       15,
			Duration:   4 * minute,
			Percentile: 99,
			Causes:     []Cause{{Rank: 1, Fault: CauseDeploy, Version: feedsvc.V2, Verdict: "improved"}},
		},
		{
			Name: "regression",
			Description: "v2 for two minutes, then v3, which also counts the tenant's items and categories for " +
				"pagination: a query that sorts them all, ~150 ms for the heavy tenant and ~50 ms for acme.",
			Version: feedsvc.V2,
			Steps: []Step{{After: 2 * minute, Version: feedsvc.V3,
				Note: "deploy v3: adds SELECT count(*) per candidates call"}},
			Rate:       15,
			Duration:   4 * minute,
			Percentile: 99,
			Causes: []Cause{{Rank: 1, Fault: CauseDeploy, Version: feedsvc.V3, Verdict: "regressed",
				Service: feedsvc.CandidateSvc, Dependency: feedsvc.CandidateSvc, Tenant: heavy}},
		},
	}
}

// Names lists the scenario names.
func Names() []string {
	var out []string
	for _, s := range All() {
		out = append(out, s.Name)
	}
	return out
}

// ErrUnknown is returned by Lookup for a name no scenario has.
var ErrUnknown = errors.New("scenario: unknown")

// Lookup returns the scenario called name.
func Lookup(name string) (Scenario, error) {
	for _, s := range All() {
		if s.Name == name {
			return s, nil
		}
	}
	return Scenario{}, fmt.Errorf("%w %q (known: %v)", ErrUnknown, name, Names())
}

// Configure returns cfg set to the scenario's starting version and faults,
// for feedsvc.Start.
func (s Scenario) Configure(cfg feedsvc.Config) feedsvc.Config {
	cfg.Version = s.Version
	cfg.Faults = s.Faults
	if s.Tenants != nil {
		cfg.Tenants = s.Tenants
	}
	return cfg
}

// LoadConfig returns a load configuration for the scenario's rate and
// duration against target, with the tenants' traffic weights as the mix.
func (s Scenario) LoadConfig(target string, tenants []feedsvc.Tenant) load.Config {
	mix := make([]load.Weighted, len(tenants))
	for i, t := range tenants {
		mix[i] = load.Weighted{Name: t.Name, Weight: t.TrafficWeight}
	}
	return load.Config{Target: target, Rate: s.Rate, Duration: s.Duration, Tenants: mix}
}

// Controller is what Run drives; *feedsvc.Cluster is one.
type Controller interface {
	SetVersion(ctx context.Context, version string) error
	SetFaults(ctx context.Context, f feedsvc.Faults) error
}

// Run puts c in the scenario's starting state, then applies each step at
// its time (from clock; nil means the wall clock) and returns after the
// last one. It returns ctx's error if cancelled first.
func (s Scenario) Run(ctx context.Context, c Controller, clock load.Clock) error {
	if clock == nil {
		clock = load.WallClock{}
	}
	start := clock.Now()
	if err := c.SetVersion(ctx, s.Version); err != nil {
		return fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	if err := c.SetFaults(ctx, s.Faults); err != nil {
		return fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	for _, st := range s.Steps {
		if err := clock.SleepUntil(ctx, start.Add(st.After)); err != nil {
			return err
		}
		if st.Version != "" {
			if err := c.SetVersion(ctx, st.Version); err != nil {
				return fmt.Errorf("scenario %s: step at %v: %w", s.Name, st.After, err)
			}
		}
		if st.Faults != nil {
			if err := c.SetFaults(ctx, *st.Faults); err != nil {
				return fmt.Errorf("scenario %s: step at %v: %w", s.Name, st.After, err)
			}
		}
	}
	return nil
}

// Validate checks the scenario is consistent with feedsvc's tenants,
// versions and faults.
func (s Scenario) Validate(tenants []feedsvc.Tenant) error {
	known := func(name string) bool {
		return slices.ContainsFunc(tenants, func(t feedsvc.Tenant) bool { return t.Name == name })
	}
	if !slices.Contains(feedsvc.Versions(), s.Version) {
		return fmt.Errorf("scenario %s: unknown version %q", s.Name, s.Version)
	}
	if s.Rate <= 0 || s.Duration <= 0 || s.Percentile <= 0 || s.Percentile >= 100 || len(s.Causes) == 0 {
		return fmt.Errorf("scenario %s: needs a rate, a duration, a percentile in (0, 100) and causes", s.Name)
	}
	var last time.Duration
	for _, st := range s.Steps {
		if st.After < last || st.After >= s.Duration {
			return fmt.Errorf("scenario %s: step at %v out of order or after the end", s.Name, st.After)
		}
		last = st.After
		if st.Version != "" && !slices.Contains(feedsvc.Versions(), st.Version) {
			return fmt.Errorf("scenario %s: step deploys unknown version %q", s.Name, st.Version)
		}
	}
	faults := append([]string{CausePayload, CauseDeploy}, s.Faults.Active()...)
	for _, st := range s.Steps {
		if st.Faults != nil {
			faults = append(faults, st.Faults.Active()...)
		}
	}
	services := feedsvc.Services()
	for _, d := range s.Innocent {
		if !slices.Contains(services, d) {
			return fmt.Errorf("scenario %s: innocent %q is not a service", s.Name, d)
		}
	}
	for _, c := range s.Causes {
		switch {
		case !slices.Contains(faults, c.Fault):
			return fmt.Errorf("scenario %s: cause %q is not injected by the scenario", s.Name, c.Fault)
		case c.Tenant != "" && !known(c.Tenant):
			return fmt.Errorf("scenario %s: cause names unknown tenant %q", s.Name, c.Tenant)
		case c.Service != "" && !slices.Contains(services, c.Service):
			return fmt.Errorf("scenario %s: cause names unknown service %q", s.Name, c.Service)
		case c.Fault == CauseDeploy && (c.Version == "" || (c.Verdict != "improved" && c.Verdict != "regressed")):
			return fmt.Errorf("scenario %s: a deploy cause needs a version and a verdict", s.Name)
		}
	}
	return nil
}
