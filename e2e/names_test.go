package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/app"
	"github.com/tailscope/tailscope/ingest/otlpconv"
)

// TestRawPathSpanNames instruments a real HTTP server and its client with
// otelhttp, naming spans after the raw request path as many services do
// (the span name formatter below), exports through the SDK's OTLP/HTTP
// exporter, and reads back what tailscope made of it: one endpoint with
// every request, not one endpoint per user.
func TestRawPathSpanNames(t *testing.T) {
	const users = 40
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, exp := sqliteAppWithExporter(ctx, t)
	provider := func(service string) *sdktrace.TracerProvider {
		res := resource.NewSchemaless(attribute.String("service.name", service))
		return sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(res))
	}
	tp, web := provider("e2e-users"), provider("e2e-web")
	defer web.Shutdown(context.Background())
	defer tp.Shutdown(context.Background())
	rawPath := otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path })
	w3c := otelhttp.WithPropagators(propagation.TraceContext{})

	srv := httptest.NewServer(otelhttp.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	}), "users", otelhttp.WithTracerProvider(tp), rawPath, w3c))
	defer srv.Close()
	client := &http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport, otelhttp.WithTracerProvider(web), rawPath, w3c)}
	for i := range users {
		u := fmt.Sprintf("%s/users/%d/orders?page=%d", srv.URL, 100000+i, i)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for _, p := range []*sdktrace.TracerProvider{tp, web} {
		if err := p.ForceFlush(ctx); err != nil {
			t.Fatalf("export: %v", err)
		}
	}

	// Every server span lands in one endpoint.
	c := newClient(t, 2)
	var sum analysis.ServicesReport
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, err := getJSON(ctx, c, a.URL()+"/api/v1/services?from=now-1h", &sum); err != nil || code != http.StatusOK {
			t.Fatalf("services: %d %v", code, err)
		}
		if n := endpointCount(sum, "e2e-users", "GET /users/{id}/orders"); n == users || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The caller's client spans are its roots: its endpoints too.
	for _, s := range sum.Services {
		if s.Name != "e2e-users" && s.Name != "e2e-web" {
			continue
		}
		if len(s.Endpoints) != 1 || s.Endpoints[0].Name != "GET /users/{id}/orders" || s.Endpoints[0].Count != users {
			first := s.Endpoints[:min(3, len(s.Endpoints))]
			t.Fatalf("%s has %d endpoints, the first %+v; want one, GET /users/{id}/orders, with %d requests", s.Name, len(s.Endpoints), first, users)
		}
	}

	// The client spans are templated too, and the path as sent is in
	// the span's own URL attributes.
	found := searchTraces(t, c, a.URL(), "service=e2e-web&from=now-1h&limit=100")
	if len(found) != users {
		t.Fatalf("search found %d traces, want %d", len(found), users)
	}
	tr := fetchTrace(t, c, a.URL(), found[0].TraceID)
	if len(tr.Spans) != 2 {
		t.Fatalf("trace has %d spans, want 2", len(tr.Spans))
	}
	for _, s := range tr.Spans {
		if s.Name != "GET /users/{id}/orders" {
			t.Errorf("%s span named %q, want GET /users/{id}/orders", s.Kind, s.Name)
		}
		var attrs map[string]any
		if err := json.Unmarshal(s.Attributes, &attrs); err != nil {
			t.Fatal(err)
		}
		if _, ok := attrs[otlpconv.OriginalNameKey]; ok {
			t.Errorf("%s span kept %s though its URL attributes hold the path: %s", s.Kind, otlpconv.OriginalNameKey, s.Attributes)
		}
		if p, _ := attrs["url.path"].(string); s.Kind == "server" && p == "" {
			t.Errorf("server span without url.path: %s", s.Attributes)
		}
		if f, _ := attrs["url.full"].(string); s.Kind == "client" {
			if u, err := url.Parse(f); err != nil || u.Query().Get("page") != otlpconv.RedactedValue {
				t.Errorf("client span's url.full %q: want its query redacted", f)
			}
		}
	}
}

func endpointCount(sum analysis.ServicesReport, service, endpoint string) int {
	for _, s := range sum.Services {
		if s.Name != service {
			continue
		}
		for _, e := range s.Endpoints {
			if e.Name == endpoint {
				return e.Count
			}
		}
	}
	return 0
}

// TestRawPathOutliers: a service whose instrumentation names server spans
// after the raw path and database spans after their statement, with a
// slow database call in 2% of its requests. Stored as sent, every request
// would be an endpoint of one request, with no tail to analyse; stored as
// templates, the outlier analysis of the one endpoint names the database.
func TestRawPathOutliers(t *testing.T) {
	const requests = 1000
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, exp := sqliteAppWithExporter(ctx, t)
	res := resource.NewSchemaless(attribute.String("service.name", "e2e-accounts"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithMaxExportBatchSize(500)), sdktrace.WithResource(res))
	defer tp.Shutdown(context.Background())
	tr := tp.Tracer("e2e")
	rng := rand.New(rand.NewPCG(7, 21))
	start := time.Now().Add(-30 * time.Minute)
	for i := range requests {
		at := start.Add(time.Duration(i) * 1700 * time.Millisecond)
		db := time.Duration(2+rng.IntN(8)) * time.Millisecond
		if i%50 == 17 {
			db = time.Duration(700+rng.IntN(200)) * time.Millisecond
		}
		total := db + time.Duration(5+rng.IntN(20))*time.Millisecond
		id := 500000 + rng.IntN(1_000_000)
		sctx, srv := tr.Start(ctx, fmt.Sprintf("GET /accounts/%d", id), trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(at),
			trace.WithAttributes(attribute.String("url.path", fmt.Sprintf("/accounts/%d", id)), attribute.String("http.request.method", "GET")))
		stmt := fmt.Sprintf("SELECT * FROM accounts WHERE id = %d", id)
		_, q := tr.Start(sctx, stmt, trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(at.Add(2*time.Millisecond)),
			trace.WithAttributes(attribute.String("db.system", "postgresql"), attribute.String("db.namespace", "accounts"), attribute.String("db.statement", stmt)))
		q.End(trace.WithTimestamp(at.Add(2*time.Millisecond + db)))
		srv.End(trace.WithTimestamp(at.Add(total)))
	}
	if err := tp.ForceFlush(ctx); err != nil {
		t.Fatalf("export: %v", err)
	}

	c := newClient(t, 2)
	q := url.Values{"service": {"e2e-accounts"}, "endpoint": {"GET /accounts/{id}"}, "from": {"now-1h"}}
	var out struct {
		RequestCount int `json:"request_count"`
		Groups       []struct {
			Dimension string `json:"dimension"`
			Value     string `json:"value"`
			Count     int    `json:"count"`
		} `json:"groups"`
		Verdict string `json:"verdict"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, err := getJSON(ctx, c, a.URL()+"/api/v1/outliers?"+q.Encode(), &out); err != nil || code != http.StatusOK {
			t.Fatalf("outliers: %d %v", code, err)
		}
		if out.RequestCount == requests || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if out.RequestCount != requests {
		t.Fatalf("GET /accounts/{id} has %d requests, want %d", out.RequestCount, requests)
	}
	if len(out.Groups) == 0 || out.Groups[0].Dimension != "dependency" || out.Groups[0].Value != "postgresql/accounts" {
		t.Fatalf("outliers of GET /accounts/{id}: groups %+v, verdict %q; want the database postgresql/accounts first", out.Groups, out.Verdict)
	}

	// The statement's name is its template: one operation, not a thousand.
	var ops struct {
		Operations []struct {
			Name  string `json:"name"`
			Count int    `json:"count"`
		} `json:"operations"`
	}
	if code, err := getJSON(ctx, c, a.URL()+"/api/v1/operations?service=e2e-accounts&from=now-1h", &ops); err != nil || code != http.StatusOK {
		t.Fatalf("operations: %d %v", code, err)
	}
	if len(ops.Operations) != 2 {
		t.Errorf("e2e-accounts has %d operations, want 2 (the endpoint and the statement): %+v", len(ops.Operations), ops.Operations[:min(4, len(ops.Operations))])
	}
}

// sqliteAppWithExporter starts tailscope on SQLite and returns it with an
// SDK OTLP/HTTP exporter to it (retries off: a failed export fails the
// test at once).
func sqliteAppWithExporter(ctx context.Context, t *testing.T) (*app.App, sdktrace.SpanExporter) {
	t.Helper()
	a := startApp(t, backends()[0].url(t), nil)
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(a.OTLPHTTPAddr()), otlptracehttp.WithInsecure(),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	return a, exp
}
