package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// searchData writes five traces with known shapes (see the comments) and is
// shared by the search tests.
func searchData(t *testing.T, s store.Store) {
	t.Helper()
	var spans []store.Span

	// T1: frontend GET /v1/feed 100ms (acme, v1) → client 80ms →
	// profile-svc server 70ms carrying attributes and resource.
	r1 := mkSpan(1, 10, store.SpanID{}, "frontend", "GET /v1/feed", store.KindServer, at(time.Minute), 100*time.Millisecond)
	r1.Tenant, r1.Version, r1.StatusCode = "acme", "v1", store.StatusOK
	c1 := mkSpan(1, 11, spanID(10), "frontend", "GET profile", store.KindClient, at(time.Minute)+1000, 80*time.Millisecond)
	c1.Dependency, c1.Tenant, c1.Version = "profile-svc", "acme", "v1"
	p1 := mkSpan(1, 12, spanID(11), "profile-svc", "GET /profile", store.KindServer, at(time.Minute)+2000, 70*time.Millisecond)
	p1.Attributes = store.Attributes(`{"http.response.status_code":200,"cache.hit":true,"ratio":0.25}`)
	p1.Resource = store.Attributes(`{"host.name":"h1","region":"eu"}`)
	p1.Tenant, p1.Version = "acme", "v3"
	spans = append(spans, r1, c1, p1)

	// T2: frontend GET /v1/feed 900ms (globex, v2), error, with a slow
	// database call that also failed.
	r2 := mkSpan(2, 20, store.SpanID{}, "frontend", "GET /v1/feed", store.KindServer, at(2*time.Minute), 900*time.Millisecond)
	r2.Tenant, r2.Version, r2.StatusCode = "globex", "v2", store.StatusError
	d2 := mkSpan(2, 21, spanID(20), "frontend", "SELECT items", store.KindClient, at(2*time.Minute)+int64(10*time.Millisecond), 850*time.Millisecond)
	d2.Attributes = store.Attributes(`{"db.system":"postgresql"}`)
	d2.Tenant, d2.Version, d2.StatusCode = "globex", "v2", store.StatusError
	spans = append(spans, r2, d2)

	// T3: frontend GET /v1/search 300ms (acme, v2), root only.
	r3 := mkSpan(3, 30, store.SpanID{}, "frontend", "GET /v1/search", store.KindServer, at(3*time.Minute), 300*time.Millisecond)
	r3.Tenant, r3.Version = "acme", "v2"
	spans = append(spans, r3)

	// T4: checkout POST /pay 50ms (acme, v1), status code as a string.
	r4 := mkSpan(4, 40, store.SpanID{}, "checkout", "POST /pay", store.KindServer, at(4*time.Minute), 50*time.Millisecond)
	r4.Tenant, r4.Version = "acme", "v1"
	r4.Attributes = store.Attributes(`{"http.response.status_code":"200"}`)
	spans = append(spans, r4)

	// T5: no root yet: two frontend spans, 40ms and 60ms, 10ms apart.
	a5 := mkSpan(5, 50, spanID(49), "frontend", "GET /v1/feed", store.KindServer, at(5*time.Minute), 40*time.Millisecond)
	b5 := mkSpan(5, 51, spanID(50), "frontend", "render", store.KindInternal, at(5*time.Minute)+int64(10*time.Millisecond), 60*time.Millisecond)
	a5.Tenant = "initech"
	spans = append(spans, a5, b5)

	write(t, s, spans...)
}

func testSearch(t *testing.T, s store.Store) {
	searchData(t, s)
	tests := []struct {
		name string
		q    store.TraceQuery
		want []int // trace numbers, any order
	}{
		{"everything", store.TraceQuery{}, []int{1, 2, 3, 4, 5}},
		{"service", store.TraceQuery{Service: "frontend"}, []int{1, 2, 3, 5}},
		{"service of a child span", store.TraceQuery{Service: "profile-svc"}, []int{1}},
		{"unknown service", store.TraceQuery{Service: "nope"}, nil},
		{"endpoint", store.TraceQuery{Endpoint: "GET /v1/feed"}, []int{1, 2, 5}},
		{"service and endpoint and min duration", store.TraceQuery{Service: "frontend", Endpoint: "GET /v1/feed", MinDuration: 500 * time.Millisecond}, []int{2}},
		{"max duration", store.TraceQuery{MaxDuration: 60 * time.Millisecond}, []int{4, 5}},
		{"duration range inclusive", store.TraceQuery{MinDuration: 80 * time.Millisecond, MaxDuration: 100 * time.Millisecond}, []int{1}},
		{"tenant", store.TraceQuery{Tenant: "acme"}, []int{1, 3, 4}},
		{"version", store.TraceQuery{Version: "v2"}, []int{2, 3}},
		{"version of a child span", store.TraceQuery{Version: "v3"}, []int{1}},
		{"status error", store.TraceQuery{Status: store.StatusFilterErr}, []int{2}},
		{"status ok means not error", store.TraceQuery{Status: store.StatusFilterOK}, []int{1, 3, 4, 5}},
		{"status error and service", store.TraceQuery{Service: "checkout", Status: store.StatusFilterErr}, nil},
		{"attribute number and string forms", store.TraceQuery{Attributes: map[string]string{"http.response.status_code": "200"}}, []int{1, 4}},
		{"attribute bool", store.TraceQuery{Attributes: map[string]string{"cache.hit": "true"}}, []int{1}},
		{"attribute float", store.TraceQuery{Attributes: map[string]string{"ratio": "0.25"}}, []int{1}},
		{"attribute no match", store.TraceQuery{Attributes: map[string]string{"cache.hit": "false"}}, nil},
		{"resource attribute", store.TraceQuery{Attributes: map[string]string{"region": "eu"}}, []int{1}},
		{"attribute and resource on one span", store.TraceQuery{Attributes: map[string]string{"region": "eu", "cache.hit": "true"}}, []int{1}},
		// Conditions apply to one span: T1 has frontend spans and a span
		// with the attribute, but not one span with both.
		{"conditions on one span", store.TraceQuery{Service: "frontend", Attributes: map[string]string{"cache.hit": "true"}}, nil},
		{"conditions on one span: tenant and error", store.TraceQuery{Tenant: "acme", Status: store.StatusFilterErr}, nil},
		{"time range", store.TraceQuery{From: base.Add(150 * time.Second), To: base.Add(270 * time.Second)}, []int{3, 4}},
		{"time range end is exclusive", store.TraceQuery{From: base.Add(150 * time.Second), To: base.Add(3 * time.Minute)}, nil},
		{"time range start is inclusive", store.TraceQuery{From: base.Add(3 * time.Minute), To: base.Add(3*time.Minute + 1)}, []int{3}},
		{"open-ended from", store.TraceQuery{From: base.Add(4 * time.Minute)}, []int{4, 5}},
		{"open-ended to", store.TraceQuery{To: base.Add(2 * time.Minute)}, []int{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := sortedIDs(summaryIDs(search(t, s, tc.q)))
			if want := sortedIDs(ids(tc.want...)); !slices.Equal(got, want) {
				t.Errorf("SearchTraces(%+v) = %v, want %v", tc.q, got, want)
			}
		})
	}
}

func testSearchSummaries(t *testing.T, s store.Store) {
	searchData(t, s)
	sums := search(t, s, store.TraceQuery{Order: store.OrderOldest})
	if len(sums) != 5 {
		t.Fatalf("got %d summaries, want 5", len(sums))
	}
	ms := int64(time.Millisecond)
	want := []store.TraceSummary{
		{TraceID: traceID(1), RootService: "frontend", RootName: "GET /v1/feed", StartUnixNano: at(time.Minute),
			DurationNano: 100 * ms, SpanCount: 3, ErrorCount: 0, Tenant: "acme", Version: "v1", MatchDurationNano: 100 * ms},
		{TraceID: traceID(2), RootService: "frontend", RootName: "GET /v1/feed", StartUnixNano: at(2 * time.Minute),
			DurationNano: 900 * ms, SpanCount: 2, ErrorCount: 2, Tenant: "globex", Version: "v2", MatchDurationNano: 900 * ms},
		{TraceID: traceID(3), RootService: "frontend", RootName: "GET /v1/search", StartUnixNano: at(3 * time.Minute),
			DurationNano: 300 * ms, SpanCount: 1, Tenant: "acme", Version: "v2", MatchDurationNano: 300 * ms},
		{TraceID: traceID(4), RootService: "checkout", RootName: "POST /pay", StartUnixNano: at(4 * time.Minute),
			DurationNano: 50 * ms, SpanCount: 1, Tenant: "acme", Version: "v1", MatchDurationNano: 50 * ms},
		// No root: the earliest span names it; duration is the extent
		// (10ms offset + 60ms).
		{TraceID: traceID(5), RootService: "frontend", RootName: "GET /v1/feed", StartUnixNano: at(5 * time.Minute),
			DurationNano: 70 * ms, SpanCount: 2, Tenant: "initech", MatchDurationNano: 60 * ms},
	}
	for i := range want {
		if sums[i] != want[i] {
			t.Errorf("summary %d:\n got %+v\nwant %+v", i, sums[i], want[i])
		}
	}
	// MatchDurationNano is the longest span that matched, not the root.
	got := search(t, s, store.TraceQuery{Service: "profile-svc"})
	if len(got) != 1 || got[0].MatchDurationNano != 70*ms || got[0].DurationNano != 100*ms {
		t.Errorf("profile-svc search = %+v, want match 70ms in a 100ms trace", got)
	}
}

func testSearchOrderAndLimit(t *testing.T, s store.Store) {
	searchData(t, s)
	tests := []struct {
		name string
		q    store.TraceQuery
		want []int // in order
	}{
		{"default is newest first", store.TraceQuery{}, []int{5, 4, 3, 2, 1}},
		{"oldest", store.TraceQuery{Order: store.OrderOldest}, []int{1, 2, 3, 4, 5}},
		{"slowest", store.TraceQuery{Order: store.OrderSlowest}, []int{2, 3, 1, 5, 4}},
		{"fastest", store.TraceQuery{Order: store.OrderFastest}, []int{4, 5, 1, 3, 2}},
		{"limit keeps the first in order", store.TraceQuery{Limit: 2}, []int{5, 4}},
		{"limit with slowest", store.TraceQuery{Order: store.OrderSlowest, Limit: 1}, []int{2}},
		{"slowest by matching span", store.TraceQuery{Service: "frontend", Endpoint: "GET /v1/feed", Order: store.OrderSlowest}, []int{2, 1, 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := summaryIDs(search(t, s, tc.q))
			if want := ids(tc.want...); !slices.Equal(got, want) {
				t.Errorf("SearchTraces(%+v) = %v, want %v", tc.q, got, want)
			}
		})
	}
}

func testSearchLimits(t *testing.T, s store.Store) {
	const n = 1005
	spans := make([]store.Span, n)
	for i := range spans {
		spans[i] = mkSpan(i, i, store.SpanID{}, "svc", "op", store.KindServer, at(time.Duration(i)*time.Millisecond), time.Millisecond)
	}
	write(t, s, spans...)
	if got := search(t, s, store.TraceQuery{}); len(got) != 20 {
		t.Errorf("default limit: got %d traces, want 20", len(got))
	}
	if got := search(t, s, store.TraceQuery{Limit: 5000}); len(got) != 1000 {
		t.Errorf("limit above the cap: got %d traces, want 1000", len(got))
	}
	if got := search(t, s, store.TraceQuery{Limit: 7, Order: store.OrderOldest}); !slices.Equal(summaryIDs(got), ids(0, 1, 2, 3, 4, 5, 6)) {
		t.Errorf("limit 7 oldest = %v", summaryIDs(got))
	}
}

func testSearchInvalid(t *testing.T, s store.Store) {
	tests := []struct {
		name string
		q    store.TraceQuery
	}{
		{"negative limit", store.TraceQuery{Limit: -1}},
		{"negative duration", store.TraceQuery{MinDuration: -time.Second}},
		{"max below min", store.TraceQuery{MinDuration: time.Second, MaxDuration: time.Millisecond}},
		{"inverted time range", store.TraceQuery{From: base, To: base.Add(-time.Hour)}},
		{"unknown order", store.TraceQuery{Order: "sideways"}},
		{"unknown status", store.TraceQuery{Status: "maybe"}},
		{"empty attribute key", store.TraceQuery{Attributes: map[string]string{"": "x"}}},
		{"too many attribute filters", store.TraceQuery{Attributes: func() map[string]string {
			m := map[string]string{}
			for i := range store.MaxAttributeFilters + 1 {
				m[fmt.Sprintf("k%d", i)] = "v"
			}
			return m
		}()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.SearchTraces(ctxT(t), tc.q)
			wantErrIs(t, "SearchTraces", err, store.ErrInvalid)
		})
	}
}

// testSearchAttributeForms checks the text form of each JSON value type and
// that keys and values are data, never SQL.
func testSearchAttributeForms(t *testing.T, s store.Store) {
	sp := mkSpan(1, 1, store.SpanID{}, "svc", "op", store.KindServer, at(0), time.Millisecond)
	sp.Attributes = store.Attributes(`{"i":-42,"big":9223372036854775807,"f":1.5,"b":false,"s":"x y","u":"日本",` +
		`"a.b":"dotted","q\"uote":"quoted","it's":"o'clock","arr":[1,2],"nil":null}`)
	write(t, s, sp)
	other := mkSpan(2, 2, store.SpanID{}, "svc", "op", store.KindServer, at(0), time.Millisecond)
	write(t, s, other)
	tests := []struct {
		key, value string
		match      bool
	}{
		{"i", "-42", true},
		{"i", "42", false},
		{"big", "9223372036854775807", true},
		{"f", "1.5", true},
		{"b", "false", true},
		{"b", "0", false},
		{"s", "x y", true},
		{"s", `"x y"`, false},
		{"u", "日本", true},
		{"a.b", "dotted", true},
		{`q"uote`, "quoted", true},
		{"it's", "o'clock", true},
		{"nil", "null", false},
		{"missing", "", false},
		{"s", "' OR 1=1 --", false},
		{"' OR 1=1 --", "x", false},
	}
	for _, tc := range tests {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			got := summaryIDs(search(t, s, store.TraceQuery{Attributes: map[string]string{tc.key: tc.value}}))
			var want []store.TraceID
			if tc.match {
				want = ids(1)
			}
			if !slices.Equal(got, want) {
				t.Errorf("attribute %s=%s matched %v, want %v", tc.key, tc.value, got, want)
			}
		})
	}
}
