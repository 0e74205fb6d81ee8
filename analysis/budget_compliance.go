package analysis

import (
	"context"
	"fmt"
	"time"

	"github.com/tailscope/tailscope/store"
)

const (
	budgetSeriesPoints = 60
	// budgetChunk is how much of a window is read at once, so a 30-day
	// window never holds more than a day of samples in memory.
	budgetChunk = 24 * time.Hour
)

// ComplianceReport is how an endpoint meets its budget over a window. The
// web layer serves it, with the budget itself, as the body of GET
// /api/v1/budgets/{ID}/compliance.
type ComplianceReport struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// HopMeasure is what the call hops' times are (store.HopMeasure).
	HopMeasure store.HopMeasure `json:"hop_measure"`
	// Good requests finished within the threshold; errors do not count
	// against a latency objective.
	Total      int     `json:"total"`
	Good       int     `json:"good"`
	Bad        int     `json:"bad"`
	Attainment float64 `json:"attainment"`
	Met        bool    `json:"met"`
	// ErrorBudget is the bad requests the target allows over the window;
	// ErrorBudgetRemaining the share of it left (negative when overspent).
	ErrorBudget          float64 `json:"error_budget"`
	ErrorBudgetRemaining float64 `json:"error_budget_remaining"`
	// Status and StatusText are the window's state in the words every
	// surface uses (BudgetStatus).
	Status     BudgetStatus `json:"status"`
	StatusText string       `json:"status_text"`
	// BurnRates are over windows ending at now, whatever From and To are.
	BurnRates []BurnRate `json:"burn_rates"`
	// Series is attainment and budget remaining, cumulative from From.
	StepSeconds float64       `json:"step_s"`
	Series      []BudgetPoint `json:"series"`
	// SampledRequests is how many requests of the window the hop table
	// measured: a uniform random sample of Total (bottomK), at most
	// hopSampleSize, all of them when SampleComplete (0 for a budget
	// without hops, which has no table). The overrun rates
	// and their confidence intervals (ConfidenceLevel) are over it.
	SampledRequests int     `json:"sampled_requests"`
	SampleComplete  bool    `json:"sample_complete"`
	ConfidenceLevel float64 `json:"confidence_level"`
	// SampledSlowRequests is how many of the window's Bad requests were
	// measured for the contributions: a uniform random sample of them, at
	// most slowSampleSize.
	SampledSlowRequests int `json:"sampled_slow_requests"`
	// Hops is per-hop compliance, ranked by contribution to the time slow
	// requests spent over the threshold (see HopCompliance); Unbudgeted
	// is the critical time in no budgeted hop against what the
	// allocations leave of the threshold.
	Hops       []HopCompliance `json:"hops"`
	Unbudgeted HopCompliance   `json:"unbudgeted"`
	// WorstHop is the label of the row that contributes most to the
	// overrun (the first of Hops, or "unbudgeted" when the time over
	// lies mostly outside the budgeted hops); empty when the budget has
	// no hops or no sampled request was over the threshold.
	WorstHop             string  `json:"worst_hop"`
	WorstHopContribution float64 `json:"worst_hop_contribution"`
}

// BudgetPoint is one point of the compliance chart.
type BudgetPoint struct {
	Time            time.Time `json:"time"`
	Total           int       `json:"total"`
	Bad             int       `json:"bad"`
	Attainment      float64   `json:"attainment"`
	BudgetRemaining float64   `json:"budget_remaining"`
}

// Compliance computes how an endpoint meets its budget over [from, to)
// (zero values: the budget's period ending at now): attainment, error
// budget left, the burn rates of rules (DefaultBurnRules when none are
// given) over windows ending at now, a
// chart series, and the hop table: per hop how often it overran its
// allocation (with a confidence interval) and how much of the time over
// the threshold it is responsible for, over a sample of the window's
// requests that follows its traffic. Samples are read a day at a time, so
// a 30-day window never holds more than a day of them in memory; the hop
// sample is kept as it streams by (bottomK).
func Compliance(ctx context.Context, src SpanSource, b store.Budget, from, to, now time.Time, rules ...BurnRule) (ComplianceReport, error) {
	if len(rules) == 0 {
		rules = DefaultBurnRules()
	}
	if err := ValidateBudget(b); err != nil {
		return ComplianceReport{}, fmt.Errorf("analysis: compliance: %w", err)
	}
	if now.IsZero() {
		return ComplianceReport{}, invalidf("compliance: now is required")
	}
	if to.IsZero() {
		to = now
	}
	if from.IsZero() {
		from = to.Add(-b.Period)
	}
	if !to.After(from) {
		return ComplianceReport{}, invalidf("compliance: time range is empty")
	}
	rep := ComplianceReport{From: from.UTC(), To: to.UTC(), HopMeasure: HopMeasureOf(b), ConfidenceLevel: hopConfidence,
		BurnRates: []BurnRate{}, Hops: []HopCompliance{}}
	grid := newTimeGrid(from, to, chooseStep(to.Sub(from), budgetSeriesPoints))
	p := windowPass{grid: grid, totals: make([]int, grid.n), bads: make([]int, grid.n),
		all: newBottomK(hopSampleSize), slow: newBottomK(slowSampleSize), burn: newBurnCounter(b, now, rules)}
	// The burn windows end at now. When the window covers them (its own
	// period ending now, the usual view) they are counted in the same
	// pass instead of reading their day again.
	p.burnInPass = !from.After(now.Add(-p.burn.span())) && !to.Before(now)
	if err := p.read(ctx, src, b, from, to); err != nil {
		return ComplianceReport{}, err
	}
	rep.Total, rep.Bad = p.total, p.bad
	allowed := 1 - b.Target
	rep.Good = rep.Total - rep.Bad
	rep.Attainment = 1
	if rep.Total > 0 {
		rep.Attainment = round4(float64(rep.Good) / float64(rep.Total))
	}
	rep.Met = float64(rep.Good) >= b.Target*float64(rep.Total)
	rep.ErrorBudget = round3(allowed * float64(rep.Total))
	rep.ErrorBudgetRemaining = budgetRemaining(rep.Bad, rep.Total, allowed)
	rep.StepSeconds = float64(grid.step) / 1e9
	rep.Series = budgetSeries(grid, p.totals, p.bads, allowed)

	if !p.burnInPass {
		if err := p.burn.read(ctx, src); err != nil {
			return ComplianceReport{}, err
		}
	}
	rep.BurnRates = p.burn.rates()
	if err := hopCompliance(ctx, src, b, p.all.samples(), p.slow.samples(), &rep); err != nil {
		return ComplianceReport{}, err
	}
	rep.Status = budgetStatus(&rep)
	rep.StatusText = rep.Status.Text()
	return rep, nil
}

// windowPass is one read of a compliance window, a day at a time: the
// counts, the chart's buckets, the hop samples and, when the window
// covers them, the burn windows.
type windowPass struct {
	grid         timeGrid
	total, bad   int
	totals, bads []int
	all, slow    *bottomK
	burn         *burnCounter
	burnInPass   bool
}

func (p *windowPass) read(ctx context.Context, src SpanSource, b store.Budget, from, to time.Time) error {
	thr := int64(b.Threshold)
	for cf := from; cf.Before(to); cf = cf.Add(budgetChunk) {
		ct := minTime(cf.Add(budgetChunk), to)
		ss, err := src.Samples(ctx, store.SampleQuery{Service: b.Service, Endpoint: b.Endpoint, From: cf, To: ct})
		if err != nil {
			return fmt.Errorf("analysis: compliance: read samples: %w", err)
		}
		for i := range ss {
			s := &ss[i]
			if s.StartUnixNano < cf.UnixNano() || s.StartUnixNano >= ct.UnixNano() {
				continue
			}
			p.total++
			g := p.grid.index(s.StartUnixNano)
			if g >= 0 {
				p.totals[g]++
			}
			p.all.add(s)
			if p.burnInPass {
				p.burn.add(s)
			}
			if s.DurationNano > thr {
				p.bad++
				p.slow.add(s)
				if g >= 0 {
					p.bads[g]++
				}
			}
		}
	}
	return nil
}

// budgetSeries is the chart: attainment and budget left, cumulative from
// the window's start, at the end of each step.
func budgetSeries(grid timeGrid, totals, bads []int, allowed float64) []BudgetPoint {
	out := make([]BudgetPoint, 0, grid.n)
	cumT, cumB := 0, 0
	for i := range grid.n {
		cumT += totals[i]
		cumB += bads[i]
		p := BudgetPoint{Time: grid.bucketStart(i).Add(time.Duration(grid.step)), Total: cumT, Bad: cumB, Attainment: 1, BudgetRemaining: 1}
		if cumT > 0 {
			p.Attainment = round4(float64(cumT-cumB) / float64(cumT))
			p.BudgetRemaining = budgetRemaining(cumB, cumT, allowed)
		}
		out = append(out, p)
	}
	return out
}

// budgetRemaining is 1 − bad/(allowed·total): 1 untouched, 0 spent,
// negative overspent.
func budgetRemaining(bad, total int, allowed float64) float64 {
	if total == 0 {
		return 1
	}
	return round4(1 - float64(bad)/(allowed*float64(total)))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
