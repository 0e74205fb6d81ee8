package storetest

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// rollupTests are the contract of store.RollupStore.
func rollupTests() []struct {
	name string
	fn   func(t *testing.T, s store.Store)
} {
	return []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Rollups", testRollups},
		{"RollupsCountResentSpansOnce", testRollupsResent},
		{"RollupsCompact", testRollupsCompact},
		{"RollupsRequestBefore", testRollupsRequestBefore},
		{"RollupsRetention", testRollupsRetention},
		{"OperationRollups", testOperationRollups},
		{"Weights", testWeights},
		{"TenantRollups", testTenantRollups},
		{"TenantRollupsBound", testTenantRollupsBound},
		{"RollupNamesBound", testRollupNamesBound},
		{"LongKeyText", testLongKeyText},
	}
}

func rollups(t *testing.T, s store.Store, q store.RollupQuery) []store.Rollup {
	t.Helper()
	got, err := s.Rollups(ctxT(t), q)
	if err != nil {
		t.Fatalf("Rollups(%+v): %v", q, err)
	}
	return got
}

// bins is the expected bins of durations.
func bins(durs ...time.Duration) []store.DurationBin {
	m := map[int32]int64{}
	for _, d := range durs {
		if b, ok := store.RollupBin(int64(d)); ok {
			m[b]++
		}
	}
	out := []store.DurationBin{}
	for i, n := range m {
		out = append(out, store.DurationBin{Index: i, Count: n})
	}
	slices.SortFunc(out, func(a, b store.DurationBin) int { return int(a.Index - b.Index) })
	return out
}

func equalRollups(t *testing.T, what string, got, want []store.Rollup) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rollups, want %d:\n got %+v\nwant %+v", what, len(got), len(want), got, want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if w.WeightSq == 0 {
			// Unweighted spans: each its own draw.
			w.WeightSq = w.Count
		}
		gb, wb := g.Bins, w.Bins
		g.Bins, w.Bins = nil, nil
		if !reflect.DeepEqual(g, w) || !slices.Equal(gb, wb) {
			t.Errorf("%s[%d] = %+v %v,\n want %+v %v", what, i, g, gb, w, wb)
		}
	}
}

func testRollups(t *testing.T, s store.Store) {
	sampleData(t, s)
	// A second minute and a later hour of api GET /a, v2.
	late := mkSpan(8, 80, store.SpanID{}, "api", "GET /a", store.KindServer, at(90*time.Second), 0)
	late.Version = "v2"
	later := mkSpan(9, 90, store.SpanID{}, "api", "GET /a", store.KindServer, at(time.Hour+time.Second), 2*time.Millisecond)
	write(t, s, late, later)
	minute := base.UnixNano()
	t.Run("minutes by version", func(t *testing.T) {
		got := rollups(t, s, store.RollupQuery{Step: store.RollupMinute, From: base.Add(time.Second), To: base.Add(2 * time.Minute),
			Service: "api", ByVersion: true})
		equalRollups(t, "Rollups", got, []store.Rollup{
			{Service: "api", Endpoint: "GET /a", Version: "v1", BucketUnixNano: minute, Count: 3, Roots: 2,
				FirstUnixNano: at(0), MinNs: int64(10 * time.Millisecond), MaxNs: int64(40 * time.Millisecond),
				SumNs: int64(80 * time.Millisecond), Bins: bins(10*time.Millisecond, 30*time.Millisecond, 40*time.Millisecond)},
			{Service: "api", Endpoint: "GET /a", Version: "v2", BucketUnixNano: minute + int64(time.Minute), Count: 1, Roots: 1,
				FirstUnixNano: at(90 * time.Second), ZeroCount: 1, Bins: []store.DurationBin{}},
			{Service: "api", Endpoint: "GET /b", Version: "v2", BucketUnixNano: minute, Count: 1, Errors: 1, Roots: 1,
				FirstUnixNano: at(time.Second), MinNs: int64(20 * time.Millisecond), MaxNs: int64(20 * time.Millisecond),
				SumNs: int64(20 * time.Millisecond), Bins: bins(20 * time.Millisecond)},
			{Service: "api", Endpoint: "consume", BucketUnixNano: minute, Count: 1, FirstUnixNano: at(4 * time.Second),
				MinNs: int64(5 * time.Millisecond), MaxNs: int64(5 * time.Millisecond), SumNs: int64(5 * time.Millisecond),
				Bins: bins(5 * time.Millisecond)},
		})
	})
	t.Run("hours merge versions", func(t *testing.T) {
		got := rollups(t, s, store.RollupQuery{Step: store.RollupHour, From: base, To: base.Add(2 * time.Hour), Service: "api", Endpoint: "GET /a"})
		equalRollups(t, "Rollups", got, []store.Rollup{
			{Service: "api", Endpoint: "GET /a", BucketUnixNano: minute, Count: 4, Roots: 3,
				FirstUnixNano: at(0), MinNs: 0, MaxNs: int64(40 * time.Millisecond), ZeroCount: 1,
				SumNs: int64(80 * time.Millisecond), Bins: bins(10*time.Millisecond, 30*time.Millisecond, 40*time.Millisecond)},
			{Service: "api", Endpoint: "GET /a", BucketUnixNano: minute + int64(time.Hour), Count: 1, Roots: 1,
				FirstUnixNano: at(time.Hour + time.Second), MinNs: int64(2 * time.Millisecond), MaxNs: int64(2 * time.Millisecond),
				SumNs: int64(2 * time.Millisecond), Bins: bins(2 * time.Millisecond)},
		})
	})
	t.Run("version filter", func(t *testing.T) {
		got := rollups(t, s, store.RollupQuery{Step: store.RollupHour, From: base, To: base.Add(time.Hour), Version: "v2", ByVersion: true})
		if len(got) != 2 || got[0].Endpoint != "GET /a" || got[1].Endpoint != "GET /b" || got[0].Version != "v2" {
			t.Errorf("Rollups(version v2) = %+v, want GET /a and GET /b of v2", got)
		}
	})
	t.Run("empty", func(t *testing.T) {
		if got := rollups(t, s, store.RollupQuery{Step: store.RollupMinute, From: base.Add(-time.Hour), To: base}); len(got) != 0 {
			t.Errorf("Rollups before the data = %+v, want none", got)
		}
	})
	for _, q := range []store.RollupQuery{
		{Step: time.Second, From: base, To: base.Add(time.Minute)},
		{Step: store.RollupMinute, From: base, To: base},
		{Step: store.RollupMinute},
		{Step: store.RollupMinute, From: base, To: base.Add(30 * 24 * time.Hour)},
	} {
		_, err := s.Rollups(ctxT(t), q)
		wantErrIs(t, "Rollups(invalid)", err, store.ErrInvalid)
	}
}

// testRollupsResent: a span stored twice (in one batch, resent in later
// batches, in the write path's fallbacks) is counted once, as in spans.
func testRollupsResent(t *testing.T, s store.Store) {
	a := mkSpan(1, 1, store.SpanID{}, "svc", "root", store.KindServer, at(0), time.Second)
	b := mkSpan(2, 2, store.SpanID{}, "svc", "root", store.KindServer, at(time.Millisecond), time.Millisecond)
	c := mkSpan(3, 3, store.SpanID{}, "svc", "root", store.KindServer, at(2*time.Millisecond), 2*time.Millisecond)
	write(t, s, a, b, a)
	write(t, s, a)
	write(t, s, b, a, c)
	got := rollups(t, s, store.RollupQuery{Step: store.RollupMinute, From: base, To: base.Add(time.Minute)})
	if len(got) != 1 || got[0].Count != 3 || !slices.Equal(got[0].Bins, bins(time.Second, time.Millisecond, 2*time.Millisecond)) {
		t.Fatalf("Rollups = %+v, want one row counting 3 spans once each", got)
	}
	eps, err := s.Endpoints(ctxT(t), base, base.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if want := []store.Endpoint{{Service: "svc", Name: "root", Count: 3, Roots: 3}}; !slices.Equal(eps, want) {
		t.Errorf("Endpoints = %+v, want %+v", eps, want)
	}
}

// testRollupsCompact: compaction folds many appended rows without
// changing what readers see, and writes after it add to it.
func testRollupsCompact(t *testing.T, s store.Store) {
	var durs []time.Duration
	for i := range 20 {
		d := time.Duration(i+1) * time.Millisecond
		durs = append(durs, d)
		sp := mkSpan(i, i, store.SpanID{}, "svc", "op", store.KindServer, at(time.Duration(i)*time.Second), d)
		sp.StatusCode = store.StatusCode(i % 3)
		write(t, s, sp)
	}
	q := store.RollupQuery{Step: store.RollupMinute, From: base, To: base.Add(time.Minute)}
	before := rollups(t, s, q)
	if err := s.CompactRollups(ctxT(t)); err != nil {
		t.Fatalf("CompactRollups: %v", err)
	}
	equalRollups(t, "after compaction", rollups(t, s, q), before)
	if err := s.CompactRollups(ctxT(t)); err != nil {
		t.Fatalf("CompactRollups again: %v", err)
	}
	equalRollups(t, "after a second compaction", rollups(t, s, q), before)
	write(t, s, mkSpan(100, 100, store.SpanID{}, "svc", "op", store.KindServer, at(30*time.Second), 100*time.Millisecond))
	got := rollups(t, s, q)
	if len(got) != 1 || got[0].Count != 21 || got[0].MaxNs != int64(100*time.Millisecond) {
		t.Fatalf("after a write = %+v, want 21 requests up to 100ms", got)
	}
	hours := rollups(t, s, store.RollupQuery{Step: store.RollupHour, From: base, To: base.Add(time.Hour)})
	if len(hours) != 1 || hours[0].Count != 21 || hours[0].Errors != 6 ||
		!slices.Equal(hours[0].Bins, bins(append(durs, 100*time.Millisecond)...)) {
		t.Errorf("hour rollup = %+v, want the 21 requests with 6 errors", hours)
	}
}

func testRollupsRequestBefore(t *testing.T, s store.Store) {
	a := mkSpan(1, 1, store.SpanID{}, "svc", "op", store.KindServer, at(0), time.Millisecond)
	a.Version = "v1"
	b := mkSpan(2, 2, store.SpanID{}, "svc", "op", store.KindServer, at(3*time.Hour), time.Millisecond)
	b.Version = "v2"
	write(t, s, a, b)
	tests := []struct {
		name              string
		endpoint, version string
		since, before     time.Time
		want              bool
	}{
		{"none before the first", "op", "", time.Time{}, base, false},
		{"the first, exactly", "op", "", time.Time{}, base.Add(1), true},
		{"within the hour of the first", "op", "", time.Time{}, base.Add(30 * time.Minute), true},
		{"version since", "op", "v2", base.Add(time.Hour), base.Add(3*time.Hour + time.Minute), true},
		{"version not since", "op", "v1", base.Add(time.Hour), base.Add(3*time.Hour + time.Minute), false},
		{"other endpoint", "other", "", time.Time{}, base.Add(5 * time.Hour), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.RequestBefore(ctxT(t), "svc", tc.endpoint, tc.version, tc.since, tc.before)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("RequestBefore = %v, want %v", got, tc.want)
			}
			if !tc.since.IsZero() || tc.version != "" {
				return
			}
			// EndpointsBefore answers the same among 700 names (more than
			// one read's worth), the endpoint asked for among the last.
			names := make([]string, 700)
			for i := range names {
				names[i] = fmt.Sprintf("GET /users/%d", i)
			}
			names[650] = tc.endpoint
			had, err := s.EndpointsBefore(ctxT(t), "svc", names, tc.before)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[string]bool{}; tc.want {
				want[tc.endpoint] = true
				if !maps.Equal(had, want) {
					t.Errorf("EndpointsBefore = %v, want %v", had, want)
				}
			} else if len(had) != 0 {
				t.Errorf("EndpointsBefore = %v, want none", had)
			}
		})
	}
}

// testRollupsRetention: minute rollups go with the spans, hour rollups
// stay until DeleteRollupsBefore.
func testRollupsRetention(t *testing.T, s store.Store) {
	day := 24 * time.Hour
	old := mkSpan(1, 1, store.SpanID{}, "svc", "op", store.KindServer, base.Add(-3*day).UnixNano(), time.Millisecond)
	keep := mkSpan(2, 2, store.SpanID{}, "svc", "op", store.KindServer, base.UnixNano(), time.Millisecond)
	write(t, s, old, keep)
	if err := s.DeleteBefore(ctxT(t), base.Add(-day)); err != nil {
		t.Fatal(err)
	}
	oldMinute := store.RollupQuery{Step: store.RollupMinute, From: base.Add(-3 * day), To: base.Add(-3*day + time.Minute)}
	if got := rollups(t, s, oldMinute); len(got) != 0 {
		t.Errorf("minute rollups after span retention = %+v, want none", got)
	}
	oldHour := store.RollupQuery{Step: store.RollupHour, From: base.Add(-3 * day), To: base.Add(-3*day + time.Hour)}
	if got := rollups(t, s, oldHour); len(got) != 1 || got[0].Count != 1 {
		t.Errorf("hour rollups after span retention = %+v, want the old hour", got)
	}
	if err := s.DeleteRollupsBefore(ctxT(t), base.Add(-day)); err != nil {
		t.Fatal(err)
	}
	if got := rollups(t, s, oldHour); len(got) != 0 {
		t.Errorf("hour rollups after rollup retention = %+v, want none", got)
	}
	now := store.RollupQuery{Step: store.RollupHour, From: base, To: base.Add(time.Hour)}
	if got := rollups(t, s, now); len(got) != 1 {
		t.Errorf("recent hour rollups = %+v, want kept", got)
	}
}
