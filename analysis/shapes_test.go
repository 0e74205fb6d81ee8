package analysis

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/store"
)

// shapeSource serves TraceShapes as the stores do — Traces with the spans'
// attributes, resources and events left out — and counts the traces each
// method is asked for.
type shapeSource struct {
	*analysistest.Source
	traces, shapes int
}

func (s *shapeSource) Traces(ctx context.Context, ids []store.TraceID) (map[store.TraceID][]store.Span, error) {
	s.traces += len(ids)
	return s.Source.Traces(ctx, ids)
}

func (s *shapeSource) TraceShapes(ctx context.Context, ids []store.TraceID) (map[store.TraceID][]store.Span, error) {
	s.shapes += len(ids)
	got, err := s.Source.Traces(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[store.TraceID][]store.Span, len(got))
	for id, spans := range got {
		shaped := make([]store.Span, len(spans))
		for i, sp := range spans {
			sp.Attributes, sp.Resource, sp.Events = nil, nil, nil
			shaped[i] = sp
		}
		out[id] = shaped
	}
	return out, nil
}

// TestShapeReads: the budget hop table and compare's dependency deltas
// read trace shapes, not whole traces, from a source that has them, and
// answer exactly as from whole traces (a source without TraceShapes).
func TestShapeReads(t *testing.T) {
	ds := analysistest.Generate(analysistest.Scenario{Seed: 77, Traces: 2000, ErrorRate: 0.02, Start: testEpoch})
	if ds.Spans[0].Resource == nil {
		t.Fatal("generated spans carry no resource: the test would prove nothing")
	}
	now := testEpoch.Add(time.Hour)
	cmpSrc := func() *analysistest.Source {
		return beforeAfter(analysistest.Scenario{Seed: 78, Traces: 2000}, analysistest.Scenario{Seed: 79, Traces: 2000, Parallel: true})
	}
	tests := []struct {
		name string
		src  func() *analysistest.Source
		// run returns the result and how many things it measured from
		// traces, which must not be 0.
		run func(src SpanSource) (any, int, error)
	}{
		{"budget hops", func() *analysistest.Source { return analysistest.NewSource(ds.Spans) }, func(src SpanSource) (any, int, error) {
			rep, err := Compliance(context.Background(), src, validBudget(), testEpoch, now, now)
			return rep, rep.SampledRequests, err
		}},
		{"compare dependencies", cmpSrc, func(src SpanSource) (any, int, error) {
			c, err := Compare(context.Background(), src, deployQuery())
			return c.Dependencies, len(c.Dependencies), err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			whole, n, err := tc.run(tc.src())
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				t.Fatal("nothing measured from traces: the test would prove nothing")
			}
			ss := &shapeSource{Source: tc.src()}
			shaped, _, err := tc.run(ss)
			if err != nil {
				t.Fatal(err)
			}
			if ss.traces != 0 || ss.shapes == 0 {
				t.Errorf("read %d whole traces and %d shapes, want shapes only", ss.traces, ss.shapes)
			}
			if !reflect.DeepEqual(whole, shaped) {
				t.Errorf("from shapes:\n%+v\nfrom whole traces:\n%+v", shaped, whole)
			}
		})
	}
}
