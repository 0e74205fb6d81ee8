package storetest

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// testKeptTraces: a trace kept with an incident outlives retention and
// reads back as it was; the incident that kept it first answers, and
// deleting an incident deletes only its own copies.
func testKeptTraces(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	root := mkSpan(1, 1, store.SpanID{}, "api", "GET /feed", store.KindServer, base.UnixNano(), 300*time.Millisecond)
	root.Attributes = store.Attributes(`{"http.route":"/feed","tenant":"acme"}`)
	root.Resource = store.Attributes(`{"service.name":"api"}`)
	root.Tenant, root.Version, root.Host = "acme", "v2", "h1"
	root.StatusCode, root.StatusMessage = store.StatusError, "timeout"
	root.Events = []store.Event{{TimeUnixNano: base.UnixNano() + 5, Name: "retry", Attributes: store.Attributes(`{"n":1}`)}}
	child := mkSpan(1, 2, root.SpanID, "api", "SELECT", store.KindClient, base.UnixNano()+int64(time.Millisecond), 200*time.Millisecond)
	child.Dependency, child.PayloadBytes = "postgresql", 4096
	child.Links = []store.Link{{TraceID: traceID(9), SpanID: spanID(9)}}
	write(t, s, root, child)
	stored := mustTrace(t, s, traceID(1))

	first, err := s.CreateIncident(ctx, store.Incident{Title: "first", From: base, To: base.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.CreateIncident(ctx, store.Incident{Title: "second", From: base, To: base.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.KeptTrace(ctx, traceID(1))
	wantErrIs(t, "KeptTrace(none kept)", err, store.ErrNotFound)
	err = s.KeepTraces(ctx, 1<<40, map[store.TraceID][]store.Span{traceID(1): stored})
	wantErrIs(t, "KeepTraces(no incident)", err, store.ErrNotFound)

	if err := s.KeepTraces(ctx, first.ID, map[store.TraceID][]store.Span{traceID(1): stored}); err != nil {
		t.Fatalf("KeepTraces: %v", err)
	}
	// Kept again by the same incident (a recompute): no error, one copy.
	if err := s.KeepTraces(ctx, first.ID, map[store.TraceID][]store.Span{traceID(1): stored[:1]}); err != nil {
		t.Fatalf("KeepTraces again: %v", err)
	}
	if err := s.KeepTraces(ctx, second.ID, map[store.TraceID][]store.Span{traceID(1): stored}); err != nil {
		t.Fatalf("KeepTraces by a second incident: %v", err)
	}
	if err := s.DeleteBefore(ctx, time.Now().Add(24*time.Hour)); err != nil {
		t.Fatalf("DeleteBefore: %v", err)
	}
	if _, err := s.Trace(ctx, traceID(1)); err == nil {
		t.Fatal("retention kept the trace itself: the test proves nothing")
	}
	k, err := s.KeptTrace(ctx, traceID(1))
	if err != nil {
		t.Fatalf("KeptTrace after retention: %v", err)
	}
	if k.IncidentID != first.ID || k.TraceID != traceID(1) || k.KeptAt.IsZero() {
		t.Errorf("KeptTrace = incident %d, trace %s, at %v; want incident %d", k.IncidentID, k.TraceID, k.KeptAt, first.ID)
	}
	if got, want := spansJSON(t, k.Spans), spansJSON(t, stored); !bytes.Equal(got, want) {
		t.Errorf("kept spans differ from the stored ones:\n got %s\nwant %s", got, want)
	}

	if err := s.DeleteIncident(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	if k, err := s.KeptTrace(ctx, traceID(1)); err != nil || k.IncidentID != second.ID {
		t.Errorf("after deleting the first incident: incident %d, %v; want the second's copy", k.IncidentID, err)
	}
	if err := s.DeleteIncident(ctx, second.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.KeptTrace(ctx, traceID(1))
	wantErrIs(t, "KeptTrace after deleting both incidents", err, store.ErrNotFound)
}

func spansJSON(t *testing.T, spans []store.Span) []byte {
	t.Helper()
	b, err := json.Marshal(spans)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
