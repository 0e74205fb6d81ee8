package profile

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/grafana/pyroscope-go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/sqlite"
)

// burnedFunction is burnCPU's name as pprof reports it.
const burnedFunction = "github.com/tailscope/tailscope/profile.burnCPU"

// burnCPU spins for about d of wall time, doing the arithmetic itself so
// the CPU samples land in this function rather than in a callee.
//
//go:noinline
func burnCPU(d time.Duration) uint64 {
	x := uint64(1)
	for start := time.Now(); time.Since(start) < d; {
		for range 200_000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	return x
}

// ingestServer serves the handler on 127.0.0.1:0 in front of a fresh
// SQLite store, as `tailscope serve` would.
func ingestServer(t *testing.T) (*httptest.Server, *sqlite.DB) {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "tailscope.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	mux := http.NewServeMux()
	mux.Handle(IngestPath, newTestHandler(t, DefaultConfig(), db))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, db
}

// logBuffer collects pyroscope-go's messages; they are printed only when a
// test fails, and never after it ended.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Infof(f string, a ...any)  {}
func (l *logBuffer) Debugf(f string, a ...any) {}
func (l *logBuffer) Errorf(f string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.buf, f+"\n", a...)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// hasFunction reports whether name is among the first n functions by self.
func hasFunction(stacks []store.StackValue, name string, n int) bool {
	return slices.ContainsFunc(TopFunctions(Tree(stacks), n, BySelf), func(f FunctionStat) bool { return f.Name == name })
}

// TestPyroscopeClient pushes profiles from the real pyroscope-go client to
// the handler: CPU burned on purpose inside pprof labels naming a span must
// come back as that span's top function.
func TestPyroscopeClient(t *testing.T) {
	srv, db := ingestServer(t)
	logs := &logBuffer{}
	p, err := pyroscope.Start(pyroscope.Config{
		ApplicationName: "tailscope-test",
		ServerAddress:   srv.URL,
		UploadRate:      time.Second,
		Tags:            map[string]string{"host": "test-host"},
		Logger:          logs,
		ProfileTypes: []pyroscope.ProfileType{pyroscope.ProfileCPU, pyroscope.ProfileAllocSpace,
			pyroscope.ProfileAllocObjects, pyroscope.ProfileInuseSpace, pyroscope.ProfileInuseObjects, pyroscope.ProfileGoroutines},
	})
	if err != nil {
		t.Fatalf("pyroscope.Start: %v", err)
	}
	defer p.Stop()

	const spanHex = "00f067aa0ba902b7"
	span, _ := store.ParseSpanID(spanHex)
	ctx := t.Context()
	q := store.StackQuery{Type: store.ProfileCPU, SpanIDs: []store.SpanID{span}}
	var stacks []store.StackValue
	// Burn in rounds until the profiler has caught enough of it: a loaded
	// machine gives the test less CPU per round, and this waits for data,
	// not for a time.
	for round := 0; round < 40; round++ {
		pprof.Do(ctx, pprof.Labels("span_id", spanHex, "span_name", "burn span"), func(context.Context) {
			burnCPU(150 * time.Millisecond)
		})
		p.Flush(true) // cut the profiles and wait for their uploads
		if stacks, err = db.Stacks(ctx, q); err != nil {
			t.Fatalf("Stacks: %v", err)
		}
		if hasFunction(stacks, burnedFunction, 1) && Tree(stacks).Total >= 50_000_000 {
			break
		}
	}
	if !hasFunction(stacks, burnedFunction, 1) {
		t.Fatalf("the span's top function is not %s; top: %+v\npyroscope-go log:\n%s",
			burnedFunction, TopFunctions(Tree(stacks), 5, BySelf), logs)
	}

	// The span is linked: the waterfall's question "does this span have a
	// profile?" says yes, with its CPU time.
	spans, err := db.ProfiledSpans(ctx, []store.SpanID{span})
	if err != nil || len(spans) == 0 || spans[0].Type != store.ProfileCPU || spans[0].Value <= 0 {
		t.Errorf("ProfiledSpans = %+v, %v; want CPU time for span %s", spans, err, spanHex)
	}
	// The whole service's CPU includes the burn, outside the span filter.
	all, err := db.Stacks(ctx, store.StackQuery{Service: "tailscope-test", Type: store.ProfileCPU})
	if err != nil || !hasFunction(all, burnedFunction, 3) {
		t.Errorf("service CPU profile lacks %s: %v", burnedFunction, err)
	}
	// The other profile types arrived under the application name,
	// stripped of pyroscope-go's labels.
	series, err := db.ProfileSeries(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatalf("ProfileSeries: %v", err)
	}
	got := map[string]bool{}
	for _, s := range series {
		got[s.Service+" "+string(s.Type)+"/"+s.Unit] = true
	}
	for _, want := range []string{
		"tailscope-test cpu/nanoseconds", "tailscope-test alloc/bytes", "tailscope-test alloc/count",
		"tailscope-test inuse/bytes", "tailscope-test goroutines/count",
	} {
		if !got[want] {
			t.Errorf("no %s profiles stored; have %v\npyroscope-go log:\n%s", want, got, logs)
		}
	}
}

// TestSelfProfilingWithSpans runs StartSelfProfiling with an OpenTelemetry
// tracer provider wrapped by WrapTracerProvider: the CPU of a span must be
// linked to that span's id without any pprof code in the traced function.
func TestSelfProfilingWithSpans(t *testing.T) {
	srv, db := ingestServer(t)
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	tracer := WrapTracerProvider(tp).Tracer("tailscope/profile-test")

	var (
		ids    []store.SpanID
		stacks []store.StackValue
	)
	for attempt := 0; attempt < 10 && !hasFunction(stacks, burnedFunction, 1); attempt++ {
		ctx, cancel := context.WithCancel(t.Context())
		stop, err := StartSelfProfiling(ctx, srv.URL, "self-test", map[string]string{"env": "test"},
			WithUploadRate(time.Second), WithProfileTypes(store.ProfileCPU), WithSelfLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			cancel()
			t.Fatalf("StartSelfProfiling: %v", err)
		}
		for range 3 {
			_, span := tracer.Start(ctx, "GET /burn")
			burnCPU(150 * time.Millisecond)
			span.End()
			ids = append(ids, store.SpanID(span.SpanContext().SpanID()))
		}
		stop() // uploads what was collected
		cancel()
		stop() // a second stop, after the context ended too, does nothing
		stacks, err = db.Stacks(t.Context(), store.StackQuery{Type: store.ProfileCPU, SpanIDs: ids})
		if err != nil {
			t.Fatalf("Stacks: %v", err)
		}
	}
	if !hasFunction(stacks, burnedFunction, 1) {
		t.Fatalf("spans' top function is not %s; top: %+v", burnedFunction, TopFunctions(Tree(stacks), 5, BySelf))
	}
	profiled, err := db.ProfiledSpans(t.Context(), ids)
	if err != nil || len(profiled) == 0 {
		t.Errorf("ProfiledSpans(%d spans) = %+v, %v; want some with CPU", len(ids), profiled, err)
	}
}

func TestStartSelfProfilingArguments(t *testing.T) {
	tests := []struct {
		name, addr, app string
		opts            []SelfOption
	}{
		{"no address", "", "app", nil},
		{"no app", "http://127.0.0.1:1", "", nil},
		{"unknown type", "http://127.0.0.1:1", "app", []SelfOption{WithProfileTypes("wall")}},
		{"no types", "http://127.0.0.1:1", "app", []SelfOption{WithProfileTypes()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stop, err := StartSelfProfiling(t.Context(), tc.addr, tc.app, nil, tc.opts...)
			if err == nil {
				stop()
				t.Fatalf("StartSelfProfiling accepted %s", tc.name)
			}
		})
	}
}
