package alert

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/store"
)

// Store is what the evaluator reads and writes.
type Store interface {
	analysis.SpanSource
	Budgets(ctx context.Context) ([]store.Budget, error)
	store.AlertStore
}

// Config configures the evaluator and its notifications.
type Config struct {
	// Rules are the alerts evaluated (analysis.DefaultBurnRules when
	// empty): the same rules the budget page's burn table shows.
	Rules []analysis.BurnRule
	// Interval is how often every budget is evaluated (default 1 min).
	Interval time.Duration
	// Lateness is how far back each evaluation re-reads requests, for
	// spans that arrive late (default 2 min).
	Lateness time.Duration
	// Targets receive every firing and resolve.
	Targets []Target
	// BaseURL is the start of every link (the --public-url); empty
	// leaves links relative.
	BaseURL string
	// Retry backs off from RetryMin doubling to RetryMax, and gives up
	// on a notification after RetryFor (defaults 1 s, 5 min, 24 h).
	RetryMin, RetryMax, RetryFor time.Duration
	Client                       *http.Client
	Now                          func() time.Time
	Log                          *slog.Logger
}

func (c *Config) defaults() {
	if len(c.Rules) == 0 {
		c.Rules = analysis.DefaultBurnRules()
	}
	if c.Interval <= 0 {
		c.Interval = time.Minute
	}
	if c.Lateness <= 0 {
		c.Lateness = 2 * time.Minute
	}
	if c.RetryMin <= 0 {
		c.RetryMin = time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Minute
	}
	if c.RetryFor <= 0 {
		c.RetryFor = 24 * time.Hour
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Evaluator checks every budget's rules on a schedule, records firings and
// resolves, and notifies the targets. Its work is reads of entry-span
// samples (incremental: each evaluation reads only what arrived since the
// last, plus Lateness) in its own goroutine, so it never blocks ingest.
type Evaluator struct {
	cfg    Config
	st     Store
	mu     sync.Mutex
	counts map[int64]*counter
	n      *notifier
}

// New returns an evaluator; Run starts it.
func New(st Store, cfg Config) *Evaluator {
	cfg.defaults()
	return &Evaluator{cfg: cfg, st: st, counts: map[int64]*counter{}, n: newNotifier(st, cfg)}
}

// Rules are the rules evaluated.
func (e *Evaluator) Rules() []analysis.BurnRule { return slices.Clone(e.cfg.Rules) }

// Run evaluates every Interval until ctx ends, then stops the
// notifications in flight (what they had not delivered is sent at the
// next start) and waits for them.
func (e *Evaluator) Run(ctx context.Context) {
	e.n.stop = ctx
	t := time.NewTicker(e.cfg.Interval)
	defer t.Stop()
	for {
		if err := e.Tick(ctx); err != nil && ctx.Err() == nil {
			e.cfg.Log.Warn("alerts: evaluation", "err", err)
		}
		select {
		case <-ctx.Done():
			e.n.wait()
			return
		case <-t.C:
		}
	}
}

// Wait blocks until the notifications in flight are delivered or given up.
func (e *Evaluator) Wait() { e.n.wait() }

// Tick evaluates every budget once and resends notifications that were
// not delivered (after a restart, say).
func (e *Evaluator) Tick(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.cfg.Now()
	budgets, err := e.st.Budgets(ctx)
	if err != nil {
		return fmt.Errorf("alerts: budgets: %w", err)
	}
	byID := map[int64]store.Budget{}
	var errs []error
	for _, b := range budgets {
		byID[b.ID] = b
		if err := e.evaluate(ctx, b, now); err != nil {
			errs = append(errs, fmt.Errorf("budget %d: %w", b.ID, err))
		}
	}
	for id := range e.counts {
		if _, ok := byID[id]; !ok {
			delete(e.counts, id)
		}
	}
	if err := e.settle(ctx, byID, now); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// evaluate updates a budget's counts and opens or resolves its firings.
func (e *Evaluator) evaluate(ctx context.Context, b store.Budget, now time.Time) error {
	longest := slices.MaxFunc(e.cfg.Rules, func(a, b analysis.BurnRule) int { return cmp.Compare(a.Long, b.Long) }).Long
	c := e.counts[b.ID]
	if c == nil || !c.sameBudget(b) {
		c = newCounter(b)
		e.counts[b.ID] = c
	}
	if err := c.update(ctx, e.st, now, longest, e.cfg.Lateness); err != nil {
		return err
	}
	open, err := e.st.Firings(ctx, store.AlertQuery{BudgetID: b.ID, OpenOnly: true})
	if err != nil {
		return err
	}
	for _, r := range e.cfg.Rules {
		long, short := c.burn(now, r.Long), c.burn(now, r.Short)
		firing := analysis.BurnAlerting(r, long.rate, short.rate, long.total, short.total)
		i := slices.IndexFunc(open, func(f store.AlertFiring) bool { return f.Rule == r.Name() })
		switch {
		case firing && i < 0:
			f := store.AlertFiring{BudgetID: b.ID, Rule: r.Name(), Severity: r.Severity, Factor: r.Factor,
				Long: r.Long, Short: r.Short, StartedAt: now, LongBurn: round3(long.rate), ShortBurn: round3(short.rate)}
			e.describeCause(ctx, &f, b, r, now)
			f, created, err := e.st.CreateFiring(ctx, f)
			if err != nil {
				return err
			}
			if created {
				e.cfg.Log.Info("alerts: firing", "budget", b.Name, "rule", f.Rule, "cause", f.Cause)
				e.n.send(b, f, store.AlertFired)
			}
		case !firing && i >= 0:
			f := open[i]
			err := e.st.ResolveFiring(ctx, f.ID, now, round3(long.rate), round3(short.rate))
			if errors.Is(err, store.ErrNotFound) {
				continue // another process resolved it and notifies
			}
			if err != nil {
				return err
			}
			f.ResolvedAt, f.LongBurn, f.ShortBurn = now, round3(long.rate), round3(short.rate)
			e.cfg.Log.Info("alerts: resolved", "budget", b.Name, "rule", f.Rule)
			e.n.send(b, f, store.AlertResolved)
		}
	}
	return nil
}

// settle resolves the open firings of deleted budgets or of rules no
// longer configured, and resends notifications not yet delivered.
func (e *Evaluator) settle(ctx context.Context, budgets map[int64]store.Budget, now time.Time) error {
	open, err := e.st.Firings(ctx, store.AlertQuery{OpenOnly: true, Limit: 1000})
	if err != nil {
		return fmt.Errorf("alerts: open firings: %w", err)
	}
	for _, f := range open {
		_, ok := budgets[f.BudgetID]
		known := slices.ContainsFunc(e.cfg.Rules, func(r analysis.BurnRule) bool { return r.Name() == f.Rule })
		if ok && known {
			continue
		}
		if err := e.st.ResolveFiring(ctx, f.ID, now, 0, 0); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("alerts: resolve orphaned firing %d: %w", f.ID, err)
		}
	}
	if len(e.cfg.Targets) == 0 {
		return nil
	}
	recent, err := e.st.Firings(ctx, store.AlertQuery{Limit: 200})
	if err != nil {
		return fmt.Errorf("alerts: firings: %w", err)
	}
	for _, f := range recent {
		b, ok := budgets[f.BudgetID]
		if !ok {
			b = store.Budget{ID: f.BudgetID, Name: fmt.Sprintf("budget %d (deleted)", f.BudgetID)}
		}
		if f.FireSentAt.IsZero() {
			e.n.send(b, f, store.AlertFired)
		}
		if !f.ResolvedAt.IsZero() && f.ResolveSentAt.IsZero() {
			e.n.send(b, f, store.AlertResolved)
		}
	}
	return nil
}

// causeWindow caps the window the cause is looked for in: the outliers of
// the last hour describe what is burning now.
const causeWindow = time.Hour

// describeCause fills the firing's cause from an outlier analysis of the
// endpoint, with the budget's threshold as what makes a request an
// outlier. A failure leaves the cause empty: the alert still fires.
func (e *Evaluator) describeCause(ctx context.Context, f *store.AlertFiring, b store.Budget, r analysis.BurnRule, now time.Time) {
	rep, err := analysis.Outliers(ctx, e.st, analysis.OutlierQuery{
		Service: b.Service, Endpoint: b.Endpoint, From: now.Add(-min(r.Long, causeWindow)), To: now,
		ThresholdMs: float64(b.Threshold) / 1e6, MaxExamples: 1,
	})
	if err != nil {
		e.cfg.Log.Warn("alerts: cause", "budget", b.Name, "err", err)
		return
	}
	if len(rep.Groups) == 0 {
		f.Cause = rep.Verdict
		return
	}
	g := rep.Groups[0]
	f.Cause, f.CauseShare, f.FixedP99Ms = g.Label, g.Share, g.CounterfactualP99Ms
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }
