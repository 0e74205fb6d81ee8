package analysis

import (
	"fmt"
	"math"
	"strings"

	"github.com/tailscope/tailscope/internal/units"
)

// verdict decides regressed / improved / no significant change and
// writes the reasons; the summary waits for the hops (summary).
func (c *Comparison) verdict() {
	worse, better := false, false
	for _, p := range c.Percentiles {
		if !p.Significant {
			continue
		}
		dir := "slower"
		if p.DeltaMs > 0 {
			worse = true
		} else {
			better = true
			dir = "faster"
		}
		c.Reasons = append(c.Reasons, fmt.Sprintf("p%s %s (%s → %s, %+.0f%%, %.4g%% CI %+.0f%% … %+.0f%%)",
			fmtPct(p.Percentile), dir, units.Ms(p.BeforeMs), units.Ms(p.AfterMs), p.DeltaPct, c.CILevel*100, p.CILowPct, p.CIHighPct))
	}
	if e := c.ErrorRate; e != nil && e.Significant {
		if e.RateB > e.RateA {
			worse = true
		} else {
			better = true
		}
		c.Reasons = append(c.Reasons, fmt.Sprintf("error rate %.2f%% → %.2f%% (p = %.2g)", e.RateA*100, e.RateB*100, e.PValue))
	}
	if c.Insufficient {
		c.Reasons = append(c.Reasons, fmt.Sprintf("too few requests to judge (%d before, %d after)", c.Before.SampledCount, c.After.SampledCount))
	}
	switch {
	case worse:
		c.Verdict = VerdictRegressed
	case better:
		c.Verdict = VerdictImproved
	default:
		c.Verdict = VerdictNoChange
	}
}

// headline is the percentile the summary leads with: the one that decided
// the verdict, else the highest tested. The hops' tail is the requests
// past it, so "most of it in" explains the change the summary states.
func (c *Comparison) headline() PercentileDelta {
	head := c.Percentiles[0]
	for _, p := range c.Percentiles {
		if p.Tested {
			head = p
		}
	}
	for _, p := range c.Percentiles {
		if p.Significant && (c.Verdict == VerdictRegressed) == (p.DeltaMs > 0) {
			head = p
		}
	}
	return head
}

// summary writes e.g. "p99 420 ms → 1.8 s, +330% [CI +250% … +410%],
// regression; most of it in candidate-svc → postgresql".
func (c *Comparison) summary() string {
	if c.Before.Count == 0 || c.After.Count == 0 {
		return fmt.Sprintf("No comparison: %d requests %s, %d %s.", c.Before.Count, c.Before.Label, c.After.Count, c.After.Label)
	}
	head := c.headline()
	var b strings.Builder
	fmt.Fprintf(&b, "p%s %s → %s, %+.0f%%", fmtPct(head.Percentile), units.Ms(head.BeforeMs), units.Ms(head.AfterMs), head.DeltaPct)
	if head.Tested {
		fmt.Fprintf(&b, " [CI %+.0f%% … %+.0f%%]", head.CILowPct, head.CIHighPct)
	}
	switch c.Verdict {
	case VerdictRegressed:
		b.WriteString(", regression")
	case VerdictImproved:
		b.WriteString(", improvement")
	default:
		b.WriteString(", no significant change")
		if c.Insufficient {
			b.WriteString(" (too few requests to judge)")
		}
	}
	if e := c.ErrorRate; e != nil && e.Significant {
		fmt.Fprintf(&b, "; errors %.2f%% → %.2f%%", e.RateA*100, e.RateB*100)
	}
	if c.Verdict != VerdictNoChange {
		if where := c.mostOfIt(head.DeltaMs); where != "" {
			b.WriteString("; " + where)
		}
	}
	return b.String()
}

// mostOfIt names the hop that carries most of a tail change in the
// direction of delta.
func (c *Comparison) mostOfIt(delta float64) string {
	var total, top float64
	label := ""
	for _, d := range c.Dependencies {
		v := d.TailDeltaMs
		if (delta > 0) != (v > 0) || v == 0 {
			continue
		}
		total += math.Abs(v)
		if math.Abs(v) > top {
			top, label = math.Abs(v), d.Label
		}
	}
	switch {
	case label == "" || total == 0:
		return ""
	case top >= 0.5*total:
		return "most of it in " + label
	default:
		return "largest part in " + label
	}
}

// fmtPct writes 99 as "99" and 99.9 as "99.9".
func fmtPct(p float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", p), "0"), ".")
}

// TailLabel names the requests the hops' tail columns average over, as
// "slowest 5%, past p95". Comparisons saved before TailPercentile existed
// measured the slowest 1%.
func (c *Comparison) TailLabel() string {
	p := c.TailPercentile
	if p == 0 {
		p = 99
	}
	return "slowest " + fmtPct(100-p) + "%, past p" + fmtPct(p)
}
