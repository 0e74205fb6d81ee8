package storetest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// traceID returns a distinct, non-zero trace id for n.
func traceID(n int) store.TraceID {
	var id store.TraceID
	id[0] = 0x7a
	binary.BigEndian.PutUint64(id[8:], uint64(n)+1)
	return id
}

// spanID returns a distinct, non-zero span id for n.
func spanID(n int) store.SpanID {
	var id store.SpanID
	binary.BigEndian.PutUint64(id[:], uint64(n)+1)
	return id
}

// at returns base + d in Unix nanoseconds.
func at(d time.Duration) int64 { return base.Add(d).UnixNano() }

// mkSpan returns a minimal valid span.
func mkSpan(trace, span int, parent store.SpanID, service, name string, kind store.SpanKind, start int64, dur time.Duration) store.Span {
	return store.Span{
		TraceID:       traceID(trace),
		SpanID:        spanID(span),
		ParentSpanID:  parent,
		Service:       service,
		Name:          name,
		Kind:          kind,
		StartUnixNano: start,
		DurationNano:  int64(dur),
	}
}

func write(t *testing.T, s store.Store, spans ...store.Span) {
	t.Helper()
	if err := s.WriteSpans(ctxT(t), spans); err != nil {
		t.Fatalf("WriteSpans(%d spans): %v", len(spans), err)
	}
}

func mustTrace(t *testing.T, s store.Store, id store.TraceID) []store.Span {
	t.Helper()
	spans, err := s.Trace(ctxT(t), id)
	if err != nil {
		t.Fatalf("Trace(%s): %v", id, err)
	}
	return spans
}

func search(t *testing.T, s store.Store, q store.TraceQuery) []store.TraceSummary {
	t.Helper()
	got, err := s.SearchTraces(ctxT(t), q)
	if err != nil {
		t.Fatalf("SearchTraces(%+v): %v", q, err)
	}
	return got
}

func summaryIDs(sums []store.TraceSummary) []store.TraceID {
	ids := make([]store.TraceID, len(sums))
	for i, s := range sums {
		ids[i] = s.TraceID
	}
	return ids
}

func ids(ns ...int) []store.TraceID {
	out := make([]store.TraceID, len(ns))
	for i, n := range ns {
		out[i] = traceID(n)
	}
	return out
}

func sortedIDs(in []store.TraceID) []store.TraceID {
	out := slices.Clone(in)
	slices.SortFunc(out, func(a, b store.TraceID) int { return slices.Compare(a[:], b[:]) })
	return out
}

// diffSpan describes the first difference between two spans, or "".
func diffSpan(want, got store.Span) string {
	switch {
	case want.TraceID != got.TraceID:
		return fmt.Sprintf("trace id %s, want %s", got.TraceID, want.TraceID)
	case want.SpanID != got.SpanID:
		return fmt.Sprintf("span id %s, want %s", got.SpanID, want.SpanID)
	case want.ParentSpanID != got.ParentSpanID:
		return fmt.Sprintf("parent %s, want %s", got.ParentSpanID, want.ParentSpanID)
	case want.Service != got.Service:
		return fmt.Sprintf("service %q, want %q", got.Service, want.Service)
	case want.Name != got.Name:
		return fmt.Sprintf("name %q, want %q", got.Name, want.Name)
	case want.Kind != got.Kind:
		return fmt.Sprintf("kind %v, want %v", got.Kind, want.Kind)
	case want.StartUnixNano != got.StartUnixNano:
		return fmt.Sprintf("start %d, want %d", got.StartUnixNano, want.StartUnixNano)
	case want.DurationNano != got.DurationNano:
		return fmt.Sprintf("duration %d, want %d", got.DurationNano, want.DurationNano)
	case want.StatusCode != got.StatusCode:
		return fmt.Sprintf("status %v, want %v", got.StatusCode, want.StatusCode)
	case want.StatusMessage != got.StatusMessage:
		return fmt.Sprintf("status message %q, want %q", got.StatusMessage, want.StatusMessage)
	case !attrsEqual(want.Attributes, got.Attributes):
		return fmt.Sprintf("attributes %s, want %s", got.Attributes, want.Attributes)
	case !attrsEqual(want.Resource, got.Resource):
		return fmt.Sprintf("resource %s, want %s", got.Resource, want.Resource)
	case want.Tenant != got.Tenant:
		return fmt.Sprintf("tenant %q, want %q", got.Tenant, want.Tenant)
	case want.Version != got.Version:
		return fmt.Sprintf("version %q, want %q", got.Version, want.Version)
	case want.Dependency != got.Dependency:
		return fmt.Sprintf("dependency %q, want %q", got.Dependency, want.Dependency)
	case want.PayloadBytes != got.PayloadBytes:
		return fmt.Sprintf("payload %d, want %d", got.PayloadBytes, want.PayloadBytes)
	case want.Host != got.Host:
		return fmt.Sprintf("host %q, want %q", got.Host, want.Host)
	case store.NormWeight(want.Weight) != got.Weight:
		return fmt.Sprintf("weight %v, want %v", got.Weight, store.NormWeight(want.Weight))
	case len(want.Events) != len(got.Events):
		return fmt.Sprintf("%d events, want %d", len(got.Events), len(want.Events))
	case len(want.Links) != len(got.Links):
		return fmt.Sprintf("%d links, want %d", len(got.Links), len(want.Links))
	}
	for i := range want.Events {
		w, g := want.Events[i], got.Events[i]
		if w.TimeUnixNano != g.TimeUnixNano || w.Name != g.Name || !attrsEqual(w.Attributes, g.Attributes) {
			return fmt.Sprintf("event %d = %+v, want %+v", i, g, w)
		}
	}
	for i := range want.Links {
		w, g := want.Links[i], got.Links[i]
		if w.TraceID != g.TraceID || w.SpanID != g.SpanID || !attrsEqual(w.Attributes, g.Attributes) {
			return fmt.Sprintf("link %d = %+v, want %+v", i, g, w)
		}
	}
	return ""
}

// attrsEqual compares attribute objects by content; nil equals {}.
func attrsEqual(a, b store.Attributes) bool {
	if len(a) == 0 || len(b) == 0 {
		ma, _ := a.Decode()
		mb, _ := b.Decode()
		return len(ma) == 0 && len(mb) == 0
	}
	return a.Equal(b)
}

func wantErrIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want one wrapping %v", what, err, target)
	}
}
