package analysis_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/store"
)

// TestRollupsPastTheNameBound: when a service's rollups keep only some of
// its span names (store.MaxRollupNames), the rest are its Other rows: the
// services overview still counts every request of the service and sums
// the others up under no name, the latency page reads a name without
// rollups from spans, and its tenants table is the exact one from spans.
func TestRollupsPastTheNameBound(t *testing.T) {
	start := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	ds := analysistest.Generate(analysistest.Scenario{Seed: 13, Start: start, Window: time.Hour, Traces: 3000, ErrorRate: 0.03})
	counts := map[string]int{}
	total := 0
	for i := range ds.Spans {
		sp := &ds.Spans[i]
		if sp.IsEntry() && sp.Service == analysistest.FeedAPI {
			if sp.TraceID[7]%3 == 0 {
				sp.Name = "GET /v1/profile" // a second endpoint
			}
			n := int(store.CountWeight(sp.Weight))
			counts[sp.Name] += n
			total += n
		}
	}
	names := make([]string, 0, len(counts))
	for n := range counts {
		if n != analysistest.Endpoint {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	if len(names) == 0 || counts[analysistest.Endpoint] == 0 {
		t.Fatalf("feed-api endpoints %v: want %s and another", counts, analysistest.Endpoint)
	}
	kept := names[0] // the main endpoint is past the bound
	src := analysistest.NewSource(ds.Spans)
	src.RollupNames = map[string]map[string]bool{analysistest.FeedAPI: {kept: true}}
	ctx := context.Background()
	from, to := start, start.Add(time.Hour)

	rep, err := analysis.ServiceStats(ctx, src, analysis.ServicesQuery{From: from, To: to, Service: analysistest.FeedAPI})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Services) != 1 {
		t.Fatalf("services = %+v, want feed-api", rep.Services)
	}
	svc := rep.Services[0]
	if svc.Count != total {
		t.Errorf("feed-api: %d requests, want all %d", svc.Count, total)
	}
	if len(svc.Endpoints) != 1 || svc.Endpoints[0].Name != kept || svc.Endpoints[0].Count != counts[kept] {
		t.Errorf("endpoints = %+v, want %s alone with %d requests", svc.Endpoints, kept, counts[kept])
	}
	if svc.OtherNames == nil || svc.OtherNames.Count != total-counts[kept] || svc.OtherNames.P99Ms <= 0 {
		t.Errorf("other names = %+v, want the other %d requests", svc.OtherNames, total-counts[kept])
	}

	for name, want := range map[string]bool{kept: true, analysistest.Endpoint: false} {
		q := analysis.LatencyQuery{Service: analysistest.FeedAPI, Endpoint: name, From: from, To: to}
		if ok, err := analysis.ReadRollups(ctx, src, q); err != nil || ok != want {
			t.Errorf("ReadRollups(%s) = %v, %v; want %v", name, ok, err, want)
		}
	}
	// The main endpoint's tenants come from its spans, the service's
	// from its rollups, Other rows included: both exact.
	checkTenants(t, src, ds.Spans, from, to)
}
