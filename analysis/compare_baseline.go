package analysis

import (
	"fmt"
	"time"

	"github.com/tailscope/tailscope/internal/units"
)

// noBaseline finishes a comparison whose before side has no request: a
// new endpoint, a service first seen at the marker, a version that did
// not run in the window. There is nothing to subtract, so instead of
// "p99 before 0 ms, +427 ms" it has no percentile deltas, no error-rate or
// rank test and no dependency deltas, and says what the after side did.
func (c *Comparison) noBaseline() {
	c.Baseline = BaselineNone
	c.Percentiles = []PercentileDelta{}
	c.Dependencies = []DependencyDelta{}
	if c.After.Count == 0 {
		c.Verdict = VerdictNoChange
		c.Insufficient = true
		c.Reasons = append(c.Reasons, fmt.Sprintf("no requests %s or %s", c.Before.Label, c.After.Label))
		c.Summary = fmt.Sprintf("No comparison: no requests %s or %s.", c.Before.Label, c.After.Label)
		return
	}
	c.Verdict = VerdictNew
	var none string
	switch c.Mode {
	case CompareVersions:
		none = fmt.Sprintf("%s had no requests in this window", c.Before.Label)
	case CompareDeploy:
		none = fmt.Sprintf("no requests in the %s before", spanText(c.Before.To.Sub(c.Before.From)))
	default:
		none = fmt.Sprintf("no requests from %s to %s UTC", c.Before.From.Format("2006-01-02 15:04"), c.Before.To.Format("2006-01-02 15:04"))
	}
	c.Reasons = append(c.Reasons, "nothing before to compare with: percentiles, error rate and hops are not compared")
	c.Summary = fmt.Sprintf("%s; %s: %d requests at %.2f/s, p99 %s", none, c.After.Label, c.After.Count, c.After.RatePerS, units.Ms(c.After.Percentiles.P99Ms))
}

// spanText writes a window length for a sentence: "hour", "50 min",
// "2 h 30 min", "45 s". Windows cut at now are not round; past ten minutes
// the seconds are noise.
func spanText(d time.Duration) string {
	if d >= 10*time.Minute {
		d = d.Round(time.Minute)
	} else {
		d = d.Round(time.Second)
	}
	h, m, sec := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	switch {
	case d == time.Hour:
		return "hour"
	case h > 0 && m == 0:
		return fmt.Sprintf("%d h", h)
	case h > 0:
		return fmt.Sprintf("%d h %d min", h, m)
	case m > 0 && sec == 0:
		return fmt.Sprintf("%d min", m)
	case m > 0:
		return fmt.Sprintf("%d min %d s", m, sec)
	default:
		return fmt.Sprintf("%d s", sec)
	}
}
