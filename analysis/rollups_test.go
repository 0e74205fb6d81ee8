package analysis

import (
	"testing"

	"github.com/tailscope/tailscope/store"
)

// TestRollupBinsAreTheSketchMapping: the bins stores write at ingest are
// the indexes of the Sketch's own mapping, so a Sketch rebuilt from them
// keeps SketchRelativeAccuracy.
func TestRollupBinsAreTheSketchMapping(t *testing.T) {
	if store.RollupRelativeAccuracy != SketchRelativeAccuracy || store.RollupBinScale() != sketchBinScale {
		t.Fatalf("rollups bin at accuracy %v (scale %v), the Sketch at %v (scale %v)",
			store.RollupRelativeAccuracy, store.RollupBinScale(), SketchRelativeAccuracy, sketchBinScale)
	}
	for _, ns := range []int64{1, 999, 1e6, 1e6 + 1, 37e6, 2e9, 1 << 50} {
		b, ok := store.RollupBin(ns)
		if !ok {
			t.Fatalf("RollupBin(%d): no bin", ns)
		}
		s := NewSketch()
		s.Add(ns)
		if got := s.s.IndexMapping.Index(nsToMs(ns)); got != int(b) {
			t.Errorf("RollupBin(%d) = %d, the Sketch's index %d", ns, b, got)
		}
	}
	if _, ok := store.RollupBin(0); ok {
		t.Error("RollupBin(0) has a bin; durations ≤ 0 are counted apart")
	}
}
