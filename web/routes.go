package web

import (
	"net/http"

	"github.com/tailscope/tailscope/static"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// Handler returns every route of the API and the pages.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(securityHeaders(contentSecurityPolicy()))
	r.Use(middleware.Recoverer)
	r.Use(s.requestDeadline)
	r.Use(middleware.GetHead)
	// Forms and the JSON API change state with POST/PUT/DELETE: refuse
	// cross-origin browser requests to them (CSRF). Requests without
	// browser fetch metadata (curl, CI pipelines) pass.
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.apiError(w, r, &Error{Status: http.StatusForbidden, Message: "cross-origin request refused: submit the form from tailscope's own pages"})
	}))
	r.Use(csrf.Handler)
	r.Use(s.validQuery)

	s.registerHealthRoutes(r)
	if s.assets != nil {
		r.Handle(static.Prefix+"*", s.assets.Handler())
	}
	s.registerPageRoutes(r)
	r.Route("/api/v1", func(r chi.Router) {
		r.NotFound(func(w http.ResponseWriter, r *http.Request) {
			s.apiError(w, r, notFound("no API route %s %s", r.Method, r.URL.Path))
		})
		r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
			s.apiError(w, r, &Error{Status: http.StatusMethodNotAllowed, Message: "method " + r.Method + " not allowed on " + r.URL.Path})
		})
		s.registerTraceRoutes(r)
		s.registerAnalysisRoutes(r)
		s.registerDeployRoutes(r)
		s.registerBudgetRoutes(r)
		s.registerIncidentRoutes(r)
	})
	return r
}

func (s *Server) registerHealthRoutes(r chi.Router) {
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		s.writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.version})
	})
	r.Get("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.ready(r.Context()); err != nil {
			s.log.Warn("readiness: store not ready", "err", err)
			s.writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "store not ready: unreachable, or its writes fail"})
			return
		}
		s.writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	if s.metrics != nil {
		r.Handle("/metrics", s.metrics)
	}
}

func (s *Server) registerPageRoutes(r chi.Router) {
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.pageError(w, r, notFound("there is no page at %s", truncateText(r.URL.Path, 120)))
	})
	r.Get("/", s.handleServicesPage)
	r.Get("/search", s.handleSearchPage)
	r.Get("/traces/{traceID}", s.handleTracePage)
	r.Get("/traces/{traceID}/subtree/{spanID}", s.handleTraceSubtree)
	r.Get("/traces/{traceID}/profile", s.handleSpanProfile)
	r.Get("/outliers/profile", s.handleOutlierGroupProfile)
	r.Get("/profiles", s.handleProfilesPage)
	r.Get("/latency", s.handleLatencyPage)
	r.Get("/outliers", s.handleOutliersPage)
	s.registerReviewPageRoutes(r)
}
