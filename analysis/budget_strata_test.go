package analysis

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/store"
)

func TestCover(t *testing.T) {
	m, h := int64(time.Minute), int64(time.Hour)
	steps := []int64{h, m}
	tests := []struct {
		name     string
		from, to int64
		want     []coverPiece
	}{
		{"whole hours", 2 * h, 4 * h, []coverPiece{{2 * h, 4 * h, h}}},
		{"hours, minutes and partial minutes at both ends", 2*h - 3*m - 5, 4*h + 2*m + 7,
			[]coverPiece{{2*h - 3*m - 5, 2*h - 3*m + 0, 0}, {2*h - 3*m, 2 * h, m}, {2 * h, 4 * h, h}, {4 * h, 4*h + 2*m, m}, {4*h + 2*m, 4*h + 2*m + 7, 0}}},
		{"within a minute: spans only", 5*m + 1, 5*m + 9, []coverPiece{{5*m + 1, 5*m + 9, 0}}},
		{"across a minute edge, no whole minute", 5*m - 1, 5*m + 1, []coverPiece{{5*m - 1, 5 * m, 0}, {5 * m, 5*m + 1, 0}}},
		{"empty", 7, 7, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := cover(tc.from, tc.to, steps); !slices.Equal(got, tc.want) {
				t.Errorf("cover = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestGroupStrata: strata follow the weights (a busy cell is cut, quiet
// ones are grouped), never more than k, and allocate shares the sample
// by weight exactly.
func TestGroupStrata(t *testing.T) {
	m := int64(time.Minute)
	cells := []countCell{{from: 0, to: m, total: 10}, {from: m, to: 2 * m, total: 0}, {from: 2 * m, to: 3 * m, total: 10},
		{from: 3 * m, to: 4 * m, total: 400}, {from: 4 * m, to: 5 * m, total: 20}}
	st := groupStrata(cells, func(c countCell) int { return c.total }, 10)
	if len(st) > 10 {
		t.Fatalf("%d strata, want at most 10", len(st))
	}
	sum := 0
	for i, s := range st {
		sum += s.weight
		if i > 0 && s.from < st[i-1].to {
			t.Errorf("strata overlap: %+v after %+v", s, st[i-1])
		}
	}
	if sum != 440 {
		t.Errorf("strata %+v: weight %d, want 440", st, sum)
	}
	// The first stratum holds the quiet minutes and the start of the
	// busy one: its instants fall in the busy part as often as its
	// requests do, not as often as its time does.
	first, busy := st[0], 0
	const draws = 6000
	for u := range int64(draws) {
		if at := first.instant(u * int64(first.weight) / draws); at >= 3*m {
			busy++
		}
	}
	if want := float64(first.weight-20) / float64(first.weight); math.Abs(float64(busy)/draws-want) > 0.01 {
		t.Errorf("first stratum %+v: %d of %d instants in the busy minute, want a share of %.2f", first, busy, draws, want)
	}
	alloc := allocate(st, 100)
	got := 0
	for i, a := range alloc {
		got += a
		if want := 100 * float64(st[i].weight) / 440; math.Abs(float64(a)-want) >= 1 {
			t.Errorf("stratum %+v: %d of the sample, want %.1f", st[i], a, want)
		}
	}
	if got != 100 {
		t.Errorf("allocated %d, want 100", got)
	}
	if a := allocate(st, 1000); slices.ContainsFunc(a, func(n int) bool { return n < 0 }) || a[0] != st[0].weight {
		t.Errorf("a sample larger than the weights takes every request: %v", a)
	}
}

// TestStraddleBadShare: the threshold's place in its sketch bin, from 0
// (at the bin's top) to 1 (at its bottom).
func TestStraddleBadShare(t *testing.T) {
	for _, ms := range []float64{1, 37.5, 200, 500, 1234.5} {
		thr := int64(ms * 1e6)
		bin, _ := store.RollupBin(thr)
		lo := math.Exp(float64(bin)/store.RollupBinScale()) * 1e6
		hi := math.Exp(float64(bin+1)/store.RollupBinScale()) * 1e6
		want := math.Log(hi/float64(thr)) / math.Log(hi/lo)
		if got := straddleBadShare(thr); math.Abs(got-want) > 1e-9 || got < 0 || got > 1 {
			t.Errorf("%v ms: share %v, want %v", ms, got, want)
		}
	}
	if got := splitBad(10, 5, 0.5); got != 13 { // 2.5 rounds away from zero
		t.Errorf("splitBad(10, 5, 0.5) = %d, want 13", got)
	}
}

// rangeCounter reads through a source and counts the sample reads;
// batchCounter is one that is a RangeSampler too.
type rangeCounter struct {
	SpanSource
	samples, ranges int
}

func (c *rangeCounter) Samples(ctx context.Context, q store.SampleQuery) ([]store.Sample, error) {
	c.samples++
	return c.SpanSource.Samples(ctx, q)
}

type batchCounter struct{ *rangeCounter }

func (c batchCounter) SampleRanges(ctx context.Context, q store.SampleQuery, ranges []store.SampleRange) ([][]store.Sample, error) {
	c.ranges++
	return store.SampleEach(ctx, q, ranges, c.SpanSource.Samples)
}

// TestStrataDraw: each stratum gives exactly its share of the sample: the
// requests just before its random instant, wrapping round to the newest
// of the stratum when too few are; and a RangeSampler gets every stratum
// in one read (two when some wrap round) with the same sample. The
// endpoints differ only by name, which seeds the instants: enough draws
// that some wrap part way.
func TestStrataDraw(t *testing.T) {
	m := int64(time.Minute)
	const endpoints, size = 12, 40
	var (
		spans []store.Span
		cells []countCell
	)
	// Minutes of 30, 0, 90 and 7 requests, crowded at each minute's start.
	for minute, n := range []int{30, 0, 90, 7} {
		from := int64(minute) * m
		cells = append(cells, countCell{from: from, to: from + m, total: n})
		for e := range endpoints {
			for i := range n {
				at := from + m*int64(i*i)/int64(n*n)
				spans = append(spans, store.Span{
					TraceID: store.TraceID{byte(minute), byte(i), byte(e)}, SpanID: store.SpanID{byte(minute), byte(i), byte(e)},
					Service: "api", Name: fmt.Sprintf("GET /x%d", e), Kind: store.KindServer,
					StartUnixNano: at, DurationNano: int64(time.Millisecond),
				})
			}
		}
	}
	src := analysistest.NewSource(spans)
	strata := groupStrata(cells, func(c countCell) int { return c.total }, 5)
	alloc := allocate(strata, size)
	partial := 0 // strata that wrapped round after some requests before the instant
	for e := range endpoints {
		b := store.Budget{Service: "api", Endpoint: fmt.Sprintf("GET /x%d", e), Threshold: time.Second}
		sampler := &strataSampler{src: &rangeCounter{SpanSource: src}, b: b}
		got, err := sampler.draw(context.Background(), strata, size, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != size {
			t.Fatalf("%s: drew %d requests, want %d", b.Endpoint, len(got), size)
		}
		all, err := src.Samples(context.Background(), store.SampleQuery{Service: "api", Endpoint: b.Endpoint})
		if err != nil {
			t.Fatal(err)
		}
		wraps := 1 // range reads: one, and one more for the strata that wrap round
		for i, st := range strata {
			var of []store.Sample // the stratum's requests, by start
			for _, s := range all {
				if s.StartUnixNano >= st.from && s.StartUnixNano < st.to {
					of = append(of, s)
				}
			}
			var in []int // positions drawn, among of
			for _, s := range got {
				if j := slices.IndexFunc(of, func(o store.Sample) bool { return o.SpanID == s.SpanID }); j >= 0 {
					in = append(in, j)
				}
			}
			mid := st.instant(sampler.rng(st, 0).Int64N(int64(st.weight)))
			cut, _ := slices.BinarySearchFunc(of, mid, func(s store.Sample, at int64) int { return cmp.Compare(s.StartUnixNano, at) })
			var want []int
			for j := cut - 1; j >= 0 && len(want) < alloc[i]; j-- {
				want = append(want, j)
			}
			for j := len(of) - 1; j >= cut && len(want) < alloc[i]; j-- {
				want = append(want, j)
			}
			slices.Sort(in)
			slices.Sort(want)
			if !slices.Equal(in, want) {
				t.Errorf("%s stratum %d (instant %d, %d requests before it): positions %v drawn, want %v", b.Endpoint, i, mid, cut, in, want)
			}
			if cut > 0 && cut < alloc[i] {
				partial++
			}
			if cut < alloc[i] && alloc[i] < st.weight {
				wraps = 2
			}
		}

		batch := batchCounter{&rangeCounter{SpanSource: src}}
		again, err := (&strataSampler{src: batch, b: b}).draw(context.Background(), strata, size, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(again, got) {
			t.Errorf("%s: through SampleRanges the sample differs:\n%v\nwant\n%v", b.Endpoint, again, got)
		}
		if batch.ranges != wraps || batch.samples != 0 {
			t.Errorf("%s: through SampleRanges: %d range reads and %d sample reads, want %d and 0", b.Endpoint, batch.ranges, batch.samples, wraps)
		}
	}
	if partial == 0 {
		t.Errorf("no stratum wrapped round part way: the data do not test the wrap")
	}
}
