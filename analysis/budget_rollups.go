package analysis

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/tailscope/tailscope/store"
)

// Budget compliance from rollups. A window's requests and slow requests
// are counted from the rollups written at ingest wherever whole buckets
// fit, and from the spans only in its partial edge minutes, so the counts
// are exact up to the threshold's sketch bin and the read follows the
// buckets, not the requests:
//
//   - cover splits [from, to) into whole hours (when the chart's step is
//     whole hours), whole minutes around them, and at most one partial
//     minute at each end, read from the spans (a minute of requests);
//   - a bucket is good when its exact MaxNs is at most the threshold, bad
//     when its MinNs is over it; otherwise its bins below the threshold's
//     bin are good, those above bad, and the one bin holding the
//     threshold is uncertain: its durations lie within the sketch's
//     relative accuracy of the threshold, on either side. Settling them
//     exactly would read every request of the bucket (the spans index is
//     by start time, not duration), so they are split by the share of
//     the bin above the threshold (straddleBadShare, as if durations were
//     spread evenly over the bin's logarithmic width) and reported as
//     BadUncertain;
//   - when the buckets holding uncertain requests hold at most
//     settleMaxRequests requests in all, they are counted from their
//     spans instead (settle): a bounded read that makes the counts exact
//     for endpoints with little traffic near the threshold;
//   - a window of at most hopSampleSize requests is counted from its
//     spans (a bounded read, as the rollups' total says): exact, and its
//     hop table measures every request.
//
// The burn windows end at now, at any instant: each is covered the same
// way, so its edge minutes are exact and its counts match the alert
// evaluator (package alert reads spans) but for uncertain requests.

// ComplianceSource is what ComplianceFromRollups reads: rollups for the
// counts, entry spans for partial edge minutes and the hop sample, and
// traces for the hop table. store.Store implements it.
type ComplianceSource interface {
	SpanSource
	RollupSource
}

// ComplianceFromRollups is Compliance with the counts, chart and burn
// rates read from rollups and the hop table measured on a stratified
// sample (budget_strata.go), so its cost follows the rollup buckets of
// the window and the sample size, not the requests in it. The report's
// window is [from, to) exactly; Source says ComplianceRollups and
// BadUncertain how many requests could not be placed.
func ComplianceFromRollups(ctx context.Context, src ComplianceSource, b store.Budget, from, to, now time.Time, rules ...BurnRule) (ComplianceReport, error) {
	w, err := complianceWindow(b, from, to, now, rules)
	if err != nil {
		return ComplianceReport{}, err
	}
	// A chart bucket holds whole rollup buckets: at least a minute.
	grid := newTimeGrid(w.from, w.to, max(chooseStep(w.to.Sub(w.from), budgetSeriesPoints), store.RollupMinute))
	p := newWindowPass(grid, b, now, w.rules)
	rc := newRollupCounter(src, b)
	steps := []int64{int64(store.RollupMinute)}
	if grid.step%int64(store.RollupHour) == 0 {
		steps = []int64{int64(store.RollupHour), int64(store.RollupMinute)}
	}
	cells, err := rc.cells(ctx, w.from.UnixNano(), w.to.UnixNano(), steps)
	if err != nil {
		return ComplianceReport{}, err
	}
	if cells, err = rc.settle(ctx, cells); err != nil {
		return ComplianceReport{}, err
	}
	for _, c := range cells {
		p.total += c.total
		p.bad += c.bad
		p.uncertain += c.unc
		if g := grid.index(c.from); g >= 0 {
			p.totals[g] += c.total
			p.bads[g] += c.bad
			p.uncs[g] += c.unc
		}
	}
	var all, slow []store.Sample
	if p.total <= hopSampleSize {
		// Few enough to read: count them exactly and measure them all.
		exact := newWindowPass(grid, b, now, w.rules)
		if err := exact.read(ctx, src, b, w.from, w.to); err != nil {
			return ComplianceReport{}, err
		}
		exact.burn = p.burn
		p = exact
		all, slow = p.all.samples(), p.slow.samples()
	} else if len(b.Hops) > 0 {
		s := strataSampler{src: src, b: b}
		if all, slow, err = s.sample(ctx, cells); err != nil {
			return ComplianceReport{}, err
		}
	}
	if err := rc.burn(ctx, p.burn); err != nil {
		return ComplianceReport{}, err
	}
	return assembleCompliance(ctx, src, b, w, p, ComplianceRollups, all, slow)
}

// countCell is the requests of [from, to): one rollup bucket or one
// partial minute read from the spans.
type countCell struct {
	from, to        int64
	total, bad, unc int
}

// coverPiece is a part of a window read one way: whole buckets of step,
// or the spans (step 0).
type coverPiece struct {
	from, to, step int64
}

// cover splits [from, to) into whole buckets of the largest step that
// fits, then of the next steps around them, and the spans at the edges:
// with steps hour and minute, at most two runs of whole minutes and two
// partial minutes besides the whole hours. No piece crosses an edge of
// the smallest step, so each lies in one chart bucket.
func cover(from, to int64, steps []int64) []coverPiece {
	if from >= to {
		return nil
	}
	if len(steps) == 0 {
		return []coverPiece{{from, to, 0}}
	}
	s := steps[0]
	a, b := floorNs(from, s), floorNs(to, s)
	if a < from {
		a += s
	}
	if a > b { // within one bucket
		return cover(from, to, steps[1:])
	}
	if a == b { // across one edge, no whole bucket: split there
		return append(cover(from, a, steps[1:]), cover(a, to, steps[1:])...)
	}
	out := cover(from, a, steps[1:])
	out = append(out, coverPiece{a, b, s})
	return append(out, cover(b, to, steps[1:])...)
}

// rollupCounter counts a budget's requests over windows, keeping what it
// read so windows that share a piece (the burn windows all end at now)
// read it once.
type rollupCounter struct {
	src    ComplianceSource
	b      store.Budget
	thr    int64
	thrBin int32
	read   map[coverPiece][]countCell
}

func newRollupCounter(src ComplianceSource, b store.Budget) *rollupCounter {
	thr := int64(b.Threshold)
	bin, _ := store.RollupBin(thr) // thr > 0: ValidateBudget
	return &rollupCounter{src: src, b: b, thr: thr, thrBin: bin, read: map[coverPiece][]countCell{}}
}

// cells counts [from, to) covered with steps.
func (c *rollupCounter) cells(ctx context.Context, from, to int64, steps []int64) ([]countCell, error) {
	var out []countCell
	for _, p := range cover(from, to, steps) {
		got, err := c.piece(ctx, p)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

func (c *rollupCounter) piece(ctx context.Context, p coverPiece) ([]countCell, error) {
	if got, ok := c.read[p]; ok {
		return got, nil
	}
	var out []countCell
	if p.step == 0 {
		ss, err := c.src.Samples(ctx, store.SampleQuery{Service: c.b.Service, Endpoint: c.b.Endpoint, From: time.Unix(0, p.from), To: time.Unix(0, p.to)})
		if err != nil {
			return nil, fmt.Errorf("analysis: compliance: read edge samples: %w", err)
		}
		cell := countCell{from: p.from, to: p.to}
		for i := range ss {
			if s := &ss[i]; s.StartUnixNano >= p.from && s.StartUnixNano < p.to {
				w := requestWeight(s)
				cell.total += w
				if s.DurationNano > c.thr {
					cell.bad += w
				}
			}
		}
		if cell.total > 0 {
			out = append(out, cell)
		}
	} else {
		rows, err := c.src.Rollups(ctx, store.RollupQuery{Step: time.Duration(p.step), From: time.Unix(0, p.from), To: time.Unix(0, p.to),
			Service: c.b.Service, Endpoint: c.b.Endpoint})
		if err != nil {
			return nil, fmt.Errorf("analysis: compliance: read rollups: %w", err)
		}
		for i := range rows {
			r := &rows[i]
			if r.BucketUnixNano < p.from || r.BucketUnixNano >= p.to || r.Count == 0 {
				continue
			}
			bad, unc := c.classify(r)
			out = append(out, countCell{from: r.BucketUnixNano, to: r.BucketUnixNano + p.step, total: int(r.Count), bad: bad, unc: unc})
		}
	}
	c.read[p] = out
	return out, nil
}

// settleMaxRequests is the most requests settle reads to place a
// window's uncertain requests exactly.
const settleMaxRequests = 2000

// settle counts the buckets holding uncertain requests from their spans,
// exactly, when all of them together hold at most settleMaxRequests
// requests (an endpoint with little traffic, or few requests near the
// threshold); otherwise it leaves them uncertain, reading nothing. All
// or nothing, so a report is either exact or says how far it is not.
func (c *rollupCounter) settle(ctx context.Context, cells []countCell) ([]countCell, error) {
	n := 0
	for _, cell := range cells {
		if cell.unc > 0 {
			n += cell.total
		}
	}
	if n == 0 || n > settleMaxRequests {
		return cells, nil
	}
	out := make([]countCell, len(cells))
	for i, cell := range cells {
		out[i] = cell
		if cell.unc == 0 {
			continue
		}
		exact, err := c.piece(ctx, coverPiece{cell.from, cell.to, 0})
		if err != nil {
			return nil, err
		}
		// One cell; none, or fewer requests, when the spans are gone
		// (retention): then the rollups' placing stands.
		if len(exact) == 1 && exact[0].total == cell.total {
			out[i].bad, out[i].unc = exact[0].bad, 0
		}
	}
	return out, nil
}

// classify counts a bucket's requests over the threshold and those it
// cannot place (the comment at the top of this file). RollupBin is
// monotonic in the duration, so a duration d ≤ thr has a bin ≤ thrBin and
// d > thr a bin ≥ thrBin: only thrBin's requests can lie on either side.
func (c *rollupCounter) classify(r *store.Rollup) (bad, unc int) {
	switch {
	case r.MaxNs <= c.thr:
		return 0, 0
	case r.MinNs > c.thr:
		return int(r.Count), 0
	}
	for _, bin := range r.Bins {
		switch {
		case bin.Index > c.thrBin:
			bad += int(bin.Count)
		case bin.Index == c.thrBin:
			unc += int(bin.Count)
		}
	}
	return bad, unc
}

// burn counts each burn window, ending at now, covered with hours and
// minutes and exact partial minutes at its ends.
func (c *rollupCounter) burn(ctx context.Context, bc *burnCounter) error {
	steps := []int64{int64(store.RollupHour), int64(store.RollupMinute)}
	for k, from := range bc.windows() {
		cells, err := c.cells(ctx, from, bc.now, steps)
		if err != nil {
			return err
		}
		if cells, err = c.settle(ctx, cells); err != nil {
			return err
		}
		for _, cell := range cells {
			bc.total[k] += cell.total
			bc.bad[k] += cell.bad
			bc.unc[k] += cell.unc
		}
	}
	return nil
}

// straddleBadShare is the share of the threshold's sketch bin above the
// threshold, on the bin's logarithmic scale: bin i holds the durations
// d with floor(ln(d ms)·scale) = i, so the threshold sits at
// ln(T ms)·scale − i of the way through it.
func straddleBadShare(thr int64) float64 {
	bin, ok := store.RollupBin(thr)
	if !ok {
		return 1
	}
	pos := math.Log(float64(thr)/1e6)*store.RollupBinScale() - float64(bin)
	return min(max(1-pos, 0), 1)
}

// splitBad is the bad requests counted with share of the uncertain ones,
// rounded to the nearest request.
func splitBad(bad, unc int, share float64) int {
	return bad + int(math.Round(float64(unc)*share))
}
