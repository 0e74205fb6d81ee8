package feedsvc

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// TestFaultsMarkTheirSpans injects each fault in the simulated mode and
// checks the spans name it where the analysis should find it, and only there.
func TestFaultsMarkTheirSpans(t *testing.T) {
	tests := []struct {
		name    string
		version string
		faults  Faults
		tenants []string // requests sent, one per tenant
		check   func(t *testing.T, spans []span, feeds map[string]int)
	}{
		{
			name: "slow profile for acme", version: V1,
			faults:  Faults{SlowProfile: &SlowProfile{Tenant: "acme", Delay: Duration(200 * time.Millisecond)}},
			tenants: []string{"acme", "initech"},
			check: func(t *testing.T, spans []span, _ map[string]int) {
				marked := 0
				for _, s := range spans {
					if s.Service != ProfileSvc || s.Kind != ptrace.SpanKindServer {
						if s.str(AttrFault) != "" {
							t.Errorf("%s span %q marked %s", s.Service, s.Name, s.str(AttrFault))
						}
						continue
					}
					isAcme := s.str(AttrTenant) == "acme"
					if (s.str(AttrFault) == FaultSlowProfile) != isAcme {
						t.Errorf("profile-svc span for %s: fault %q", s.str(AttrTenant), s.str(AttrFault))
					}
					if isAcme {
						marked++
						if s.Duration < 150*time.Millisecond { // the delay is 200ms ±25%
							t.Errorf("slowed profile span lasted only %v", s.Duration)
						}
					}
				}
				if marked != 1 {
					t.Errorf("%d slowed profile spans, want 1", marked)
				}
			},
		},
		{
			name: "ranker errors degrade v2", version: V2,
			faults:  Faults{Errors: &ErrorRate{Service: Ranker, Rate: 1}},
			tenants: []string{"acme"},
			check: func(t *testing.T, spans []span, feeds map[string]int) {
				if feeds["acme"] != http.StatusOK {
					t.Errorf("v2 feed with a failing ranker answered %d, want 200 (degraded)", feeds["acme"])
				}
				attempts := 0
				for _, s := range spans {
					if s.Service == Ranker && s.Kind == ptrace.SpanKindServer {
						attempts++
						if s.str(AttrFault) != FaultErrors || s.Status != ptrace.StatusCodeError {
							t.Errorf("ranker span: fault %q status %v", s.str(AttrFault), s.Status)
						}
					}
					if s.Parent == "" && !slices.Contains(toStrings(s.Attrs[AttrDegraded]), Ranker) {
						t.Errorf("root span lacks %s=[ranker]: %v", AttrDegraded, s.Attrs)
					}
				}
				if attempts != 2 {
					t.Errorf("%d ranker attempts, want 2 (v2: one retry)", attempts)
				}
			},
		},
		{
			name: "profile errors make v1 retry", version: V1,
			faults:  Faults{Errors: &ErrorRate{Service: ProfileSvc, Rate: 1, Tenant: "acme"}},
			tenants: []string{"acme", "hooli"},
			check: func(t *testing.T, spans []span, feeds map[string]int) {
				if feeds["acme"] != http.StatusBadGateway || feeds["hooli"] != http.StatusOK {
					t.Errorf("statuses %v, want acme 502 after retries and hooli 200", feeds)
				}
				calls := 0
				for _, s := range spans {
					if s.Service == FeedAPI && s.Name == "GET /v1/profile" && s.str(AttrTenant) == "acme" {
						calls++
					}
				}
				if calls != retrySafetyCeiling {
					t.Errorf("v1 called profile-svc %d times for acme, want %d (retry until the ceiling)", calls, retrySafetyCeiling)
				}
			},
		},
		{
			name: "stampede for globex", version: V2,
			faults:  Faults{Stampede: &Stampede{Tenant: HeavyTenant, Every: Duration(time.Second)}},
			tenants: []string{HeavyTenant, "acme"},
			check: func(t *testing.T, spans []span, _ map[string]int) {
				for _, s := range spans {
					want := ""
					if s.Service == FeatureSvc && s.Kind == ptrace.SpanKindServer && s.str(AttrTenant) == HeavyTenant {
						want = FaultStampede
						if s.int("feedsvc.cache.misses") == 0 {
							t.Errorf("globex features after a flush: no misses")
						}
					}
					if s.str(AttrFault) != want {
						t.Errorf("%s span %q for %s: fault %q, want %q", s.Service, s.Name, s.str(AttrTenant), s.str(AttrFault), want)
					}
				}
			},
		},
		{
			name: "pool exhaustion", version: V1,
			faults:  Faults{PoolExhaustion: &PoolExhaustion{}},
			tenants: []string{"acme", "hooli"},
			check: func(t *testing.T, spans []span, feeds map[string]int) {
				n := 0
				for _, s := range spans {
					if s.Service == CandidateSvc && s.Kind == ptrace.SpanKindServer {
						n++
						if s.str(AttrFault) != FaultPoolExhaustion {
							t.Errorf("candidate-svc span not marked: %v", s.Attrs)
						}
					}
				}
				if n != 2 || feeds["acme"] != http.StatusOK {
					t.Errorf("%d candidate spans, feeds %v: want 2 and success (one connection left)", n, feeds)
				}
			},
		},
		{
			name: "gc pressure", version: V2,
			faults:  Faults{GCPressure: &GCPressure{BytesPerRequest: 4 << 20}},
			tenants: []string{"acme"},
			check: func(t *testing.T, spans []span, _ map[string]int) {
				for _, s := range spans {
					if (s.Parent == "") != (s.str(AttrFault) == FaultGCPressure) {
						t.Errorf("%s span %q: fault %q", s.Service, s.Name, s.str(AttrFault))
					}
				}
			},
		},
		{
			// acme's lists are 80 candidates, the heavy tenant's 400.
			name: "heavy ranking", version: V2,
			faults:  Faults{HeavyRanking: &HeavyRanking{MinCandidates: 200, Passes: 3}},
			tenants: []string{"acme", HeavyTenant},
			check: func(t *testing.T, spans []span, feeds map[string]int) {
				marked := 0
				for _, s := range spans {
					want := ""
					if s.Service == Ranker && s.Kind == ptrace.SpanKindServer && s.str(AttrTenant) == HeavyTenant {
						want = FaultHeavyRanking
						marked++
					}
					if s.str(AttrFault) != want {
						t.Errorf("%s span %q for %s: fault %q, want %q", s.Service, s.Name, s.str(AttrTenant), s.str(AttrFault), want)
					}
				}
				if marked != 1 || feeds[HeavyTenant] != http.StatusOK {
					t.Errorf("%d heavy ranker spans, feeds %v: want 1 and success", marked, feeds)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rcv := startCluster(t, Config{Version: tt.version, Seed: 3, PoolSize: 4})
			if err := c.SetFaults(context.Background(), tt.faults); err != nil {
				t.Fatal(err)
			}
			feeds := map[string]int{}
			for _, tn := range tt.tenants {
				resp, body := get(t, c.FeedURL()+"?"+url.Values{"tenant": {tn}, "user_id": {"5"}}.Encode())
				feeds[tn] = resp.StatusCode
				var f FeedResponse
				if resp.StatusCode == http.StatusOK && json.Unmarshal(body, &f) != nil {
					t.Fatalf("feed body: %s", body)
				}
			}
			closeCluster(t, c)
			tt.check(t, rcv.all(), feeds)
		})
	}
}

func toStrings(v any) []string {
	var out []string
	if vs, ok := v.([]any); ok {
		for _, x := range vs {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}
