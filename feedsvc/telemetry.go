package feedsvc

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.39.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// generation is one deployed version: a tracer provider per service (the
// resource, which carries service.version, is immutable, so a deploy builds
// new providers) and a count of the requests still running on it, so the
// old providers are shut down, flushing their spans, only once those end.
type generation struct {
	version   string
	behaviour behaviour
	providers map[string]*sdktrace.TracerProvider
	// tracing is what spans start from: the providers, wrapped by
	// Config.WrapTracerProvider when set (span profiles).
	tracing map[string]trace.TracerProvider

	mu      sync.Mutex
	active  int
	retired bool
	drained chan struct{}
}

type generationKey struct{}

// acquire registers a request on g; false means g was retired meanwhile
// and the caller must load the current generation again.
func (g *generation) acquire() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.retired {
		return false
	}
	g.active++
	return true
}

// hold registers work that outlives the request holding g (an async
// call), so g's spans are flushed only after it: the caller must hold an
// acquisition of g, which keeps g from draining meanwhile.
func (g *generation) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.active++
}

func (g *generation) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.active--
	if g.retired && g.active == 0 {
		close(g.drained)
	}
}

// retire stops new requests from joining g; g.drained closes when the
// running ones have ended.
func (g *generation) retire() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.retired = true
	if g.active == 0 {
		close(g.drained)
	}
}

func (g *generation) shutdown(ctx context.Context) error {
	var errs []error
	for _, s := range services {
		if err := g.providers[s].Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s, err))
		}
	}
	return errors.Join(errs...)
}

// telemetry builds the tracer providers of a generation.
type telemetry struct {
	cfg      Config
	instance string // service.instance.id, stable across deploys
}

func (t *telemetry) newGeneration(ctx context.Context, version string) (*generation, error) {
	g := &generation{
		version:   version,
		behaviour: behaviourOf(version, t.cfg.DeadlineScale),
		providers: map[string]*sdktrace.TracerProvider{},
		tracing:   map[string]trace.TracerProvider{},
		drained:   make(chan struct{}),
	}
	for _, s := range services {
		tp, err := t.newProvider(ctx, s, version)
		if err != nil {
			_ = g.shutdown(ctx) // the ones built so far; nothing was exported yet
			return nil, err
		}
		g.providers[s] = tp
		g.tracing[s] = tp
		if t.cfg.WrapTracerProvider != nil {
			g.tracing[s] = t.cfg.WrapTracerProvider(tp)
		}
	}
	return g, nil
}

func (t *telemetry) newProvider(ctx context.Context, service, version string) (*sdktrace.TracerProvider, error) {
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(
			semconv.ServiceName(service),
			semconv.ServiceVersion(version),
			semconv.ServiceNamespace("feedsvc"),
			semconv.ServiceInstanceID(t.instance+"/"+service),
			attribute.String("deployment.environment", t.cfg.Environment),
			semconv.DeploymentEnvironmentName(t.cfg.Environment),
			attribute.String(AttrMode, string(t.cfg.mode())),
		),
	)
	if err != nil {
		return nil, fmt.Errorf("feedsvc: resource for %s: %w", service, err)
	}
	exp := t.cfg.Exporter
	if exp == nil {
		exp, err = newOTLPExporter(ctx, t.cfg.OTLPEndpoint)
		if err != nil {
			return nil, err
		}
	} else {
		exp = sharedExporter{exp}
	}
	return sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		// Parent-based, so background work under an unsampled context
		// (fault injection) makes no spans.
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
		sdktrace.WithSpanProcessor(semconvProcessor{}),
		sdktrace.WithBatcher(exp,
			sdktrace.WithBatchTimeout(t.cfg.ExportDelay),
			sdktrace.WithMaxQueueSize(16384),
			sdktrace.WithMaxExportBatchSize(2048),
		),
	), nil
}

func newOTLPExporter(ctx context.Context, endpoint string) (sdktrace.SpanExporter, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("feedsvc: OTLP endpoint: %w", err)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(u.String()))
	if err != nil {
		return nil, fmt.Errorf("feedsvc: OTLP exporter: %w", err)
	}
	return exp, nil
}

// sharedExporter lets several providers (six services, old and new
// generations) use one caller-owned exporter: a provider's shutdown must
// not shut it down under the others.
type sharedExporter struct{ sdktrace.SpanExporter }

func (sharedExporter) Shutdown(context.Context) error { return nil }

// semconvProcessor fills in, at span start, the attributes instrumentations
// do not set the way tailscope's analysis reads them:
//   - tenant.id from the request's baggage, so database, cache and client
//     spans carry the tenant without every call site repeating it;
//   - db.query.text from db.statement (redisotel still speaks the older
//     semantic conventions).
type semconvProcessor struct{}

func (semconvProcessor) OnStart(parent context.Context, s sdktrace.ReadWriteSpan) {
	if m := baggage.FromContext(parent).Member(AttrTenant); m.Value() != "" {
		s.SetAttributes(attribute.String(AttrTenant, m.Value()))
	}
	var stmt string
	for _, kv := range s.Attributes() {
		switch kv.Key {
		case "db.query.text":
			return
		case "db.statement":
			stmt = kv.Value.AsString()
		}
	}
	if stmt != "" {
		s.SetAttributes(attribute.String("db.query.text", stmt))
	}
}

func (semconvProcessor) OnEnd(sdktrace.ReadOnlySpan)      {}
func (semconvProcessor) Shutdown(context.Context) error   { return nil }
func (semconvProcessor) ForceFlush(context.Context) error { return nil }

// withTenant puts the tenant in the baggage that otelhttp propagates.
func withTenant(ctx context.Context, tenant string) context.Context {
	m, err := baggage.NewMember(AttrTenant, tenant)
	if err != nil {
		return ctx // tenant names are validated identifiers; cannot happen
	}
	b, err := baggage.FromContext(ctx).SetMember(m)
	if err != nil {
		return ctx
	}
	return baggage.ContextWithBaggage(ctx, b)
}

// propagator carries the trace context and the tenant baggage across hops.
func propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// serviceTP is the trace.TracerProvider every instrumentation of one
// service is built with (otelhttp, otelpgx, redisotel are configured once).
// It picks the SDK provider per span: the generation the request runs on
// (from its context), else the current one. That is how a deploy swaps
// every service's resource without rebuilding clients and pools.
type serviceTP struct {
	embedded.TracerProvider
	service string
	current func() *generation
}

func (p *serviceTP) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return &serviceTracer{p: p, name: name, opts: opts}
}

type serviceTracer struct {
	embedded.Tracer
	p    *serviceTP
	name string
	opts []trace.TracerOption
}

func (t *serviceTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	g, ok := ctx.Value(generationKey{}).(*generation)
	if !ok {
		g = t.p.current()
	}
	return g.tracing[t.p.service].Tracer(t.name, t.opts...).Start(ctx, name, opts...)
}
