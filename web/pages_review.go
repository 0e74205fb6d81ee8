package web

import "github.com/go-chi/chi/v5"

// registerReviewPageRoutes adds the budgets, deploys, incidents and report
// pages.
func (s *Server) registerReviewPageRoutes(r chi.Router) {}
