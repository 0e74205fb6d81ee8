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
	// Source is where the counts came from: ComplianceSpans (every
	// request read) or ComplianceRollups (the rollups written at ingest,
	// exact partial edge minutes from the spans).
	Source string `json:"source"`
	// BadUncertain is how many requests the rollups could not place on
	// either side of the threshold: those in the one sketch bin that holds
	// it (durations within RollupRelativeAccuracy, about 2% wide) in
	// buckets whose exact min and max do not settle it. Bad includes the
	// share of them the bin lies above the threshold (splitBad), so the
	// exact count lies within Bad ± BadUncertain (in [Bad −
	// share·BadUncertain, Bad + (1−share)·BadUncertain] up to rounding).
	// 0 when read from spans, from rollups of a window small enough
	// (≤ hopSampleSize requests) to be counted from its spans, or when
	// the buckets holding uncertain requests are few enough to be
	// counted from theirs (rollupCounter.settle).
	BadUncertain int  `json:"bad_uncertain"`
	Met          bool `json:"met"`
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
	BadUncertain    int       `json:"bad_uncertain"` // as ComplianceReport.BadUncertain, cumulative
	Attainment      float64   `json:"attainment"`
	BudgetRemaining float64   `json:"budget_remaining"`
}

// Where a compliance report's counts came from (ComplianceReport.Source).
const (
	// ComplianceSpans: every request of the window was read.
	ComplianceSpans = "spans"
	// ComplianceRollups: whole rollup buckets from the rollups written at
	// ingest, partial edge minutes from the spans (ComplianceFromRollups).
	ComplianceRollups = "rollups"
)

// Compliance computes how an endpoint meets its budget over [from, to)
// (zero values: the budget's period ending at now): attainment, error
// budget left, the burn rates of rules (DefaultBurnRules when none are
// given) over windows ending at now, a
// chart series, and the hop table: per hop how often it overran its
// allocation (with a confidence interval) and how much of the time over
// the threshold it is responsible for, over a sample of the window's
// requests that follows its traffic. Samples are read a day at a time, so
// a 30-day window never holds more than a day of them in memory; the hop
// sample is kept as it streams by (bottomK). Its cost follows the requests
// of the window: incident reports use it (a report is evidence bounded by
// its window); pages use ComplianceFromRollups.
func Compliance(ctx context.Context, src SpanSource, b store.Budget, from, to, now time.Time, rules ...BurnRule) (ComplianceReport, error) {
	w, err := complianceWindow(b, from, to, now, rules)
	if err != nil {
		return ComplianceReport{}, err
	}
	grid := newTimeGrid(w.from, w.to, chooseStep(w.to.Sub(w.from), budgetSeriesPoints))
	p := newWindowPass(grid, b, now, w.rules)
	// The burn windows end at now. When the window covers them (its own
	// period ending now, the usual view) they are counted in the same
	// pass instead of reading their day again.
	p.burnInPass = !w.from.After(now.Add(-p.burn.span())) && !w.to.Before(now)
	if err := p.read(ctx, src, b, w.from, w.to); err != nil {
		return ComplianceReport{}, err
	}
	if !p.burnInPass {
		if err := p.burn.read(ctx, src); err != nil {
			return ComplianceReport{}, err
		}
	}
	return assembleCompliance(ctx, src, b, w, p, ComplianceSpans, p.all.samples(), p.slow.samples())
}

// complianceBounds is a compliance query checked and defaulted.
type complianceBounds struct {
	from, to time.Time
	rules    []BurnRule
}

func complianceWindow(b store.Budget, from, to, now time.Time, rules []BurnRule) (complianceBounds, error) {
	if len(rules) == 0 {
		rules = DefaultBurnRules()
	}
	if err := ValidateBudget(b); err != nil {
		return complianceBounds{}, fmt.Errorf("analysis: compliance: %w", err)
	}
	if now.IsZero() {
		return complianceBounds{}, invalidf("compliance: now is required")
	}
	if to.IsZero() {
		to = now
	}
	if from.IsZero() {
		from = to.Add(-b.Period)
	}
	if !to.After(from) {
		return complianceBounds{}, invalidf("compliance: time range is empty")
	}
	return complianceBounds{from: from, to: to, rules: rules}, nil
}

// assembleCompliance is the one place a report is put together from a
// window's counts (read from spans or rollups), its burn windows' counts
// and its hop samples, so both sources give the same report for the same
// counts.
func assembleCompliance(ctx context.Context, src SpanSource, b store.Budget, w complianceBounds, p *windowPass,
	source string, all, slow []store.Sample) (ComplianceReport, error) {
	rep := ComplianceReport{From: w.from.UTC(), To: w.to.UTC(), Source: source, HopMeasure: HopMeasureOf(b), ConfidenceLevel: hopConfidence,
		BurnRates: []BurnRate{}, Hops: []HopCompliance{}}
	share := straddleBadShare(int64(b.Threshold))
	rep.Total, rep.BadUncertain = p.total, p.uncertain
	rep.Bad = splitBad(p.bad, p.uncertain, share)
	allowed := 1 - b.Target
	rep.Good = rep.Total - rep.Bad
	rep.Attainment = 1
	if rep.Total > 0 {
		rep.Attainment = round4(float64(rep.Good) / float64(rep.Total))
	}
	rep.Met = float64(rep.Good) >= b.Target*float64(rep.Total)
	rep.ErrorBudget = round3(allowed * float64(rep.Total))
	rep.ErrorBudgetRemaining = budgetRemaining(rep.Bad, rep.Total, allowed)
	rep.StepSeconds = float64(p.grid.step) / 1e9
	rep.Series = budgetSeries(p.grid, p.totals, p.bads, p.uncs, allowed, share)
	rep.BurnRates = p.burn.rates(share)
	if err := hopCompliance(ctx, src, b, all, slow, &rep); err != nil {
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
	grid timeGrid
	// bad counts requests known to be over the threshold; uncertain
	// those the rollups cannot place (in the sketch bin holding the
	// threshold: within its relative accuracy of it; 0 from spans). uncs
	// is uncertain per chart bucket.
	total, bad, uncertain int
	totals, bads, uncs    []int
	all, slow             *bottomK
	burn                  *burnCounter
	burnInPass            bool
}

// requestWeight is how many requests a sampled one stands for in a
// budget's counts: its span's weight as the rollups count it
// (store.CountWeight), so counts from spans and from rollups agree over a
// sampled stream. The hop table's samples are not weighted: they measure
// the requests stored.
func requestWeight(s *store.Sample) int { return int(store.CountWeight(s.Weight)) }

func newWindowPass(grid timeGrid, b store.Budget, now time.Time, rules []BurnRule) *windowPass {
	return &windowPass{grid: grid, totals: make([]int, grid.n), bads: make([]int, grid.n), uncs: make([]int, grid.n),
		all: newBottomK(hopSampleSize), slow: newBottomK(slowSampleSize), burn: newBurnCounter(b, now, rules)}
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
			w := requestWeight(s)
			p.total += w
			g := p.grid.index(s.StartUnixNano)
			if g >= 0 {
				p.totals[g] += w
			}
			p.all.add(s)
			if p.burnInPass {
				p.burn.add(s)
			}
			if s.DurationNano > thr {
				p.bad += w
				p.slow.add(s)
				if g >= 0 {
					p.bads[g] += w
				}
			}
		}
	}
	return nil
}

// budgetSeries is the chart: attainment and budget left, cumulative from
// the window's start, at the end of each step. Uncertain requests are
// split (splitBad) on the cumulative counts, so the series never steps
// back and its last point is the window's Bad.
func budgetSeries(grid timeGrid, totals, bads, uncs []int, allowed, share float64) []BudgetPoint {
	out := make([]BudgetPoint, 0, grid.n)
	cumT, cumSure, cumU := 0, 0, 0
	for i := range grid.n {
		cumT += totals[i]
		cumSure += bads[i]
		cumU += uncs[i]
		cumB := splitBad(cumSure, cumU, share)
		p := BudgetPoint{Time: grid.bucketStart(i).Add(time.Duration(grid.step)), Total: cumT, Bad: cumB, BadUncertain: cumU,
			Attainment: 1, BudgetRemaining: 1}
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
