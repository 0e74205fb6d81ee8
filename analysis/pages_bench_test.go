package analysis_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/store"
)

// BenchmarkPagesStore is what the Services, Latency and Budgets pages
// cost to compute (no analysis cache) over a window of
// TAILSCOPE_BENCH_HOURS hours (default 1) of 100,000 requests an hour,
// about a million spans an hour, read from each store. Every hour is
// generated and loaded on its own, so ten hours (10M spans) never sit in
// memory at once; loading is not timed. The latency page and budget
// compliance are measured from the spans and from rollups, interleaved:
//
//	go test ./analysis -run '^$' -bench 'PagesStore/postgres' -benchtime 5x
//	TAILSCOPE_BENCH_HOURS=10 go test ./analysis -run '^$' -bench 'PagesStore/postgres' -benchtime 3x -timeout 2h
func BenchmarkPagesStore(b *testing.B) {
	hours := 1
	if h := os.Getenv("TAILSCOPE_BENCH_HOURS"); h != "" {
		var err error
		if hours, err = strconv.Atoi(h); err != nil || hours < 1 || hours > 24 {
			b.Fatalf("TAILSCOPE_BENCH_HOURS=%q: want 1 to 24", h)
		}
	}
	end := time.Now().Add(-time.Hour).Truncate(time.Hour)
	start := end.Add(-time.Duration(hours) * time.Hour)
	now := end.Add(time.Hour)
	lat := analysis.LatencyQuery{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint, From: start, To: end, Now: now}
	spansLat := lat
	spansLat.Method = analysis.MethodExact // what "auto" was for windows up to a day
	bud := benchBudget()
	bud.Period = end.Sub(start)
	noHops := bud
	noHops.Hops = nil
	for _, s := range benchStores() {
		b.Run(s.name, func(b *testing.B) {
			var db store.Store
			var vacuum func(*testing.B)
			spans := 0
			for h := range hours {
				ds := analysistest.Generate(analysistest.Scenario{Seed: 180 + uint64(h), Traces: 100_000, ErrorRate: 0.01,
					Start: start.Add(time.Duration(h) * time.Hour), Window: time.Hour})
				spans += len(ds.Spans)
				if db == nil {
					db, vacuum = s.load(b, ds.Spans)
				} else {
					loadMore(b, db, ds.Spans)
				}
			}
			if vacuum != nil {
				vacuum(b)
			}
			ctx := context.Background()
			timed := &timedSource{Store: db}
			pages := []benchPage{
				{"services", func() (int, error) {
					rep, err := analysis.ServiceStats(ctx, db, analysis.ServicesQuery{From: start, To: end, Now: now})
					return len(rep.Services), err
				}},
				{"latency-spans", func() (int, error) {
					rep, err := analysis.Latency(ctx, db, spansLat)
					return rep.Count, err
				}},
				{"latency-rollups", func() (int, error) {
					rep, err := analysis.LatencyFromRollups(ctx, db, lat)
					return rep.Count, err
				}},
				{"budget-compliance", func() (int, error) {
					rep, err := analysis.Compliance(ctx, db, bud, start, end, now)
					return rep.Total, err
				}},
				{"budget-compliance-rollups", func() (int, error) {
					rep, err := analysis.ComplianceFromRollups(ctx, db, bud, start, end, now)
					return rep.Total, err
				}},
				// The same with the time spent in each store read
				// reported, to say where the time goes.
				{"budget-compliance-rollups-timed", func() (int, error) {
					rep, err := analysis.ComplianceFromRollups(ctx, timed, bud, start, end, now)
					return rep.Total, err
				}},
				// The same reading the hop sample's strata one range at
				// a time, as before store.Reader.SampleRanges.
				{"budget-compliance-rollups-timed-one-by-one", func() (int, error) {
					rep, err := analysis.ComplianceFromRollups(ctx, oneRangeAtATime{timedSource: timed}, bud, start, end, now)
					return rep.Total, err
				}},
				// The counts, chart and burn rates alone: a budget
				// without hops reads no sample and no trace.
				{"budget-compliance-rollups-counts", func() (int, error) {
					rep, err := analysis.ComplianceFromRollups(ctx, db, noHops, start, end, now)
					return rep.Total, err
				}},
				// The budget page's default view: its period ending at
				// an instant inside a minute (edge minutes and burn
				// windows from spans), its reads timed.
				{"budget-compliance-rollups-now", func() (int, error) {
					at := end.Add(-17*time.Minute - 23*time.Second)
					rep, err := analysis.ComplianceFromRollups(ctx, timed, bud, time.Time{}, time.Time{}, at)
					return rep.Total, err
				}},
			}
			// The latency page's tenants table and one tenant's latency,
			// from tenant rollups; the deploys list's impacts of its
			// newest 20 markers (three minutes apart in the last hour).
			tenantLat := lat
			tenantLat.Tenant = "acme"
			pages = append(pages, benchPage{"tenants", func() (int, error) {
				rep, err := analysis.Tenants(ctx, db, analysis.TenantsQuery{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint, From: start, To: end})
				return int(rep.Count), err
			}}, benchPage{"latency-rollups-tenant", func() (int, error) {
				rep, err := analysis.LatencyFromRollups(ctx, db, tenantLat)
				return rep.Count, err
			}}, benchPage{"deploy-impacts-20", func() (int, error) {
				n := 0
				for i := range 20 {
					svc := []string{analysistest.FeedAPI, analysistest.CandidateSvc}[i%2]
					imp, err := analysis.DeployImpactFromRollups(ctx, db, analysis.DeployImpactQuery{Service: svc,
						At: end.Add(-time.Duration(3*i+1)*time.Minute - 17*time.Second), Now: now})
					if err != nil {
						return n, err
					}
					n += imp.Before.Count
				}
				return n, nil
			}})
			// One busy endpoint's outliers over the last hour (100,000
			// requests whatever the spans stored), and the search the
			// traces page runs for a service and a minimum duration.
			lastHour := end.Add(-time.Hour)
			pages = append(pages, benchPage{"outliers-last-hour", func() (int, error) {
				rep, err := analysis.Outliers(ctx, timed, analysis.OutlierQuery{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint,
					From: lastHour, To: end})
				return rep.RequestCount, err
			}}, benchPage{"outliers-last-hour-whole-traces", func() (int, error) {
				rep, err := analysis.Outliers(ctx, wholeTraces{timedSource: timed}, analysis.OutlierQuery{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint,
					From: lastHour, To: end})
				return rep.RequestCount, err
			}}, benchPage{"search-service-min-duration", func() (int, error) {
				res, err := db.SearchTraces(ctx, store.TraceQuery{Service: analysistest.FeedAPI, MinDuration: 200 * time.Millisecond,
					From: start, To: end, Limit: 20})
				return len(res), err
			}})
			if hours > 1 {
				// The last hour alone, as at 1M spans: the same rollup rows
				// to read, ten times the spans stored.
				hour := lat
				hour.From = lastHour
				pages = append(pages, benchPage{"latency-rollups-last-hour", func() (int, error) {
					rep, err := analysis.LatencyFromRollups(ctx, db, hour)
					return rep.Count, err
				}}, benchPage{"services-last-hour", func() (int, error) {
					rep, err := analysis.ServiceStats(ctx, db, analysis.ServicesQuery{From: hour.From, To: end, Now: now})
					return len(rep.Services), err
				}})
			}
			// Cold: the first reading after the load of what a user opens,
			// in this order, before any other page ran (PostgreSQL's
			// buffers hold what was written last; the kernel's page cache
			// may hold the rest). The pages that read every span would
			// warm the others' caches, so they are not among them.
			cold := []string{"services", "latency-rollups", "budget-compliance-rollups-timed", "search-service-min-duration", "outliers-last-hour"}
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			for _, p := range pages {
				if !slices.Contains(cold, p.name) {
					continue
				}
				*timed = timedSource{Store: db}
				t0 := time.Now()
				if _, err := p.run(); err != nil {
					b.Fatalf("%s: %v", p.name, err)
				}
				b.Logf("cold: %s %.1f ms (reads: samples %.1f ms, rollups %.1f ms, traces %.1f ms for %d)", p.name, ms(time.Since(t0)),
					ms(timed.samples), ms(timed.rollups), ms(timed.traces), timed.traceIDs)
			}
			// Two rounds, so the spans and rollups readings interleave.
			for range 2 {
				for _, p := range pages {
					b.Run(p.name, func(b *testing.B) {
						b.ReportMetric(float64(spans), "spans")
						*timed = timedSource{Store: db}
						for b.Loop() {
							n, err := p.run()
							if err != nil || n == 0 {
								b.Fatalf("%s: %v, %d", p.name, err, n)
							}
						}
						if timed.calls > 0 {
							timed.report(b)
						}
					})
				}
			}
		})
	}
}

// benchPage is one page's computation; run returns how many requests or
// services it found, which must not be 0.
type benchPage struct {
	name string
	run  func() (int, error)
}

// oneRangeAtATime is a timedSource without SampleRanges (the two embedded
// methods of that name hide each other), so the budget's hop sample is
// read one Samples call per range.
type oneRangeAtATime struct {
	*timedSource
	hideSampleRanges
}

type hideSampleRanges struct{}

func (hideSampleRanges) SampleRanges() {}

// wholeTraces is a timedSource without RequestShapes, so outliers read
// their examined traces whole, as before store.Reader.RequestShapes.
type wholeTraces struct {
	*timedSource
	hideRequestShapes
}

type hideRequestShapes struct{}

func (hideRequestShapes) RequestShapes() {}

// timedSource times the reads a computation makes of a store, by method.
type timedSource struct {
	store.Store
	calls                    int
	samples, rollups, traces time.Duration
	sampleRows, traceIDs     int
}

func (t *timedSource) Samples(ctx context.Context, q store.SampleQuery) ([]store.Sample, error) {
	start := time.Now()
	ss, err := t.Store.Samples(ctx, q)
	t.calls++
	t.samples += time.Since(start)
	t.sampleRows += len(ss)
	return ss, err
}

func (t *timedSource) SampleRanges(ctx context.Context, q store.SampleQuery, ranges []store.SampleRange) ([][]store.Sample, error) {
	start := time.Now()
	out, err := t.Store.SampleRanges(ctx, q, ranges)
	t.calls++
	t.samples += time.Since(start)
	for _, ss := range out {
		t.sampleRows += len(ss)
	}
	return out, err
}

func (t *timedSource) Rollups(ctx context.Context, q store.RollupQuery) ([]store.Rollup, error) {
	start := time.Now()
	rs, err := t.Store.Rollups(ctx, q)
	t.calls++
	t.rollups += time.Since(start)
	return rs, err
}

func (t *timedSource) Traces(ctx context.Context, ids []store.TraceID) (map[store.TraceID][]store.Span, error) {
	return t.timeTraces(len(ids), func() (map[store.TraceID][]store.Span, error) { return t.Store.Traces(ctx, ids) })
}

func (t *timedSource) TraceShapes(ctx context.Context, ids []store.TraceID) (map[store.TraceID][]store.Span, error) {
	return t.timeTraces(len(ids), func() (map[store.TraceID][]store.Span, error) { return t.Store.TraceShapes(ctx, ids) })
}

func (t *timedSource) RequestShapes(ctx context.Context, reqs []store.SpanRef) (map[store.TraceID][]store.Span, error) {
	return t.timeTraces(len(reqs), func() (map[store.TraceID][]store.Span, error) { return t.Store.RequestShapes(ctx, reqs) })
}

// timeTraces times read, a read of n traces.
func (t *timedSource) timeTraces(n int, read func() (map[store.TraceID][]store.Span, error)) (map[store.TraceID][]store.Span, error) {
	start := time.Now()
	out, err := read()
	t.calls++
	t.traces += time.Since(start)
	t.traceIDs += n
	return out, err
}

// report reports the reads' time per computation.
func (t *timedSource) report(b *testing.B) {
	n := float64(b.N)
	b.ReportMetric(float64(t.samples.Milliseconds())/n, "samples-ms/op")
	b.ReportMetric(float64(t.rollups.Milliseconds())/n, "rollups-ms/op")
	b.ReportMetric(float64(t.traces.Milliseconds())/n, "traces-ms/op")
	b.ReportMetric(float64(t.sampleRows)/n, "sample-rows/op")
	b.ReportMetric(float64(t.traceIDs)/n, "traces/op")
}
