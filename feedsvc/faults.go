package feedsvc

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Fault names: the value of the feedsvc.fault span attribute on the spans a
// fault affected.
const (
	FaultSlowProfile    = "slow-profile"    // profile-svc server span, delayed
	FaultErrors         = "errors"          // server span of the service that failed the call
	FaultStampede       = "stampede"        // feature-svc server span that missed the flushed cache
	FaultPoolExhaustion = "pool-exhaustion" // server span of the service whose pool is held
	FaultGCPressure     = "gc-pressure"     // feed-api root span that allocated the garbage
	FaultHotTenant      = "hot-tenant"      // feed-api root span of the hot tenant's requests
	FaultHeavyRanking   = "heavy-ranking"   // ranker server span that scored a large list several times
	FaultSlowAnalytics  = "slow-analytics"  // analytics-svc server span, delayed (async: never a cause of the request's latency)
)

// Faults are the switches that inject known causes. A nil field is off.
// The JSON form is what GET and POST /admin/faults speak.
type Faults struct {
	SlowProfile    *SlowProfile    `json:"slow_profile,omitempty"`
	Errors         *ErrorRate      `json:"errors,omitempty"`
	Stampede       *Stampede       `json:"stampede,omitempty"`
	PoolExhaustion *PoolExhaustion `json:"pool_exhaustion,omitempty"`
	GCPressure     *GCPressure     `json:"gc_pressure,omitempty"`
	HotTenant      *HotTenant      `json:"hot_tenant,omitempty"`
	HeavyRanking   *HeavyRanking   `json:"heavy_ranking,omitempty"`
	SlowAnalytics  *SlowAnalytics  `json:"slow_analytics,omitempty"`
}

// SlowAnalytics delays analytics-svc's answers to feed-api's
// fire-and-forget tracking calls. The requests do not wait for them, so
// their latency must not change, and no analysis may blame analytics-svc.
type SlowAnalytics struct {
	Delay       Duration `json:"delay"`       // added latency (default 1.5s), ±25%
	Probability float64  `json:"probability"` // share of calls delayed (default 1)
}

// SlowProfile delays profile-svc's answers.
type SlowProfile struct {
	Tenant      string   `json:"tenant,omitempty"` // only this tenant ("" = all)
	Delay       Duration `json:"delay"`            // added latency (default 800ms), ±25%
	Probability float64  `json:"probability"`      // share of calls delayed (default 1)
}

// ErrorRate makes a dependency answer 503.
type ErrorRate struct {
	Service string  `json:"service"`          // candidate-svc, feature-svc, profile-svc or ranker
	Rate    float64 `json:"rate"`             // share of calls failing, (0, 1]
	Tenant  string  `json:"tenant,omitempty"` // only this tenant ("" = all)
}

// Stampede flushes the feature cache periodically, so concurrent requests
// all miss at once and go to Postgres (v2 and v3 only: v1 has no cache).
type Stampede struct {
	Tenant string   `json:"tenant,omitempty"` // flush only this tenant's keys ("" = all)
	Every  Duration `json:"every"`            // flush period (default 5s)
}

// PoolExhaustion holds database connections of one service's pool, leaving
// its requests to queue for the rest.
type PoolExhaustion struct {
	Service string `json:"service"` // candidate-svc or feature-svc (default candidate-svc)
	Held    int    `json:"held"`    // connections held (default pool size − 1)
}

// GCPressure makes every feed request allocate garbage, so the whole
// process (all six services share it) pays for collection.
type GCPressure struct {
	BytesPerRequest int `json:"bytes_per_request"` // default 8 MiB
}

// HotTenant sends extra requests for one tenant from inside the cluster.
type HotTenant struct {
	Tenant string  `json:"tenant"`
	Rate   float64 `json:"rate"` // extra requests per second (default 20)
}

// HeavyRanking makes the ranker score large candidate lists with an
// ensemble: Passes runs of the scoring network instead of one, so its CPU
// grows with the payload (the cause behind a "large payloads are slow in
// the ranker" tail, and what its span profiles show).
type HeavyRanking struct {
	MinCandidates int `json:"min_candidates"` // lists at least this long (default 500)
	Passes        int `json:"passes"`         // scoring runs per list (default 6)
}

// Active returns the names of the faults that are on, in a fixed order.
func (f Faults) Active() []string {
	var out []string
	if f.SlowProfile != nil {
		out = append(out, FaultSlowProfile)
	}
	if f.Errors != nil {
		out = append(out, FaultErrors)
	}
	if f.Stampede != nil {
		out = append(out, FaultStampede)
	}
	if f.PoolExhaustion != nil {
		out = append(out, FaultPoolExhaustion)
	}
	if f.GCPressure != nil {
		out = append(out, FaultGCPressure)
	}
	if f.HotTenant != nil {
		out = append(out, FaultHotTenant)
	}
	if f.HeavyRanking != nil {
		out = append(out, FaultHeavyRanking)
	}
	if f.SlowAnalytics != nil {
		out = append(out, FaultSlowAnalytics)
	}
	return out
}

// withDefaults returns a deep copy of f with defaults filled in, so the
// running cluster never shares pointers with its caller.
func (f Faults) withDefaults(poolSize int) Faults {
	var out Faults
	if p := f.SlowProfile; p != nil {
		c := *p
		if c.Delay == 0 {
			c.Delay = Duration(800 * time.Millisecond)
		}
		if c.Probability == 0 {
			c.Probability = 1
		}
		out.SlowProfile = &c
	}
	if p := f.Errors; p != nil {
		c := *p
		out.Errors = &c
	}
	if p := f.Stampede; p != nil {
		c := *p
		if c.Every == 0 {
			c.Every = Duration(5 * time.Second)
		}
		out.Stampede = &c
	}
	if p := f.PoolExhaustion; p != nil {
		c := *p
		if c.Service == "" {
			c.Service = CandidateSvc
		}
		if c.Held == 0 {
			c.Held = poolSize - 1
		}
		out.PoolExhaustion = &c
	}
	if p := f.GCPressure; p != nil {
		c := *p
		if c.BytesPerRequest == 0 {
			c.BytesPerRequest = 8 << 20
		}
		out.GCPressure = &c
	}
	if p := f.HotTenant; p != nil {
		c := *p
		if c.Rate == 0 {
			c.Rate = 20
		}
		out.HotTenant = &c
	}
	if p := f.HeavyRanking; p != nil {
		c := *p
		if c.MinCandidates == 0 {
			c.MinCandidates = 500
		}
		if c.Passes == 0 {
			c.Passes = 6
		}
		out.HeavyRanking = &c
	}
	if p := f.SlowAnalytics; p != nil {
		c := *p
		if c.Delay == 0 {
			c.Delay = Duration(1500 * time.Millisecond)
		}
		if c.Probability == 0 {
			c.Probability = 1
		}
		out.SlowAnalytics = &c
	}
	return out
}

// validate checks f against the tenants; defaults need not be filled in.
func (f Faults) validate(tenants []Tenant) error {
	known := func(name string) bool {
		return slices.ContainsFunc(tenants, func(t Tenant) bool { return t.Name == name })
	}
	optTenant := func(fault, name string) error {
		if name != "" && !known(name) {
			return fmt.Errorf("fault %s: unknown tenant %q", fault, name)
		}
		return nil
	}
	if p := f.SlowProfile; p != nil {
		if err := optTenant(FaultSlowProfile, p.Tenant); err != nil {
			return err
		}
		if p.Delay < 0 || time.Duration(p.Delay) > time.Minute {
			return fmt.Errorf("fault %s: delay %v outside [0, 1m]", FaultSlowProfile, time.Duration(p.Delay))
		}
		if p.Probability < 0 || p.Probability > 1 {
			return fmt.Errorf("fault %s: probability %v outside [0, 1]", FaultSlowProfile, p.Probability)
		}
	}
	if p := f.Errors; p != nil {
		if !slices.Contains([]string{CandidateSvc, FeatureSvc, ProfileSvc, Ranker}, p.Service) {
			return fmt.Errorf("fault %s: service %q: want candidate-svc, feature-svc, profile-svc or ranker", FaultErrors, p.Service)
		}
		if p.Rate <= 0 || p.Rate > 1 {
			return fmt.Errorf("fault %s: rate %v outside (0, 1]", FaultErrors, p.Rate)
		}
		if err := optTenant(FaultErrors, p.Tenant); err != nil {
			return err
		}
	}
	if p := f.Stampede; p != nil {
		if err := optTenant(FaultStampede, p.Tenant); err != nil {
			return err
		}
		if p.Every != 0 && (time.Duration(p.Every) < 100*time.Millisecond || time.Duration(p.Every) > time.Hour) {
			return fmt.Errorf("fault %s: every %v outside [100ms, 1h]", FaultStampede, time.Duration(p.Every))
		}
	}
	if p := f.PoolExhaustion; p != nil {
		if p.Service != "" && p.Service != CandidateSvc && p.Service != FeatureSvc {
			return fmt.Errorf("fault %s: service %q: want candidate-svc or feature-svc", FaultPoolExhaustion, p.Service)
		}
		if p.Held < 0 || p.Held > 64 {
			return fmt.Errorf("fault %s: held %d outside [0, 64]", FaultPoolExhaustion, p.Held)
		}
	}
	if p := f.GCPressure; p != nil && (p.BytesPerRequest < 0 || p.BytesPerRequest > 256<<20) {
		return fmt.Errorf("fault %s: bytes per request %d outside [0, 256 MiB]", FaultGCPressure, p.BytesPerRequest)
	}
	if p := f.HotTenant; p != nil {
		if !known(p.Tenant) {
			return fmt.Errorf("fault %s: unknown tenant %q", FaultHotTenant, p.Tenant)
		}
		if p.Rate < 0 || p.Rate > 1000 {
			return fmt.Errorf("fault %s: rate %v outside [0, 1000]", FaultHotTenant, p.Rate)
		}
	}
	if p := f.SlowAnalytics; p != nil {
		if p.Delay < 0 || time.Duration(p.Delay) > time.Minute {
			return fmt.Errorf("fault %s: delay %v outside [0, 1m]", FaultSlowAnalytics, time.Duration(p.Delay))
		}
		if p.Probability < 0 || p.Probability > 1 {
			return fmt.Errorf("fault %s: probability %v outside [0, 1]", FaultSlowAnalytics, p.Probability)
		}
	}
	if p := f.HeavyRanking; p != nil {
		if p.MinCandidates < 0 {
			return fmt.Errorf("fault %s: min candidates %d is negative", FaultHeavyRanking, p.MinCandidates)
		}
		if p.Passes < 0 || p.Passes > 50 {
			return fmt.Errorf("fault %s: passes %d outside [0, 50]", FaultHeavyRanking, p.Passes)
		}
	}
	return nil
}

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("800ms"); a bare JSON number is read as milliseconds.
type Duration time.Duration

// MarshalJSON writes the duration as a string such as "1.5s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON accepts "250ms"-style strings or milliseconds as a number.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	ms, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("duration %s: want a string like \"800ms\" or milliseconds", b)
	}
	*d = Duration(ms * float64(time.Millisecond))
	return nil
}
