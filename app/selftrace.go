package app

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/tailscope/tailscope/profile"
)

// selfTracing wraps h so tailscope's own UI and API requests are traced
// with the OTel SDK and exported to an OTLP/HTTP endpoint — its own
// receiver included, so its performance work uses its own tools. The OTLP
// receiver itself is never traced: that would trace the export of traces.
func selfTracing(ctx context.Context, endpoint, version string, h http.Handler, spanProfiles bool) (http.Handler, func(context.Context) error, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil, nil, fmt.Errorf("self traces endpoint %q: want an http(s) URL or \"self\"", endpoint)
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(u.Host)}
	if u.Scheme == "http" {
		opts = append(opts, otlptracehttp.WithInsecure())
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("self traces exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName("tailscope"), semconv.ServiceVersion(version)))
	if err != nil {
		return nil, nil, fmt.Errorf("self traces resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	var provider trace.TracerProvider = tp
	if spanProfiles {
		// CPU samples taken while a request is served name its span.
		provider = profile.WrapTracerProvider(tp)
	}
	wrapped := otelhttp.NewHandler(h, "tailscope",
		otelhttp.WithTracerProvider(provider),
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + routeName(r.URL.Path) }),
	)
	return wrapped, tp.Shutdown, nil
}

// routeName turns a path into a low-cardinality span name: ids (hex trace
// ids, numbers) and asset hashes become placeholders.
func routeName(path string) string {
	if strings.HasPrefix(path, "/static/") {
		return "/static/{asset}"
	}
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if isID(p) {
			parts[i] = "{id}"
		}
	}
	return strings.Join(parts, "/")
}

func isID(s string) bool {
	if s == "" {
		return false
	}
	digits, hexes := true, true
	for _, c := range s {
		if c < '0' || c > '9' {
			digits = false
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			hexes = false
		}
	}
	return digits || (hexes && len(s) >= 16)
}
