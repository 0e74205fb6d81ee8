package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/postgres"
)

// BenchmarkReviewScale is issue 16's scale goal: the review pages of an
// incident (the incident page, its outliers and services pages, report.md)
// in < 1 s cold and < 50 ms from a finalized snapshot, over the review
// fixture's shape (feed traffic, a deploy, v2's slow query on 20% of
// requests, a budget with three hops; the incident is 20 minutes of v2):
//
//   - demo-hour: an hour at the demo's 15 requests/s (54,000 requests,
//     about 600k spans) in SQLite, the demo's store;
//   - postgres-1M: an hour of 100,000 requests (about 1.1M spans) in
//     PostgreSQL, vacuumed as autovacuum leaves it; skipped unless
//     TAILSCOPE_TEST_POSTGRES_URL is set.
//
// "cold" serves with no analysis cache (every request computes from the
// spans); "cached" is the outliers and services pages through the
// in-process cache tailscope runs with by default (they have no snapshot);
// "snapshot" is the finalized incident. Loading takes minutes and is not
// timed:
//
//	go test ./web -run '^$' -bench ReviewScale -benchtime 3x -timeout 60m
func BenchmarkReviewScale(b *testing.B) {
	scales := []struct {
		name string
		n    int // requests in each half hour
		// open returns an empty store and what to run once it is
		// loaded (nil: nothing).
		open func(b *testing.B) (store.Store, func(b *testing.B))
	}{
		{"demo-hour", 27_000, func(b *testing.B) (store.Store, func(*testing.B)) { return openSpanStore(b), nil }},
		{"postgres-1M", 50_000, openScalePostgres},
	}
	for _, sc := range scales {
		b.Run(sc.name, func(b *testing.B) {
			st, loaded := sc.open(b)
			traffic := rvTraffic(sc.n)
			writeSpans(b, st, traffic...)
			spans := 0
			for _, t := range traffic {
				spans += len(t)
			}
			_, _, in := rvRecords(b, st)
			if loaded != nil {
				loaded(b)
			}
			benchReviewPages(b, st, in, spans)
		})
	}
}

// openScalePostgres opens a fresh PostgreSQL database, and returns the
// vacuum that marks the span pages all-visible as autovacuum does within a
// minute of a bulk write, so the samples query reads its covering index.
func openScalePostgres(b *testing.B) (store.Store, func(b *testing.B)) {
	b.Helper()
	u := testenv.FreshPostgres(b)
	db, err := postgres.Open(context.Background(), u)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db, func(b *testing.B) {
		b.Helper()
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "VACUUM (ANALYZE) spans"); err != nil {
			b.Fatal(err)
		}
	}
}

// benchReviewPages times the review pages of in over st.
func benchReviewPages(b *testing.B, st store.Store, in store.Incident, spans int) {
	// cold has no analysis cache; warm has the in-process one
	// tailscope runs with by default.
	cold, warm := newTestHandlers(b, st, rvNow)
	from, to := in.From.UTC().Format(time.RFC3339), in.To.UTC().Format(time.RFC3339)
	p := fmt.Sprintf("/incidents/%d", in.ID)
	outliers := "/outliers?" + url.Values{"service": {analysistest.FeedAPI}, "endpoint": {analysistest.Endpoint}, "from": {from}, "to": {to}}.Encode()
	services := "/?" + url.Values{"from": {from}, "to": {to}}.Encode()
	run := func(h http.Handler, target string) func(b *testing.B) {
		return func(b *testing.B) {
			for b.Loop() {
				if w := rvGet(b, h, target); w.Code != http.StatusOK {
					b.Fatalf("%s: status %d: %s", target, w.Code, rvHead(w.Body.String(), 5))
				}
			}
			b.ReportMetric(float64(spans), "spans")
		}
	}
	b.Run("cold/page", run(cold, p))
	b.Run("cold/outliers", run(cold, outliers))
	b.Run("cold/services", run(cold, services))
	b.Run("cold/report.md", run(cold, p+"/report.md"))
	rvGet(b, warm, outliers)
	rvGet(b, warm, services)
	b.Run("cached/outliers", run(warm, outliers))
	b.Run("cached/services", run(warm, services))
	if w := rvDo(b, cold, http.MethodPost, "/api/v1"+p+"/finalize", ""); w.Code != http.StatusCreated {
		b.Fatalf("finalize: status %d", w.Code)
	}
	b.Run("snapshot/page", run(cold, p))
	b.Run("snapshot/report.md", run(cold, p+"/report.md"))
}
