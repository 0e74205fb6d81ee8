package analysis

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/store"
)

// TestDeployKinds: the first version ever seen of a service is "first
// seen"; everything after it, and a first marker of a service that ran
// before it without one, is a deploy.
func TestDeployKinds(t *testing.T) {
	h := time.Hour
	// v1 for half an hour from testEpoch, then v2.
	feed := func() []store.Span {
		return phases(phase{seed: 71, d: 30 * time.Minute, n: 600, version: "v1"}, phase{seed: 72, from: 30 * time.Minute, d: 30 * time.Minute, n: 600, version: "v2"})
	}
	spans := feed()
	first := firstStart(spans, analysistest.FeedAPI)
	v2At := testEpoch.Add(30 * time.Minute)
	for i := range spans {
		if spans[i].Version == "v2" && spans[i].Service == analysistest.FeedAPI {
			v2At = time.Unix(0, min(v2At.UnixNano(), spans[i].StartUnixNano)).UTC()
		}
	}
	// The same service having run unversioned for an hour before v1.
	unversioned := phases(phase{seed: 73, from: -h, d: h, n: 600})
	analysistest.SetVersion(unversioned, analysistest.FeedAPI, "")
	unversioned = append(unversioned, feed()...)
	marker := func(version string, at time.Time, source string) store.Deploy {
		return store.Deploy{Service: analysistest.FeedAPI, Version: version, At: at, Source: source}
	}
	auto, api := store.DeploySourceAuto, store.DeploySourceAPI

	tests := []struct {
		name    string
		spans   []store.Span
		markers analysistest.Deploys
		// listed are the indexes of the markers a page shows (all when
		// nil); want their kinds in marker order.
		listed []int
		want   []string
	}{
		{"first version and a deploy", spans, analysistest.NewDeploys(marker("v1", first, auto), marker("v2", v2At, auto)), nil,
			[]string{KindFirstSeen, KindDeploy}},
		// Another process's earlier spans arrived after the marker was
		// placed on the first batch's earliest.
		{"first batch arrived late", spans, analysistest.NewDeploys(marker("v1", first.Add(5*time.Second), auto)), nil,
			[]string{KindFirstSeen}},
		// A pipeline posted the first version before its first span, and
		// ingest marked it too.
		{"posted and automatic", spans, analysistest.NewDeploys(marker("v1", first.Add(-2*time.Minute), api), marker("v1", first, auto)), nil,
			[]string{KindFirstSeen, KindFirstSeen}},
		// A marker of the first version posted long after it started
		// is not its first sighting.
		{"posted late", spans, analysistest.NewDeploys(marker("v1", first, auto), marker("v1", first.Add(20*time.Minute), api)), nil,
			[]string{KindFirstSeen, KindDeploy}},
		{"ran unversioned before", unversioned, analysistest.NewDeploys(marker("v1", first, auto), marker("v2", v2At, auto)), nil,
			[]string{KindDeploy, KindDeploy}},
		// Spans expire, markers stay: an older version's marker with no
		// spans left still makes v1 a deploy.
		{"older version expired", spans, analysistest.NewDeploys(marker("v0", first.Add(-40*24*h), auto), marker("v1", first, auto)), []int{1},
			[]string{KindDeploy}},
		// A page listing only the newer marker still classifies it.
		{"only the deploy listed", spans, analysistest.NewDeploys(marker("v1", first, auto), marker("v2", v2At, auto)), []int{1},
			[]string{KindDeploy}},
		// A marker for a service with no traffic at all yet.
		{"no traffic yet", spans, analysistest.Deploys{{ID: 1, Service: "checkout", Version: "1", At: first, Source: api}}, nil,
			[]string{KindFirstSeen}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			listed := tt.markers
			if tt.listed != nil {
				listed = nil
				for _, i := range tt.listed {
					listed = append(listed, tt.markers[i])
				}
			}
			kinds, err := DeployKinds(context.Background(), analysistest.NewSource(tt.spans), tt.markers, listed)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range listed {
				got = append(got, kinds[d.ID])
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("kinds %v, want %v", got, tt.want)
			}
		})
	}
}

// TestDeployClassifierRemembersSettledMarkers: the span look-ups of a
// marker are done once it is settled, and redone while it is recent.
func TestDeployClassifierRemembersSettledMarkers(t *testing.T) {
	spans := phases(phase{seed: 74, d: 30 * time.Minute, n: 600, version: "v1"})
	first := firstStart(spans, analysistest.FeedAPI)
	markers := analysistest.NewDeploys(store.Deploy{Service: analysistest.FeedAPI, Version: "v1", At: first})
	src := &countingSource{Source: analysistest.NewSource(spans)}
	c := &DeployClassifier{Spans: src, Deploys: markers}
	ctx := context.Background()
	for _, tt := range []struct {
		now   time.Time
		reads int // span reads this call
	}{
		{first.Add(time.Minute), 2},      // recent: the minute around it, one endpoint seek
		{first.Add(time.Minute), 2},      // still recent: looked up again
		{first.Add(15 * time.Minute), 2}, // settled: looked up and remembered
		{first.Add(20 * time.Minute), 0}, // from memory
	} {
		before := src.samples
		kinds, err := c.Kinds(ctx, markers, tt.now)
		if err != nil {
			t.Fatal(err)
		}
		if kinds[1] != KindFirstSeen || src.samples-before != tt.reads {
			t.Errorf("at %s: kind %s after %d span reads, want first seen after %d", tt.now.Sub(first), kinds[1], src.samples-before, tt.reads)
		}
	}
}
