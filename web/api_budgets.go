package web

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/internal/duration"
	"github.com/tailscope/tailscope/internal/wire"
	"github.com/tailscope/tailscope/store"
)

func (s *Server) handleAPIBudgets(w http.ResponseWriter, r *http.Request) {
	bs, err := s.store.Budgets(r.Context())
	if err != nil {
		s.apiError(w, r, fmt.Errorf("list budgets: %w", err))
		return
	}
	out := make([]wire.Budget, len(bs))
	for i, b := range bs {
		out[i] = wire.FromBudget(b)
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"budgets": out})
}

func (s *Server) handleAPIBudgetCreate(w http.ResponseWriter, r *http.Request) {
	b, err := decodeBudget(w, r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	b, err = s.store.CreateBudget(r.Context(), b)
	if err != nil {
		s.apiError(w, r, fmt.Errorf("create budget: %w", err))
		return
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/budgets/%d", b.ID))
	s.writeJSON(w, http.StatusCreated, wire.FromBudget(b))
}

func (s *Server) handleAPIBudget(w http.ResponseWriter, r *http.Request) {
	id, err := parseIDParam(r, "budget")
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	b, err := s.store.BudgetByID(r.Context(), id)
	if err != nil {
		s.apiError(w, r, fmt.Errorf("budget %d: %w", id, err))
		return
	}
	s.writeJSON(w, http.StatusOK, wire.FromBudget(b))
}

func (s *Server) handleAPIBudgetUpdate(w http.ResponseWriter, r *http.Request) {
	id, err := parseIDParam(r, "budget")
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	b, err := decodeBudget(w, r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	b.ID = id
	b, err = s.store.UpdateBudget(r.Context(), b)
	if err != nil {
		s.apiError(w, r, fmt.Errorf("budget %d: %w", id, err))
		return
	}
	s.writeJSON(w, http.StatusOK, wire.FromBudget(b))
}

func (s *Server) handleAPIBudgetDelete(w http.ResponseWriter, r *http.Request) {
	id, err := parseIDParam(r, "budget")
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	if err := s.store.DeleteBudget(r.Context(), id); err != nil {
		s.apiError(w, r, fmt.Errorf("budget %d: %w", id, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// complianceQuery is the input of a compliance computation, keyed by
// queryKey.
type complianceQuery struct {
	Budget   store.Budget
	From, To time.Time
	Now      time.Time
	Rules    []analysis.BurnRule
}

// compliance computes a budget's compliance over [from, to) from the
// rollups (analysis.ComplianceFromRollups: source "rollups"), so its cost
// follows the window's buckets, not its requests. The budget list, the
// budget's page and the API all come here, so for one window they show
// one computation: the same sample, the same hop ranking, the same worst
// hop. Incident reports read spans instead (complianceFrom), and so does
// a budget on an endpoint whose name the store does not roll up on its
// own (past store.MaxRollupNames a service): it has no rollups.
func (s *Server) compliance(ctx context.Context, b store.Budget, tr TimeRange, now time.Time) (wire.Compliance, error) {
	if b.Endpoint != "" {
		named, err := s.store.RolledUpName(ctx, b.Service, b.Endpoint)
		if err != nil {
			return wire.Compliance{}, fmt.Errorf("budget compliance: %w", err)
		}
		if !named {
			return s.complianceFrom(ctx, s.store, b, tr, now)
		}
	}
	key := queryKey("budget-compliance-rollups", complianceQuery{Budget: b, From: tr.From, To: tr.To, Now: now, Rules: s.burnRules})
	rep, err := cached(ctx, s, key, func(ctx context.Context) (analysis.ComplianceReport, error) {
		return analysis.ComplianceFromRollups(ctx, s.store, b, tr.From, tr.To, now, s.burnRules...)
	})
	return wire.Compliance{Budget: wire.FromBudget(b), ComplianceReport: rep}, err
}

// complianceFrom computes over src's spans (source "spans"), as
// outliersFrom: what an incident report shows, evidence bounded by its
// window to the nanosecond.
func (s *Server) complianceFrom(ctx context.Context, src analysis.SpanSource, b store.Budget, tr TimeRange, now time.Time) (wire.Compliance, error) {
	// The key names the budget's content, not only its id, so an edit
	// (or a store whose timestamps do not move) never serves the old
	// table.
	key := queryKey("budget-compliance", complianceQuery{Budget: b, From: tr.From, To: tr.To, Now: now, Rules: s.burnRules})
	rep, err := cached(ctx, s, key, func(ctx context.Context) (analysis.ComplianceReport, error) {
		return analysis.Compliance(ctx, src, b, tr.From, tr.To, now, s.burnRules...)
	})
	return wire.Compliance{Budget: wire.FromBudget(b), ComplianceReport: rep}, err
}

// budgetPeriodRange is a budget's own period ending now: the window its
// list row, its page and its API answer cover when none is asked for.
func budgetPeriodRange(b store.Budget, now time.Time) TimeRange {
	return TimeRange{From: now.Add(-b.Period), To: now, FromText: "now-" + duration.Format(b.Period), ToText: "now"}
}

// budgetRange is the window a compliance view covers.
func (s *Server) budgetRange(r *http.Request, b store.Budget) (TimeRange, error) {
	q := r.URL.Query()
	now := s.analysisNow()
	if q.Get("from") == "" && q.Get("to") == "" {
		return budgetPeriodRange(b, now), nil
	}
	tr, err := parseTimeRange(q.Get("from"), q.Get("to"), now)
	if err != nil {
		return tr, badRequest("%v", err)
	}
	return tr, nil
}

func (s *Server) handleAPIBudgetCompliance(w http.ResponseWriter, r *http.Request) {
	id, err := parseIDParam(r, "budget")
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	b, err := s.store.BudgetByID(r.Context(), id)
	if err != nil {
		s.apiError(w, r, fmt.Errorf("budget %d: %w", id, err))
		return
	}
	tr, err := s.budgetRange(r, b)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	rep, err := s.compliance(r.Context(), b, tr, s.analysisNow())
	if err != nil {
		s.apiError(w, r, fmt.Errorf("budget %d compliance: %w", id, err))
		return
	}
	s.writeJSON(w, http.StatusOK, rep)
}
