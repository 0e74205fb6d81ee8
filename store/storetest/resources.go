package storetest

import (
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// Two resource bodies for the stores' own tests of how they keep
// resources (each once, with retention).
const (
	ResourceA = `{"service.name":"a","host.name":"h1"}`
	ResourceB = `{"service.name":"b","host.name":"h2"}`
)

// ResourceSpan returns a minimal span (trace, span) starting at at with
// resource res ("" for none).
func ResourceSpan(trace, span byte, at time.Time, res string) store.Span {
	return store.Span{TraceID: store.TraceID{trace}, SpanID: store.SpanID{span}, Service: "s", Name: "n",
		StartUnixNano: at.UnixNano(), DurationNano: 1, Resource: store.Attributes(res)}
}

// CheckResource fails unless the span (trace, span 1) reads back from r
// with resource want.
func CheckResource(t *testing.T, r store.Reader, trace byte, want string) {
	t.Helper()
	spans, err := r.Trace(t.Context(), store.TraceID{trace})
	if err != nil {
		t.Fatalf("trace %d: %v", trace, err)
	}
	if got := string(spans[0].Resource); got != want {
		t.Errorf("trace %d: resource %s, want %s", trace, got, want)
	}
}
