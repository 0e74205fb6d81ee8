package analysistest

import (
	"time"

	"github.com/tailscope/tailscope/store"
)

// BudgetScenario is the traffic of a long budget period whose requests are
// not spread evenly: a quiet period and then a busy last hour in which one
// hop has a known culprit. It is issue 14's shape: a 30-day budget, 20,000
// requests in the last hour, and a one-second delay on one dependency, so
// a hop table that samples each day alike sees almost none of it.
type BudgetScenario struct {
	Seed uint64
	// End is the end of the period (default 2026-03-01T00:00:00Z);
	// Period its length (default 30 days).
	End    time.Time
	Period time.Duration
	// Quiet requests start uniformly over the period before its last
	// hour (default 2,000); Busy requests in the last hour (default
	// 20,000).
	Quiet, Busy int
	// Culprit slows the busy hour's requests (default: profile-svc one
	// second slower in 3% of them). Its Name labels the affected traces in
	// Dataset.Truth.
	Culprit Cause
	// Parallel selects the v2 shape for both parts (see Scenario).
	Parallel bool
}

// DefaultCulprit is the culprit of a BudgetScenario that names none.
func DefaultCulprit() Cause {
	return Cause{Name: "culprit", Dependency: ProfileSvc, Probability: 0.03, Extra: time.Second}
}

// GenerateBudget builds the dataset of s: the quiet part, then the busy
// hour, as one Dataset whose Truth and Injected name the culprit's traces.
// The same scenario always gives the same spans.
func GenerateBudget(s BudgetScenario) Dataset {
	if s.End.IsZero() {
		s.End = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	}
	if s.Period <= 0 {
		s.Period = 30 * 24 * time.Hour
	}
	if s.Quiet <= 0 {
		s.Quiet = 2000
	}
	if s.Busy <= 0 {
		s.Busy = 20_000
	}
	if s.Culprit.Dependency == "" {
		s.Culprit = DefaultCulprit()
	}
	start := s.End.Add(-s.Period)
	quiet := Generate(Scenario{Seed: s.Seed, Start: start, Window: s.Period - time.Hour, Traces: s.Quiet, Parallel: s.Parallel})
	busy := Generate(Scenario{Seed: s.Seed ^ 0x5bd1e995, Start: s.End.Add(-time.Hour), Window: time.Hour, Traces: s.Busy,
		Parallel: s.Parallel, Causes: []Cause{s.Culprit}})
	out := Dataset{
		Spans:    append(quiet.Spans, busy.Spans...),
		Truth:    busy.Truth,
		Injected: busy.Injected,
		Roots:    append(quiet.Roots, busy.Roots...),
	}
	if out.Injected == nil {
		out.Injected = map[string]map[store.TraceID]time.Duration{}
	}
	return out
}
