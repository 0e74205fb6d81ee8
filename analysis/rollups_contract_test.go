package analysis_test

import (
	"context"
	"database/sql"
	"math"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/postgres"
	"github.com/tailscope/tailscope/store/sqlite"
)

// TestRollupsMatchSpans is the rollups' contract: on generated traffic
// (fixed seeds) stored in each backend — written in batches, the later
// half first (the earlier half arrives late, out of order), a batch
// replayed whole, another resent in part, compacted between batches — the
// services overview and every operation's RED read from rollups have the
// exact counts, errors and rates of the spans, and p50/p95/p99 (and every
// sparkline point) within the sketch's relative error of the exact
// nearest-rank percentiles — a third of the traces sampled, each span
// counting as its weight; and rollups rebuilt by the backfills (spans
// stored before the rollups migrations) answer the same; so does the latency
// page read from them (checkLatency, also per tenant) and the tenants
// table (checkTenants).
func TestRollupsMatchSpans(t *testing.T) {
	start := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	ds := analysistest.Generate(analysistest.Scenario{Seed: 11, Start: start, Window: 90 * time.Minute, Traces: 3000, ErrorRate: 0.03})
	// feed-api runs v2 from 45 minutes in, so version filters select a
	// part of its requests and v2's data starts late in the window.
	for i := range ds.Spans {
		if sp := &ds.Spans[i]; sp.Service == analysistest.FeedAPI && sp.StartUnixNano >= start.Add(45*time.Minute).UnixNano() {
			sp.Version = "v2"
		}
		// Sampled traces: a third stand for 4 requests each (ot=th:c), a
		// third for 2.5 (counted 3), so rollups at ingest, the backfills
		// and the spans read must all weigh alike.
		switch sp := &ds.Spans[i]; sp.TraceID[15] % 3 {
		case 0:
			sp.Weight = 4
		case 1:
			sp.Weight = 2.5
		}
	}
	type backend struct {
		open func(t *testing.T) store.Store
		// wipe deletes the rollups and marks the backfill as not run, as
		// a database migrated with spans already in it is.
		wipe func(t *testing.T)
	}
	backends := map[string]func(t *testing.T) backend{
		"sqlite": func(t *testing.T) backend {
			path := filepath.Join(t.TempDir(), "rollups.db")
			return backend{
				open: func(t *testing.T) store.Store {
					db, err := sqlite.Open(context.Background(), path)
					if err != nil {
						t.Fatal(err)
					}
					return db
				},
				wipe: func(t *testing.T) {
					db, err := sql.Open("sqlite", path)
					if err != nil {
						t.Fatal(err)
					}
					defer db.Close()
					for _, q := range []string{"DELETE FROM rollups", "UPDATE rollup_backfill SET cursor_ns = NULL, high_ns = NULL, done = 0",
						"UPDATE operation_rollup_backfill SET cursor_ns = NULL, high_ns = NULL, done = 0",
						"UPDATE tenant_rollup_backfill SET cursor_ns = NULL, high_ns = NULL, done = 0", "DELETE FROM rollup_tenants"} {
						if _, err := db.Exec(q); err != nil {
							t.Fatal(err)
						}
					}
				},
			}
		},
		"postgres": func(t *testing.T) backend {
			url := testenv.FreshPostgres(t)
			return backend{
				open: func(t *testing.T) store.Store {
					db, err := postgres.Open(context.Background(), url)
					if err != nil {
						t.Fatal(err)
					}
					return db
				},
				wipe: func(t *testing.T) {
					conn, err := pgx.Connect(context.Background(), url)
					if err != nil {
						t.Fatal(err)
					}
					defer conn.Close(context.Background())
					for _, q := range []string{"DELETE FROM rollups", "UPDATE rollup_backfill SET cursor_ns = NULL, high_ns = NULL, done = 0",
						"UPDATE operation_rollup_backfill SET cursor_ns = NULL, high_ns = NULL, done = 0",
						"UPDATE tenant_rollup_backfill SET cursor_ns = NULL, high_ns = NULL, done = 0", "DELETE FROM rollup_tenants"} {
						if _, err := conn.Exec(context.Background(), q); err != nil {
							t.Fatal(err)
						}
					}
				},
			}
		},
	}
	windows := []struct {
		name     string
		from, to time.Time
		points   int
	}{
		{"an hour of minutes", start.Add(15 * time.Minute), start.Add(75 * time.Minute), 30},
		{"a day of hours", start.Add(-10 * time.Hour), start.Add(14 * time.Hour), 24},
	}
	for name, mk := range backends {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			be := mk(t)
			db := be.open(t)
			half := len(ds.Spans) / 2
			for _, batch := range [][]store.Span{ds.Spans[half:], ds.Spans[:half], ds.Spans[half:], ds.Spans[half-100 : half+100]} {
				if err := db.WriteSpans(ctx, batch); err != nil {
					t.Fatal(err)
				}
				if err := db.CompactRollups(ctx); err != nil {
					t.Fatal(err)
				}
			}
			for _, w := range windows {
				t.Run("ingest/"+w.name, func(t *testing.T) { checkServices(t, db, ds.Spans, w.from, w.to, w.points) })
				t.Run("ingest/latency/"+w.name, func(t *testing.T) { checkLatency(t, db, ds.Spans, w.from, w.to) })
				t.Run("ingest/operations/"+w.name, func(t *testing.T) { checkOperations(t, db, ds.Spans, w.from, w.to) })
				t.Run("ingest/tenants/"+w.name, func(t *testing.T) { checkTenants(t, db, ds.Spans, w.from, w.to) })
				t.Run("ingest/weight_sq/"+w.name, func(t *testing.T) { checkWeightSq(t, db, ds.Spans, w.from, w.to) })
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			be.wipe(t)
			db = be.open(t) // backfills
			defer db.Close()
			for _, w := range windows {
				t.Run("backfill/"+w.name, func(t *testing.T) { checkServices(t, db, ds.Spans, w.from, w.to, w.points) })
				t.Run("backfill/latency/"+w.name, func(t *testing.T) { checkLatency(t, db, ds.Spans, w.from, w.to) })
				t.Run("backfill/operations/"+w.name, func(t *testing.T) { checkOperations(t, db, ds.Spans, w.from, w.to) })
				t.Run("backfill/tenants/"+w.name, func(t *testing.T) { checkTenants(t, db, ds.Spans, w.from, w.to) })
				t.Run("backfill/weight_sq/"+w.name, func(t *testing.T) { checkWeightSq(t, db, ds.Spans, w.from, w.to) })
			}
		})
	}
}

// checkWeightSq compares each endpoint's weight_sq over [from, to) (whole
// buckets) with the sum of its entry spans' squared count weights, and
// checks that a third of the spans weighing 4 and a third 2.5 leave an
// effective sample size below the count.
func checkWeightSq(t *testing.T, src analysis.RollupSource, spans []store.Span, from, to time.Time) {
	t.Helper()
	step := store.RollupStep(to.Sub(from))
	rows, err := src.Rollups(context.Background(), store.RollupQuery{Step: step, From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ service, endpoint string }
	got, count := map[key]int64{}, map[key]int64{}
	for _, r := range rows {
		got[key{r.Service, r.Endpoint}] += r.WeightSq
		count[key{r.Service, r.Endpoint}] += r.Count
	}
	want := map[key]int64{}
	for _, sp := range spans {
		if sp.IsEntry() && sp.StartUnixNano >= from.UnixNano() && sp.StartUnixNano < to.UnixNano() {
			w := store.CountWeight(sp.Weight)
			want[key{sp.Service, sp.Name}] += w * w
		}
	}
	if len(want) == 0 || len(got) != len(want) {
		t.Fatalf("weight_sq of %d endpoints, want %d", len(got), len(want))
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%v: weight_sq %d, want %d", k, got[k], w)
		}
		if c := float64(count[k]); c*c/float64(got[k]) >= c {
			t.Errorf("%v: effective sample size %.0f of %.0f weighted requests: the weights count as draws", k, c*c/float64(got[k]), c)
		}
	}
}

// checkServices compares the services overview of [from, to) (whole
// buckets) with exact answers from spans.
func checkServices(t *testing.T, src analysis.RollupSource, spans []store.Span, from, to time.Time, points int) {
	t.Helper()
	rep, err := analysis.ServiceStats(context.Background(), src, analysis.ServicesQuery{From: from, To: to, SparklinePoints: points})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.From.Equal(from) || !rep.To.Equal(to) {
		t.Fatalf("window %s – %s, want %s – %s (whole buckets)", rep.From, rep.To, from, to)
	}
	type key struct{ service, endpoint string }
	durs := map[key][]int64{}
	errs := map[key]int{}
	slice := to.Sub(from) / time.Duration(points)
	sliceDurs := map[key][][]int64{}
	for _, sp := range spans {
		if !sp.IsEntry() || sp.StartUnixNano < from.UnixNano() || sp.StartUnixNano >= to.UnixNano() {
			continue
		}
		for _, k := range []key{{sp.Service, sp.Name}, {sp.Service, ""}} {
			for range store.CountWeight(sp.Weight) {
				durs[k] = append(durs[k], sp.DurationNano)
				if sp.StatusCode == store.StatusError {
					errs[k]++
				}
				if sliceDurs[k] == nil {
					sliceDurs[k] = make([][]int64, points)
				}
				i := int(time.Duration(sp.StartUnixNano-from.UnixNano()) / slice)
				sliceDurs[k][i] = append(sliceDurs[k][i], sp.DurationNano)
			}
		}
	}
	near := func(got, want float64) bool { return math.Abs(got-want) <= analysis.SketchRelativeAccuracy*want+0.001 }
	check := func(k key, st analysis.RequestStats) {
		t.Helper()
		d := durs[k]
		if st.Count != len(d) {
			t.Errorf("%v: count %d, want %d", k, st.Count, len(d))
			return
		}
		if want := math.Round(float64(errs[k])/float64(len(d))*1e4) / 1e4; st.ErrorRate != want {
			t.Errorf("%v: error rate %v, want %v", k, st.ErrorRate, want)
		}
		ex := analysis.ExactPercentiles(d)
		for _, c := range []struct {
			name      string
			got, want float64
		}{{"p50", st.P50Ms, ex.P50Ms}, {"p95", st.P95Ms, ex.P95Ms}, {"p99", st.P99Ms, ex.P99Ms}} {
			if !near(c.got, c.want) {
				t.Errorf("%v: %s = %v ms, exact %v ms", k, c.name, c.got, c.want)
			}
		}
		for i, sd := range sliceDurs[k] {
			p := st.P99SparklineMs[i]
			switch {
			case len(sd) == 0 && p != nil:
				t.Errorf("%v: sparkline point %d = %v, want none", k, i, *p)
			case len(sd) > 0 && (p == nil || !near(*p, analysis.ExactPercentiles(sd).P99Ms)):
				t.Errorf("%v: sparkline point %d = %v, exact %v", k, i, p, analysis.ExactPercentiles(sd).P99Ms)
			}
		}
	}
	seen := 0
	for _, svc := range rep.Services {
		check(key{svc.Name, ""}, svc.RequestStats)
		seen++
		for _, ep := range svc.Endpoints {
			check(key{svc.Name, ep.Name}, ep.RequestStats)
			seen++
		}
	}
	if seen != len(durs) || seen == 0 {
		t.Errorf("%d services and endpoints, want %d", seen, len(durs))
	}
}

// checkOperations compares every operation's RED over [from, to) (whole
// buckets, read from the operation rollups) with exact answers from spans.
func checkOperations(t *testing.T, src analysis.OperationSource, spans []store.Span, from, to time.Time) {
	t.Helper()
	rep, err := analysis.OperationsRED(context.Background(), src, analysis.REDQuery{From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	if int64(rep.From) != from.UnixNano() || int64(rep.To) != to.UnixNano() || rep.Limited {
		t.Fatalf("window %d – %d (limited %v), want %s – %s (whole buckets), all operations", rep.From, rep.To, rep.Limited, from, to)
	}
	type key struct{ service, name, kind string }
	durs := map[key][]int64{}
	errs := map[key]int64{}
	for _, sp := range spans {
		if sp.StartUnixNano < from.UnixNano() || sp.StartUnixNano >= to.UnixNano() {
			continue
		}
		k := key{sp.Service, sp.Name, sp.Kind.String()}
		for range store.CountWeight(sp.Weight) {
			durs[k] = append(durs[k], sp.DurationNano)
			if sp.StatusCode == store.StatusError {
				errs[k]++
			}
		}
	}
	if len(rep.Operations) != len(durs) || len(durs) == 0 {
		t.Errorf("%d operations, want %d", len(rep.Operations), len(durs))
	}
	near := func(got, want float64) bool { return math.Abs(got-want) <= analysis.SketchRelativeAccuracy*want+0.001 }
	for _, o := range rep.Operations {
		k := key{o.Service, o.Name, o.Kind}
		d := durs[k]
		if o.Count != int64(len(d)) || o.Errors != errs[k] {
			t.Errorf("%v: %d spans, %d errors, want %d, %d", k, o.Count, o.Errors, len(d), errs[k])
			continue
		}
		if want := math.Round(float64(len(d))/to.Sub(from).Seconds()*1e4) / 1e4; o.RatePerS != want {
			t.Errorf("%v: rate %v/s, want %v/s", k, o.RatePerS, want)
		}
		ex := analysis.ExactPercentiles(d)
		for _, c := range []struct {
			name      string
			got, want float64
		}{{"p50", o.P50Ms, ex.P50Ms}, {"p95", o.P95Ms, ex.P95Ms}, {"p99", o.P99Ms, ex.P99Ms}, {"max", o.MaxMs, float64(slices.Max(d)) / 1e6}} {
			if !near(c.got, c.want) {
				t.Errorf("%v: %s = %v ms, exact %v ms", k, c.name, c.got, c.want)
			}
		}
	}
}
