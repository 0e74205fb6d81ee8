package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// testSearchHas: further span conditions hold on any span of the trace,
// not the one matching the query's fields, and several must all hold.
func testSearchHas(t *testing.T, s store.Store) {
	// Four slow requests of api GET /feed; each calls a different mix.
	type call struct {
		service, version, host, dep string
		payload                     int64
		start                       time.Duration // spans of one trace far apart (other SQLite buckets)
	}
	traces := [][]call{
		{{"cand", "v1", "h1", "postgresql", 100, 0}},
		{{"cand", "v2", "h1", "postgresql", 5 << 20, time.Minute}},
		{{"cand", "v1", "h2", "redis", 0, 0}, {"prof", "v9", "h3", "", 2 << 20, 3 * time.Hour}},
		{},
	}
	var spans []store.Span
	for i, calls := range traces {
		root := mkSpan(i+1, 100*(i+1), store.SpanID{}, "api", "GET /feed", store.KindServer, at(time.Duration(i)*time.Second), 5*time.Hour)
		spans = append(spans, root)
		for j, c := range calls {
			sp := mkSpan(i+1, 100*(i+1)+j+1, root.SpanID, c.service, "call", store.KindClient, at(time.Duration(i)*time.Second+c.start+time.Millisecond), time.Millisecond)
			sp.Version, sp.Host, sp.Dependency, sp.PayloadBytes = c.version, c.host, c.dep, c.payload
			spans = append(spans, sp)
		}
	}
	write(t, s, spans...)
	q := func(has ...store.SpanMatch) store.TraceQuery {
		return store.TraceQuery{Service: "api", Endpoint: "GET /feed", MinDuration: time.Hour, Has: has,
			From: base.Add(-time.Hour), To: base.Add(10 * time.Hour), Order: store.OrderOldest}
	}
	for _, tc := range []struct {
		name string
		has  []store.SpanMatch
		want []int
	}{
		{"service and version", []store.SpanMatch{{Service: "cand", Version: "v1"}}, []int{1, 3}},
		{"host", []store.SpanMatch{{Host: "h1"}}, []int{1, 2}},
		{"dependency", []store.SpanMatch{{Dependency: "redis"}}, []int{3}},
		{"a service's own time", []store.SpanMatch{{Dependency: "prof"}}, []int{3}},
		{"the root's own time", []store.SpanMatch{{Dependency: "api"}}, []int{1, 2, 3, 4}},
		{"a service that calls out is not its dependency", []store.SpanMatch{{Dependency: "cand"}}, nil},
		{"payload range", []store.SpanMatch{{MinPayloadBytes: 1 << 20, MaxPayloadBytes: 4 << 20}}, []int{3}},
		{"payload from", []store.SpanMatch{{MinPayloadBytes: 1 << 20}}, []int{2, 3}},
		{"two conditions on two spans", []store.SpanMatch{{Host: "h2"}, {Service: "prof", Version: "v9"}}, []int{3}},
		{"one span must hold all of one condition", []store.SpanMatch{{Service: "prof", Host: "h2"}}, nil},
		{"none", nil, []int{1, 2, 3, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := summaryIDs(search(t, s, q(tc.has...)))
			if !slices.Equal(got, ids(tc.want...)) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Errorf("got %v, want %v", got, ids(tc.want...))
			}
		})
	}
	for _, bad := range [][]store.SpanMatch{
		{{}},
		{{MinPayloadBytes: 10, MaxPayloadBytes: 5}},
		{{MinPayloadBytes: -1}},
		{{Host: "a"}, {Host: "b"}, {Host: "c"}, {Host: "d"}, {Host: "e"}},
	} {
		if _, err := s.SearchTraces(ctxT(t), q(bad...)); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Has %+v: %v, want ErrInvalid", bad, err)
		}
	}
}
