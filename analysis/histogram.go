package analysis

import (
	"math"
	"time"
)

// Log buckets: bucket i of a scheme with p buckets per octave covers
// [1 µs·2^(i/p), 1 µs·2^((i+1)/p)). Every histogram, heatmap and overlay
// uses the same fixed scheme, so buckets line up across windows, endpoints
// and the two sides of a comparison. Durations under 1 µs fall in bucket
// 0, whose lower bound is reported as 0.
const (
	bucketBaseNs = 1000
	// DefaultBucketsPerOctave gives buckets about 19% wide: fine enough to
	// see modes, coarse enough that 1 ms–10 s takes 53 buckets.
	DefaultBucketsPerOctave = 4
	// maxBucketsPerOctave bounds what a caller may ask for.
	maxBucketsPerOctave = 32
)

// HistogramBucket is one log bucket of a latency histogram.
type HistogramBucket struct {
	LowerMs float64 `json:"lower_ms"`
	UpperMs float64 `json:"upper_ms"`
	Count   int     `json:"count"`
}

// bucketIndex returns the log bucket of a duration.
func bucketIndex(ns int64, perOctave int) int {
	if ns <= bucketBaseNs {
		return 0
	}
	return max(int(math.Floor(math.Log2(float64(ns)/bucketBaseNs)*float64(perOctave))), 0)
}

// bucketLowerMs is the lower bound of bucket i in milliseconds.
func bucketLowerMs(i, perOctave int) float64 {
	if i <= 0 {
		return 0
	}
	return bucketBaseNs / 1e6 * math.Exp2(float64(i)/float64(perOctave))
}

// bucketUpperMs is the upper bound of bucket i in milliseconds.
func bucketUpperMs(i, perOctave int) float64 {
	return bucketBaseNs / 1e6 * math.Exp2(float64(i+1)/float64(perOctave))
}

// clampPerOctave turns 0 into the default and bounds silly values.
func clampPerOctave(p int) int {
	if p <= 0 {
		return DefaultBucketsPerOctave
	}
	return min(p, maxBucketsPerOctave)
}

// LogHistogram counts durations (nanoseconds) into log buckets with
// perOctave buckets per doubling (0 means DefaultBucketsPerOctave). It
// returns every bucket from the fastest to the slowest non-empty one,
// including empty buckets in between, so a chart has no holes.
func LogHistogram(durations []int64, perOctave int) []HistogramBucket {
	perOctave = clampPerOctave(perOctave)
	if len(durations) == 0 {
		return []HistogramBucket{}
	}
	lo, hi := math.MaxInt, -1
	idx := make([]int, len(durations))
	for i, d := range durations {
		b := bucketIndex(d, perOctave)
		idx[i] = b
		lo, hi = min(lo, b), max(hi, b)
	}
	out := make([]HistogramBucket, hi-lo+1)
	for i := range out {
		out[i] = HistogramBucket{
			LowerMs: round3(bucketLowerMs(lo+i, perOctave)),
			UpperMs: round3(bucketUpperMs(lo+i, perOctave)),
		}
	}
	for _, b := range idx {
		out[b-lo].Count++
	}
	return out
}

// Heatmap counts requests by time (columns) and log latency bucket (rows)
// for the latency page.
type Heatmap struct {
	StepSeconds float64 `json:"step_s"`
	// Times are the column start times.
	Times []time.Time `json:"times"`
	// BoundsMs are the row boundaries, fastest first: row r covers
	// [BoundsMs[r], BoundsMs[r+1]).
	BoundsMs []float64 `json:"bounds_ms"`
	// Counts[c][r] is the number of requests of column c in row r.
	Counts   [][]int `json:"counts"`
	MaxCount int     `json:"max_count"`
}

// timeGrid is an epoch-aligned sequence of equal time buckets covering a
// window, shared by time series, heatmaps and budget charts so their
// columns line up.
type timeGrid struct {
	start int64 // Unix ns of the first bucket, aligned to step
	step  int64
	n     int
}

// niceSteps are the bucket widths a time series may use.
var niceSteps = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// chooseStep returns the smallest nice step that covers the window in at
// most maxPoints buckets (whole days beyond a day).
func chooseStep(window time.Duration, maxPoints int) time.Duration {
	if maxPoints <= 0 {
		maxPoints = 1
	}
	want := window / time.Duration(maxPoints)
	for _, s := range niceSteps {
		if s >= want {
			return s
		}
	}
	days := (want + 24*time.Hour - 1) / (24 * time.Hour)
	return days * 24 * time.Hour
}

// newTimeGrid aligns buckets of width step to the Unix epoch, so the same
// window always gets the same bucket edges (stable permalinks and caches).
func newTimeGrid(from, to time.Time, step time.Duration) timeGrid {
	s := int64(step)
	if s <= 0 {
		s = int64(time.Second)
	}
	f, t := from.UnixNano(), to.UnixNano()
	start := f - mod(f, s)
	n := int((t - start + s - 1) / s)
	return timeGrid{start: start, step: s, n: max(n, 1)}
}

// mod is the non-negative remainder, so pre-1970 times align too.
func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// index returns the bucket of a Unix-nanosecond time, or -1 outside.
func (g timeGrid) index(t int64) int {
	if t < g.start {
		return -1
	}
	i := int((t - g.start) / g.step)
	if i >= g.n {
		return -1
	}
	return i
}

// bucketStart returns the start of bucket i.
func (g timeGrid) bucketStart(i int) time.Time {
	return time.Unix(0, g.start+int64(i)*g.step).UTC()
}
