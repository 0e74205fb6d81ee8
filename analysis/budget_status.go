package analysis

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tailscope/tailscope/store"
)

// The words of budgets. A budget's status and each burn-rate window are
// named here once and every surface (API, pages, reports) shows these
// words, so a page can never say "exhausted" next to a burn rate it calls
// "below threshold": the status is about the window's error budget, the
// burn rate about its pace, and each says which.

// BudgetStatus is a budget's state over a window.
type BudgetStatus string

// Budget statuses, worst first.
const (
	// BudgetExhausted: more requests in the window were over the
	// threshold than the target allows (error budget left below 0).
	BudgetExhausted BudgetStatus = "exhausted"
	// BudgetBurning: budget is left, but a burn-rate window is at or
	// above its alert level: at that pace it runs out early.
	BudgetBurning BudgetStatus = "burning"
	// BudgetOK: budget is left and no burn-rate alert fires.
	BudgetOK BudgetStatus = "ok"
	// BudgetNoData: no requests in the window.
	BudgetNoData BudgetStatus = "no_data"
)

// Text is the status in the words every surface uses.
func (s BudgetStatus) Text() string {
	switch s {
	case BudgetExhausted:
		return "Exhausted"
	case BudgetBurning:
		return "Burning fast"
	case BudgetOK:
		return "Within budget"
	default:
		return "No requests"
	}
}

// Explain says what the status means, in a sentence.
func (s BudgetStatus) Explain() string {
	switch s {
	case BudgetExhausted:
		return "More requests in this window were over the threshold than the target allows."
	case BudgetBurning:
		return "Budget is left, but a burn-rate alert fires: at the recent pace it runs out before the period ends."
	case BudgetOK:
		return "Budget is left and no burn-rate alert fires."
	default:
		return "No requests to this endpoint in the window."
	}
}

// budgetStatus decides a report's status, worst first.
func budgetStatus(rep *ComplianceReport) BudgetStatus {
	switch {
	case rep.Total == 0:
		return BudgetNoData
	case rep.ErrorBudgetRemaining < 0:
		return BudgetExhausted
	case slices.ContainsFunc(rep.BurnRates, func(r BurnRate) bool { return r.Alerting }):
		return BudgetBurning
	default:
		return BudgetOK
	}
}

// BurnState is how one burn-rate window reads.
type BurnState string

// Burn states.
const (
	// BurnAlert: at or above the window's alert level.
	BurnAlert BurnState = "alert"
	// BurnOverPace: above 1× (the budget would run out before the period
	// ends) but below the alert level.
	BurnOverPace BurnState = "over_pace"
	// BurnWithinPace: at most 1×.
	BurnWithinPace BurnState = "within_pace"
	// BurnNoRequests: no requests in the window.
	BurnNoRequests BurnState = "no_requests"
)

// Burn-rate windows and the share of the period's error budget that,
// spent within the window, should alert (the multiwindow policy of the
// Google SRE workbook: 2% in 1 h or 5% in 6 h is a fast burn that pages,
// 10% in 24 h a slow burn that opens a ticket; for a 30-day period that is
// a burn rate of 14.4, 6 and 3).
var burnWindows = []struct {
	name   string
	window time.Duration
	spend  float64
	kind   string
}{
	{"1h", time.Hour, 0.02, "fast"},
	{"6h", 6 * time.Hour, 0.05, "fast"},
	{"24h", 24 * time.Hour, 0.10, "slow"},
}

// BurnRate is how fast the error budget burns in a window: the bad share
// over the allowed share (1 = exactly on budget).
type BurnRate struct {
	Window string `json:"window"`
	// Kind is "fast" (pages) or "slow" (opens a ticket).
	Kind           string    `json:"kind"`
	Total          int       `json:"total"`
	Bad            int       `json:"bad"`
	BurnRate       float64   `json:"burn_rate"`
	AlertThreshold float64   `json:"alert_threshold"`
	Alerting       bool      `json:"alerting"`
	State          BurnState `json:"state"`
	// Text is the rate with its alert level: "1.16× (alert at 14.4×)".
	Text string `json:"text"`
	// StateText says what the state means: "fast burn alert", "slow burn
	// alert", "over pace, no alert", "within pace", "no requests".
	StateText string `json:"state_text"`
}

// FormatBurn writes a burn rate as every surface shows it: "1.16×",
// "14.4×", "6×".
func FormatBurn(rate float64) string {
	s := strconv.FormatFloat(rate, 'f', 2, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s + "×"
}

// finish fills the derived fields of a window's burn rate.
func (br *BurnRate) finish() {
	br.Alerting = br.Total > 0 && br.BurnRate >= br.AlertThreshold
	br.Text = fmt.Sprintf("%s (alert at %s)", FormatBurn(br.BurnRate), FormatBurn(br.AlertThreshold))
	switch {
	case br.Total == 0:
		br.State, br.StateText = BurnNoRequests, "no requests"
		br.Text = "– (alert at " + FormatBurn(br.AlertThreshold) + ")"
	case br.Alerting:
		br.State, br.StateText = BurnAlert, br.Kind+" burn alert"
	case br.BurnRate > 1:
		br.State, br.StateText = BurnOverPace, "over pace, no alert"
	default:
		br.State, br.StateText = BurnWithinPace, "within pace"
	}
}

// burnCounter counts requests and slow requests in each burn window
// ending at now.
type burnCounter struct {
	b          store.Budget
	now        int64
	total, bad []int
}

func newBurnCounter(b store.Budget, now time.Time) *burnCounter {
	return &burnCounter{b: b, now: now.UnixNano(), total: make([]int, len(burnWindows)), bad: make([]int, len(burnWindows))}
}

// span is the time the windows cover: the longest one.
func (c *burnCounter) span() time.Duration { return burnWindows[len(burnWindows)-1].window }

// add counts one request.
func (c *burnCounter) add(s *store.Sample) {
	if s.StartUnixNano >= c.now {
		return
	}
	for i, w := range burnWindows {
		if s.StartUnixNano >= c.now-int64(w.window) {
			c.total[i]++
			if s.DurationNano > int64(c.b.Threshold) {
				c.bad[i]++
			}
		}
	}
}

// rates computes each window's burn rate.
func (c *burnCounter) rates() []BurnRate {
	allowed := 1 - c.b.Target
	out := make([]BurnRate, 0, len(burnWindows))
	for i, w := range burnWindows {
		br := BurnRate{Window: w.name, Kind: w.kind, Total: c.total[i], Bad: c.bad[i],
			AlertThreshold: round3(w.spend * float64(c.b.Period) / float64(w.window))}
		if br.Total > 0 {
			br.BurnRate = round3(float64(br.Bad) / float64(br.Total) / allowed)
		}
		br.finish()
		out = append(out, br)
	}
	return out
}

// read counts the requests of the windows from the source, for a
// compliance window that does not cover them.
func (c *burnCounter) read(ctx context.Context, src SpanSource) error {
	now := time.Unix(0, c.now)
	ss, err := src.Samples(ctx, store.SampleQuery{Service: c.b.Service, Endpoint: c.b.Endpoint, From: now.Add(-c.span()), To: now})
	if err != nil {
		return fmt.Errorf("analysis: compliance: read burn-rate window: %w", err)
	}
	for i := range ss {
		c.add(&ss[i])
	}
	return nil
}
