package analysis

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/store"
)

// shapeSource serves TraceShapes and RequestShapes as the stores do —
// Traces with the spans' attributes, resources and events left out, but
// for the named spans' attributes and resources — and counts the traces
// each method is asked for.
type shapeSource struct {
	*analysistest.Source
	traces, shapes, requests int
}

func (s *shapeSource) RequestShapes(ctx context.Context, reqs []store.SpanRef) (map[store.TraceID][]store.Span, error) {
	s.requests += len(reqs)
	named := map[store.SpanRef]bool{}
	ids := make([]store.TraceID, len(reqs))
	for i, r := range reqs {
		named[r], ids[i] = true, r.TraceID
	}
	return s.read(ctx, ids, func(sp *store.Span) bool { return named[store.SpanRef{TraceID: sp.TraceID, SpanID: sp.SpanID}] })
}

func (s *shapeSource) Traces(ctx context.Context, ids []store.TraceID) (map[store.TraceID][]store.Span, error) {
	s.traces += len(ids)
	return s.Source.Traces(ctx, ids)
}

func (s *shapeSource) TraceShapes(ctx context.Context, ids []store.TraceID) (map[store.TraceID][]store.Span, error) {
	s.shapes += len(ids)
	return s.read(ctx, ids, func(*store.Span) bool { return false })
}

// read reads the traces of ids whole and leaves out every span's events,
// and the attributes and resources of the spans keep does not keep.
func (s *shapeSource) read(ctx context.Context, ids []store.TraceID, keep func(*store.Span) bool) (map[store.TraceID][]store.Span, error) {
	got, err := s.Source.Traces(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[store.TraceID][]store.Span, len(got))
	for id, spans := range got {
		shaped := make([]store.Span, len(spans))
		for i, sp := range spans {
			if !keep(&sp) {
				sp.Attributes, sp.Resource = nil, nil
			}
			sp.Events = nil
			shaped[i] = sp
		}
		out[id] = shaped
	}
	return out, nil
}

// TestShapeReads: the budget hop table, compare's dependency deltas and
// the cohorts' shape comparison read trace shapes, not whole traces, from a source that has them, and
// outliers shapes with their requests' spans; each answers exactly as from
// whole traces (a source without TraceShapes and RequestShapes).
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
		// requests: the analysis reads RequestShapes, not TraceShapes.
		requests bool
	}{
		{"budget hops", func() *analysistest.Source { return analysistest.NewSource(ds.Spans) }, func(src SpanSource) (any, int, error) {
			rep, err := Compliance(context.Background(), src, validBudget(), testEpoch, now, now)
			return rep, rep.SampledRequests, err
		}, false},
		{"compare dependencies", cmpSrc, func(src SpanSource) (any, int, error) {
			c, err := Compare(context.Background(), src, deployQuery())
			return c.Dependencies, len(c.Dependencies), err
		}, false},
		{"cohort shape", func() *analysistest.Source { return analysistest.NewSource(ds.Spans) }, func(src SpanSource) (any, int, error) {
			rep, err := CohortShape(context.Background(), src, ShapeQuery{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint,
				From: testEpoch, To: now})
			return rep, rep.SlowCount, err
		}, false},
		// Discovered attribute dimensions, and named ones (of the
		// request's span and of its resource).
		{"outliers", func() *analysistest.Source { return analysistest.NewSource(ds.Spans) }, func(src SpanSource) (any, int, error) {
			rep, err := Outliers(context.Background(), src, OutlierQuery{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint,
				From: testEpoch, To: now})
			return rep, rep.OutlierCount, err
		}, true},
		{"outliers by named attributes", func() *analysistest.Source { return analysistest.NewSource(ds.Spans) }, func(src SpanSource) (any, int, error) {
			rep, err := Outliers(context.Background(), src, OutlierQuery{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint,
				From: testEpoch, To: now, Attributes: []string{"http.route", "host.name", "tenant.id"}})
			return rep, rep.OutlierCount, err
		}, true},
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
			if read := map[bool]int{false: ss.shapes, true: ss.requests}; ss.traces != 0 || read[tc.requests] == 0 || read[!tc.requests] != 0 {
				t.Errorf("read %d whole traces, %d shapes and %d requests' shapes; want only %s", ss.traces, ss.shapes, ss.requests,
					map[bool]string{false: "shapes", true: "requests' shapes"}[tc.requests])
			}
			if !reflect.DeepEqual(whole, shaped) {
				t.Errorf("from shapes:\n%+v\nfrom whole traces:\n%+v", shaped, whole)
			}
		})
	}
}
