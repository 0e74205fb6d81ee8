package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// profileTests are the store.ProfileStore contract tests. RunAll runs them
// like the span tests, each with a fresh store, which must implement
// store.ProfileStore.
func profileTests() []struct {
	name string
	fn   func(t *testing.T, s store.Store)
} {
	return []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"ProfilesWriteAndMerge", testProfilesWriteAndMerge},
		{"ProfilesIdempotent", testProfilesIdempotent},
		{"ProfilesTimeWindow", testProfilesTimeWindow},
		{"ProfilesSpanFilter", testProfilesSpanFilter},
		{"ProfilesMaxStacks", testProfilesMaxStacks},
		{"ProfiledSpans", testProfiledSpans},
		{"ProfileSeries", testProfileSeries},
		{"ProfilesRetention", testProfilesRetention},
		{"ProfilesInvalid", testProfilesInvalid},
		{"ProfilesAtomic", testProfilesAtomic},
		{"ProfilesConcurrentWriters", testProfilesConcurrentWriters},
		{"ProfilesLarge", testProfilesLarge},
		{"ProfilesContextCancelled", testProfilesContextCancelled},
	}
}

func profileStore(t *testing.T, s store.Store) store.ProfileStore {
	t.Helper()
	ps, ok := s.(store.ProfileStore)
	if !ok {
		t.Fatalf("%T does not implement store.ProfileStore", s)
	}
	return ps
}

// stk builds a stack from its frames, root first.
func stk(frames ...string) store.Stack {
	return store.Stack{ID: store.StackID(frames), Frames: frames}
}

// Stacks shared by the profile tests. The frames carry what a store must
// keep byte for byte: pprof's punctuation, non-ASCII, JSON metacharacters.
var (
	stMain  = stk("runtime.main", "main.main")
	stBurn  = stk("runtime.main", "main.main", "main.burn")
	stHash  = stk("runtime.main", "main.main", "main.burn", "crypto/sha256.block")
	stQuirk = stk("runtime.goexit", `net/http.(*conn).serve`, `main.handler.func1 "quoted" \back`, "日本語.関数 🚀", "a\nnewline")
)

// prof returns a profile of service over [at(from), at(to)).
func prof(service string, typ store.ProfileType, unit string, from, to time.Duration, samples ...store.ProfileSample) store.Profile {
	return store.Profile{
		Service: service, Type: typ, Unit: unit,
		Start: base.Add(from), End: base.Add(to),
		Labels:  map[string]string{"host": "node-1", "__session_id__": "abc"},
		Samples: samples,
	}
}

func smp(st store.Stack, value int64) store.ProfileSample {
	return store.ProfileSample{StackID: st.ID, Value: value}
}

func spanSmp(st store.Stack, span store.SpanID, name string, value int64) store.ProfileSample {
	return store.ProfileSample{StackID: st.ID, SpanID: span, SpanName: name, Value: value}
}

func writeProfiles(t *testing.T, ps store.ProfileStore, stacks []store.Stack, profiles ...store.Profile) {
	t.Helper()
	if err := ps.WriteProfiles(ctxT(t), store.ProfileBatch{Stacks: stacks, Profiles: profiles}); err != nil {
		t.Fatalf("WriteProfiles(%d profiles): %v", len(profiles), err)
	}
}

func stacksOf(t *testing.T, ps store.ProfileStore, q store.StackQuery) []store.StackValue {
	t.Helper()
	got, err := ps.Stacks(ctxT(t), q)
	if err != nil {
		t.Fatalf("Stacks(%+v): %v", q, err)
	}
	return got
}

// stackText renders merged stacks as "frame;frame=value" lines in the
// store's order, so a failure shows the whole result.
func stackText(svs []store.StackValue) string {
	lines := make([]string, len(svs))
	for i, sv := range svs {
		lines[i] = fmt.Sprintf("%s=%d", strings.Join(sv.Frames, ";"), sv.Value)
	}
	return strings.Join(lines, "\n")
}

func wantStacks(t *testing.T, what string, got []store.StackValue, want ...store.StackValue) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: nil slice, want an empty one for no stacks", what)
	}
	if g, w := stackText(got), stackText(want); g != w {
		t.Errorf("%s:\n got:\n%s\nwant:\n%s", what, g, w)
	}
}

func sv(st store.Stack, v int64) store.StackValue {
	return store.StackValue{Frames: st.Frames, Value: v}
}

func testProfilesWriteAndMerge(t *testing.T, s store.Store) {
	ps := profileStore(t, s)
	stacks := []store.Stack{stMain, stBurn, stHash, stQuirk}
	// One upload: a CPU profile and a heap upload's two alloc profiles
	// sharing the stacks; a second CPU profile of the next window.
	writeProfiles(t, ps, stacks,
		prof("feedsvc", store.ProfileCPU, store.UnitNanoseconds, 0, 10*time.Second,
			smp(stMain, 10), smp(stBurn, 300), smp(stHash, 700), smp(stQuirk, 50)),
		prof("feedsvc", store.ProfileAlloc, store.UnitBytes, 0, 10*time.Second, smp(stBurn, 4096)),
		prof("feedsvc", store.ProfileAlloc, store.UnitCount, 0, 10*time.Second, smp(stBurn, 2)),
	)
	writeProfiles(t, ps, []store.Stack{stBurn, stHash},
		prof("feedsvc", store.ProfileCPU, store.UnitNanoseconds, 10*time.Second, 20*time.Second, smp(stBurn, 100), smp(stHash, 1)))

	tests := []struct {
		name string
		q    store.StackQuery
		want []store.StackValue
	}{
		{"cpu merged over both profiles, heaviest first",
			store.StackQuery{Service: "feedsvc", Type: store.ProfileCPU},
			[]store.StackValue{sv(stHash, 701), sv(stBurn, 400), sv(stQuirk, 50), sv(stMain, 10)}},
		{"alloc defaults to bytes",
			store.StackQuery{Service: "feedsvc", Type: store.ProfileAlloc},
			[]store.StackValue{sv(stBurn, 4096)}},
		{"alloc in count",
			store.StackQuery{Service: "feedsvc", Type: store.ProfileAlloc, Unit: store.UnitCount},
			[]store.StackValue{sv(stBurn, 2)}},
		{"explicit unit equal to the default",
			store.StackQuery{Service: "feedsvc", Type: store.ProfileCPU, Unit: store.UnitNanoseconds, To: base.Add(10 * time.Second)},
			[]store.StackValue{sv(stHash, 700), sv(stBurn, 300), sv(stQuirk, 50), sv(stMain, 10)}},
		{"type without data", store.StackQuery{Service: "feedsvc", Type: store.ProfileGoroutines}, nil},
		{"other service", store.StackQuery{Service: "nope", Type: store.ProfileCPU}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantStacks(t, fmt.Sprintf("Stacks(%+v)", tc.q), stacksOf(t, ps, tc.q), tc.want...)
		})
	}
}

func testProfilesIdempotent(t *testing.T, s store.Store) {
	ps := profileStore(t, s)
	p := prof("svc", store.ProfileCPU, store.UnitNanoseconds, 0, 10*time.Second, smp(stBurn, 30), smp(stHash, 70))
	writeProfiles(t, ps, []store.Stack{stBurn, stHash}, p)
	// A resend after a lost reply, with the samples in another order.
	resent := p
	resent.Samples = []store.ProfileSample{smp(stHash, 70), smp(stBurn, 30)}
	writeProfiles(t, ps, []store.Stack{stHash, stBurn}, resent)
	// A resend in a batch together with a new profile: only the new one
	// is added.
	other := prof("svc", store.ProfileCPU, store.UnitNanoseconds, 10*time.Second, 20*time.Second, smp(stBurn, 5))
	writeProfiles(t, ps, []store.Stack{stBurn, stHash}, p, other)
	// Same window and samples but another process (labels differ): a
	// different profile, stored.
	twin := p
	twin.Labels = map[string]string{"host": "node-2"}
	writeProfiles(t, ps, []store.Stack{stBurn, stHash}, twin)

	got := stacksOf(t, ps, store.StackQuery{Service: "svc", Type: store.ProfileCPU})
	wantStacks(t, "after resends", got, sv(stHash, 140), sv(stBurn, 65))
	series, err := ps.ProfileSeries(ctxT(t), time.Time{}, time.Time{})
	if err != nil {
		t.Fatalf("ProfileSeries: %v", err)
	}
	if len(series) != 1 || series[0].Profiles != 3 || series[0].Value != 205 {
		t.Errorf("ProfileSeries = %+v, want 3 profiles with total 205", series)
	}
}

func testProfilesTimeWindow(t *testing.T, s store.Store) {
	ps := profileStore(t, s)
	// Three consecutive 10 s profiles: [0,10), [10,20), [20,30) seconds,
	// and one zero-length profile at 40 s.
	writeProfiles(t, ps, []store.Stack{stMain, stBurn, stHash},
		prof("svc", store.ProfileCPU, store.UnitNanoseconds, 0, 10*time.Second, smp(stMain, 1)),
		prof("svc", store.ProfileCPU, store.UnitNanoseconds, 10*time.Second, 20*time.Second, smp(stBurn, 10)),
		prof("svc", store.ProfileCPU, store.UnitNanoseconds, 20*time.Second, 30*time.Second, smp(stHash, 100)),
		prof("svc", store.ProfileCPU, store.UnitNanoseconds, 40*time.Second, 40*time.Second, smp(stMain, 1000)),
	)
	sec := func(n int) time.Time { return base.Add(time.Duration(n) * time.Second) }
	tests := []struct {
		name     string
		from, to time.Time
		want     []store.StackValue
	}{
		{"unbounded", time.Time{}, time.Time{}, []store.StackValue{sv(stMain, 1001), sv(stHash, 100), sv(stBurn, 10)}},
		{"inside one profile", sec(12), sec(13), []store.StackValue{sv(stBurn, 10)}},
		{"overlapping two", sec(5), sec(15), []store.StackValue{sv(stBurn, 10), sv(stMain, 1)}},
		{"to is exclusive", sec(0), sec(10), []store.StackValue{sv(stMain, 1)}},
		{"from at an end excludes that profile", sec(10), sec(20), []store.StackValue{sv(stBurn, 10)}},
		{"open start", time.Time{}, sec(11), []store.StackValue{sv(stBurn, 10), sv(stMain, 1)}},
		{"open end", sec(25), time.Time{}, []store.StackValue{sv(stMain, 1000), sv(stHash, 100)}},
		{"zero-length profile inside", sec(39), sec(41), []store.StackValue{sv(stMain, 1000)}},
		{"gap", sec(31), sec(39), nil},
		{"far before", sec(-7200), sec(-3600), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := store.StackQuery{Service: "svc", Type: store.ProfileCPU, From: tc.from, To: tc.to}
			wantStacks(t, fmt.Sprintf("Stacks[%s]", tc.name), stacksOf(t, ps, q), tc.want...)
		})
	}
}

func testProfilesSpanFilter(t *testing.T, s store.Store) {
	ps := profileStore(t, s)
	a, b, c := spanID(1), spanID(2), spanID(3)
	// One process (service "feedsvc") serving several traced services:
	// the span ids link samples to spans of any of them.
	writeProfiles(t, ps, []store.Stack{stMain, stBurn, stHash},
		prof("feedsvc", store.ProfileCPU, store.UnitNanoseconds, 0, 10*time.Second,
			smp(stMain, 1000), // outside any span
			spanSmp(stBurn, a, "GET /v1/feed", 20),
			spanSmp(stHash, a, "GET /v1/feed", 30),
			spanSmp(stHash, b, "rank", 5),
		),
		prof("other", store.ProfileCPU, store.UnitNanoseconds, 0, 10*time.Second, spanSmp(stBurn, c, "x", 7)),
		prof("feedsvc", store.ProfileGoroutines, store.UnitCount, 0, 10*time.Second, spanSmp(stMain, a, "GET /v1/feed", 2)),
	)
	tests := []struct {
		name    string
		service string
		spans   []store.SpanID
		want    []store.StackValue
	}{
		{"one span", "feedsvc", []store.SpanID{a}, []store.StackValue{sv(stHash, 30), sv(stBurn, 20)}},
		{"a group of spans", "feedsvc", []store.SpanID{a, b}, []store.StackValue{sv(stHash, 35), sv(stBurn, 20)}},
		{"without a service", "", []store.SpanID{b, c}, []store.StackValue{sv(stBurn, 7), sv(stHash, 5)}},
		{"service narrows span ids", "feedsvc", []store.SpanID{b, c}, []store.StackValue{sv(stHash, 5)}},
		{"unknown span", "", []store.SpanID{spanID(99)}, nil},
		{"empty non-nil list matches nothing", "feedsvc", []store.SpanID{}, nil},
		{"nil list is unfiltered", "feedsvc", nil, []store.StackValue{sv(stMain, 1000), sv(stHash, 35), sv(stBurn, 20)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := store.StackQuery{Service: tc.service, Type: store.ProfileCPU, SpanIDs: tc.spans}
			wantStacks(t, fmt.Sprintf("Stacks(%s)", tc.name), stacksOf(t, ps, q), tc.want...)
		})
	}
}

func testProfilesMaxStacks(t *testing.T, s store.Store) {
	ps := profileStore(t, s)
	writeProfiles(t, ps, []store.Stack{stMain, stBurn, stHash, stQuirk},
		prof("svc", store.ProfileCPU, store.UnitNanoseconds, 0, time.Second,
			smp(stMain, 1), smp(stBurn, 2), smp(stHash, 3), smp(stQuirk, 4)))
	got := stacksOf(t, ps, store.StackQuery{Service: "svc", Type: store.ProfileCPU, MaxStacks: 2})
	wantStacks(t, "MaxStacks 2", got, sv(stQuirk, 4), sv(stHash, 3))
	got = stacksOf(t, ps, store.StackQuery{Service: "svc", Type: store.ProfileCPU, MaxStacks: 10})
	wantStacks(t, "MaxStacks 10", got, sv(stQuirk, 4), sv(stHash, 3), sv(stBurn, 2), sv(stMain, 1))
}

func testProfiledSpans(t *testing.T, s store.Store) {
	ps := profileStore(t, s)
	a, b, c := spanID(1), spanID(2), spanID(3)
	writeProfiles(t, ps, []store.Stack{stMain, stBurn, stHash},
		prof("svc", store.ProfileCPU, store.UnitNanoseconds, 0, 10*time.Second,
			smp(stMain, 1000), spanSmp(stBurn, a, "op-a", 20), spanSmp(stHash, a, "op-a", 30), spanSmp(stHash, b, "op-b", 5)),
		prof("svc", store.ProfileCPU, store.UnitNanoseconds, 10*time.Second, 20*time.Second, spanSmp(stHash, b, "op-b", 6)),
		prof("svc", store.ProfileGoroutines, store.UnitCount, 0, 10*time.Second, spanSmp(stMain, b, "op-b", 2)),
	)
	got, err := ps.ProfiledSpans(ctxT(t), []store.SpanID{c, b, a, spanID(42)})
	if err != nil {
		t.Fatalf("ProfiledSpans: %v", err)
	}
	want := []store.SpanProfile{
		{SpanID: a, Type: store.ProfileCPU, Unit: store.UnitNanoseconds, Value: 50},
		{SpanID: b, Type: store.ProfileCPU, Unit: store.UnitNanoseconds, Value: 11},
		{SpanID: b, Type: store.ProfileGoroutines, Unit: store.UnitCount, Value: 2},
	}
	if !slices.Equal(got, want) {
		t.Errorf("ProfiledSpans = %+v, want %+v", got, want)
	}
	got, err = ps.ProfiledSpans(ctxT(t), nil)
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("ProfiledSpans(nil) = %#v, %v; want an empty slice", got, err)
	}
	// The limit is inclusive; one more fails.
	many := make([]store.SpanID, store.MaxProfileSpanIDs)
	for i := range many {
		many[i] = spanID(1000 + i)
	}
	many[len(many)-1] = a
	got, err = ps.ProfiledSpans(ctxT(t), many)
	if err != nil || len(got) != 1 || got[0].SpanID != a {
		t.Errorf("ProfiledSpans(%d ids) = %+v, %v; want span a only", len(many), got, err)
	}
	_, err = ps.ProfiledSpans(ctxT(t), append(many, b))
	wantErrIs(t, "ProfiledSpans(too many)", err, store.ErrInvalid)
}

func testProfileSeries(t *testing.T, s store.Store) {
	ps := profileStore(t, s)
	writeProfiles(t, ps, []store.Stack{stMain, stBurn},
		prof("b-svc", store.ProfileCPU, store.UnitNanoseconds, 0, 10*time.Second, smp(stMain, 5)),
		prof("b-svc", store.ProfileCPU, store.UnitNanoseconds, 10*time.Second, 20*time.Second, smp(stMain, 7), smp(stBurn, 1)),
		prof("b-svc", store.ProfileAlloc, store.UnitBytes, 10*time.Second, 20*time.Second, smp(stBurn, 512)),
		prof("a-svc", store.ProfileInuse, store.UnitCount, 30*time.Second, 40*time.Second, smp(stBurn, 3)),
		prof("a-svc", store.ProfileCPU, store.UnitNanoseconds, 30*time.Second, 40*time.Second), // no samples: still a profile
		prof("bad\x00name\xff", store.ProfileBlock, store.UnitNanoseconds, 50*time.Second, 60*time.Second, smp(stMain, 9)),
	)
	sec := func(n int) time.Time { return base.Add(time.Duration(n) * time.Second) }
	all := []store.ProfileSeries{
		{Service: "a-svc", Type: store.ProfileCPU, Unit: store.UnitNanoseconds, Profiles: 1, Value: 0, First: sec(30), Last: sec(40)},
		{Service: "a-svc", Type: store.ProfileInuse, Unit: store.UnitCount, Profiles: 1, Value: 3, First: sec(30), Last: sec(40)},
		{Service: "b-svc", Type: store.ProfileAlloc, Unit: store.UnitBytes, Profiles: 1, Value: 512, First: sec(10), Last: sec(20)},
		{Service: "b-svc", Type: store.ProfileCPU, Unit: store.UnitNanoseconds, Profiles: 2, Value: 13, First: sec(0), Last: sec(20)},
		// NUL and invalid UTF-8 are stored as U+FFFD, as for spans.
		{Service: "bad\uFFFDname\uFFFD", Type: store.ProfileBlock, Unit: store.UnitNanoseconds, Profiles: 1, Value: 9, First: sec(50), Last: sec(60)},
	}
	tests := []struct {
		name     string
		from, to time.Time
		want     []store.ProfileSeries
	}{
		{"everything", time.Time{}, time.Time{}, all},
		{"a range", sec(15), sec(31), []store.ProfileSeries{all[0], all[1], all[2],
			{Service: "b-svc", Type: store.ProfileCPU, Unit: store.UnitNanoseconds, Profiles: 1, Value: 8, First: sec(10), Last: sec(20)}}},
		{"only the first b-svc cpu profile", sec(0), sec(5), []store.ProfileSeries{
			{Service: "b-svc", Type: store.ProfileCPU, Unit: store.UnitNanoseconds, Profiles: 1, Value: 5, First: sec(0), Last: sec(10)}}},
		{"nothing", sec(100), sec(200), []store.ProfileSeries{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ps.ProfileSeries(ctxT(t), tc.from, tc.to)
			if err != nil {
				t.Fatalf("ProfileSeries: %v", err)
			}
			if got == nil || !slices.EqualFunc(got, tc.want, seriesEqual) {
				t.Errorf("ProfileSeries =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
	_, err := ps.ProfileSeries(ctxT(t), sec(10), sec(0))
	wantErrIs(t, "ProfileSeries(inverted range)", err, store.ErrInvalid)
}

func seriesEqual(a, b store.ProfileSeries) bool {
	return a.Service == b.Service && a.Type == b.Type && a.Unit == b.Unit && a.Profiles == b.Profiles &&
		a.Value == b.Value && a.First.Equal(b.First) && a.Last.Equal(b.Last)
}

func testProfilesRetention(t *testing.T, s store.Store) {
	ps := profileStore(t, s)
	a := spanID(1)
	writeProfiles(t, ps, []store.Stack{stMain, stBurn},
		prof("svc", store.ProfileCPU, store.UnitNanoseconds, 0, 10*time.Second, spanSmp(stMain, a, "old", 5)),
		prof("svc", store.ProfileCPU, store.UnitNanoseconds, 10*time.Second, 20*time.Second, smp(stBurn, 7)),
		prof("svc", store.ProfileCPU, store.UnitNanoseconds, 20*time.Second, 30*time.Second, smp(stBurn, 11)),
	)
	// The middle profile ends exactly at the cut: kept ("ended before t").
	if err := ps.DeleteProfilesBefore(ctxT(t), base.Add(20*time.Second)); err != nil {
		t.Fatalf("DeleteProfilesBefore: %v", err)
	}
	got := stacksOf(t, ps, store.StackQuery{Service: "svc", Type: store.ProfileCPU})
	wantStacks(t, "after retention", got, sv(stBurn, 18))
	spans, err := ps.ProfiledSpans(ctxT(t), []store.SpanID{a})
	if err != nil || len(spans) != 0 {
		t.Errorf("ProfiledSpans after its profile was deleted = %+v, %v; want none", spans, err)
	}
	// Retention keeps stacks; writing a stack that is still stored is fine.
	writeProfiles(t, ps, []store.Stack{stMain},
		prof("svc", store.ProfileCPU, store.UnitNanoseconds, 40*time.Second, 50*time.Second, smp(stMain, 1)))
	got = stacksOf(t, ps, store.StackQuery{Service: "svc", Type: store.ProfileCPU})
	wantStacks(t, "after a new write", got, sv(stBurn, 18), sv(stMain, 1))
	if err := ps.DeleteProfilesBefore(ctxT(t), base.Add(time.Hour)); err != nil {
		t.Fatalf("DeleteProfilesBefore(everything): %v", err)
	}
	wantStacks(t, "after deleting everything", stacksOf(t, ps, store.StackQuery{Service: "svc", Type: store.ProfileCPU}))
}

func testProfilesInvalid(t *testing.T, s store.Store) {
	ps := profileStore(t, s)
	good := func() store.Profile {
		return prof("svc", store.ProfileCPU, store.UnitNanoseconds, 0, time.Second, smp(stBurn, 1))
	}
	with := func(f func(p *store.Profile)) store.Profile { p := good(); f(&p); return p }
	batches := []struct {
		name string
		b    store.ProfileBatch
	}{
		{"empty service", store.ProfileBatch{Stacks: []store.Stack{stBurn}, Profiles: []store.Profile{with(func(p *store.Profile) { p.Service = "" })}}},
		{"unknown type", store.ProfileBatch{Stacks: []store.Stack{stBurn}, Profiles: []store.Profile{with(func(p *store.Profile) { p.Type = "wall" })}}},
		{"unit of another type", store.ProfileBatch{Stacks: []store.Stack{stBurn}, Profiles: []store.Profile{with(func(p *store.Profile) { p.Unit = store.UnitBytes })}}},
		{"no start", store.ProfileBatch{Stacks: []store.Stack{stBurn}, Profiles: []store.Profile{with(func(p *store.Profile) { p.Start = time.Time{} })}}},
		{"ends before start", store.ProfileBatch{Stacks: []store.Stack{stBurn}, Profiles: []store.Profile{with(func(p *store.Profile) { p.End = p.Start.Add(-1) })}}},
		{"window too long", store.ProfileBatch{Stacks: []store.Stack{stBurn}, Profiles: []store.Profile{with(func(p *store.Profile) { p.End = p.Start.Add(store.MaxProfileWindow + 1) })}}},
		{"zero value", store.ProfileBatch{Stacks: []store.Stack{stBurn}, Profiles: []store.Profile{with(func(p *store.Profile) { p.Samples[0].Value = 0 })}}},
		{"negative value", store.ProfileBatch{Stacks: []store.Stack{stBurn}, Profiles: []store.Profile{with(func(p *store.Profile) { p.Samples[0].Value = -5 })}}},
		{"stack not in batch", store.ProfileBatch{Stacks: []store.Stack{stMain}, Profiles: []store.Profile{good()}}},
		{"stack id not its hash", store.ProfileBatch{Stacks: []store.Stack{{ID: stBurn.ID, Frames: []string{"other"}}}, Profiles: []store.Profile{good()}}},
		{"stack without frames", store.ProfileBatch{Stacks: []store.Stack{stBurn, {ID: store.StackID(nil)}}, Profiles: []store.Profile{good()}}},
	}
	for _, tc := range batches {
		t.Run(tc.name, func(t *testing.T) {
			wantErrIs(t, "WriteProfiles("+tc.name+")", ps.WriteProfiles(ctxT(t), tc.b), store.ErrInvalid)
		})
	}
	wantStacks(t, "after invalid writes", stacksOf(t, ps, store.StackQuery{Service: "svc", Type: store.ProfileCPU}))
	if err := ps.WriteProfiles(ctxT(t), store.ProfileBatch{}); err != nil {
		t.Errorf("WriteProfiles(empty batch): %v", err)
	}

	queries := []struct {
		name string
		q    store.StackQuery
	}{
		{"no type", store.StackQuery{Service: "svc"}},
		{"unknown type", store.StackQuery{Service: "svc", Type: "wall"}},
		{"unit of another type", store.StackQuery{Service: "svc", Type: store.ProfileGoroutines, Unit: store.UnitBytes}},
		{"neither service nor spans", store.StackQuery{Type: store.ProfileCPU}},
		{"inverted range", store.StackQuery{Service: "svc", Type: store.ProfileCPU, From: base, To: base.Add(-time.Second)}},
		{"negative max stacks", store.StackQuery{Service: "svc", Type: store.ProfileCPU, MaxStacks: -1}},
		{"too many span ids", store.StackQuery{Type: store.ProfileCPU, SpanIDs: make([]store.SpanID, store.MaxProfileSpanIDs+1)}},
	}
	for _, tc := range queries {
		t.Run("query "+tc.name, func(t *testing.T) {
			_, err := ps.Stacks(ctxT(t), tc.q)
			wantErrIs(t, "Stacks("+tc.name+")", err, store.ErrInvalid)
		})
	}
}

// testProfilesAtomic checks that a batch with one bad profile stores none
// of its profiles, even though the bad one comes last.
func testProfilesAtomic(t *testing.T, s store.Store) {
	ps := profileStore(t, s)
	ok := prof("svc", store.ProfileCPU, store.UnitNanoseconds, 0, time.Second, smp(stBurn, 1))
	bad := prof("svc", store.ProfileCPU, store.UnitNanoseconds, time.Second, 2*time.Second, smp(stHash, 1)) // stack missing
	err := ps.WriteProfiles(ctxT(t), store.ProfileBatch{Stacks: []store.Stack{stBurn}, Profiles: []store.Profile{ok, bad}})
	wantErrIs(t, "WriteProfiles(one bad profile)", err, store.ErrInvalid)
	series, err := ps.ProfileSeries(ctxT(t), time.Time{}, time.Time{})
	if err != nil || len(series) != 0 {
		t.Errorf("after a failed batch ProfileSeries = %+v, %v; want nothing stored", series, err)
	}
}

// testProfilesConcurrentWriters has uploads that share stacks commit at the
// same time, listing the stacks in different orders: none may fail (no
// deadlock between their stack inserts) and every value must count once.
func testProfilesConcurrentWriters(t *testing.T, s store.Store) {
	ps := profileStore(t, s)
	stacks := make([]store.Stack, 50)
	for i := range stacks {
		stacks[i] = stk("runtime.main", "main.main", fmt.Sprintf("main.work%02d", i))
	}
	const writers, rounds = 4, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds)
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				order := slices.Clone(stacks)
				if w%2 == 1 {
					slices.Reverse(order)
				}
				samples := make([]store.ProfileSample, len(order))
				for i, st := range order {
					samples[i] = smp(st, 1)
				}
				p := prof("svc", store.ProfileCPU, store.UnitNanoseconds,
					time.Duration(r)*10*time.Second, time.Duration(r+1)*10*time.Second, samples...)
				p.Labels = map[string]string{"writer": fmt.Sprint(w)}
				if err := ps.WriteProfiles(ctxT(t), store.ProfileBatch{Stacks: order, Profiles: []store.Profile{p}}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent WriteProfiles: %v", err)
	}
	got := stacksOf(t, ps, store.StackQuery{Service: "svc", Type: store.ProfileCPU})
	if len(got) != len(stacks) {
		t.Fatalf("Stacks returned %d stacks, want %d", len(got), len(stacks))
	}
	for _, g := range got {
		if g.Value != writers*rounds {
			t.Errorf("stack %v = %d, want %d", g.Frames, g.Value, writers*rounds)
		}
	}
}

// testProfilesLarge writes an upload of realistic size: a CPU profile with
// thousands of samples over deep stacks, spread over many spans.
func testProfilesLarge(t *testing.T, s store.Store) {
	ps := profileStore(t, s)
	const nStacks, nSpans = 2000, 500
	stacks := make([]store.Stack, nStacks)
	for i := range stacks {
		frames := []string{"runtime.goexit", "net/http.(*conn).serve", "net/http.serverHandler.ServeHTTP"}
		for d := range 30 + i%20 {
			frames = append(frames, fmt.Sprintf("github.com/acme/feed/internal/pkg%d.(*Type%d).Method%d", d%7, i%13, d))
		}
		stacks[i] = stk(append(frames, fmt.Sprintf("github.com/acme/feed.leaf%d", i))...)
	}
	var (
		samples []store.ProfileSample
		want    int64
		spanIDs []store.SpanID
	)
	for i := range 5 * nStacks {
		span := spanID(i % nSpans)
		samples = append(samples, spanSmp(stacks[i%nStacks], span, "GET /v1/feed", int64(10_000_000)))
		want += 10_000_000
	}
	for i := range nSpans {
		spanIDs = append(spanIDs, spanID(i))
	}
	writeProfiles(t, ps, stacks, prof("svc", store.ProfileCPU, store.UnitNanoseconds, 0, 15*time.Second, samples...))
	got := stacksOf(t, ps, store.StackQuery{Service: "svc", Type: store.ProfileCPU, SpanIDs: spanIDs})
	var total int64
	for _, g := range got {
		total += g.Value
	}
	if len(got) != nStacks || total != want {
		t.Errorf("Stacks = %d stacks totalling %d, want %d totalling %d", len(got), total, nStacks, want)
	}
	if len(got) > 0 && len(got[0].Frames) < 34 {
		t.Errorf("frames of the heaviest stack = %d, want at least 34", len(got[0].Frames))
	}
	profiled, err := ps.ProfiledSpans(ctxT(t), spanIDs)
	if err != nil || len(profiled) != nSpans {
		t.Errorf("ProfiledSpans(%d spans) = %d entries, %v; want %d", nSpans, len(profiled), err, nSpans)
	}
}

func testProfilesContextCancelled(t *testing.T, s store.Store) {
	ps := profileStore(t, s)
	ctx, cancel := context.WithCancel(ctxT(t))
	cancel()
	p := prof("svc", store.ProfileCPU, store.UnitNanoseconds, 0, time.Second, smp(stBurn, 1))
	checks := []struct {
		name string
		call func() error
	}{
		{"WriteProfiles", func() error {
			return ps.WriteProfiles(ctx, store.ProfileBatch{Stacks: []store.Stack{stBurn}, Profiles: []store.Profile{p}})
		}},
		{"Stacks", func() error {
			_, err := ps.Stacks(ctx, store.StackQuery{Service: "svc", Type: store.ProfileCPU})
			return err
		}},
		{"ProfiledSpans", func() error { _, err := ps.ProfiledSpans(ctx, []store.SpanID{spanID(1)}); return err }},
		{"ProfileSeries", func() error { _, err := ps.ProfileSeries(ctx, time.Time{}, time.Time{}); return err }},
		{"DeleteProfilesBefore", func() error { return ps.DeleteProfilesBefore(ctx, base) }},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context: err = %v, want context.Canceled", c.name, err)
			}
			if errors.Is(err, store.ErrUnavailable) {
				t.Errorf("%s: a cancelled call is not 'unavailable': %v", c.name, err)
			}
		})
	}
	wantStacks(t, "after a cancelled write", stacksOf(t, ps, store.StackQuery{Service: "svc", Type: store.ProfileCPU}))
}
