package web

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/tailscope/tailscope/alert"
	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/store"
)

// alertHistory is how many firings a budget's page and API list.
const alertHistory = 20

// rules are the burn-rate rules in force.
func (s *Server) rules() []analysis.BurnRule {
	if len(s.burnRules) == 0 {
		return analysis.DefaultBurnRules()
	}
	return s.burnRules
}

// firingJSON is one firing in GET /api/v1/budgets/{id}/alerts.
type firingJSON struct {
	ID         int64             `json:"id"`
	Rule       string            `json:"rule"`
	Severity   string            `json:"severity"`
	Factor     float64           `json:"factor"`
	Long       string            `json:"long"`
	Short      string            `json:"short"`
	StartedAt  time.Time         `json:"started_at"`
	ResolvedAt *time.Time        `json:"resolved_at"`
	LongBurn   float64           `json:"long_burn"`
	ShortBurn  float64           `json:"short_burn"`
	Cause      string            `json:"cause"`
	CauseShare float64           `json:"cause_share"`
	FixedP99Ms float64           `json:"p99_if_fixed_ms"`
	Notified   bool              `json:"notified"`
	Links      map[string]string `json:"links"`
}

func (s *Server) budgetFirings(ctx context.Context, b store.Budget) ([]store.AlertFiring, error) {
	fs, err := s.store.Firings(ctx, store.AlertQuery{BudgetID: b.ID, Limit: alertHistory})
	if err != nil {
		return nil, fmt.Errorf("budget %d alerts: %w", b.ID, err)
	}
	return fs, nil
}

func (s *Server) handleAPIBudgetAlerts(w http.ResponseWriter, r *http.Request) {
	b, err := s.budgetParam(r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	fs, err := s.budgetFirings(r.Context(), b)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	out := struct {
		Rules   []alert.RuleJSON `json:"rules"`
		Firings []firingJSON     `json:"firings"`
	}{Rules: []alert.RuleJSON{}, Firings: []firingJSON{}}
	for _, rl := range s.rules() {
		out.Rules = append(out.Rules, alert.RuleOf(rl))
	}
	for _, f := range fs {
		fj := firingJSON{ID: f.ID, Rule: f.Rule, Severity: f.Severity, Factor: f.Factor, Long: analysis.WindowText(f.Long), Short: analysis.WindowText(f.Short),
			StartedAt: f.StartedAt.UTC(), LongBurn: f.LongBurn, ShortBurn: f.ShortBurn, Cause: f.Cause, CauseShare: f.CauseShare,
			FixedP99Ms: f.FixedP99Ms, Notified: !f.FireSentAt.IsZero(), Links: alert.Links("", b, f)}
		if !f.ResolvedAt.IsZero() {
			t := f.ResolvedAt.UTC()
			fj.ResolvedAt = &t
		}
		out.Firings = append(out.Firings, fj)
	}
	s.writeJSON(w, http.StatusOK, out)
}

// alertRows are a budget's firings as its page lists them.
func alertRows(b store.Budget, fs []store.AlertFiring) []components.AlertRow {
	out := make([]components.AlertRow, 0, len(fs))
	for _, f := range fs {
		links := alert.Links("", b, f)
		row := components.AlertRow{Rule: f.Rule, Severity: f.Severity, Started: f.StartedAt.UTC().Format("2006-01-02 15:04 UTC"),
			Burn:  fmt.Sprintf("%s over %s, %s over %s", analysis.FormatBurn(f.LongBurn), analysis.WindowText(f.Long), analysis.FormatBurn(f.ShortBurn), analysis.WindowText(f.Short)),
			Cause: alert.CauseText(f), OutliersHref: links["outliers"], IncidentHref: links["open_incident"], Open: f.ResolvedAt.IsZero()}
		if !row.Open {
			row.Resolved = f.ResolvedAt.UTC().Format("2006-01-02 15:04 UTC")
		}
		out = append(out, row)
	}
	return out
}

func ruleTexts(rules []analysis.BurnRule) []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = r.Name() + " (" + r.Severity + ")"
	}
	return out
}
