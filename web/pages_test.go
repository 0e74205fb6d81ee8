package web

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/a-h/templ"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/store"
)

func TestPagesRender(t *testing.T) {
	f := sharedFixture(t)
	slow := slowestAcmeTrace(t, f)
	tests := []struct {
		name, target string
		want         []string
	}{
		{"services", "/?from=now-1h", []string{`data-testid="services-table"`, `data-service="feed-api"`, `data-service="candidate-svc"`, `data-endpoint="GET /v1/feed"`}},
		{"search", "/search?service=feed-api&tenant=acme&min_ms=500&from=now-1h", []string{`data-testid="trace-scatter"`, `data-testid="trace-row"`, `<circle class="dot`}},
		{"latency default endpoint", "/latency?from=now-1h", []string{`feed-api · GET /v1/feed`, `data-testid="latency-series"`, `data-testid="latency-heatmap"`, `class="cell l`, "Read from the rollups written at ingest"}},
		{"latency of a tenant", "/latency?service=feed-api&from=now-1h&tenant=acme", []string{`data-testid="latency-tenant"`, "Read from the rollups written at ingest",
			`data-tenant="acme" data-hot="true" aria-current="true"`, `value="acme"`}},
		{"latency of a tenant without rollups", "/latency?service=feed-api&from=now-1h&tenant=nobody", []string{`tenant &#34;nobody&#34; has no rollups`, "Percentiles are exact"}},
		{"outliers", "/outliers?service=feed-api&from=now-1h", []string{`data-testid="outlier-group"`, `data-dimension="tenant"`, `data-testid="example-trace"`}},
		{"waterfall", "/traces/" + slow, []string{`data-testid="waterfall"`, `data-critical`, `data-testid="critical-hops"`, `profile-svc`}},
		{"waterfall with span", "/traces/" + slow + "?span=" + firstSpan(t, f, slow), []string{`data-testid="span-detail"`, "tenant.id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(t, f.handler, "GET", tt.target, "")
			if w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, firstLines(w.Body.String(), 40))
			}
			body := w.Body.String()
			for _, s := range tt.want {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %q", s)
				}
			}
			if !strings.Contains(body, `<link rel="stylesheet" href="/static/app.`) {
				t.Error("page has no hashed stylesheet link")
			}
		})
	}
}

func TestOutliersPageRanksTheInjectedCauseFirst(t *testing.T) {
	f := sharedFixture(t)
	w := serve(t, f.handler, "GET", "/outliers?service=feed-api&from=now-1h", "")
	body := w.Body.String()
	first := regexp.MustCompile(`(?s)data-rank="1".*?data-testid="group-label">([^<]*)<`).FindStringSubmatch(body)
	if first == nil {
		t.Fatal("no rank-1 group on the page")
	}
	if !strings.Contains(first[1], "profile-svc") || !strings.Contains(first[1], "acme") {
		t.Errorf("rank-1 group %q, want profile-svc for acme", first[1])
	}
}

func TestPageErrors(t *testing.T) {
	f := sharedFixture(t)
	tests := []struct {
		target string
		status int
		want   string
	}{
		{"/traces/0123456789abcdef0123456789abcdef", 404, "not found"},
		{"/traces/not-a-trace", 400, "trace id"},
		{"/no/such/page", 404, "no page at"},
		{"/latency?service=ghost&from=now-1h", 404, "no requests"},
	}
	for _, tt := range tests {
		w := serve(t, f.handler, "GET", tt.target, "")
		if w.Code != tt.status {
			t.Errorf("%s: status %d, want %d", tt.target, w.Code, tt.status)
		}
		if !strings.Contains(w.Body.String(), `data-testid="error-message"`) || !strings.Contains(w.Body.String(), tt.want) {
			t.Errorf("%s: error page does not say %q", tt.target, tt.want)
		}
		if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("%s: Content-Type %q", tt.target, ct)
		}
	}
}

func TestUserTextIsEscaped(t *testing.T) {
	h, db := newWritableServer(t)
	evil := `<script>alert("x")</script>`
	sp := store.Span{
		TraceID: store.TraceID{1}, SpanID: store.SpanID{1}, Service: evil, Name: evil, Kind: store.KindServer,
		StartUnixNano: fixtureNow().Add(-time.Minute).UnixNano(), DurationNano: int64(time.Millisecond),
		Tenant: evil, Attributes: store.AttributesOf(map[string]any{"k": evil}),
	}
	if err := db.WriteSpans(context.Background(), []store.Span{sp}); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/?from=now-1h", "/traces/" + sp.TraceID.String() + "?span=" + sp.SpanID.String(), "/search?from=now-1h&tenant=" + evil} {
		w := serve(t, h, "GET", target, "")
		if w.Code != 200 {
			t.Fatalf("%s: status %d", target, w.Code)
		}
		if strings.Contains(w.Body.String(), evil) {
			t.Errorf("%s: user text reached the page unescaped", target)
		}
	}
}

func TestStaticAssetsAreHashedAndImmutable(t *testing.T) {
	f := sharedFixture(t)
	body := serve(t, f.handler, "GET", "/?from=now-1h", "").Body.String()
	css := regexp.MustCompile(`href="(/static/app\.[0-9a-f]+\.css)"`).FindStringSubmatch(body)
	if css == nil {
		t.Fatal("no hashed css link")
	}
	w := serve(t, f.handler, "GET", css[1], "")
	if w.Code != 200 || !strings.Contains(w.Header().Get("Cache-Control"), "immutable") || !strings.Contains(w.Body.String(), "--bg") {
		t.Errorf("asset %s: %d %q", css[1], w.Code, w.Header().Get("Cache-Control"))
	}
	if w := serve(t, f.handler, "GET", "/static/app.00000000.css", ""); w.Code != http.StatusNotFound {
		t.Errorf("unknown asset hash: %d, want 404", w.Code)
	}
}

// TestComponentGolden pins the markup of the main components for a fixed
// dataset; run `go test ./web -run Golden -update` after a reviewed change.
func TestComponentGolden(t *testing.T) {
	f := sharedFixture(t)
	slow := slowestAcmeTrace(t, f)
	id, _ := store.ParseTraceID(slow)
	d, err := (&Server{store: f.db}).traceDetail(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		c    templ.Component
	}{
		{"waterfall", components.WaterfallPage(buildWaterfall(d, waterfallOptions{}))},
		{"error", components.ErrorPage(404, "Not found", "trace 0123: not found")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tt.c.Render(context.Background(), &buf); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name+".html", buf.Bytes())
		})
	}
}

// golden compares got with testdata/golden/NAME, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; review the change and rerun with -update.\nfirst difference near: %s", name, firstDiff(got, want))
	}
}

func firstDiff(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	lo := max(0, i-80)
	return string(a[lo:min(len(a), i+80)])
}

func slowestAcmeTrace(t *testing.T, f *fixture) string {
	t.Helper()
	sum, err := f.db.SearchTraces(context.Background(), store.TraceQuery{
		Service: analysistest.FeedAPI, Tenant: "acme", Order: store.OrderSlowest, Limit: 1, Version: "v1",
	})
	if err != nil || len(sum) == 0 {
		t.Fatalf("no acme trace: %v", err)
	}
	return sum[0].TraceID.String()
}

func firstSpan(t *testing.T, f *fixture, trace string) string {
	t.Helper()
	id, _ := store.ParseTraceID(trace)
	spans, err := f.db.Trace(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return spans[0].SpanID.String()
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
