package analysis

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tailscope/tailscope/internal/duration"
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

// BurnRule is one multiwindow, multi-burn-rate alert (the Google SRE
// workbook, "Alerting on SLOs"): it fires when the error budget burns at
// or above Factor over both the Long window (which makes the alert
// significant) and the Short one (which makes it stop soon after the burn
// does). The budget page's burn table, its status and the background
// alert evaluator (package alert) all judge a budget by these rules.
type BurnRule struct {
	Factor      float64
	Long, Short time.Duration
	// Severity is "page" or "ticket".
	Severity string
}

// Name is how pages and notifications name a rule: "14.4× over 1h and 5m".
func (r BurnRule) Name() string {
	return fmt.Sprintf("%s over %s and %s", FormatBurn(r.Factor), WindowText(r.Long), WindowText(r.Short))
}

// WindowText writes a burn window as the burn tables do: whole hours in
// hours ("24h", not "1d"), anything else as internal/duration does.
func WindowText(d time.Duration) string {
	if d >= time.Hour && d%time.Hour == 0 {
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	}
	return duration.Format(d)
}

// kind is the burn's speed in the words of the burn table: a paging rule
// is a fast burn, a ticket a slow one.
func (r BurnRule) kind() string {
	if r.Severity == "ticket" {
		return "slow"
	}
	return "fast"
}

// DefaultBurnRules are the workbook's policy for a 30-day budget: 2% of
// the budget spent in an hour (14.4×) or 5% in 6 hours (6×) pages, 10% in
// a day (3×) opens a ticket; each confirmed over a window a twelfth as
// long. The factors are burn rates, so they hold for any period.
func DefaultBurnRules() []BurnRule {
	return []BurnRule{
		{Factor: 14.4, Long: time.Hour, Short: 5 * time.Minute, Severity: "page"},
		{Factor: 6, Long: 6 * time.Hour, Short: 30 * time.Minute, Severity: "page"},
		{Factor: 3, Long: 24 * time.Hour, Short: 2 * time.Hour, Severity: "ticket"},
	}
}

// MinBurnRequests is the fewest requests each window of a rule needs
// before it can alert: one slow request of two is not a burn.
const MinBurnRequests = 10

// BurnAlerting reports whether a rule fires on these counts.
func BurnAlerting(r BurnRule, longRate, shortRate float64, longTotal, shortTotal int) bool {
	return longTotal >= MinBurnRequests && shortTotal >= MinBurnRequests && longRate >= r.Factor && shortRate >= r.Factor
}

// ParseBurnRules reads rules written "factor:long:short[:severity]",
// comma separated: "14.4:1h:5m,6:6h:30m,3:1d:2h:ticket".
func ParseBurnRules(s string) ([]BurnRule, error) {
	var out []BurnRule
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		f := strings.Split(part, ":")
		if len(f) != 3 && len(f) != 4 {
			return nil, fmt.Errorf("burn rule %q: want factor:long:short[:severity], e.g. 14.4:1h:5m", part)
		}
		var r BurnRule
		var err error
		if r.Factor, err = strconv.ParseFloat(f[0], 64); err != nil || !(r.Factor > 0) || r.Factor > 1e6 {
			return nil, fmt.Errorf("burn rule %q: factor %q: want a number above 0", part, f[0])
		}
		if r.Long, err = duration.Parse(f[1]); err != nil || r.Long <= 0 || r.Long > 30*24*time.Hour {
			return nil, fmt.Errorf("burn rule %q: long window %q: want a duration up to 30d, like 1h", part, f[1])
		}
		if r.Short, err = duration.Parse(f[2]); err != nil || r.Short <= 0 || r.Short >= r.Long {
			return nil, fmt.Errorf("burn rule %q: short window %q: want a duration shorter than the long one, like 5m", part, f[2])
		}
		r.Severity = "page"
		if len(f) == 4 {
			switch r.Severity = strings.TrimSpace(f[3]); r.Severity {
			case "page", "ticket":
			default:
				return nil, fmt.Errorf("burn rule %q: severity %q: want page or ticket", part, f[3])
			}
		}
		if seen[r.Name()] {
			return nil, fmt.Errorf("burn rule %q given twice", part)
		}
		seen[r.Name()] = true
		out = append(out, r)
	}
	return out, nil
}

// BurnRate is how fast the error budget burns under one rule: the bad
// share over the allowed share (1 = exactly on budget) in its long window
// (Window, Total, Bad, BurnRate) and its short one (Short…).
type BurnRate struct {
	Window string `json:"window"`
	// Kind is "fast" (pages) or "slow" (opens a ticket); Rule and
	// Severity name the rule.
	Kind          string  `json:"kind"`
	Rule          string  `json:"rule"`
	Severity      string  `json:"severity"`
	Total         int     `json:"total"`
	Bad           int     `json:"bad"`
	BurnRate      float64 `json:"burn_rate"`
	ShortWindow   string  `json:"short_window"`
	ShortTotal    int     `json:"short_total"`
	ShortBad      int     `json:"short_bad"`
	ShortBurnRate float64 `json:"short_burn_rate"`
	// BadUncertain and ShortBadUncertain are the requests of each window
	// the rollups could not place (ComplianceReport.BadUncertain); Bad
	// and ShortBad include their share over the threshold.
	BadUncertain      int `json:"bad_uncertain"`
	ShortBadUncertain int `json:"short_bad_uncertain"`
	// AlertThreshold is the rule's factor; Alerting is true when both
	// windows are at or above it (with MinBurnRequests each).
	AlertThreshold float64   `json:"alert_threshold"`
	Alerting       bool      `json:"alerting"`
	State          BurnState `json:"state"`
	// Text is the rates with the alert level: "1.16×, 0.8× over 5m
	// (alert at 14.4×)".
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

// finish fills the derived fields of a rule's burn rate.
func (br *BurnRate) finish(r BurnRule) {
	br.Alerting = BurnAlerting(r, br.BurnRate, br.ShortBurnRate, br.Total, br.ShortTotal)
	br.Text = fmt.Sprintf("%s, %s over %s (alert at %s)", FormatBurn(br.BurnRate), FormatBurn(br.ShortBurnRate), br.ShortWindow, FormatBurn(br.AlertThreshold))
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

// burnCounter counts requests and slow requests in each rule's windows
// ending at now: index 2i is rule i's long window, 2i+1 its short one.
// unc counts the requests the rollups could not place (windowPass).
type burnCounter struct {
	b               store.Budget
	rules           []BurnRule
	now             int64
	total, bad, unc []int
}

func newBurnCounter(b store.Budget, now time.Time, rules []BurnRule) *burnCounter {
	n := 2 * len(rules)
	return &burnCounter{b: b, rules: rules, now: now.UnixNano(), total: make([]int, n), bad: make([]int, n), unc: make([]int, n)}
}

// windows returns each counted window's start, in the order of total:
// rule i's long window at 2i, its short one at 2i+1. All end at now.
func (c *burnCounter) windows() []int64 {
	out := make([]int64, 0, 2*len(c.rules))
	for _, r := range c.rules {
		out = append(out, c.now-int64(r.Long), c.now-int64(r.Short))
	}
	return out
}

// span is the time the windows cover: the longest one.
func (c *burnCounter) span() time.Duration {
	var span time.Duration
	for _, r := range c.rules {
		span = max(span, r.Long)
	}
	return span
}

// add counts one request.
func (c *burnCounter) add(s *store.Sample) {
	if s.StartUnixNano >= c.now {
		return
	}
	for i, r := range c.rules {
		for j, w := range []time.Duration{r.Long, r.Short} {
			if s.StartUnixNano >= c.now-int64(w) {
				w := requestWeight(s)
				c.total[2*i+j] += w
				if s.DurationNano > int64(c.b.Threshold) {
					c.bad[2*i+j] += w
				}
			}
		}
	}
}

// rates computes each rule's burn rates, splitting the uncertain
// requests by share (splitBad).
func (c *burnCounter) rates(share float64) []BurnRate {
	allowed := 1 - c.b.Target
	bad := make([]int, len(c.bad))
	for k := range bad {
		bad[k] = splitBad(c.bad[k], c.unc[k], share)
	}
	rate := func(k int) float64 {
		if c.total[k] == 0 || allowed <= 0 {
			return 0
		}
		return round3(float64(bad[k]) / float64(c.total[k]) / allowed)
	}
	out := make([]BurnRate, 0, len(c.rules))
	for i, r := range c.rules {
		br := BurnRate{Window: WindowText(r.Long), Kind: r.kind(), Rule: r.Name(), Severity: r.Severity,
			Total: c.total[2*i], Bad: bad[2*i], BadUncertain: c.unc[2*i], BurnRate: rate(2 * i),
			ShortWindow: WindowText(r.Short), ShortTotal: c.total[2*i+1], ShortBad: bad[2*i+1], ShortBadUncertain: c.unc[2*i+1],
			ShortBurnRate:  rate(2*i + 1),
			AlertThreshold: r.Factor}
		br.finish(r)
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
