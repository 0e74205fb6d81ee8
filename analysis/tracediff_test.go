package analysis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/internal/units"
	"github.com/tailscope/tailscope/store"
)

// tspan describes a span of a hand-built trace: ids are small numbers,
// times in ms from the trace's start.
type tspan struct {
	id, parent    int
	service, name string
	dep           string
	kind          store.SpanKind
	start, end    float64
	err           bool
}

func buildTrace(trace int, base time.Time, descs []tspan) []store.Span {
	out := make([]store.Span, len(descs))
	for i, d := range descs {
		sp := store.Span{TraceID: tid(trace), SpanID: sid(trace*1000 + d.id), Service: d.service, Name: d.name,
			Dependency: d.dep, Kind: d.kind,
			StartUnixNano: base.UnixNano() + int64(d.start*1e6), DurationNano: int64((d.end - d.start) * 1e6)}
		if d.parent != 0 {
			sp.ParentSpanID = sid(trace*1000 + d.parent)
		}
		if d.err {
			sp.StatusCode = store.StatusError
		}
		out[i] = sp
	}
	return out
}

// feedTrace is a feed request: profile-svc called first, then
// candidate-svc with queries of its database, and in the slow trace an
// analytics call nobody waits for.
func feedTrace(trace int, profileMs float64, queries int, queryMs float64, analytics bool) []store.Span {
	d := []tspan{{id: 1, service: "feed-api", name: "GET /v1/feed", kind: store.KindServer}}
	t := 10.0
	d = append(d, tspan{id: 2, parent: 1, service: "feed-api", name: "GET profile-svc", dep: "profile-svc", kind: store.KindClient, start: t, end: t + profileMs + 4},
		tspan{id: 3, parent: 2, service: "profile-svc", name: "GET /v1/profile", kind: store.KindServer, start: t + 2, end: t + 2 + profileMs})
	t += profileMs + 4
	candEnd := t + 4 + float64(queries)*queryMs
	d = append(d, tspan{id: 4, parent: 1, service: "feed-api", name: "GET candidate-svc", dep: "candidate-svc", kind: store.KindClient, start: t, end: candEnd + 2},
		tspan{id: 5, parent: 4, service: "candidate-svc", name: "GET /v1/candidates", kind: store.KindServer, start: t + 1, end: candEnd + 1})
	for q := range queries {
		s := t + 2 + float64(q)*queryMs
		d = append(d, tspan{id: 10 + q, parent: 5, service: "candidate-svc", name: "SELECT posts", dep: "postgresql", kind: store.KindClient, start: s, end: s + queryMs})
	}
	end := candEnd + 6
	d[0].end = end
	if analytics {
		d = append(d, tspan{id: 99, parent: 1, service: "feed-api", name: "POST analytics-svc", dep: "analytics-svc", kind: store.KindClient, start: 5, end: end + 1500})
	}
	return buildTrace(trace, testEpoch, d)
}

func TestCompareTraces(t *testing.T) {
	slow := feedTrace(1, 1100, 3, 20, true)
	typical := feedTrace(2, 18, 5, 55, false)
	d, err := CompareTraces(slow, typical)
	if err != nil {
		t.Fatal(err)
	}
	wantDelta := d.A.DurationMs - d.B.DurationMs
	if d.DeltaMs != wantDelta || wantDelta < 800 {
		t.Fatalf("delta %v, durations %v and %v", d.DeltaMs, d.A.DurationMs, d.B.DurationMs)
	}
	want := fmt.Sprintf("+%s: profile-svc GET /v1/profile 1.1 s vs 18 ms", units.Ms(wantDelta))
	if d.Summary != want {
		t.Errorf("summary %q, want %q", d.Summary, want)
	}
	if c := d.Nodes[d.Culprit]; c.Service != "profile-svc" || c.A == nil || c.B == nil {
		t.Errorf("culprit %+v", c)
	}
	// Alignment: the three queries of A pair with the first three of B,
	// the fourth and fifth are B's only; analytics is A's only, async.
	var lines []string
	for _, n := range d.Nodes {
		side := "both"
		switch {
		case n.B == nil:
			side = "A"
		case n.A == nil:
			side = "B"
		}
		async := ""
		if n.A != nil && n.A.Async {
			async = " async"
		}
		lines = append(lines, fmt.Sprintf("%s%s#%d %s%s", strings.Repeat(" ", n.Depth), n.Name, n.Ordinal, side, async))
	}
	got := strings.Join(lines, "\n")
	wantTree := strings.Join([]string{
		"GET /v1/feed#1 both",
		" POST analytics-svc#1 A async",
		" GET profile-svc#1 both",
		"  GET /v1/profile#1 both",
		" GET candidate-svc#1 both",
		"  GET /v1/candidates#1 both",
		"   SELECT posts#1 both",
		"   SELECT posts#2 both",
		"   SELECT posts#3 both",
		"   SELECT posts#4 B",
		"   SELECT posts#5 B",
	}, "\n")
	if got != wantTree {
		t.Errorf("aligned tree:\n%s\nwant:\n%s", got, wantTree)
	}
	if d.Matched != 8 || d.OnlyA != 1 || d.OnlyB != 2 {
		t.Errorf("matched %d, only A %d, only B %d", d.Matched, d.OnlyA, d.OnlyB)
	}
	// The subtree differences add up: the root's is the critical-path
	// difference, which equals the duration difference (the async call is
	// off the path).
	if root := d.Nodes[0].CriticalDeltaMs; root < wantDelta-0.01 || root > wantDelta+0.01 {
		t.Errorf("root critical delta %v, want %v", root, wantDelta)
	}
}

func TestCompareTracesSameShape(t *testing.T) {
	a := feedTrace(1, 40, 3, 20, false)
	b := feedTrace(2, 40, 3, 20, false)
	d, err := CompareTraces(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if d.Culprit != -1 || !strings.HasPrefix(d.Summary, "The two traces take the same time") || d.OnlyA+d.OnlyB != 0 {
		t.Errorf("culprit %d, summary %q, only %d/%d", d.Culprit, d.Summary, d.OnlyA, d.OnlyB)
	}
	if _, err := CompareTraces(nil, b); !errors.Is(err, ErrEmptyTrace) {
		t.Errorf("empty trace: %v", err)
	}
}

// TestCompareTracesExtraCalls: when the difference is calls present in one
// trace only (a retry loop), the summary names the parent whose children
// together explain it, not one of the many small extra calls.
func TestCompareTracesExtraCalls(t *testing.T) {
	slow := feedTrace(1, 20, 40, 20, false)
	typical := feedTrace(2, 20, 4, 20, false)
	d, err := CompareTraces(slow, typical)
	if err != nil {
		t.Fatal(err)
	}
	c := d.Nodes[d.Culprit]
	if c.Name != "GET /v1/candidates" {
		t.Errorf("culprit %s %s, summary %q", c.Service, c.Name, d.Summary)
	}
	if d.OnlyA != 36 {
		t.Errorf("only in A: %d, want 36 extra queries", d.OnlyA)
	}
}

func TestTypicalTrace(t *testing.T) {
	start, window := testEpoch, time.Hour
	ds := analysistest.Generate(analysistest.Scenario{Seed: 3, Traces: 2_000, Start: start, Window: window})
	src := analysistest.NewSource(ds.Spans)
	ctx := context.Background()
	samples, err := src.Samples(ctx, store.SampleQuery{Service: analysistest.FeedAPI, Endpoint: analysistest.Endpoint, From: start, To: start.Add(window)})
	if err != nil || len(samples) < 1000 {
		t.Fatalf("%d samples, %v", len(samples), err)
	}
	mid := start.Add(window / 2)
	id, err := TypicalTrace(ctx, src, analysistest.FeedAPI, analysistest.Endpoint, "", mid, window, samples[0].TraceID)
	if err != nil {
		t.Fatal(err)
	}
	if id == samples[0].TraceID {
		t.Fatal("the typical trace is the trace itself")
	}
	// Its duration is the median: as many requests faster as slower.
	var dur int64
	for _, s := range samples {
		if s.TraceID == id {
			dur = s.DurationNano
		}
	}
	faster, slower := 0, 0
	for _, s := range samples {
		switch {
		case s.DurationNano < dur:
			faster++
		case s.DurationNano > dur:
			slower++
		}
	}
	if diff := faster - slower; diff < -2 || diff > 2 {
		t.Errorf("typical trace: %d requests faster, %d slower", faster, slower)
	}
	if _, err := TypicalTrace(ctx, src, analysistest.FeedAPI, "GET /nothing", "", mid, time.Minute, store.TraceID{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("no requests: %v", err)
	}
}

// TestTypicalTraceSameVersion: with a deploy inside the window, the typical
// trace is of the compared trace's version, so the comparison shows the
// request's difference, not the deploy's.
func TestTypicalTraceSameVersion(t *testing.T) {
	start := testEpoch
	v1 := analysistest.Generate(analysistest.Scenario{Seed: 5, Traces: 500, Start: start, Window: 30 * time.Minute, Version: "v1"})
	v2 := analysistest.Generate(analysistest.Scenario{Seed: 6, Traces: 1500, Start: start.Add(30 * time.Minute), Window: 30 * time.Minute, Version: "v2", Parallel: true})
	src := analysistest.NewSource(append(v1.Spans, v2.Spans...))
	ctx := context.Background()
	for _, version := range []string{"v1", "v2"} {
		id, err := TypicalTrace(ctx, src, analysistest.FeedAPI, analysistest.Endpoint, version, start.Add(30*time.Minute), time.Hour, store.TraceID{})
		if err != nil {
			t.Fatal(err)
		}
		spans, _ := src.Traces(ctx, []store.TraceID{id})
		if got := spans[id][0].Version; got != version {
			t.Errorf("typical trace for %s is of %s", version, got)
		}
	}
}
