package analysistest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

func TestGenerateDeterministic(t *testing.T) {
	sc := Scenario{Seed: 7, Traces: 200, ErrorRate: 0.1,
		Causes: []Cause{{Name: "slow", Dependency: ProfileSvc, Tenant: "acme", Extra: 100 * time.Millisecond}}}
	a, b := Generate(sc), Generate(sc)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same scenario gave different datasets")
	}
	sc.Seed = 8
	if c := Generate(sc); reflect.DeepEqual(a.Spans, c.Spans) {
		t.Fatal("different seeds gave the same spans")
	}
}

func TestGenerateShape(t *testing.T) {
	tests := []struct {
		name     string
		sc       Scenario
		parallel bool
	}{
		{"v1 sequential", Scenario{Seed: 1, Traces: 500}, false},
		{"v2 parallel", Scenario{Seed: 1, Traces: 500, Parallel: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := Generate(tt.sc)
			if len(ds.Roots) != 500 {
				t.Fatalf("roots = %d, want 500", len(ds.Roots))
			}
			byTrace := map[store.TraceID][]store.Span{}
			for _, sp := range ds.Spans {
				byTrace[sp.TraceID] = append(byTrace[sp.TraceID], sp)
			}
			if n := len(ds.Spans); n < 500*10 || n > 500*12 {
				t.Errorf("span count %d, want 10-12 per trace", n)
			}
			for _, id := range ds.Roots {
				spans := byTrace[id]
				ids := map[store.SpanID]*store.Span{}
				for i := range spans {
					ids[spans[i].SpanID] = &spans[i]
				}
				var root *store.Span
				var calls []*store.Span
				for i := range spans {
					sp := &spans[i]
					if sp.IsRoot() {
						root = sp
						continue
					}
					p, ok := ids[sp.ParentSpanID]
					if !ok {
						t.Fatalf("span %s has no parent in its trace", sp.SpanID)
					}
					if sp.StartUnixNano < p.StartUnixNano || sp.End() > p.End() {
						t.Fatalf("span %s %s not inside its parent", sp.Service, sp.Name)
					}
					if p.IsRoot() && sp.Kind == store.KindClient {
						calls = append(calls, sp)
					}
				}
				if root == nil || root.Name != Endpoint || root.Service != FeedAPI {
					t.Fatalf("trace %s: bad root %+v", id, root)
				}
				// Fan-out: in v1 each call starts after the previous ends;
				// in v2 the first three start together.
				overlap := false
				for i := range calls {
					for j := range calls {
						if i != j && calls[i].StartUnixNano < calls[j].End() && calls[j].StartUnixNano < calls[i].End() {
							overlap = true
						}
					}
				}
				if overlap != tt.parallel {
					t.Fatalf("trace %s: calls overlap = %v, want %v", id, overlap, tt.parallel)
				}
			}
		})
	}
}

func TestGenerateCauses(t *testing.T) {
	ds := Generate(Scenario{Seed: 3, Traces: 4000,
		Causes: []Cause{{Name: "acme-profile", Dependency: ProfileSvc, Tenant: "acme", Probability: 0.5, Extra: 300 * time.Millisecond}}})
	tenants := map[store.TraceID]string{}
	for _, sp := range ds.Spans {
		if sp.IsRoot() {
			tenants[sp.TraceID] = sp.Tenant
		}
	}
	acme := 0
	for _, tn := range tenants {
		if tn == "acme" {
			acme++
		}
	}
	if len(ds.Truth) < acme/3 || len(ds.Truth) > acme*2/3 {
		t.Errorf("%d traces affected, want about half of %d acme traces", len(ds.Truth), acme)
	}
	for id, causes := range ds.Truth {
		if tenants[id] != "acme" || len(causes) != 1 || causes[0] != "acme-profile" {
			t.Fatalf("trace %s (tenant %s) has causes %v", id, tenants[id], causes)
		}
		if d := ds.Injected["acme-profile"][id]; d < 240*time.Millisecond {
			t.Fatalf("trace %s injected %s, want ≥ 240ms", id, d)
		}
	}
}

func TestSource(t *testing.T) {
	ds := Generate(Scenario{Seed: 1, Traces: 300})
	src := NewSource(ds.Spans)
	ctx := context.Background()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	all, err := src.Samples(ctx, store.SampleQuery{Service: FeedAPI, Endpoint: Endpoint, From: start, To: start.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 300 {
		t.Fatalf("samples = %d, want 300", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].StartUnixNano < all[i-1].StartUnixNano {
			t.Fatal("samples not ordered by start")
		}
	}
	half, err := src.Samples(ctx, store.SampleQuery{Service: FeedAPI, From: start, To: start.Add(30 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if len(half) == 0 || len(half) >= 300 {
		t.Fatalf("half window: %d samples", len(half))
	}
	lim, err := src.Samples(ctx, store.SampleQuery{Service: FeedAPI, From: start, To: start.Add(time.Hour), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(lim) != 10 || lim[9] != all[299] {
		t.Fatalf("limit keeps the newest: got %d", len(lim))
	}
	if _, err := src.Samples(ctx, store.SampleQuery{}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("no service: err = %v, want ErrInvalid", err)
	}
	tr, err := src.Traces(ctx, []store.TraceID{all[0].TraceID, {1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr) != 1 || len(tr[all[0].TraceID]) < 10 {
		t.Fatalf("traces: %d entries", len(tr))
	}
	if _, err := src.Trace(ctx, store.TraceID{1}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown trace: err = %v", err)
	}
	eps, err := src.Endpoints(ctx, start, start.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{CandidateSvc, FeatureSvc, FeedAPI, Ranker}
	if len(eps) != len(want) {
		t.Fatalf("endpoints = %+v", eps)
	}
	for i, e := range eps {
		if e.Service != want[i] || e.Count != 300 {
			t.Errorf("endpoint %d = %+v, want service %s with 300", i, e, want[i])
		}
	}
}

// TestGenerateBudget: the budget scenario puts its busy requests in the
// period's last hour, the quiet ones before, and names the culprit's
// traces; the same scenario gives the same spans.
func TestGenerateBudget(t *testing.T) {
	sc := BudgetScenario{Seed: 3, Quiet: 300, Busy: 3000}
	ds := GenerateBudget(sc)
	if !reflect.DeepEqual(ds, GenerateBudget(sc)) {
		t.Fatal("same scenario gave different datasets")
	}
	end := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	busy, quiet := 0, 0
	for _, sp := range ds.Spans {
		if !sp.IsRoot() {
			continue
		}
		switch at := time.Unix(0, sp.StartUnixNano); {
		case !at.Before(end.Add(-time.Hour)) && at.Before(end):
			busy++
		case !at.Before(end.Add(-30*24*time.Hour)) && at.Before(end.Add(-time.Hour)):
			quiet++
		default:
			t.Fatalf("request at %s is outside the period", at)
		}
	}
	if busy != 3000 || quiet != 300 || len(ds.Roots) != 3300 {
		t.Errorf("%d busy and %d quiet requests, want 3000 and 300", busy, quiet)
	}
	// 3% of the busy hour, each call a second slower.
	if n := len(ds.Injected["culprit"]); n < 60 || n > 120 {
		t.Errorf("%d culprit traces, want about 90", n)
	}
	for id, d := range ds.Injected["culprit"] {
		if d < 800*time.Millisecond || d > 1200*time.Millisecond || ds.Truth[id][0] != "culprit" {
			t.Fatalf("trace %s: culprit delay %v, truth %v", id, d, ds.Truth[id])
		}
	}
}
