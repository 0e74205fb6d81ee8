package web

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/store"
)

func (s *Server) registerBudgetRoutes(r chi.Router) {
	r.Get("/budgets", s.handleAPIBudgets)
	r.Post("/budgets", s.handleAPIBudgetCreate)
	r.Get("/budgets/{id}", s.handleAPIBudget)
	r.Put("/budgets/{id}", s.handleAPIBudgetUpdate)
	r.Delete("/budgets/{id}", s.handleAPIBudgetDelete)
	r.Get("/budgets/{id}/compliance", s.handleAPIBudgetCompliance)
}

func (s *Server) handleAPIBudgets(w http.ResponseWriter, r *http.Request) {
	bs, err := s.store.Budgets(r.Context())
	if err != nil {
		s.apiError(w, r, fmt.Errorf("list budgets: %w", err))
		return
	}
	out := make([]analysis.BudgetJSON, len(bs))
	for i, b := range bs {
		out[i] = analysis.BudgetToJSON(b)
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"budgets": out})
}

// decodeBudgetBody reads and validates a budget; DecodeBudget's errors wrap
// store.ErrInvalid and name every problem.
func decodeBudgetBody(w http.ResponseWriter, r *http.Request) (store.Budget, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxJSONBody)
	b, err := analysis.DecodeBudget(r.Body)
	if err != nil {
		return b, err
	}
	return b, nil
}

func (s *Server) handleAPIBudgetCreate(w http.ResponseWriter, r *http.Request) {
	b, err := decodeBudgetBody(w, r)
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
	s.writeJSON(w, http.StatusCreated, analysis.BudgetToJSON(b))
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
	s.writeJSON(w, http.StatusOK, analysis.BudgetToJSON(b))
}

func (s *Server) handleAPIBudgetUpdate(w http.ResponseWriter, r *http.Request) {
	id, err := parseIDParam(r, "budget")
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	b, err := decodeBudgetBody(w, r)
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
	s.writeJSON(w, http.StatusOK, analysis.BudgetToJSON(b))
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

// compliance computes a budget's compliance over [from, to); with no range
// given, over the budget's own period ending now.
func (s *Server) compliance(ctx context.Context, b store.Budget, tr TimeRange, now time.Time) (analysis.ComplianceReport, error) {
	key := cacheKey("compliance", b.ID, b.UpdatedAt.UnixNano(), tr.From.UnixNano(), tr.To.UnixNano(), now.UnixNano())
	return cached(ctx, s, key, func(ctx context.Context) (analysis.ComplianceReport, error) {
		return analysis.Compliance(ctx, s.store, b, tr.From, tr.To, now)
	})
}

// budgetRange is the window a compliance view covers.
func (s *Server) budgetRange(r *http.Request, b store.Budget) (TimeRange, error) {
	q := r.URL.Query()
	now := s.analysisNow()
	if q.Get("from") == "" && q.Get("to") == "" {
		return TimeRange{From: now.Add(-b.Period), To: now, FromText: "now-" + analysis.FormatPeriod(b.Period), ToText: "now"}, nil
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
