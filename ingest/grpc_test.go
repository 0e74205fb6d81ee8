package ingest

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/status"

	"github.com/tailscope/tailscope/ingest/internal/otlptest"
	"github.com/tailscope/tailscope/store"
)

// servedReceiver runs Serve on two loopback listeners, as the binary does.
type servedReceiver struct {
	*testReceiver
	httpAddr, grpcAddr string
}

func serveReceiver(t *testing.T, cfg Config) *servedReceiver {
	t.Helper()
	tr := newTestReceiver(t, cfg) // its httptest server goes unused here
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Serve(ctx, hl, gl) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &servedReceiver{testReceiver: tr, httpAddr: hl.Addr().String(), grpcAddr: gl.Addr().String()}
}

// sdkSpans are spans as the OpenTelemetry Go SDK hands them to exporters:
// a feed-api server span calling profile-svc, with a tenant and sizes.
func sdkSpans(t *testing.T, seed byte) []sdktrace.ReadOnlySpan {
	t.Helper()
	res := resource.NewSchemaless(
		attribute.String("service.name", "feed-api"),
		attribute.String("service.version", "v1"),
		attribute.String("host.name", "web-1"),
	)
	tid := trace.TraceID{seed, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	root := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{seed, 1, 1, 1, 1, 1, 1, 1}, TraceFlags: trace.FlagsSampled})
	child := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{seed, 2, 2, 2, 2, 2, 2, 2}, TraceFlags: trace.FlagsSampled})
	start := time.Unix(0, otlptest.Base)
	stubs := tracetest.SpanStubs{
		{
			Name: "GET /v1/feed", SpanContext: root, SpanKind: trace.SpanKindServer,
			StartTime: start, EndTime: start.Add(480 * time.Millisecond),
			Attributes: []attribute.KeyValue{
				attribute.String("http.request.method", "GET"),
				attribute.String("tenant.id", "acme"),
				attribute.Int("http.response.status_code", 200),
				attribute.Int("http.response.body.size", 4096),
			},
			Resource: res,
		},
		{
			Name: "GET", SpanContext: child, Parent: root, SpanKind: trace.SpanKindClient,
			StartTime: start.Add(10 * time.Millisecond), EndTime: start.Add(450 * time.Millisecond),
			Attributes: []attribute.KeyValue{
				attribute.String("server.address", "profile-svc"),
				attribute.Int("http.request.body.size", 100),
				attribute.Int("http.response.body.size", 900),
				attribute.StringSlice("tags", []string{"a", "b"}),
				attribute.Float64("weight", 0.5),
			},
			Events: []sdktrace.Event{{Name: "retry", Time: start.Add(200 * time.Millisecond),
				Attributes: []attribute.KeyValue{attribute.Int("attempt", 2)}}},
			Status:   sdktrace.Status{Code: codes.Error, Description: "deadline exceeded"},
			Resource: res,
		},
	}
	return stubs.Snapshots()
}

type exporter interface {
	ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error
	Shutdown(ctx context.Context) error
}

func newExporter(t *testing.T, sr *servedReceiver, kind string, retry bool) exporter {
	t.Helper()
	ctx := context.Background()
	var (
		exp exporter
		err error
	)
	switch kind {
	case "grpc", "grpc+gzip":
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(sr.grpcAddr), otlptracegrpc.WithInsecure(),
			otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: retry, InitialInterval: 10 * time.Millisecond,
				MaxInterval: 2 * time.Second, MaxElapsedTime: time.Minute})}
		if kind == "grpc+gzip" {
			opts = append(opts, otlptracegrpc.WithCompressor("gzip"))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	default:
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(sr.httpAddr), otlptracehttp.WithInsecure(),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: retry, InitialInterval: 10 * time.Millisecond,
				MaxInterval: 2 * time.Second, MaxElapsedTime: time.Minute})}
		if strings.Contains(kind, "gzip") {
			opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
		}
		if strings.Contains(kind, "json") {
			opts = append(opts, otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	}
	if err != nil {
		t.Fatalf("new %s exporter: %v", kind, err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp
}

var exporterKinds = []string{"grpc", "grpc+gzip", "http", "http+gzip", "http+json", "http+json+gzip"}

func TestOTelExporters(t *testing.T) {
	for _, kind := range exporterKinds {
		t.Run(kind, func(t *testing.T) {
			sr := serveReceiver(t, testConfig())
			exp := newExporter(t, sr, kind, false)
			if err := exp.ExportSpans(context.Background(), sdkSpans(t, 1)); err != nil {
				t.Fatalf("ExportSpans: %v", err)
			}
			stored := sr.w.stored()
			if len(stored) != 2 {
				t.Fatalf("stored %d spans, want 2", len(stored))
			}
			var server, client store.Span
			for _, s := range stored {
				if s.Kind == store.KindServer {
					server = s
				} else {
					client = s
				}
			}
			if server.Service != "feed-api" || server.Version != "v1" || server.Host != "web-1" ||
				server.Tenant != "acme" || server.PayloadBytes != 4096 || server.Dependency != "" ||
				server.DurationNano != 480e6 || !server.IsRoot() {
				t.Errorf("server span = %+v", server)
			}
			if client.Dependency != "profile-svc" || client.PayloadBytes != 1000 || client.ParentSpanID != server.SpanID ||
				client.StatusCode != store.StatusError || client.StatusMessage != "deadline exceeded" ||
				len(client.Events) != 1 || client.Events[0].Name != "retry" {
				t.Errorf("client span = %+v", client)
			}
			wantAttrs := store.AttributesOf(map[string]any{"server.address": "profile-svc", "http.request.body.size": 100,
				"http.response.body.size": 900, "tags": []any{"a", "b"}, "weight": 0.5})
			if !client.Attributes.Equal(wantAttrs) {
				t.Errorf("client attributes = %s", client.Attributes)
			}
		})
	}
}

// TestOTelExportersRetry checks the retry contract end to end: the store
// fails once, the receiver answers 503 / Unavailable with a retry delay,
// and the SDK's exporter retries by itself and succeeds.
func TestOTelExportersRetry(t *testing.T) {
	for _, kind := range []string{"grpc", "http"} {
		t.Run(kind, func(t *testing.T) {
			sr := serveReceiver(t, testConfig())
			var once sync.Once
			sr.w.setFail(func([]store.Span) error {
				var err error
				once.Do(func() { err = errStoreDown })
				return err
			})
			exp := newExporter(t, sr, kind, true)
			if err := exp.ExportSpans(context.Background(), sdkSpans(t, 2)); err != nil {
				t.Fatalf("ExportSpans with retry: %v", err)
			}
			if got := sr.w.callSizes(); len(got) != 2 {
				t.Errorf("WriteSpans calls = %v, want a failed one then a good one", got)
			}
			if got := len(sr.w.stored()); got != 2 {
				t.Errorf("stored %d spans, want 2", got)
			}
		})
	}
}

// TestOTelExporterPartialSuccess checks the SDK understands our
// partial_success answer: ExportSpans reports the rejected span.
func TestOTelExporterPartialSuccess(t *testing.T) {
	for _, kind := range []string{"grpc", "http", "http+json"} {
		t.Run(kind, func(t *testing.T) {
			sr := serveReceiver(t, testConfig())
			spans := sdkSpans(t, 3)
			stubs := tracetest.SpanStubsFromReadOnlySpans(spans)
			stubs[1].EndTime = stubs[1].StartTime.Add(-time.Second)
			err := newExporter(t, sr, kind, false).ExportSpans(context.Background(), stubs.Snapshots())
			if err == nil || !strings.Contains(err.Error(), "end time before start time") {
				t.Errorf("ExportSpans = %v, want a partial success naming the rejection", err)
			}
			if got := len(sr.w.stored()); got != 1 {
				t.Errorf("stored %d spans, want 1", got)
			}
		})
	}
}

func dialGRPC(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// exportRaw sends body as an ExportTraceServiceRequest (through the
// receiver's own raw codec, so tests can put any payload on the wire) and
// decodes the answer.
func exportRaw(t *testing.T, conn *grpc.ClientConn, body []byte, opts ...grpc.CallOption) (ptraceotlp.ExportResponse, error) {
	t.Helper()
	out := &rawMessage{}
	opts = append(opts, grpc.ForceCodecV2(rawCodec{}))
	if err := conn.Invoke(context.Background(), traceExportMethod, &rawMessage{b: body}, out, opts...); err != nil {
		return ptraceotlp.ExportResponse{}, err
	}
	resp := ptraceotlp.NewExportResponse()
	if err := resp.UnmarshalProto(out.b); err != nil {
		t.Fatalf("decode response: %v", err)
	}
	return resp, nil
}

func retryDelay(err error) (time.Duration, bool) {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, false
}

func TestGRPCStatuses(t *testing.T) {
	cfg := testConfig()
	cfg.MaxDecompressedBytes = 1 << 20
	cfg.MaxSpansPerRequest = 200
	cfg.QueueSpans = 200
	sr := serveReceiver(t, cfg)
	conn := dialGRPC(t, sr.grpcAddr)
	client := ptraceotlp.NewGRPCClient(conn)
	feed := func(n int, seed uint64) ptraceotlp.ExportRequest {
		return ptraceotlp.NewExportRequestFromTraces(otlptest.FeedTraces(n, seed))
	}
	keepsServing := func(t *testing.T) {
		t.Helper()
		if _, err := client.Export(context.Background(), feed(5, uint64(time.Now().UnixNano()))); err != nil {
			t.Fatalf("valid export after the case: %v", err)
		}
	}
	good := otlptest.Span{TraceID: bytes.Repeat([]byte{1}, 16), SpanID: bytes.Repeat([]byte{2}, 8),
		Name: "good", Start: otlptest.Base, End: otlptest.Base + 5}
	stored := 0 // spans stored before the case

	tests := []struct {
		name      string
		call      func(t *testing.T) (ptraceotlp.ExportResponse, error)
		wantCode  grpccodes.Code
		wantRetry bool
		check     func(t *testing.T, resp ptraceotlp.ExportResponse)
	}{
		{name: "ok", wantCode: grpccodes.OK,
			call: func(t *testing.T) (ptraceotlp.ExportResponse, error) {
				return client.Export(context.Background(), feed(50, 1))
			},
			check: func(t *testing.T, resp ptraceotlp.ExportResponse) {
				if resp.PartialSuccess().RejectedSpans() != 0 {
					t.Errorf("rejected %d", resp.PartialSuccess().RejectedSpans())
				}
			}},
		{name: "gzip", wantCode: grpccodes.OK,
			call: func(t *testing.T) (ptraceotlp.ExportResponse, error) {
				return client.Export(context.Background(), feed(50, 2), grpc.UseCompressor(gzip.Name))
			}},
		{name: "partial success", wantCode: grpccodes.OK,
			call: func(t *testing.T) (ptraceotlp.ExportResponse, error) {
				td := otlptest.FeedTraces(10, 3)
				td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetTraceID([16]byte{})
				return client.Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(td))
			},
			check: func(t *testing.T, resp ptraceotlp.ExportResponse) {
				if resp.PartialSuccess().RejectedSpans() != 1 || !strings.Contains(resp.PartialSuccess().ErrorMessage(), "invalid trace id") {
					t.Errorf("partial success = %d %q", resp.PartialSuccess().RejectedSpans(), resp.PartialSuccess().ErrorMessage())
				}
			}},
		// A payload pdata refuses is refused whole, never reported as a
		// success (an earlier codec did, when its interceptor was missing).
		{name: "wrong-length ids", wantCode: grpccodes.InvalidArgument,
			call: func(t *testing.T) (ptraceotlp.ExportResponse, error) {
				bad := good
				bad.TraceID = []byte{7, 7, 7}
				resp, err := exportRaw(t, conn, otlptest.ProtoRequest("svc", good, bad))
				if msg := status.Convert(err).Message(); !strings.Contains(msg, "decode protobuf") || !strings.Contains(msg, "id") {
					t.Errorf("message %q does not say what was wrong", msg)
				}
				if n := len(sr.w.stored()); n != stored {
					t.Errorf("stored %d spans, want %d: nothing of a refused request", n, stored)
				}
				return resp, err
			}},
		{name: "empty request", wantCode: grpccodes.OK,
			call: func(t *testing.T) (ptraceotlp.ExportResponse, error) {
				return exportRaw(t, conn, nil)
			}},
		{name: "undecodable", wantCode: grpccodes.InvalidArgument,
			call: func(t *testing.T) (ptraceotlp.ExportResponse, error) {
				return exportRaw(t, conn, []byte("\x0a\xff\xff\xff"))
			}},
		{name: "undecodable gzip", wantCode: grpccodes.InvalidArgument,
			call: func(t *testing.T) (ptraceotlp.ExportResponse, error) {
				return exportRaw(t, conn, []byte("\x08\x01\x0a\x05"), grpc.UseCompressor(gzip.Name))
			}},
		{name: "too many spans", wantCode: grpccodes.InvalidArgument,
			call: func(t *testing.T) (ptraceotlp.ExportResponse, error) {
				return client.Export(context.Background(), feed(201, 4))
			}},
		{name: "message too large", wantCode: grpccodes.ResourceExhausted,
			call: func(t *testing.T) (ptraceotlp.ExportResponse, error) {
				return exportRaw(t, conn, make([]byte, 2<<20)) // zeros: bigger than MaxRecvMsgSize
			}},
		{name: "gzip bomb", wantCode: grpccodes.ResourceExhausted,
			call: func(t *testing.T) (ptraceotlp.ExportResponse, error) {
				return exportRaw(t, conn, make([]byte, 8<<20), grpc.UseCompressor(gzip.Name))
			}},
		{name: "store unavailable", wantCode: grpccodes.Unavailable, wantRetry: true,
			call: func(t *testing.T) (ptraceotlp.ExportResponse, error) {
				sr.w.setFail(func([]store.Span) error { return errStoreDown })
				defer sr.w.setFail(nil)
				return client.Export(context.Background(), feed(10, 5))
			}},
		{name: "queue full", wantCode: grpccodes.ResourceExhausted, wantRetry: true,
			call: func(t *testing.T) (ptraceotlp.ExportResponse, error) {
				entered, release := sr.w.hold()
				defer release()
				first := make(chan error, 1)
				go func() {
					_, err := client.Export(context.Background(), feed(150, 6))
					first <- err
				}()
				<-entered
				resp, err := client.Export(context.Background(), feed(100, 7))
				release()
				if err := <-first; err != nil {
					t.Errorf("first export: %v", err)
				}
				return resp, err
			}},
		{name: "decode slots full", wantCode: grpccodes.ResourceExhausted, wantRetry: true,
			call: func(t *testing.T) (ptraceotlp.ExportResponse, error) {
				for range cap(sr.slots) {
					sr.slots <- struct{}{}
				}
				defer func() {
					for range cap(sr.slots) {
						<-sr.slots
					}
				}()
				return client.Export(context.Background(), feed(5, 8))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stored = len(sr.w.stored())
			resp, err := tt.call(t)
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("code %v (%v), want %v", got, err, tt.wantCode)
			}
			if d, ok := retryDelay(err); ok != tt.wantRetry || (ok && d != time.Second) {
				t.Errorf("RetryInfo = %v, %v; want present=%v with 1s", d, ok, tt.wantRetry)
			}
			if tt.check != nil {
				tt.check(t, resp)
			}
			keepsServing(t)
		})
	}
}

func TestServeShutdownWaitsForCommits(t *testing.T) {
	tr := newTestReceiver(t, testConfig())
	hl, _ := net.Listen("tcp", "127.0.0.1:0")
	gl, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Serve(ctx, hl, gl) }()

	entered, release := tr.w.hold()
	defer release()
	conn := dialGRPC(t, gl.Addr().String())
	exported := make(chan error, 1)
	go func() {
		_, err := ptraceotlp.NewGRPCClient(conn).Export(context.Background(),
			ptraceotlp.NewExportRequestFromTraces(otlptest.FeedTraces(5, 1)))
		exported <- err
	}()
	<-entered
	cancel() // shut down with an export waiting for its commit
	release()
	// A graceful stop lets the export finish: it succeeds, and Serve
	// returns only after it.
	if err := <-exported; err != nil {
		t.Errorf("in-flight export failed during shutdown: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if got := len(tr.w.stored()); got != 5 {
		t.Errorf("stored %d spans, want 5", got)
	}
}

// A stop that comes before the servers start (a signal right after start)
// is a clean stop, not an error: gRPC's Serve answers ErrServerStopped
// when GracefulStop ran first.
func TestServeStoppedBeforeItStarts(t *testing.T) {
	tr := newTestReceiver(t, testConfig())
	for i := range 20 { // the order of Serve and the stop is up to the scheduler
		hl, _ := net.Listen("tcp", "127.0.0.1:0")
		gl, _ := net.Listen("tcp", "127.0.0.1:0")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := tr.Serve(ctx, hl, gl); err != nil {
			t.Fatalf("run %d: Serve stopped before it started: %v", i, err)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"queue smaller than a request", func(c *Config) { c.QueueSpans = c.MaxSpansPerRequest - 1 }},
		{"no writers", func(c *Config) { c.Writers = 0 }},
		{"zero body limit", func(c *Config) { c.MaxRequestBytes = 0 }},
		{"sub-second retry", func(c *Config) { c.RetryAfter = 10 * time.Millisecond }},
		{"huge names", func(c *Config) { c.MaxNameBytes = 1 << 20 }},
		{"no decode slots", func(c *Config) { c.MaxConcurrentDecodes = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.edit(&cfg)
			if _, err := New(cfg, newMemWriter(), nil, nil, nil); err == nil {
				t.Error("New accepted a bad config")
			}
		})
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig invalid: %v", err)
	}
	if _, err := New(DefaultConfig(), nil, nil, nil, nil); err == nil {
		t.Error("New accepted a nil writer")
	}
}

func TestMetricsRegisterOnce(t *testing.T) {
	tr := newTestReceiver(t, testConfig())
	// A second receiver on the same registry is a wiring mistake.
	if _, err := New(testConfig(), newMemWriter(), nil, tr.reg, nil); err == nil {
		t.Error("second New on one registry succeeded")
	}
}
