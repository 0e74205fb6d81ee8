package analysis_test

import (
	"context"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/postgres"
	"github.com/tailscope/tailscope/store/sqlite"
)

// TestOperationsREDExact: on generated traffic stored in each backend, every
// operation (server, client and internal spans alike) has its exact count
// and errors, and p50/p95/p99 within the sketch's relative error of the
// exact nearest-rank percentiles of its spans; grouped by an attribute,
// each group's numbers are its own spans'.
func TestOperationsREDExact(t *testing.T) {
	start := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	ds := analysistest.Generate(analysistest.Scenario{Seed: 5, Start: start, Window: 10 * time.Minute, Traces: 2000})
	stores := map[string]func(t *testing.T) store.Store{
		"sqlite": func(t *testing.T) store.Store {
			db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "red.db"))
			if err != nil {
				t.Fatal(err)
			}
			return db
		},
		"postgres": func(t *testing.T) store.Store {
			db, err := postgres.Open(context.Background(), testenv.FreshPostgres(t))
			if err != nil {
				t.Fatal(err)
			}
			return db
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			defer db.Close()
			ctx := context.Background()
			if err := db.WriteSpans(ctx, ds.Spans); err != nil {
				t.Fatal(err)
			}
			from, to := start, start.Add(10*time.Minute)
			type key struct{ service, name, kind, group string }
			durs := map[key][]int64{}
			errs := map[key]int64{}
			kinds := map[string]bool{}
			for _, sp := range ds.Spans {
				if sp.StartUnixNano < from.UnixNano() || sp.StartUnixNano >= to.UnixNano() {
					continue
				}
				k := key{sp.Service, sp.Name, sp.Kind.String(), ""}
				durs[k] = append(durs[k], sp.DurationNano)
				if sp.StatusCode == store.StatusError {
					errs[k]++
				}
				kinds[k.kind] = true
			}
			if !kinds["server"] || !kinds["client"] {
				t.Fatalf("generated traffic has kinds %v; the test needs server and client spans", kinds)
			}
			rep, err := analysis.OperationsRED(ctx, db, analysis.REDQuery{From: from, To: to})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Operations) != len(durs) || rep.Limited {
				t.Errorf("%d operations (limited %v), want %d", len(rep.Operations), rep.Limited, len(durs))
			}
			for _, o := range rep.Operations {
				k := key{o.Service, o.Name, o.Kind, o.Group}
				ds, ok := durs[k]
				if !ok {
					t.Errorf("unexpected operation %+v", k)
					continue
				}
				if o.Count != int64(len(ds)) || o.Errors != errs[k] {
					t.Errorf("%v: count %d errors %d, want %d and %d", k, o.Count, o.Errors, len(ds), errs[k])
				}
				if want := float64(len(ds)) / 600; math.Abs(o.RatePerS-want) > 1e-4 {
					t.Errorf("%v: rate %v/s, want %v", k, o.RatePerS, want)
				}
				ex := analysis.ExactPercentiles(ds)
				for _, c := range []struct {
					name      string
					got, want float64
				}{{"p50", o.P50Ms, ex.P50Ms}, {"p95", o.P95Ms, ex.P95Ms}, {"p99", o.P99Ms, ex.P99Ms}} {
					if math.Abs(c.got-c.want) > analysis.SketchRelativeAccuracy*c.want+0.001 {
						t.Errorf("%v: %s = %v ms, exact %v ms (bound %v%%)", k, c.name, c.got, c.want, analysis.SketchRelativeAccuracy*100)
					}
				}
			}
			// Limited: the busiest operations, and it says so.
			lim, err := analysis.OperationsRED(ctx, db, analysis.REDQuery{From: from, To: to, Limit: 2})
			if err != nil {
				t.Fatal(err)
			}
			if len(lim.Operations) != 2 || !lim.Limited || lim.Operations[0] != rep.Operations[0] {
				t.Errorf("limit 2: %d operations, limited %v", len(lim.Operations), lim.Limited)
			}
			// Grouped by tenant.id: the groups of an operation add up to it.
			grp, err := analysis.OperationsRED(ctx, db, analysis.REDQuery{From: from, To: to, GroupBy: "tenant.id"})
			if err != nil {
				t.Fatal(err)
			}
			sum := map[key]int64{}
			groups := 0
			for _, o := range grp.Operations {
				sum[key{o.Service, o.Name, o.Kind, ""}] += o.Count
				if o.Group != "" {
					groups++
				}
			}
			if groups == 0 {
				t.Error("grouping by tenant.id found no values")
			}
			for k, ds := range durs {
				if sum[k] != int64(len(ds)) {
					t.Errorf("%v: groups add up to %d, want %d", k, sum[k], len(ds))
				}
			}
		})
	}
}

func TestSortRED(t *testing.T) {
	ops := []analysis.OperationRED{
		{Service: "b", Name: "x", P99Ms: 5, Count: 10},
		{Service: "a", Name: "y", P99Ms: 9, Count: 10},
		{Service: "a", Name: "x", P99Ms: 5, Count: 30},
	}
	if !analysis.SortRED(ops, "p99", true) {
		t.Fatal("p99 is a sort key")
	}
	if got := []string{ops[0].Service + ops[0].Name, ops[1].Service + ops[1].Name, ops[2].Service + ops[2].Name}; got[0] != "ay" || got[1] != "ax" || got[2] != "bx" {
		t.Errorf("by p99 desc: %v", got)
	}
	analysis.SortRED(ops, "rate", false)
	if ops[2].Count != 30 || ops[0].Service != "a" {
		t.Errorf("by rate asc: %+v", ops)
	}
	if analysis.SortRED(ops, "nope", false) {
		t.Error("unknown key accepted")
	}
}
