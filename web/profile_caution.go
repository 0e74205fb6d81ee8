package web

import (
	"fmt"
	"time"

	"github.com/tailscope/tailscope/internal/units"
)

// fewSpanSamples is the sample count under which a span's flame graph is
// flagged: with fewer than 20 samples one sample moves a frame's share by
// 5 points or more.
const fewSpanSamples = 20

// spanSamplesCaution is the warning over a span's CPU graph of total
// nanoseconds built from few samples, or "" when it has enough (or none:
// the graph then says it is empty).
func spanSamplesCaution(total int64) string {
	n := (total + cpuSamplePeriod/2) / cpuSamplePeriod
	if total <= 0 || n >= fewSpanSamples {
		return ""
	}
	if n <= 1 {
		return fmt.Sprintf("One CPU sample (%s): it shows where the span was at one instant, not where its time went. Compare many similar spans (an outlier group's CPU diff) before concluding.",
			units.Duration(time.Duration(total)))
	}
	return fmt.Sprintf("Only %d CPU samples (one every %s): each moves a frame's share by about %d points, so read the widths as rough. Compare many similar spans (an outlier group's CPU diff) before concluding.",
		n, units.Duration(time.Duration(cpuSamplePeriod)), 100/n)
}
