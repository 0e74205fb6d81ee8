package analysis

import (
	"fmt"
	"math"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	ddstore "github.com/DataDog/sketches-go/ddsketch/store"
)

// SketchRelativeAccuracy is the error bound α of every Sketch: a quantile
// it reports is within α·v of v, the exact nearest-rank quantile of the
// durations added (tested against exact results in sketch_test.go).
const SketchRelativeAccuracy = 0.01

// sketchMaxBins bounds a sketch's memory (8 bytes a bin). With α = 1% one
// bin is 2% wide, so 4096 bins span a factor of e^80 before the lowest
// bins collapse; only quantiles far below any latency of interest could
// ever lose accuracy.
const sketchMaxBins = 4096

// Sketch is a mergeable relative-error quantile sketch (DDSketch) of
// durations, for windows too long to sort and for per-bucket summaries
// that are merged later (cache entries, time series). It holds
// milliseconds. The zero value is not usable; call NewSketch.
type Sketch struct {
	// The exact-summary variant keeps count, sum, min and max exact and
	// clamps quantiles into [min, max].
	s *ddsketch.DDSketchWithExactSummaryStatistics
}

func sketchStore() ddstore.Store { return ddstore.NewCollapsingLowestDenseStore(sketchMaxBins) }

// NewSketch returns an empty sketch with accuracy SketchRelativeAccuracy.
func NewSketch() *Sketch {
	m, err := mapping.NewLogarithmicMapping(SketchRelativeAccuracy)
	if err != nil {
		// Only an accuracy outside (0, 1) fails, and ours is a constant.
		panic(fmt.Sprintf("analysis: sketch mapping: %v", err))
	}
	return &Sketch{s: ddsketch.NewDDSketchWithExactSummaryStatistics(m, sketchStore)}
}

// Add records one duration in nanoseconds; negative durations count as 0.
func (s *Sketch) Add(ns int64) {
	// Add only fails for negative counts and NaN/out-of-range
	// values; milliseconds of an int64 are always in range.
	_ = s.s.Add(math.Max(nsToMs(ns), 0))
}

// AddN records a duration n times (a sampled span of weight n).
func (s *Sketch) AddN(ns, n int64) {
	_ = s.s.AddWithCount(math.Max(nsToMs(ns), 0), float64(n))
}

// Merge adds every duration of o to s.
func (s *Sketch) Merge(o *Sketch) error {
	if o == nil || o.s == nil {
		return nil
	}
	if err := s.s.MergeWith(o.s); err != nil {
		return fmt.Errorf("analysis: merge sketch: %w", err)
	}
	return nil
}

// Count returns the number of durations added.
func (s *Sketch) Count() int64 { return int64(math.Round(s.s.GetCount())) }

// QuantileMs returns the q-quantile in milliseconds, within
// SketchRelativeAccuracy of the exact nearest-rank quantile, or 0 when the
// sketch is empty.
func (s *Sketch) QuantileMs(q float64) float64 {
	n := s.Count()
	if n == 0 {
		return 0
	}
	// DDSketch answers the value at rank q·(n−1) (0-based, rounded down).
	// Asking for rank r+0.5 makes it answer rank r exactly, the rank of
	// the nearest-rank definition the exact percentiles use, so both modes
	// report the same quantile up to α.
	r := rankIndex(int(n), q)
	qq := 0.0
	if n > 1 {
		qq = math.Min((float64(r)+0.5)/float64(n-1), 1)
	}
	v, err := s.s.GetValueAtQuantile(qq)
	if err != nil {
		return 0
	}
	return v
}

// Percentiles summarises the sketch like ExactPercentiles does. Min, max
// and mean are exact; the quantiles carry the sketch's error bound.
func (s *Sketch) Percentiles() Percentiles {
	n := s.Count()
	if n == 0 {
		return Percentiles{}
	}
	minV, _ := s.s.GetMinValue()
	maxV, _ := s.s.GetMaxValue()
	return Percentiles{
		Count:  int(n),
		MinMs:  round3(minV),
		MeanMs: round3(s.s.GetSum() / float64(n)),
		P50Ms:  round3(s.QuantileMs(0.50)),
		P90Ms:  round3(s.QuantileMs(0.90)),
		P95Ms:  round3(s.QuantileMs(0.95)),
		P99Ms:  round3(s.QuantileMs(0.99)),
		P999Ms: round3(s.QuantileMs(0.999)),
		MaxMs:  round3(maxV),
	}
}

// MarshalBinary encodes the sketch (DDSketch's own format, mapping
// included), e.g. for a cache entry.
func (s *Sketch) MarshalBinary() ([]byte, error) {
	var b []byte
	s.s.Encode(&b, false)
	return b, nil
}

// UnmarshalBinary replaces s with an encoded sketch. Sketches encoded with
// another accuracy are refused: merging them would break the error bound.
func (s *Sketch) UnmarshalBinary(b []byte) error {
	fresh := NewSketch()
	d, err := ddsketch.DecodeDDSketchWithExactSummaryStatistics(b, sketchStore, nil)
	if err != nil {
		return fmt.Errorf("analysis: decode sketch: %w", err)
	}
	if d.IndexMapping == nil {
		return fmt.Errorf("analysis: decode sketch: no index mapping in the encoding")
	}
	if !d.IndexMapping.Equals(fresh.s.IndexMapping) {
		return fmt.Errorf("analysis: decode sketch: relative accuracy %g, want %g",
			d.IndexMapping.RelativeAccuracy(), SketchRelativeAccuracy)
	}
	s.s = d
	return nil
}
