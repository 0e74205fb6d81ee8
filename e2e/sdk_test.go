package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/tailscope/tailscope/app"
	"github.com/tailscope/tailscope/store"
)

// TestSDKExporters sends a trace through each SDK exporter to a running
// tailscope and reads every span back through the JSON API, comparing it
// field by field with what the SDK exported: ids, parent, kind, times,
// status, attributes of every type, resource, events and links, and the
// columns derived at ingest.
func TestSDKExporters(t *testing.T) {
	// sdkExporters are the OpenTelemetry Go SDK's OTLP exporters in every
	// encoding tailscope accepts. Retries are off: a failed export is a bug,
	// and should fail the test at once rather than after the retry budget.
	sdkExporters := []struct {
		name string
		new  func(ctx context.Context, a *app.App) (sdktrace.SpanExporter, error)
	}{
		{"http-protobuf", func(ctx context.Context, a *app.App) (sdktrace.SpanExporter, error) {
			return otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(a.OTLPHTTPAddr()), otlptracehttp.WithInsecure(),
				otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
		}},
		{"http-protobuf-gzip", func(ctx context.Context, a *app.App) (sdktrace.SpanExporter, error) {
			return otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(a.OTLPHTTPAddr()), otlptracehttp.WithInsecure(),
				otlptracehttp.WithCompression(otlptracehttp.GzipCompression),
				otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
		}},
		{"http-json", func(ctx context.Context, a *app.App) (sdktrace.SpanExporter, error) {
			return otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(a.OTLPHTTPAddr()), otlptracehttp.WithInsecure(),
				otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON),
				otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
		}},
		{"grpc", func(ctx context.Context, a *app.App) (sdktrace.SpanExporter, error) {
			return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(a.OTLPGRPCAddr()), otlptracegrpc.WithInsecure(),
				otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
		}},
		{"grpc-gzip", func(ctx context.Context, a *app.App) (sdktrace.SpanExporter, error) {
			return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(a.OTLPGRPCAddr()), otlptracegrpc.WithInsecure(),
				otlptracegrpc.WithCompressor("gzip"),
				otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
		}},
	}
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			a := startApp(t, be.url(t), nil)
			c := newClient(t, 2)
			for _, ex := range sdkExporters {
				t.Run(ex.name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					exp, err := ex.new(ctx, a)
					if err != nil {
						t.Fatalf("new exporter: %v", err)
					}
					rec := &recordingExporter{next: exp}
					service := "e2e-sdk-" + ex.name
					res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
						attribute.String("service.name", service),
						attribute.String("service.version", "v9.8.7"),
						attribute.String("host.name", "e2e-host-1"),
						attribute.String("deployment.environment.name", "test"),
					))
					if err != nil {
						t.Fatal(err)
					}
					// A batcher with a long timeout sends the whole trace in
					// one export at ForceFlush, as a busy service would.
					tp := sdktrace.NewTracerProvider(
						sdktrace.WithBatcher(rec, sdktrace.WithBatchTimeout(time.Hour)),
						sdktrace.WithResource(res),
						sdktrace.WithSampler(sdktrace.AlwaysSample()),
					)
					tid := emitCheckoutTrace(ctx, tp.Tracer("e2e"))
					if err := tp.ForceFlush(ctx); err != nil {
						t.Fatalf("force flush: %v", err)
					}
					if err := tp.Shutdown(ctx); err != nil {
						t.Fatalf("shutdown: %v", err)
					}
					want, exports, errs := rec.result()
					if len(errs) > 0 {
						t.Fatalf("export failed: %v", errors.Join(errs...))
					}
					if len(want) != len(checkoutDerived) || exports == 0 {
						t.Fatalf("SDK exported %d spans in %d calls, want %d spans", len(want), exports, len(checkoutDerived))
					}

					got := waitTrace(t, c, a.URL(), tid.String(), len(want))
					if len(got.Spans) != len(want) {
						t.Errorf("API has %d spans, SDK exported %d", len(got.Spans), len(want))
					}
					byID := map[string]apiSpan{}
					for _, s := range got.Spans {
						byID[s.SpanID] = s
					}
					for _, w := range want {
						g, ok := byID[w.SpanContext().SpanID().String()]
						if !ok {
							t.Errorf("span %q (%s) not found through the API", w.Name(), w.SpanContext().SpanID())
							continue
						}
						compareSpan(t, w, g)
					}

					found := searchTraces(t, c, a.URL(), "service="+url.QueryEscape(service)+"&limit=20")
					if len(found) != 1 || found[0].TraceID != tid.String() {
						t.Fatalf("search by service %s found %+v, want only trace %s", service, found, tid)
					}
					s := found[0]
					if s.SpanCount != len(want) || s.ErrorCount != 1 || s.RootName != "GET /v1/checkout" ||
						s.RootService != service || s.Tenant != "acme" || s.Version != "v9.8.7" {
						t.Errorf("search summary %+v, want %d spans, 1 error, root GET /v1/checkout of %s, tenant acme, version v9.8.7",
							s, len(want), service)
					}
				})
			}
		})
	}
}

// derived is what ingest derives for a span of the checkout trace.
type derived struct {
	tenant, dependency string
	payload            int64
}

// checkoutDerived holds, by span name, the derived columns of the spans
// emitCheckoutTrace makes (DESIGN.md "Span row").
var checkoutDerived = map[string]derived{
	"GET /v1/checkout":      {tenant: "acme", payload: 18_432},                // http.response.body.size
	"GET profile-svc":       {dependency: "profile-svc", payload: 100 + 2048}, // peer.service; request + response
	"SELECT feed.carts":     {dependency: "postgresql/feed"},                  // db.system.name/db.namespace
	"publish order.created": {dependency: "kafka", payload: 512},              // messaging.system
	"price cart":            {},                                               // internal: nothing to derive
}

// emitCheckoutTrace records one trace with every attribute type the SDK
// has, events, a link to another trace, each span kind and each status.
func emitCheckoutTrace(ctx context.Context, tr trace.Tracer) trace.TraceID {
	var other trace.SpanContextConfig
	rand.Read(other.TraceID[:])
	rand.Read(other.SpanID[:])
	other.TraceFlags = trace.FlagsSampled
	ctx, root := tr.Start(ctx, "GET /v1/checkout",
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithLinks(trace.Link{
			SpanContext: trace.NewSpanContext(other),
			Attributes:  []attribute.KeyValue{attribute.String("link.reason", "retry of"), attribute.Int("link.attempt", 2)},
		}),
		trace.WithAttributes(
			attribute.String("http.request.method", "GET"),
			attribute.String("tenant.id", "acme"),
			attribute.Int("http.response.body.size", 18_432),
			attribute.String("e2e.string", "quote \" backslash \\ newline \n tab \t unicode ü ✓ <html>&"),
			attribute.String("e2e.empty", ""),
			attribute.Int64("e2e.int", -42),
			attribute.Int64("e2e.int.big", 1<<62+7), // beyond float64's exact integers
			attribute.Float64("e2e.float", 3.25),
			attribute.Float64("e2e.float.tiny", 1.5e-9),
			attribute.Float64("e2e.float.huge", 6.02214076e23),
			attribute.Bool("e2e.bool", true),
			attribute.StringSlice("e2e.strings", []string{"a", "b,c", "ünï ✓", ""}),
			attribute.Int64Slice("e2e.ints", []int64{1, -2, 1<<53 + 1}),
			attribute.Float64Slice("e2e.floats", []float64{0.5, -1.25, 1e300}),
			attribute.BoolSlice("e2e.bools", []bool{true, false, true}),
			attribute.ByteSlice("e2e.bytes", []byte{0, 1, 2, 0xfe, 0xff}),
			attribute.Slice("e2e.mixed", attribute.StringValue("x"), attribute.Int64Value(7), attribute.BoolValue(false), attribute.Float64Value(0.125)),
			attribute.Map("e2e.map", attribute.String("k", "v"), attribute.Int64("n", 9), attribute.Bool("b", true)),
		))
	root.AddEvent("cache.miss", trace.WithAttributes(
		attribute.String("cache.key", "cart:acme:42"),
		attribute.Int("attempt", 2),
		attribute.Bool("fatal", false),
		attribute.Float64("wait.ms", 1.75),
	))

	cctx, client := tr.Start(ctx, "GET profile-svc",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("peer.service", "profile-svc"),
			attribute.String("server.address", "profile-svc.internal"),
			attribute.Int("http.request.body.size", 100),
			attribute.Int("http.response.body.size", 2048),
			attribute.Int("http.response.status_code", 200),
		))
	client.AddEvent("retry")
	_, internal := tr.Start(cctx, "price cart", trace.WithSpanKind(trace.SpanKindInternal))
	internal.End()
	client.SetStatus(codes.Ok, "")
	client.End()

	_, db := tr.Start(ctx, "SELECT feed.carts",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("db.system.name", "postgresql"),
			attribute.String("db.namespace", "feed"),
			attribute.String("db.query.text", "SELECT * FROM carts WHERE tenant_id = $1"),
		))
	db.End()

	_, pub := tr.Start(ctx, "publish order.created",
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.system", "kafka"),
			attribute.String("messaging.destination.name", "orders"),
			attribute.Int("messaging.message.body.size", 512),
		))
	pub.End()

	root.RecordError(errors.New("upstream timeout"), trace.WithAttributes(attribute.String("e2e.where", "profile-svc")))
	root.SetStatus(codes.Error, "upstream timeout")
	root.End()
	return root.SpanContext().TraceID()
}

// recordingExporter passes spans on to an OTLP exporter and keeps what it
// exported, which is what tailscope must give back.
type recordingExporter struct {
	next sdktrace.SpanExporter

	mu      sync.Mutex
	spans   []sdktrace.ReadOnlySpan
	exports int
	errs    []error
}

func (r *recordingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := r.next.ExportSpans(ctx, spans)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exports++
	if err != nil {
		r.errs = append(r.errs, err)
		return err
	}
	r.spans = append(r.spans, spans...)
	return nil
}

func (r *recordingExporter) Shutdown(ctx context.Context) error { return r.next.Shutdown(ctx) }

func (r *recordingExporter) result() ([]sdktrace.ReadOnlySpan, int, []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.spans, r.exports, r.errs
}

// compareSpan checks every field of the API's span g against the SDK's
// span w.
func compareSpan(t *testing.T, w sdktrace.ReadOnlySpan, g apiSpan) {
	t.Helper()
	name := w.Name()
	check := func(field string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("span %q: %s = %#v, want %#v", name, field, got, want)
		}
	}
	parent := ""
	if w.Parent().IsValid() {
		parent = w.Parent().SpanID().String()
	}
	check("parent_span_id", g.ParentSpanID, parent)
	check("name", g.Name, name)
	check("kind", g.Kind, store.SpanKind(w.SpanKind()).String())
	check("start_unix_nano", g.StartUnixNano, strconv.FormatInt(w.StartTime().UnixNano(), 10))
	check("duration_ns", g.DurationNs, w.EndTime().UnixNano()-w.StartTime().UnixNano())
	status := map[codes.Code]string{codes.Unset: "unset", codes.Ok: "ok", codes.Error: "error"}[w.Status().Code]
	check("status_code", g.StatusCode, status)
	check("status_message", g.StatusMessage, w.Status().Description)

	res := w.Resource()
	svc, _ := res.Set().Value("service.name")
	check("service", g.Service, svc.AsString())
	check("version", g.Version, "v9.8.7")
	check("host", g.Host, "e2e-host-1")
	d, ok := checkoutDerived[name]
	if !ok {
		t.Errorf("span %q: not a span of the checkout trace", name)
	}
	check("tenant", g.Tenant, d.tenant)
	check("dependency", g.Dependency, d.dependency)
	check("payload_bytes", g.PayloadBytes, d.payload)

	check("attributes", decodeAttrs(t, g.Attributes), wantAttrs(t, w.Attributes()))
	check("resource", decodeAttrs(t, g.Resource), wantAttrs(t, res.Attributes()))

	if len(g.Events) != len(w.Events()) {
		t.Errorf("span %q: %d events, want %d", name, len(g.Events), len(w.Events()))
	} else {
		for i, we := range w.Events() {
			ge := g.Events[i]
			check(fmt.Sprintf("event %d name", i), ge.Name, we.Name)
			check(fmt.Sprintf("event %d time", i), ge.TimeUnixNano, we.Time.UnixNano())
			check(fmt.Sprintf("event %d attributes", i), decodeAttrs(t, ge.Attributes), wantAttrs(t, we.Attributes))
		}
	}
	if len(g.Links) != len(w.Links()) {
		t.Errorf("span %q: %d links, want %d", name, len(g.Links), len(w.Links()))
	} else {
		for i, wl := range w.Links() {
			gl := g.Links[i]
			check(fmt.Sprintf("link %d trace id", i), gl.TraceID, wl.SpanContext.TraceID().String())
			check(fmt.Sprintf("link %d span id", i), gl.SpanID, wl.SpanContext.SpanID().String())
			check(fmt.Sprintf("link %d attributes", i), decodeAttrs(t, gl.Attributes), wantAttrs(t, wl.Attributes))
		}
	}
	if w.DroppedAttributes() != 0 || w.DroppedEvents() != 0 || w.DroppedLinks() != 0 {
		t.Errorf("span %q: the SDK dropped data; the test's expectations are incomplete", name)
	}
}

// decodeAttrs decodes an attribute object of the API into comparable Go
// values (see normalize).
func decodeAttrs(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	m, err := store.Attributes(raw).Decode()
	if err != nil {
		t.Fatalf("attributes %s: %v", raw, err)
	}
	if m == nil { // "null": no attributes, like {}
		m = map[string]any{}
	}
	return normalize(m).(map[string]any)
}

// wantAttrs is the JSON object DESIGN.md promises for OTLP attributes —
// strings, numbers, bools, base64 for bytes, arrays and objects — decoded
// like decodeAttrs.
func wantAttrs(t *testing.T, kvs []attribute.KeyValue) map[string]any {
	t.Helper()
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = attrValue(kv.Value)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return decodeAttrs(t, b)
}

func attrValue(v attribute.Value) any {
	switch v.Type() {
	case attribute.BOOL:
		return v.AsBool()
	case attribute.INT64:
		return v.AsInt64()
	case attribute.FLOAT64:
		return v.AsFloat64()
	case attribute.STRING:
		return v.AsString()
	case attribute.BOOLSLICE:
		return v.AsBoolSlice()
	case attribute.INT64SLICE:
		return v.AsInt64Slice()
	case attribute.FLOAT64SLICE:
		return v.AsFloat64Slice()
	case attribute.STRINGSLICE:
		return v.AsStringSlice()
	case attribute.BYTESLICE:
		return v.AsByteSlice() // encoding/json writes base64, as ingest does
	case attribute.SLICE:
		out := []any{}
		for _, e := range v.AsSlice() {
			out = append(out, attrValue(e))
		}
		return out
	case attribute.MAP:
		out := map[string]any{}
		for _, kv := range v.AsMap() {
			out[string(kv.Key)] = attrValue(kv.Value)
		}
		return out
	default:
		return nil
	}
}

// normalize turns json.Numbers into int64 when they are integers and
// float64 otherwise, so 1<<62+7 keeps its precision and 1.5e-9 compares
// equal to 0.0000000015.
func normalize(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(x.String(), 10, 64); err == nil {
			return i
		}
		f, err := strconv.ParseFloat(x.String(), 64)
		if err != nil {
			return x.String()
		}
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
		return x
	default:
		return v
	}
}
