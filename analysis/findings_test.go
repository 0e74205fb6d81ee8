package analysis

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/store"
)

// kinds returns finding kinds with their time at stake.
func kinds(fs []Finding) map[string][]float64 {
	m := map[string][]float64{}
	for _, f := range fs {
		m[f.Kind] = append(m[f.Kind], f.TimeMs)
	}
	return m
}

func severeIn(want map[string][]float64) bool {
	return want[FindingError] != nil || want[FindingTimeout] != nil
}

func TestFindings(t *testing.T) {
	db := map[string]any{"db.system": "postgresql", "db.query.text": "SELECT * FROM items WHERE id = $1"}
	tests := []struct {
		name  string
		spans []sp
		want  map[string][]float64
		ids   map[string][]int // span ids of the first finding of a kind
	}{
		{
			name: "sequential fan-out",
			spans: []sp{
				{id: 1, start: 0, end: 100},
				{id: 2, parent: 1, dep: "a", start: 0, end: 20},
				{id: 3, parent: 1, dep: "b", start: 20, end: 50},
				{id: 4, parent: 1, dep: "c", start: 55, end: 95},
			},
			// 90 ms in calls, the longest 40: 50 ms to save.
			want: map[string][]float64{FindingSequentialFanOut: {50}},
			ids:  map[string][]int{FindingSequentialFanOut: {2, 3, 4}},
		},
		{
			name: "parallel then dependent call is not sequential",
			spans: []sp{
				{id: 1, start: 0, end: 100},
				{id: 2, parent: 1, dep: "a", start: 0, end: 40},
				{id: 3, parent: 1, dep: "b", start: 1, end: 50},
				{id: 4, parent: 1, dep: "c", start: 50, end: 95},
			},
			want: map[string][]float64{},
		},
		{
			name: "sequential calls to one dependency are not fan-out",
			spans: []sp{
				{id: 1, start: 0, end: 92},
				{id: 2, parent: 1, dep: "a", start: 0, end: 40},
				{id: 3, parent: 1, dep: "a", start: 40, end: 90},
			},
			want: map[string][]float64{},
		},
		{
			name: "N+1",
			spans: append([]sp{{id: 1, start: 0, end: 88}}, func() []sp {
				var out []sp
				for i := range 10 {
					out = append(out, sp{id: 10 + i, parent: 1, name: "SELECT item", dep: "postgresql", attrs: db,
						start: float64(5 + 8*i), end: float64(5 + 8*i + 6)})
				}
				return out
			}()...),
			// 60 ms busy, longest call 6: batching saves 54.
			want: map[string][]float64{FindingNPlusOne: {54}},
		},
		{
			name: "four similar calls are not N+1",
			spans: []sp{
				{id: 1, start: 0, end: 42},
				{id: 2, parent: 1, name: "q", dep: "pg", start: 0, end: 10},
				{id: 3, parent: 1, name: "q", dep: "pg", start: 10, end: 20},
				{id: 4, parent: 1, name: "q", dep: "pg", start: 20, end: 30},
				{id: 5, parent: 1, name: "q", dep: "pg", start: 30, end: 40},
			},
			want: map[string][]float64{},
		},
		{
			name: "retries after errors",
			spans: []sp{
				{id: 1, start: 0, end: 155},
				{id: 2, parent: 1, name: "GET /profile", dep: "profile-svc", start: 0, end: 50, status: store.StatusError},
				{id: 3, parent: 1, name: "GET /profile", dep: "profile-svc", start: 60, end: 110, status: store.StatusError},
				{id: 4, parent: 1, name: "GET /profile", dep: "profile-svc", start: 120, end: 150},
			},
			want: map[string][]float64{FindingRetries: {120}},
			ids:  map[string][]int{FindingRetries: {2, 3, 4}},
		},
		{
			name: "a failed call not retried is not a retry",
			spans: []sp{
				{id: 1, start: 0, end: 22},
				{id: 2, parent: 1, name: "GET /a", dep: "a", start: 0, end: 10},
				{id: 3, parent: 1, name: "GET /a", dep: "a", start: 10, end: 20, status: store.StatusError},
			},
			want: map[string][]float64{},
		},
		{
			name: "slow db statement",
			spans: []sp{
				{id: 1, start: 0, end: 300},
				{id: 2, parent: 1, name: "SELECT", dep: "postgresql", attrs: db, start: 10, end: 260},
				{id: 3, parent: 1, name: "cpu work", start: 260, end: 299},
			},
			want: map[string][]float64{FindingSlowDB: {250}},
		},
		{
			name: "a slow call that is not a database is not a slow statement",
			spans: []sp{
				{id: 1, start: 0, end: 300},
				{id: 2, parent: 1, name: "GET", dep: "http-svc", attrs: map[string]any{"peer.service": "http-svc"}, start: 0, end: 295},
			},
			want: map[string][]float64{},
		},
		{
			// The timeout that failed the request ranks before the bigger
			// but optional saving of running the calls in parallel.
			name: "a timeout that failed the request comes first",
			spans: []sp{
				{id: 1, start: 0, end: 200, status: store.StatusError},
				{id: 2, parent: 1, dep: "a", start: 0, end: 60},
				{id: 3, parent: 1, dep: "b", start: 60, end: 120},
				{id: 4, parent: 1, name: "GET /c", dep: "c", start: 121, end: 199, status: store.StatusError,
					attrs: map[string]any{"exception.message": "context deadline exceeded"}},
			},
			want: map[string][]float64{FindingTimeout: {78}, FindingSequentialFanOut: {120}},
			ids:  map[string][]int{FindingTimeout: {4}},
		},
		{
			name: "an error that failed the request names where it started",
			spans: []sp{
				{id: 1, start: 0, end: 50, status: store.StatusError},
				{id: 2, parent: 1, name: "GET /b", dep: "b", start: 0, end: 48, status: store.StatusError},
				{id: 3, parent: 2, service: "b", name: "query", start: 1, end: 47, status: store.StatusError},
			},
			want: map[string][]float64{FindingError: {46}},
			ids:  map[string][]int{FindingError: {3}},
		},
		{
			name: "large payload",
			spans: []sp{
				{id: 1, start: 0, end: 100},
				{id: 2, parent: 1, name: "POST /rank", dep: "ranker", start: 5, end: 95, payload: 3 << 20},
			},
			want: map[string][]float64{FindingLargePayload: {90}},
		},
		{
			name: "uninstrumented gap",
			spans: []sp{
				{id: 1, start: 0, end: 100},
				{id: 2, parent: 1, start: 0, end: 10},
			},
			want: map[string][]float64{FindingGap: {90}},
		},
		{
			name: "time outside the server of a call",
			spans: []sp{
				{id: 1, start: 0, end: 100},
				{id: 2, parent: 1, dep: "b", kind: store.KindClient, start: 1, end: 99},
				{id: 3, parent: 2, service: "b", kind: store.KindServer, start: 30, end: 98},
			},
			want: map[string][]float64{FindingGap: {29}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spans := build(t, tt.spans...)
			got := Findings(spans)
			if k := kinds(got); !reflect.DeepEqual(k, tt.want) {
				t.Fatalf("findings %v, want %v\n%+v", k, tt.want, got)
			}
			for kind, ids := range tt.ids {
				for _, f := range got {
					if f.Kind != kind {
						continue
					}
					var want []store.SpanID
					for _, i := range ids {
						want = append(want, sid(i))
					}
					if !slices.Equal(f.SpanIDs, want) {
						t.Errorf("%s names spans %v, want %v", kind, f.SpanIDs, want)
					}
					break
				}
			}
			if len(got) > 0 && severeIn(tt.want) && !severe(got[0].Kind) {
				t.Errorf("first finding %s; want the failure first", got[0].Kind)
			}
			for _, f := range got {
				if f.Title == "" || f.Detail == "" || len(f.SpanIDs) == 0 || f.Service == "" {
					t.Errorf("incomplete finding %+v", f)
				}
			}
			// Input order does not matter.
			r := rand.New(rand.NewPCG(1, 1))
			shuffled := slices.Clone(spans)
			r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			if again := Findings(shuffled); !reflect.DeepEqual(again, got) {
				t.Errorf("findings depend on span order")
			}
		})
	}
}

// TestFindingsOnGeneratedVersions: the v1 shape (sequential fan-out with
// unbounded retries) shows both anti-patterns; v2 (parallel) shows none.
func TestFindingsOnGeneratedVersions(t *testing.T) {
	for _, tc := range []struct {
		parallel       bool
		wantSequential bool
	}{{false, true}, {true, false}} {
		ds := analysistest.Generate(analysistest.Scenario{Seed: 4, Traces: 300, Parallel: tc.parallel, ErrorRate: 0.3})
		byTrace := map[store.TraceID][]store.Span{}
		for _, s := range ds.Spans {
			byTrace[s.TraceID] = append(byTrace[s.TraceID], s)
		}
		seq, retries := 0, 0
		for _, id := range ds.Roots {
			for _, f := range Findings(byTrace[id]) {
				switch f.Kind {
				case FindingSequentialFanOut:
					seq++
				case FindingRetries:
					retries++
				}
			}
		}
		// v1: about every trace (not when one call dwarfs the others).
		if got := seq >= len(ds.Roots)*95/100 && seq <= len(ds.Roots); got != tc.wantSequential || (!tc.wantSequential && seq != 0) {
			t.Errorf("parallel=%v: %d of %d traces with sequential fan-out", tc.parallel, seq, len(ds.Roots))
		}
		if retries == 0 {
			t.Errorf("parallel=%v: no retry findings with a 30%% error rate", tc.parallel)
		}
	}
}

func TestFindingOptions(t *testing.T) {
	spans := build(t,
		sp{id: 1, start: 0, end: 100},
		sp{id: 2, parent: 1, name: "POST", dep: "x", start: 5, end: 20, payload: 200 << 10},
	)
	if len(Findings(spans)) != 1 { // the 80 ms gap only
		t.Fatalf("defaults: %+v", Findings(spans))
	}
	got := FindingsWith(spans, FindingOptions{LargePayload: 100 << 10, MinGap: time.Hour})
	if k := kinds(got); !reflect.DeepEqual(k, map[string][]float64{FindingLargePayload: {15}}) {
		t.Errorf("with options: %v", k)
	}
	if len(Findings(nil)) != 0 {
		t.Error("no spans, no findings")
	}
}

func TestPayloadBucket(t *testing.T) {
	for _, tt := range []struct {
		b      int64
		bucket string
	}{
		{0, "none"},
		{512, "512B-1KiB"},
		{1536, "1KiB-2KiB"},
		{3 << 20, "2MiB-4MiB"},
		{1 << 30, "1GiB-2GiB"},
	} {
		if got := PayloadBucket(tt.b); got != tt.bucket {
			t.Errorf("PayloadBucket(%d) = %q, want %q", tt.b, got, tt.bucket)
		}
	}
}
