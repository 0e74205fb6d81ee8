package analysis

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tailscope/tailscope/store"
)

// Budget limits.
const (
	maxBudgetPeriod = 400 * 24 * time.Hour
	maxBudgetHops   = 100
	maxBudgetName   = 200
)

// BudgetJSON is a budget as the JSON API reads and writes it: durations in
// milliseconds, the period as text ("30d", "12h", "90m").
type BudgetJSON struct {
	ID          int64           `json:"id,omitempty"`
	Name        string          `json:"name"`
	Service     string          `json:"service"`
	Endpoint    string          `json:"endpoint"`
	ThresholdMs float64         `json:"threshold_ms"`
	Target      float64         `json:"target"`
	Period      string          `json:"period"`
	Hops        []HopBudgetJSON `json:"hops"`
	CreatedAt   *time.Time      `json:"created_at,omitempty"`
	UpdatedAt   *time.Time      `json:"updated_at,omitempty"`
}

// HopBudgetJSON is one row of a budget's hop table.
type HopBudgetJSON struct {
	Service      string  `json:"service"`
	Dependency   string  `json:"dependency,omitempty"`
	AllocationMs float64 `json:"allocation_ms"`
}

// BudgetToJSON converts a stored budget to its API form.
func BudgetToJSON(b store.Budget) BudgetJSON {
	j := BudgetJSON{
		ID: b.ID, Name: b.Name, Service: b.Service, Endpoint: b.Endpoint,
		ThresholdMs: round3(durMs(b.Threshold)), Target: b.Target, Period: FormatPeriod(b.Period),
		Hops: make([]HopBudgetJSON, len(b.Hops)),
	}
	for i, h := range b.Hops {
		j.Hops[i] = HopBudgetJSON{Service: h.Service, Dependency: h.Dependency, AllocationMs: round3(durMs(h.Allocation))}
	}
	if !b.CreatedAt.IsZero() {
		t := b.CreatedAt.UTC()
		j.CreatedAt = &t
	}
	if !b.UpdatedAt.IsZero() {
		t := b.UpdatedAt.UTC()
		j.UpdatedAt = &t
	}
	return j
}

// DecodeBudget reads a budget from JSON strictly (unknown fields, wrong
// types and trailing data are errors) and validates it. The id and
// timestamps in the body are ignored: the store assigns them.
func DecodeBudget(r io.Reader) (store.Budget, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var j BudgetJSON
	if err := dec.Decode(&j); err != nil {
		return store.Budget{}, invalidf("budget: %s", jsonProblem(err))
	}
	if dec.More() {
		return store.Budget{}, invalidf("budget: unexpected data after the JSON object")
	}
	var probs []string
	b := store.Budget{Name: j.Name, Service: j.Service, Endpoint: j.Endpoint, Target: j.Target}
	th, err := msToDuration(j.ThresholdMs)
	if err != nil {
		probs = append(probs, "threshold_ms: "+err.Error())
	}
	b.Threshold = th
	if j.Period == "" {
		probs = append(probs, `period is required, e.g. "30d"`)
	} else if p, err := ParsePeriod(j.Period); err != nil {
		probs = append(probs, err.Error())
	} else {
		b.Period = p
	}
	for i, h := range j.Hops {
		a, err := msToDuration(h.AllocationMs)
		if err != nil {
			probs = append(probs, fmt.Sprintf("hops[%d].allocation_ms: %v", i, err))
		}
		b.Hops = append(b.Hops, store.HopBudget{Service: h.Service, Dependency: h.Dependency, Allocation: a})
	}
	if len(probs) > 0 {
		return store.Budget{}, invalidf("budget: %s", strings.Join(probs, "; "))
	}
	if err := ValidateBudget(b); err != nil {
		return store.Budget{}, err
	}
	return b, nil
}

// jsonProblem turns a decoding error into a message for the user.
func jsonProblem(err error) string {
	var ute *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF):
		return "empty body: want a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: the body ends early"
	case errors.As(err, &ute):
		return fmt.Sprintf("field %q: want a %s, got a JSON %s", ute.Field, ute.Type, ute.Value)
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return err.Error()
}

// msToDuration converts a finite millisecond value to a duration.
func msToDuration(ms float64) (time.Duration, error) {
	if math.IsNaN(ms) || math.IsInf(ms, 0) || math.Abs(ms) > float64(math.MaxInt64)/1e6 {
		return 0, fmt.Errorf("%v is not a usable number of milliseconds", ms)
	}
	return time.Duration(math.Round(ms * 1e6)), nil
}

// ParsePeriod reads a budget period: a whole number of days ("30d") or a
// Go duration ("12h", "90m").
func ParsePeriod(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil {
			return 0, fmt.Errorf("period %q: want whole days like \"30d\" or a duration like \"12h\"", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	p, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("period %q: want whole days like \"30d\" or a duration like \"12h\"", s)
	}
	return p, nil
}

// FormatPeriod writes a period as ParsePeriod reads it: days when whole.
func FormatPeriod(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

// ValidateBudget checks a budget before it is stored, naming every
// problem: service and endpoint present, a positive threshold, a target
// strictly between 0 and 1, a positive period, and hop allocations that
// are positive, not duplicated and do not add up to more than the
// threshold.
func ValidateBudget(b store.Budget) error {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	if strings.TrimSpace(b.Service) == "" {
		add("service is required")
	}
	if strings.TrimSpace(b.Endpoint) == "" {
		add("endpoint is required")
	}
	if len(b.Name) > maxBudgetName {
		add("name is longer than %d bytes", maxBudgetName)
	}
	if b.Threshold <= 0 {
		add("threshold must be positive (got %s)", b.Threshold)
	}
	if math.IsNaN(b.Target) || b.Target <= 0 || b.Target >= 1 {
		add("target %v is outside (0, 1): write 99%% as 0.99", b.Target)
	}
	switch {
	case b.Period <= 0:
		add("period must be positive (got %s)", b.Period)
	case b.Period > maxBudgetPeriod:
		add("period %s is longer than %d days", FormatPeriod(b.Period), int(maxBudgetPeriod/(24*time.Hour)))
	}
	if len(b.Hops) > maxBudgetHops {
		add("%d hops: at most %d", len(b.Hops), maxBudgetHops)
	}
	seen := map[hopKey]bool{}
	var sum time.Duration
	for i, h := range b.Hops {
		name := HopLabel(h.Service, h.Dependency)
		if strings.TrimSpace(h.Service) == "" {
			add("hops[%d]: service is required", i)
			name = fmt.Sprintf("hops[%d]", i)
		}
		if h.Allocation <= 0 {
			add("hop %s: allocation must be positive (got %s)", name, h.Allocation)
		}
		k := hopKey{h.Service, h.Dependency}
		if seen[k] {
			add("hop %s appears twice", name)
		}
		seen[k] = true
		sum += max(h.Allocation, 0)
	}
	if b.Threshold > 0 && sum > b.Threshold {
		add("hop allocations add up to %s, more than the %s threshold", sum, b.Threshold)
	}
	if len(probs) > 0 {
		return invalidf("budget: %s", strings.Join(probs, "; "))
	}
	return nil
}

// Burn-rate windows and the share of the period's error budget that,
// spent within the window, should alert (the multiwindow policy of the
// Google SRE workbook: 2% in 1 h, 5% in 6 h, 10% in 24 h; for a 30-day
// period that is a burn rate of 14.4, 6 and 3).
var burnWindows = []struct {
	name   string
	window time.Duration
	spend  float64
}{
	{"1h", time.Hour, 0.02},
	{"6h", 6 * time.Hour, 0.05},
	{"24h", 24 * time.Hour, 0.10},
}

// Budget statuses.
const (
	BudgetOK        = "ok"
	BudgetBurning   = "burning"
	BudgetExhausted = "exhausted"
	BudgetNoData    = "no_data"
)

const (
	budgetSeriesPoints = 60
	hopSampleSize      = 500
	budgetChunk        = 24 * time.Hour
)

// ComplianceReport is the body of GET /api/v1/budgets/{ID}/compliance.
type ComplianceReport struct {
	Budget BudgetJSON `json:"budget"`
	From   time.Time  `json:"from"`
	To     time.Time  `json:"to"`
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
	Status               string  `json:"status"`
	// BurnRates are over windows ending at now, whatever From and To are.
	BurnRates []BurnRate `json:"burn_rates"`
	// Series is attainment and budget remaining, cumulative from From.
	StepSeconds float64       `json:"step_s"`
	Series      []BudgetPoint `json:"series"`
	// Hops is per-hop compliance over SampledRequests requests spread
	// evenly over the window; Unbudgeted is the critical time in hops
	// without an allocation against what the allocations leave.
	SampledRequests int             `json:"sampled_requests"`
	Hops            []HopCompliance `json:"hops"`
	Unbudgeted      HopCompliance   `json:"unbudgeted"`
	// WorstHop is the label of the hop that most often overruns.
	WorstHop string `json:"worst_hop"`
}

// BurnRate is how fast the error budget burns in a window: the bad share
// over the allowed share (1 = exactly on budget).
type BurnRate struct {
	Window         string  `json:"window"`
	Total          int     `json:"total"`
	Bad            int     `json:"bad"`
	BurnRate       float64 `json:"burn_rate"`
	AlertThreshold float64 `json:"alert_threshold"`
	Alerting       bool    `json:"alerting"`
}

// BudgetPoint is one point of the compliance chart.
type BudgetPoint struct {
	Time            time.Time `json:"time"`
	Total           int       `json:"total"`
	Bad             int       `json:"bad"`
	Attainment      float64   `json:"attainment"`
	BudgetRemaining float64   `json:"budget_remaining"`
}

// HopCompliance is how often and by how much a hop overran its allocation.
type HopCompliance struct {
	Service      string  `json:"service"`
	Dependency   string  `json:"dependency"`
	Label        string  `json:"label"`
	AllocationMs float64 `json:"allocation_ms"`
	Requests     int     `json:"requests"`
	Overruns     int     `json:"overruns"`
	OverrunRate  float64 `json:"overrun_rate"`
	// MeanOverrunMs and MaxOverrunMs are over the overrunning requests.
	MeanOverrunMs float64 `json:"mean_overrun_ms"`
	MaxOverrunMs  float64 `json:"max_overrun_ms"`
	// P50Ms and P95Ms are the hop's critical time per request.
	P50Ms float64 `json:"p50_ms"`
	P95Ms float64 `json:"p95_ms"`
}

// Compliance computes how an endpoint meets its budget over [from, to)
// (zero values: the budget's period ending at now): attainment, error
// budget left, burn rates over the hour, 6 hours and day before now, a
// chart series, and per hop how often and by how much it overran its
// allocation. Samples are read a day at a time, so a 30-day window never
// holds more than a day of them in memory.
func Compliance(ctx context.Context, src SpanSource, b store.Budget, from, to, now time.Time) (ComplianceReport, error) {
	if err := ValidateBudget(b); err != nil {
		return ComplianceReport{}, err
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
	rep := ComplianceReport{Budget: BudgetToJSON(b), From: from.UTC(), To: to.UTC(), BurnRates: []BurnRate{}, Hops: []HopCompliance{}}
	thr := int64(b.Threshold)
	allowed := 1 - b.Target

	grid := newTimeGrid(from, to, chooseStep(to.Sub(from), budgetSeriesPoints))
	totals := make([]int, grid.n)
	bads := make([]int, grid.n)
	chunks := int((to.Sub(from) + budgetChunk - 1) / budgetChunk)
	perChunk := max(hopSampleSize/max(chunks, 1), 10)
	var picks []store.Sample
	for c := 0; c < chunks; c++ {
		cf := from.Add(time.Duration(c) * budgetChunk)
		ct := cf.Add(budgetChunk)
		if ct.After(to) {
			ct = to
		}
		ss, err := src.Samples(ctx, store.SampleQuery{Service: b.Service, Endpoint: b.Endpoint, From: cf, To: ct})
		if err != nil {
			return ComplianceReport{}, fmt.Errorf("analysis: compliance: read samples: %w", err)
		}
		var in []int
		for i := range ss {
			s := &ss[i]
			if s.StartUnixNano < cf.UnixNano() || s.StartUnixNano >= ct.UnixNano() {
				continue
			}
			in = append(in, i)
			rep.Total++
			g := grid.index(s.StartUnixNano)
			if g >= 0 {
				totals[g]++
			}
			if s.DurationNano > thr {
				rep.Bad++
				if g >= 0 {
					bads[g]++
				}
			}
		}
		for _, p := range pickEvenly([][2]int{{0, len(in)}}, len(in), perChunk) {
			picks = append(picks, ss[in[p]])
		}
	}
	rep.Good = rep.Total - rep.Bad
	rep.Attainment = 1
	if rep.Total > 0 {
		rep.Attainment = round4(float64(rep.Good) / float64(rep.Total))
	}
	rep.Met = float64(rep.Good) >= b.Target*float64(rep.Total)
	rep.ErrorBudget = round3(allowed * float64(rep.Total))
	rep.ErrorBudgetRemaining = budgetRemaining(rep.Bad, rep.Total, allowed)

	rep.StepSeconds = float64(grid.step) / 1e9
	cumT, cumB := 0, 0
	for i := range grid.n {
		cumT += totals[i]
		cumB += bads[i]
		p := BudgetPoint{Time: grid.bucketStart(i).Add(time.Duration(grid.step)), Total: cumT, Bad: cumB, Attainment: 1, BudgetRemaining: 1}
		if cumT > 0 {
			p.Attainment = round4(float64(cumT-cumB) / float64(cumT))
			p.BudgetRemaining = budgetRemaining(cumB, cumT, allowed)
		}
		rep.Series = append(rep.Series, p)
	}

	if err := burnRates(ctx, src, b, now, &rep); err != nil {
		return ComplianceReport{}, err
	}
	if err := hopCompliance(ctx, src, b, picks, &rep); err != nil {
		return ComplianceReport{}, err
	}
	switch {
	case rep.Total == 0:
		rep.Status = BudgetNoData
	case rep.ErrorBudgetRemaining < 0:
		rep.Status = BudgetExhausted
	case slices.ContainsFunc(rep.BurnRates, func(r BurnRate) bool { return r.Alerting }):
		rep.Status = BudgetBurning
	default:
		rep.Status = BudgetOK
	}
	return rep, nil
}

// budgetRemaining is 1 − bad/(allowed·total): 1 untouched, 0 spent,
// negative overspent.
func budgetRemaining(bad, total int, allowed float64) float64 {
	if total == 0 {
		return 1
	}
	return round4(1 - float64(bad)/(allowed*float64(total)))
}

// burnRates reads the day before now and computes each window's burn rate.
func burnRates(ctx context.Context, src SpanSource, b store.Budget, now time.Time, rep *ComplianceReport) error {
	longest := burnWindows[len(burnWindows)-1].window
	ss, err := src.Samples(ctx, store.SampleQuery{Service: b.Service, Endpoint: b.Endpoint, From: now.Add(-longest), To: now})
	if err != nil {
		return fmt.Errorf("analysis: compliance: read burn-rate window: %w", err)
	}
	allowed := 1 - b.Target
	for _, w := range burnWindows {
		start := now.Add(-w.window).UnixNano()
		br := BurnRate{Window: w.name, AlertThreshold: round3(w.spend * float64(b.Period) / float64(w.window))}
		for i := range ss {
			if ss[i].StartUnixNano >= start && ss[i].StartUnixNano < now.UnixNano() {
				br.Total++
				if ss[i].DurationNano > int64(b.Threshold) {
					br.Bad++
				}
			}
		}
		if br.Total > 0 {
			br.BurnRate = round3(float64(br.Bad) / float64(br.Total) / allowed)
		}
		br.Alerting = br.Total > 0 && br.BurnRate >= br.AlertThreshold
		rep.BurnRates = append(rep.BurnRates, br)
	}
	return nil
}

// hopCompliance computes each hop's critical time in the sampled requests
// against its allocation.
func hopCompliance(ctx context.Context, src SpanSource, b store.Budget, picks []store.Sample, rep *ComplianceReport) error {
	ids := make([]store.TraceID, len(picks))
	for i, p := range picks {
		ids[i] = p.TraceID
	}
	traces, err := readTraces(ctx, src, ids)
	if err != nil {
		return fmt.Errorf("analysis: compliance: %w", err)
	}
	budgeted := map[hopKey]int{}
	var allocated time.Duration
	for i, h := range b.Hops {
		budgeted[hopKey{h.Service, h.Dependency}] = i
		allocated += h.Allocation
	}
	times := make([][]int64, len(b.Hops))
	var rest []int64
	var e cpEngine
	for _, p := range picks {
		spans, ok := traces[p.TraceID]
		if !ok || !e.compute(spans, p.SpanID) {
			continue
		}
		per := make([]int64, len(b.Hops))
		var other int64
		e.hopTimes(func(sp *store.Span, ns int64) {
			if i, ok := budgeted[hopKey{sp.Service, sp.Dependency}]; ok {
				per[i] += ns
			} else {
				other += ns
			}
		})
		for i := range per {
			times[i] = append(times[i], per[i])
		}
		rest = append(rest, other)
	}
	rep.SampledRequests = len(rest)
	for i, h := range b.Hops {
		rep.Hops = append(rep.Hops, hopRow(h.Service, h.Dependency, HopLabel(h.Service, h.Dependency), h.Allocation, times[i]))
	}
	rep.Unbudgeted = hopRow("", "", "unbudgeted", b.Threshold-allocated, rest)
	worst := -1
	for i, h := range rep.Hops {
		if h.Overruns == 0 {
			continue
		}
		if worst < 0 || cmp.Or(cmp.Compare(h.OverrunRate, rep.Hops[worst].OverrunRate),
			cmp.Compare(h.MeanOverrunMs, rep.Hops[worst].MeanOverrunMs)) > 0 {
			worst = i
		}
	}
	if worst >= 0 {
		rep.WorstHop = rep.Hops[worst].Label
	}
	return nil
}

// hopRow summarises one hop's critical times against its allocation.
func hopRow(service, dep, label string, alloc time.Duration, times []int64) HopCompliance {
	h := HopCompliance{Service: service, Dependency: dep, Label: label, AllocationMs: round3(durMs(alloc)), Requests: len(times)}
	if len(times) == 0 {
		return h
	}
	var sum, most int64
	for _, t := range times {
		if over := t - int64(alloc); over > 0 {
			h.Overruns++
			sum += over
			most = max(most, over)
		}
	}
	h.OverrunRate = round4(float64(h.Overruns) / float64(len(times)))
	if h.Overruns > 0 {
		h.MeanOverrunMs = round3(float64(sum) / float64(h.Overruns) / 1e6)
		h.MaxOverrunMs = round3(nsToMs(most))
	}
	s := slices.Clone(times)
	slices.Sort(s)
	h.P50Ms = round3(nsToMs(Quantile(s, 0.5)))
	h.P95Ms = round3(nsToMs(Quantile(s, 0.95)))
	return h
}
