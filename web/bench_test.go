package web

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/static"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/sqlite"
)

// benchServer opens a SQLite store in a temp dir with spans written.
func benchServer(b *testing.B, spans []store.Span) (*Server, *sqlite.DB) {
	b.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	for i := 0; i < len(spans); i += 5000 {
		if err := db.WriteSpans(context.Background(), spans[i:min(i+5000, len(spans))]); err != nil {
			b.Fatal(err)
		}
	}
	assets, err := static.Load()
	if err != nil {
		b.Fatal(err)
	}
	return New(Config{Store: db, Now: fixtureNow, Assets: assets}), db
}

// BenchmarkServicesPage50 is the whole request for the services overview
// of 50 services × 2 endpoints × 300 requests in the last hour: store
// read, statistics and render. No cache, so every iteration computes.
func BenchmarkServicesPage50(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	var spans []store.Span
	n := 0
	for s := range 50 {
		for e := range 2 {
			for range 300 {
				n++
				var tid store.TraceID
				var sid store.SpanID
				tid[0], tid[1], tid[2] = byte(n), byte(n>>8), byte(n>>16)
				sid[0] = 1
				spans = append(spans, store.Span{
					TraceID: tid, SpanID: sid, Service: fmt.Sprintf("svc-%02d", s), Name: fmt.Sprintf("GET /v1/thing-%d", e),
					Kind: store.KindServer, StartUnixNano: fixtureStart.Add(time.Duration(rng.Int64N(int64(time.Hour)))).UnixNano(),
					DurationNano: int64(time.Duration(rng.ExpFloat64() * float64(20*time.Millisecond))),
				})
			}
		}
	}
	srv, _ := benchServer(b, spans)
	h := srv.Handler()
	b.ResetTimer()
	for b.Loop() {
		w := serve(b, h, "GET", "/?from=now-1h", "")
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// waterfallTrace is one trace of n spans: a root with a wide, deep tree
// below (fan-outs of up to 8, depth up to 12).
func waterfallTrace(n int) []store.Span {
	rng := rand.New(rand.NewPCG(3, 4))
	tid := store.TraceID{9, 9, 9}
	start := fixtureStart.UnixNano()
	spans := make([]store.Span, 0, n)
	id := func(i int) store.SpanID {
		var s store.SpanID
		s[0], s[1], s[2] = byte(i+1), byte((i+1)>>8), 7
		return s
	}
	spans = append(spans, store.Span{TraceID: tid, SpanID: id(0), Service: "gateway", Name: "GET /v1/batch", Kind: store.KindServer,
		StartUnixNano: start, DurationNano: int64(2 * time.Second)})
	depth := []int{0}
	for i := 1; i < n; i++ {
		p := rng.IntN(i)
		for depth[p] >= 12 {
			p = rng.IntN(i)
		}
		parent := spans[p]
		off := rng.Int64N(max(parent.DurationNano/2, 1))
		dur := rng.Int64N(max(parent.DurationNano-off, 1))
		kind := store.KindInternal
		dep := ""
		if i%3 == 0 {
			kind, dep = store.KindClient, "postgresql"
		}
		spans = append(spans, store.Span{TraceID: tid, SpanID: id(i), ParentSpanID: parent.SpanID,
			Service: fmt.Sprintf("svc-%d", i%7), Name: fmt.Sprintf("op-%d", i%40), Kind: kind, Dependency: dep,
			StartUnixNano: parent.StartUnixNano + off, DurationNano: dur,
			Attributes: store.AttributesOf(map[string]any{"i": i, "db.query.text": "SELECT 1"})})
		depth = append(depth, depth[p]+1)
	}
	return spans
}

// BenchmarkWaterfall10k is the whole request for a 10,000-span trace page:
// store read, critical path, findings, view model and render.
func BenchmarkWaterfall10k(b *testing.B) {
	spans := waterfallTrace(10_000)
	srv, _ := benchServer(b, spans)
	h := srv.Handler()
	target := "/traces/" + spans[0].TraceID.String()
	b.ResetTimer()
	var size int
	for b.Loop() {
		w := serve(b, h, "GET", target, "")
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
		size = w.Body.Len()
	}
	b.ReportMetric(float64(size)/1024, "KiB/page")
}

// BenchmarkTrace50k is the server side of opening a 50,000-span trace
// (the deep shape of BenchmarkBrowserWaterfall50k): the page (store read,
// critical path, findings, first rows, render) and the rows request its
// script makes next (from traceMemo: tree walk, JSON, gzip). "read" is
// the store read alone.
//
//	go test ./web -run '^$' -bench 'Trace50k' -benchtime 8x -benchmem
func BenchmarkTrace50k(b *testing.B) {
	spans := deepTrace(50_000)
	srv, db := benchServer(b, spans)
	h := srv.Handler()
	id := spans[0].TraceID
	b.Run("read", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.Trace(context.Background(), id); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("page+rows", func(b *testing.B) {
		for b.Loop() {
			for _, u := range []string{"/traces/" + id.String(), "/api/v1/traces/" + id.String() + "/waterfall"} {
				req := httptest.NewRequest("GET", u, nil)
				req.Header.Set("Accept-Encoding", "gzip")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("%s: status %d", u, w.Code)
				}
			}
		}
	})
}

// BenchmarkOutliersRender1M is the page's own work for an outlier report
// over 1,000,000 spans (100,000 requests): view model and render, the
// outlier computation itself excluded (analysis.BenchmarkOutliers1M).
func BenchmarkOutliersRender1M(b *testing.B) {
	ds := analysistest.Generate(analysistest.Scenario{Seed: 1, Start: fixtureStart, Window: time.Hour, Traces: 100_000,
		Causes: []analysistest.Cause{{Name: "slow", Dependency: analysistest.ProfileSvc, Tenant: "acme", Probability: 0.1, Extra: 800 * time.Millisecond}}})
	src := analysistest.NewSource(ds.Spans)
	rep, err := analysis.Outliers(context.Background(), src, analysis.OutlierQuery{
		Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint, From: fixtureStart, To: fixtureStart.Add(time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(ds.Spans)), "spans")
	tr := TimeRange{From: fixtureStart, To: fixtureStart.Add(time.Hour), FromText: "now-1h", ToText: "now"}
	p := components.EndpointPicker{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint, Services: []string{analysistest.FeedAPI}, Endpoints: []string{analysistest.Endpoint}}
	b.ResetTimer()
	for b.Loop() {
		var buf bytes.Buffer
		if err := components.OutliersPage(outliersView(rep, p, tr, "", "")).Render(context.Background(), &buf); err != nil {
			b.Fatal(err)
		}
	}
}
