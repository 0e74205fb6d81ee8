package feedsvc

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// span is a received span, flattened for assertions.
type span struct {
	Service  string
	Resource map[string]any
	TraceID  string
	SpanID   string
	Parent   string
	Name     string
	Kind     ptrace.SpanKind
	Attrs    map[string]any
	Status   ptrace.StatusCode
	Duration time.Duration
}

func (s span) version() string { return fmt.Sprint(s.Resource["service.version"]) }

func (s span) str(key string) string {
	v, ok := s.Attrs[key]
	if !ok {
		return ""
	}
	return fmt.Sprint(v)
}

func (s span) int(key string) int64 {
	v, _ := s.Attrs[key].(int64)
	return v
}

// receiver is an OTLP/HTTP endpoint (protobuf, as otlptracehttp sends) that
// keeps every span it is sent: the cluster's real export path, in-process.
type receiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []span
}

func newReceiver(tb testing.TB) *receiver {
	tb.Helper()
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/v1/traces" || req.Method != http.MethodPost {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		er := ptraceotlp.NewExportRequest()
		if err := er.UnmarshalProto(body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.add(er.Traces())
		out, _ := ptraceotlp.NewExportResponse().MarshalProto()
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	tb.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) url() string { return r.srv.URL }

func (r *receiver) add(td ptrace.Traces) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range td.ResourceSpans().All() {
		res := rs.Resource().Attributes().AsRaw()
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				r.spans = append(r.spans, span{
					Service:  fmt.Sprint(res["service.name"]),
					Resource: res,
					TraceID:  hexID(s.TraceID()),
					SpanID:   hexSpan(s.SpanID()),
					Parent:   hexSpan(s.ParentSpanID()),
					Name:     s.Name(),
					Kind:     s.Kind(),
					Attrs:    s.Attributes().AsRaw(),
					Status:   s.Status().Code(),
					Duration: s.EndTimestamp().AsTime().Sub(s.StartTimestamp().AsTime()),
				})
			}
		}
	}
}

func hexID(id pcommon.TraceID) string { return hex.EncodeToString(id[:]) }

func hexSpan(id pcommon.SpanID) string {
	if id.IsEmpty() {
		return ""
	}
	return hex.EncodeToString(id[:])
}

func (r *receiver) all() []span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]span(nil), r.spans...)
}

// startCluster starts a cluster exporting to a new receiver and closes it
// (flushing) at cleanup.
func startCluster(tb testing.TB, cfg Config) (*Cluster, *receiver) {
	tb.Helper()
	rcv := newReceiver(tb)
	cfg.OTLPEndpoint = rcv.url()
	if cfg.CatalogItems == 0 {
		cfg.CatalogItems = 20000
	}
	if cfg.DeadlineScale == 0 {
		// The machine may be slow (race detector, shared cores): no test
		// here is about v2 missing a deadline unless it says so.
		cfg.DeadlineScale = 100
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Start(ctx, cfg)
	if err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() { closeCluster(tb, c) })
	return c, rcv
}

func closeCluster(tb testing.TB, c *Cluster) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		tb.Errorf("Close: %v", err)
	}
}
