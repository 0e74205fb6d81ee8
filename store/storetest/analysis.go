package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// sampleData writes entry and non-entry spans of service "api" and others.
func sampleData(t *testing.T, s store.Store) {
	t.Helper()
	// A: root server GET /a with a client and an internal child (not entries).
	a := mkSpan(1, 10, store.SpanID{}, "api", "GET /a", store.KindServer, at(0), 10*time.Millisecond)
	a.Tenant, a.Version, a.Host, a.PayloadBytes = "t1", "v1", "h1", 100
	ac := mkSpan(1, 11, spanID(10), "api", "call db", store.KindClient, at(0)+1, time.Millisecond)
	ai := mkSpan(1, 12, spanID(10), "api", "GET /a", store.KindInternal, at(0)+2, time.Millisecond)
	// B: root GET /b, v2, error.
	b := mkSpan(2, 20, store.SpanID{}, "api", "GET /b", store.KindServer, at(time.Second), 20*time.Millisecond)
	b.Version, b.StatusCode = "v2", store.StatusError
	// C: a root of internal kind is still an entry.
	c := mkSpan(3, 30, store.SpanID{}, "api", "GET /a", store.KindInternal, at(2*time.Second), 30*time.Millisecond)
	c.Version = "v1"
	// D: edge's root calls api: api's server span has a parent.
	de := mkSpan(4, 40, store.SpanID{}, "edge", "GET /edge", store.KindServer, at(3*time.Second)-1000, 50*time.Millisecond)
	dc := mkSpan(4, 41, spanID(40), "edge", "GET /a", store.KindClient, at(3*time.Second)-500, 45*time.Millisecond)
	d := mkSpan(4, 42, spanID(41), "api", "GET /a", store.KindServer, at(3*time.Second), 40*time.Millisecond)
	d.Version = "v1"
	// E: a consumer span with a parent is an entry.
	e := mkSpan(5, 50, spanID(99), "api", "consume", store.KindConsumer, at(4*time.Second), 5*time.Millisecond)
	// F: a producer span with a parent is not.
	f := mkSpan(6, 60, spanID(99), "api", "publish", store.KindProducer, at(5*time.Second), 5*time.Millisecond)
	// Another service's endpoint of the same name.
	w := mkSpan(7, 70, store.SpanID{}, "web", "GET /a", store.KindServer, at(1500*time.Millisecond), 7*time.Millisecond)
	write(t, s, a, ac, ai, b, c, de, dc, d, e, f, w)
}

func sampleSpanIDs(ss []store.Sample) []store.SpanID {
	out := make([]store.SpanID, len(ss))
	for i, s := range ss {
		out[i] = s.SpanID
	}
	return out
}

func spanIDs(ns ...int) []store.SpanID {
	out := make([]store.SpanID, len(ns))
	for i, n := range ns {
		out[i] = spanID(n)
	}
	return out
}

func testSamples(t *testing.T, s store.Store) {
	sampleData(t, s)
	window := func(q store.SampleQuery) store.SampleQuery {
		if q.From.IsZero() {
			q.From = base
		}
		if q.To.IsZero() {
			q.To = base.Add(time.Minute)
		}
		return q
	}
	tests := []struct {
		name string
		q    store.SampleQuery
		want []int // span numbers, in order
	}{
		{"entry spans of a service", window(store.SampleQuery{Service: "api"}), []int{10, 20, 30, 42, 50}},
		{"endpoint", window(store.SampleQuery{Service: "api", Endpoint: "GET /a"}), []int{10, 30, 42}},
		{"version", window(store.SampleQuery{Service: "api", Version: "v2"}), []int{20}},
		{"window is [from, to)", store.SampleQuery{Service: "api", From: base.Add(time.Second), To: base.Add(3 * time.Second)}, []int{20, 30}},
		{"limit keeps the newest, in start order", window(store.SampleQuery{Service: "api", Limit: 2}), []int{42, 50}},
		{"minimum duration is inclusive", window(store.SampleQuery{Service: "api", MinDurationNano: int64(20 * time.Millisecond)}), []int{20, 30, 42}},
		{"minimum duration with endpoint", window(store.SampleQuery{Service: "api", Endpoint: "GET /a", MinDurationNano: int64(20*time.Millisecond) + 1}), []int{30, 42}},
		{"minimum duration with limit keeps the newest of the slow", window(store.SampleQuery{Service: "api", MinDurationNano: int64(15 * time.Millisecond), Limit: 2}), []int{30, 42}},
		{"unbounded window", store.SampleQuery{Service: "api"}, []int{10, 20, 30, 42, 50}},
		{"other service", window(store.SampleQuery{Service: "web"}), []int{70}},
		{"unknown service", window(store.SampleQuery{Service: "nope"}), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Samples(ctxT(t), tc.q)
			if err != nil {
				t.Fatalf("Samples: %v", err)
			}
			if want := spanIDs(tc.want...); !slices.Equal(sampleSpanIDs(got), want) {
				t.Errorf("Samples(%+v) = %v, want %v", tc.q, sampleSpanIDs(got), want)
			}
		})
	}
	got, err := s.Samples(ctxT(t), window(store.SampleQuery{Service: "api"}))
	if err != nil || len(got) != 5 {
		t.Fatalf("Samples = %d rows, %v", len(got), err)
	}
	wantA := store.Sample{TraceID: traceID(1), SpanID: spanID(10), Service: "api", Name: "GET /a", StartUnixNano: at(0),
		DurationNano: int64(10 * time.Millisecond), Tenant: "t1", Version: "v1", Host: "h1", PayloadBytes: 100, Weight: 1}
	if got[0] != wantA {
		t.Errorf("sample A = %+v, want %+v", got[0], wantA)
	}
	if !got[1].Error || got[0].Error {
		t.Errorf("Error flags = %v, %v; want false, true", got[0].Error, got[1].Error)
	}
	for _, q := range []store.SampleQuery{{}, {Service: "api", Limit: -1}, {Service: "api", MinDurationNano: -1}, {Service: "api", From: base, To: base.Add(-time.Second)}} {
		_, err := s.Samples(ctxT(t), q)
		wantErrIs(t, "Samples(invalid)", err, store.ErrInvalid)
	}
}

// testSampleRanges checks that SampleRanges answers each range exactly as
// Samples does: bounds, limits (the newest kept), unbounded sides, empty
// and repeated ranges, each of the base query's filters.
func testSampleRanges(t *testing.T, s store.Store) {
	sampleData(t, s)
	ranges := []store.SampleRange{
		{From: base, To: base.Add(time.Minute)},
		{From: base, To: base.Add(time.Minute), Limit: 2},
		{From: base.Add(time.Second), To: base.Add(3 * time.Second)},
		{From: base.Add(time.Second), To: base.Add(3 * time.Second), Limit: 1},
		{From: base.Add(time.Second), To: base.Add(time.Second)}, // empty
		{To: base.Add(2*time.Second + 1)},                        // unbounded start
		{From: base.Add(2 * time.Second), Limit: 5},              // unbounded end
		{},
		{From: base, To: base.Add(time.Minute), Limit: 2}, // again
		{From: base.Add(time.Hour), To: base.Add(2 * time.Hour), Limit: 3},
	}
	queries := []store.SampleQuery{
		{Service: "api"},
		{Service: "api", Endpoint: "GET /a"},
		{Service: "api", Version: "v1"},
		{Service: "api", MinDurationNano: int64(20 * time.Millisecond)},
		{Service: "api", Endpoint: "GET /a", MinDurationNano: int64(20*time.Millisecond) + 1},
		{Service: "nope"},
	}
	for _, q := range queries {
		got, err := s.SampleRanges(ctxT(t), q, ranges)
		if err != nil {
			t.Fatalf("SampleRanges(%+v): %v", q, err)
		}
		if len(got) != len(ranges) {
			t.Fatalf("SampleRanges(%+v) = %d results for %d ranges", q, len(got), len(ranges))
		}
		for i, r := range ranges {
			one := q
			one.From, one.To, one.Limit = r.From, r.To, r.Limit
			want, err := s.Samples(ctxT(t), one)
			if err != nil {
				t.Fatalf("Samples(%+v): %v", one, err)
			}
			if !slices.Equal(got[i], want) {
				t.Errorf("SampleRanges(%+v) range %d %+v = %v, want Samples' %v", q, i, r, sampleSpanIDs(got[i]), sampleSpanIDs(want))
			}
		}
	}
	// What the ranges hold, spelled out once: Samples could be wrong too.
	got, err := s.SampleRanges(ctxT(t), store.SampleQuery{Service: "api"}, ranges[:4])
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]int{{10, 20, 30, 42, 50}, {42, 50}, {20, 30}, {30}} {
		if !slices.Equal(sampleSpanIDs(got[i]), spanIDs(want...)) {
			t.Errorf("range %d = %v, want %v", i, sampleSpanIDs(got[i]), spanIDs(want...))
		}
	}
	if got, err := s.SampleRanges(ctxT(t), store.SampleQuery{Service: "api"}, nil); err != nil || len(got) != 0 {
		t.Errorf("SampleRanges(no ranges) = %v, %v; want none", got, err)
	}
	for _, tc := range []struct {
		q store.SampleQuery
		r []store.SampleRange
	}{
		{store.SampleQuery{}, ranges[:1]},
		{store.SampleQuery{Service: "api", MinDurationNano: -1}, ranges[:1]},
		{store.SampleQuery{Service: "api"}, []store.SampleRange{ranges[0], {Limit: -1}}},
		{store.SampleQuery{Service: "api"}, []store.SampleRange{{From: base, To: base.Add(-time.Second)}}},
	} {
		_, err := s.SampleRanges(ctxT(t), tc.q, tc.r)
		wantErrIs(t, "SampleRanges(invalid)", err, store.ErrInvalid)
	}
}

func testEndpoints(t *testing.T, s store.Store) {
	sampleData(t, s)
	tests := []struct {
		name     string
		from, to time.Time
		want     []store.Endpoint
	}{
		{"all", base, base.Add(time.Minute), []store.Endpoint{
			{Service: "api", Name: "GET /a", Count: 3, Roots: 2},
			{Service: "api", Name: "GET /b", Count: 1, Roots: 1},
			{Service: "api", Name: "consume", Count: 1, Roots: 0},
			{Service: "edge", Name: "GET /edge", Count: 1, Roots: 1},
			{Service: "web", Name: "GET /a", Count: 1, Roots: 1},
		}},
		// Rollups count whole minutes: a window inside one counts it all.
		{"window rounds out to the minute", base.Add(time.Second), base.Add(2 * time.Second), []store.Endpoint{
			{Service: "api", Name: "GET /a", Count: 3, Roots: 2},
			{Service: "api", Name: "GET /b", Count: 1, Roots: 1},
			{Service: "api", Name: "consume", Count: 1, Roots: 0},
			{Service: "edge", Name: "GET /edge", Count: 1, Roots: 1},
			{Service: "web", Name: "GET /a", Count: 1, Roots: 1},
		}},
		{"window of minutes", base.Add(time.Minute), base.Add(2 * time.Minute), []store.Endpoint{}},
		{"empty window", base.Add(time.Hour), base.Add(2 * time.Hour), []store.Endpoint{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Endpoints(ctxT(t), tc.from, tc.to)
			if err != nil {
				t.Fatalf("Endpoints: %v", err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Endpoints = %+v, want %+v", got, tc.want)
			}
		})
	}
	_, err := s.Endpoints(ctxT(t), base, base.Add(-time.Second))
	wantErrIs(t, "Endpoints(inverted)", err, store.ErrInvalid)
}

func testRetention(t *testing.T, s store.Store) {
	day := 24 * time.Hour
	midnight := base.Truncate(day) // base is noon UTC
	old1 := mkSpan(1, 1, store.SpanID{}, "svc", "op", store.KindServer, midnight.Add(-2*day+time.Hour).UnixNano(), time.Millisecond)
	old2 := mkSpan(2, 2, store.SpanID{}, "svc", "op", store.KindServer, midnight.Add(-day+time.Hour).UnixNano(), time.Millisecond)
	keep := mkSpan(3, 3, store.SpanID{}, "svc", "op", store.KindServer, midnight.Add(time.Hour).UnixNano(), time.Millisecond)
	edge := mkSpan(4, 4, store.SpanID{}, "svc", "op", store.KindServer, base.UnixNano(), time.Millisecond)
	write(t, s, old1, old2, keep, edge)

	// Cut at a midnight: whole days before it go, in every backend.
	if err := s.DeleteBefore(ctxT(t), midnight); err != nil {
		t.Fatalf("DeleteBefore: %v", err)
	}
	got, err := s.Traces(ctxT(t), ids(1, 2, 3, 4))
	if err != nil {
		t.Fatalf("Traces: %v", err)
	}
	if _, ok := got[traceID(1)]; ok {
		t.Errorf("span two days old survived retention")
	}
	if _, ok := got[traceID(2)]; ok {
		t.Errorf("span one day old survived retention")
	}
	if len(got[traceID(3)]) != 1 || len(got[traceID(4)]) != 1 {
		t.Errorf("retention removed spans at or after the cut: %v", got)
	}

	// A cut inside a day never removes a span at or after it.
	if err := s.DeleteBefore(ctxT(t), base); err != nil {
		t.Fatalf("DeleteBefore(mid-day): %v", err)
	}
	if _, err := s.Trace(ctxT(t), traceID(4)); err != nil {
		t.Errorf("span starting exactly at the cut: %v", err)
	}

	// Writing into a day that retention emptied works again.
	write(t, s, old1)
	mustTrace(t, s, traceID(1))
}
