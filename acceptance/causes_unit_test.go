package acceptance

import (
	"testing"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/feedsvc"
	"github.com/tailscope/tailscope/feedsvc/scenario"
)

// The matching rules are checked on their own, fast, so a change in how
// the analysis names buckets or in what a cause means shows here first.

func TestBucketLowReadsPayloadBuckets(t *testing.T) {
	for _, b := range []int64{1, 200, 1 << 10, 300 << 10, 1<<20 + 5, 3 << 30, 1 << 62} {
		name := analysis.PayloadBucket(b)
		low, err := bucketLow(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if low > b || b-low >= low { // b in [low, 2·low)
			t.Errorf("bucket %s of %d bytes: lower bound %d", name, b, low)
		}
	}
	if low, err := bucketLow(analysis.PayloadBucket(0)); err != nil || low != 0 {
		t.Errorf("bucket of 0 bytes: %d, %v", low, err)
	}
	for _, bad := range []string{"", "KiB-2KiB", "12XB-24XB"} {
		if _, err := bucketLow(bad); err == nil {
			t.Errorf("bucketLow(%q) accepted it", bad)
		}
	}
}

func TestGroupMismatch(t *testing.T) {
	slowProfile := scenario.Cause{Rank: 1, Fault: feedsvc.FaultSlowProfile, Service: feedsvc.ProfileSvc, Dependency: feedsvc.ProfileSvc, Tenant: "acme"}
	pool := scenario.Cause{Fault: feedsvc.FaultPoolExhaustion, Service: feedsvc.CandidateSvc, Dependency: feedsvc.CandidateSvc}
	group := func(dep string, vals map[string]string) analysis.OutlierGroup {
		dv := map[string]string{analysis.DimDependency: dep}
		for k, v := range vals {
			dv[k] = v
		}
		return analysis.OutlierGroup{Dimension: analysis.DimDependency, Value: dep, DimensionValues: dv}
	}
	tests := []struct {
		name  string
		g     analysis.OutlierGroup
		c     scenario.Cause
		owner string
		match bool
	}{
		{"dependency and tenant", group("profile-svc", map[string]string{"tenant": "acme"}), slowProfile, "profile-svc", true},
		{"tenant missing", group("profile-svc", nil), slowProfile, "profile-svc", false},
		{"other tenant", group("profile-svc", map[string]string{"tenant": "globex"}), slowProfile, "profile-svc", false},
		{"other dependency", group("ranker", map[string]string{"tenant": "acme"}), slowProfile, "ranker", false},
		{"database time in the cause's service", group("postgresql/feedsvc", nil), pool, "candidate-svc", true},
		{"database time in another service", group("postgresql/feedsvc", nil), pool, "feature-svc", false},
		{"no dependency expected", group("feed-api", map[string]string{"tenant": "globex"}),
			scenario.Cause{Rank: 1, Fault: scenario.CausePayload, Tenant: "globex", Payload: "large"}, "feed-api", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := groupMismatch(tt.g, tt.c, tt.owner)
			if (d == "") != tt.match {
				t.Errorf("groupMismatch = %q, want match %v", d, tt.match)
			}
		})
	}
}
