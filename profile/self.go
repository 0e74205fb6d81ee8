package profile

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	otelpyroscope "github.com/grafana/otel-profiling-go"
	"github.com/grafana/pyroscope-go"
	"go.opentelemetry.io/otel/trace"

	"github.com/tailscope/tailscope/store"
)

// WrapTracerProvider returns tp with span profiling: while a span is
// active, its goroutine carries the pprof labels span_id and span_name, so
// every CPU sample taken meanwhile names the span it was spent in. It uses
// github.com/grafana/otel-profiling-go with the span scope "all spans":
// each span labels its own samples, and the profile of a span including
// its children is the merge over the span ids of its subtree (what
// store.StackQuery.SpanIDs takes). Spans the sampler drops get no span_id.
//
// feedsvc wraps each per-service provider where it builds them:
//
//	tp := profile.WrapTracerProvider(&serviceTP{service: s, current: f.current})
//
// and hands tp to otelhttp, otelpgx and redisotel as before.
func WrapTracerProvider(tp trace.TracerProvider) trace.TracerProvider {
	return otelpyroscope.NewTracerProvider(tp,
		otelpyroscope.WithSpanIDLabelScope(otelpyroscope.ScopeAllSpans),
		otelpyroscope.WithSpanNameLabelScope(otelpyroscope.ScopeAllSpans),
	)
}

// SelfOption configures StartSelfProfiling.
type SelfOption func(*selfConfig)

type selfConfig struct {
	uploadRate time.Duration
	log        *slog.Logger
	types      []store.ProfileType
}

// WithUploadRate sets how often profiles are cut and uploaded (default
// 15 s, pyroscope-go's default).
func WithUploadRate(d time.Duration) SelfOption { return func(c *selfConfig) { c.uploadRate = d } }

// WithSelfLogger sends pyroscope-go's messages to l: its errors (failed
// uploads) at Warn, the rest at Debug. By default they are dropped.
func WithSelfLogger(l *slog.Logger) SelfOption { return func(c *selfConfig) { c.log = l } }

// WithProfileTypes chooses what is profiled (default cpu, alloc, inuse
// and goroutines). Mutex and block profiles also need the caller to turn
// the runtime's sampling on (runtime.SetMutexProfileFraction,
// runtime.SetBlockProfileRate), which is process-wide and not free.
func WithProfileTypes(types ...store.ProfileType) SelfOption {
	return func(c *selfConfig) { c.types = types }
}

// StartSelfProfiling profiles this process continuously with pyroscope-go
// and uploads the profiles to a Pyroscope ingest endpoint: serverAddress is
// the base URL the handler's IngestPath is under (for tailscope,
// "http://127.0.0.1:4318" when the handler shares the OTLP/HTTP listener).
// appName becomes the profiles' service; tags become their labels.
// Combined with WrapTracerProvider, CPU samples name their spans.
//
// Profiling stops when ctx ends or stop is called (either may come first;
// stop may be called more than once). stop uploads what was collected
// since the last upload and waits for the uploads, which can take up to
// pyroscope-go's 30 s HTTP timeout when the server is down. The Go CPU
// profiler is process-wide: run one profiling session per process.
func StartSelfProfiling(ctx context.Context, serverAddress, appName string, tags map[string]string, opts ...SelfOption) (stop func(), err error) {
	cfg := selfConfig{uploadRate: 15 * time.Second, log: slog.New(slog.DiscardHandler),
		types: []store.ProfileType{store.ProfileCPU, store.ProfileAlloc, store.ProfileInuse, store.ProfileGoroutines}}
	for _, o := range opts {
		o(&cfg)
	}
	if serverAddress == "" || appName == "" {
		return nil, fmt.Errorf("profile: self profiling: server address and app name are required")
	}
	types, err := pyroscopeTypes(cfg.types)
	if err != nil {
		return nil, err
	}
	p, err := pyroscope.Start(pyroscope.Config{
		ApplicationName: appName,
		Tags:            tags,
		ServerAddress:   serverAddress,
		UploadRate:      cfg.uploadRate,
		Logger:          slogAdapter{cfg.log},
		ProfileTypes:    types,
	})
	if err != nil {
		return nil, fmt.Errorf("profile: self profiling: %w", err)
	}
	var once sync.Once
	done := make(chan struct{})
	stop = func() {
		once.Do(func() {
			close(done)
			// Flush first: Stop alone may drop uploads still queued.
			p.Flush(true)
			_ = p.Stop() // always nil in pyroscope-go 1.x
		})
	}
	go func() {
		select {
		case <-ctx.Done():
			stop()
		case <-done:
		}
	}()
	return stop, nil
}

func pyroscopeTypes(types []store.ProfileType) ([]pyroscope.ProfileType, error) {
	var out []pyroscope.ProfileType
	for _, t := range types {
		switch t {
		case store.ProfileCPU:
			out = append(out, pyroscope.ProfileCPU)
		case store.ProfileAlloc:
			out = append(out, pyroscope.ProfileAllocObjects, pyroscope.ProfileAllocSpace)
		case store.ProfileInuse:
			out = append(out, pyroscope.ProfileInuseObjects, pyroscope.ProfileInuseSpace)
		case store.ProfileGoroutines:
			out = append(out, pyroscope.ProfileGoroutines)
		case store.ProfileMutex:
			out = append(out, pyroscope.ProfileMutexCount, pyroscope.ProfileMutexDuration)
		case store.ProfileBlock:
			out = append(out, pyroscope.ProfileBlockCount, pyroscope.ProfileBlockDuration)
		default:
			return nil, fmt.Errorf("profile: self profiling: unknown profile type %q", t)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("profile: self profiling: no profile types")
	}
	return out, nil
}

// slogAdapter is pyroscope-go's Logger on slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Infof(format string, args ...any) { a.log(slog.LevelDebug, format, args) }

func (a slogAdapter) Debugf(format string, args ...any) { a.log(slog.LevelDebug, format, args) }

func (a slogAdapter) Errorf(format string, args ...any) { a.log(slog.LevelWarn, format, args) }

func (a slogAdapter) log(level slog.Level, format string, args []any) {
	// pyroscope-go logs on every upload; format only what is kept.
	if a.l.Enabled(context.Background(), level) {
		a.l.Log(context.Background(), level, fmt.Sprintf(format, args...), "component", "pyroscope")
	}
}
