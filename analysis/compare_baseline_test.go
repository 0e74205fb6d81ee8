package analysis

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis/analysistest"
)

// TestCompareBeforeTheServiceExisted: a deploy ten minutes after a
// service's first request. Its hour-long before window mostly precedes
// the service; the rates are over the time with data, so the throughput
// is unchanged (it was "+500%" over the nominal window).
func TestCompareBeforeTheServiceExisted(t *testing.T) {
	// 2.5/s on v1 for the ten minutes before the deploy, 2.5/s on v2 for
	// the hour after.
	spans := phases(phase{seed: 61, from: 50 * time.Minute, d: 10 * time.Minute, n: 1500, version: "v1"},
		phase{seed: 62, from: time.Hour, d: time.Hour, n: 9000, version: "v2"})
	src := analysistest.NewSource(spans)
	c := runCompare(t, src, deployQuery())
	if c.Baseline != BaselinePartial || c.Verdict == VerdictNew {
		t.Fatalf("baseline %q verdict %q; want a partial baseline and a real verdict", c.Baseline, c.Verdict)
	}
	if d := c.Throughput.DeltaPct; d == nil || math.Abs(*d) > 5 {
		t.Errorf("throughput %v → %v/s (%v%%); both sides ran at 2.5/s", c.Throughput.BeforePerS, c.Throughput.AfterPerS, d)
	}
	if math.Abs(c.Before.RatePerS-2.5) > 0.05 || !c.Before.DataFrom.Equal(firstStart(spans, analysistest.FeedAPI)) {
		t.Errorf("before: %v/s from %s", c.Before.RatePerS, c.Before.DataFrom)
	}
	if len(c.Reasons) == 0 || !strings.Contains(strings.Join(c.Reasons, "; "), "has data only from") {
		t.Errorf("reasons %q should say the before side is partial", c.Reasons)
	}
}

// TestCompareNoBaseline: with no request before, every mode says "new —
// no baseline" and shows no before numbers as if they were zero.
func TestCompareNoBaseline(t *testing.T) {
	spans := phases(phase{seed: 63, from: time.Hour, d: time.Hour, n: 3000, version: "v2"})
	src := analysistest.NewSource(spans)
	first := firstStart(spans, analysistest.FeedAPI)
	tests := map[string]CompareQuery{
		// The service's first-seen marker sits on its first request.
		"deploy":       {Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint, DeployAt: first, Window: time.Hour, Seed: 1},
		"equal counts": {Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint, DeployAt: first, Window: time.Hour, EqualCounts: true, Seed: 1},
		"ranges": {Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint, BeforeFrom: testEpoch, BeforeTo: deployAt,
			AfterFrom: deployAt, AfterTo: deployAt.Add(time.Hour), Seed: 1},
		"versions": {Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint, VersionA: "v1", VersionB: "v2",
			From: testEpoch, To: deployAt.Add(time.Hour), Seed: 1},
	}
	for name, q := range tests {
		t.Run(name, func(t *testing.T) {
			c := runCompare(t, src, q)
			t.Logf("summary: %s", c.Summary)
			if c.Verdict != VerdictNew || c.Baseline != BaselineNone || c.Insufficient {
				t.Fatalf("verdict %q baseline %q insufficient %v; want new, none", c.Verdict, c.Baseline, c.Insufficient)
			}
			if len(c.Percentiles) != 0 || c.ErrorRate != nil || c.MannWhitney != nil || c.Throughput.DeltaPct != nil || len(c.Dependencies) != 0 {
				t.Errorf("a comparison without a baseline has deltas: %+v %+v %+v %+v", c.Percentiles, c.ErrorRate, c.MannWhitney, c.Throughput)
			}
			if c.After.Count != 3000 || math.Abs(c.Throughput.AfterPerS-3000.0/3600) > 0.01 {
				t.Errorf("after %d requests at %v/s", c.After.Count, c.Throughput.AfterPerS)
			}
			for _, bad := range []string{"0 ms", "+", "%"} {
				if strings.Contains(c.Summary, bad) {
					t.Errorf("summary %q reads like a change (%q)", c.Summary, bad)
				}
			}
			if !strings.Contains(c.Summary, "no requests") {
				t.Errorf("summary %q should say there were no requests before", c.Summary)
			}
			b, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{`"verdict":"new"`, `"baseline":"none"`, `"percentiles":[]`, `"error_rate":null`, `"delta_pct":null`} {
				if !strings.Contains(string(b), want) {
					t.Errorf("JSON lacks %s", want)
				}
			}
		})
	}
}

func TestSpanText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Hour: "hour", 2 * time.Hour: "2 h", 150 * time.Minute: "2 h 30 min", 50*time.Minute - 300*time.Millisecond: "50 min",
		30 * time.Minute: "30 min", 90 * time.Second: "1 min 30 s", 45 * time.Second: "45 s",
	} {
		if got := spanText(d); got != want {
			t.Errorf("spanText(%s) = %q, want %q", d, got, want)
		}
	}
}
