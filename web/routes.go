package web

import (
	"net/http"
	"strings"

	"github.com/tailscope/tailscope/internal/auth"
	"github.com/tailscope/tailscope/static"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// apiPrefix is where the JSON API is mounted; its routes below carry it in
// their Pattern so the table reads as the URLs a client calls.
const apiPrefix = "/api/v1"

// surface says which part of tailscope a route belongs to: it picks the
// error format (an HTML page or a JSON problem) and lets tests iterate one
// surface (the auth matrix, the method-not-allowed checks).
type surface int

const (
	surfaceHealth surface = iota // probes and metrics for the orchestrator
	surfaceAsset                 // content-hashed static files
	surfacePage                  // server-rendered HTML pages and their forms
	surfaceAPI                   // the JSON API under apiPrefix
)

func (s surface) String() string {
	switch s {
	case surfaceHealth:
		return "health"
	case surfaceAsset:
		return "asset"
	case surfacePage:
		return "page"
	case surfaceAPI:
		return "api"
	}
	return "unknown"
}

// route is one row of the route table. The table is data so that tests and
// middleware can iterate it: every route names its method, full pattern,
// surface and whether it changes state.
type route struct {
	Method  string       // http.MethodGet, http.MethodPost, ...
	Pattern string       // chi pattern, full path (API routes start with apiPrefix)
	Surface surface      // health, asset, page or api
	Mutates bool         // true when the route changes stored state
	Access  auth.Access  // who may call it (middleware_auth.go); every row names one
	Handler http.Handler // the handler chi calls
}

// routes returns every route tailscope serves: health, assets, pages and API,
// in the order they are registered.
func (s *Server) routes() []route {
	var all []route
	all = append(all, s.healthRoutes()...)
	all = append(all, s.assetRoutes()...)
	all = append(all, s.pageRoutes()...)
	all = append(all, s.apiRoutes()...)
	all = append(all, s.loginRoutes()...)
	return all
}

func (s *Server) healthRoutes() []route {
	rs := []route{
		{Method: http.MethodGet, Pattern: "/healthz", Surface: surfaceHealth, Access: auth.AccessPublic, Handler: http.HandlerFunc(s.handleHealthz)},
		{Method: http.MethodGet, Pattern: "/readyz", Surface: surfaceHealth, Access: auth.AccessPublic, Handler: http.HandlerFunc(s.handleReadyz)},
	}
	if s.metrics != nil {
		rs = append(rs, route{Method: http.MethodGet, Pattern: "/metrics", Surface: surfaceHealth, Access: auth.AccessReader, Handler: s.metrics})
	}
	// Go's profiler, for the operator: editors only (on top of its own
	// loopback rule), as a profile shows internals and a CPU profile costs
	// CPU for its whole duration.
	if s.pprof != nil {
		rs = append(rs, route{Method: http.MethodGet, Pattern: "/debug/pprof/*", Surface: surfaceHealth, Access: auth.AccessEditor, Handler: s.pprof})
	}
	return rs
}

func (s *Server) assetRoutes() []route {
	if s.assets == nil {
		return nil
	}
	return []route{{Method: http.MethodGet, Pattern: static.Prefix + "*", Surface: surfaceAsset, Access: auth.AccessPublic, Handler: s.assets.Handler()}}
}

// pageRoutes is the table of HTML pages. Forms post
// application/x-www-form-urlencoded (cross-origin posts are refused by the
// CSRF middleware in Handler) and answer a successful post with 303 See Other
// to the object's page, so a reload never posts twice.
func (s *Server) pageRoutes() []route {
	get := func(pattern string, h http.HandlerFunc) route {
		return route{Method: http.MethodGet, Pattern: pattern, Surface: surfacePage, Access: auth.AccessReader, Handler: h}
	}
	post := func(pattern string, h http.HandlerFunc) route {
		return route{Method: http.MethodPost, Pattern: pattern, Surface: surfacePage, Mutates: true, Access: auth.AccessEditor, Handler: h}
	}
	return []route{
		get("/", s.handleServicesPage),
		get("/search", s.handleSearchPage),
		get("/traces/compare", s.handleTraceComparePage),
		get("/traces/{traceID}", s.handleTracePage),
		get("/traces/{traceID}/spans/{spanID}", s.handleSpanDetail),
		get("/traces/{traceID}/profile", s.handleSpanProfile),
		get("/outliers/profile", s.handleOutlierGroupProfile),
		get("/profiles", s.handleProfilesPage),
		get("/latency", s.handleLatencyPage),
		get("/outliers", s.handleOutliersPage),
		get("/servicemap", s.handleServiceMapPage),
		get("/operations", s.handleOperationsPage),
		get("/shape", s.handleShapePage),

		get("/budgets", s.handleBudgetsPage),
		post("/budgets", s.handleBudgetCreateForm),
		get("/budgets/new", s.handleBudgetNewPage),
		get("/budgets/{id}", s.handleBudgetPage),
		post("/budgets/{id}", s.handleBudgetUpdateForm),
		get("/budgets/{id}/edit", s.handleBudgetEditPage),
		get("/budgets/{id}/delete", s.handleBudgetDeletePage),
		post("/budgets/{id}/delete", s.deleteForm("budget", s.store.DeleteBudget, "/budgets")),

		get("/deploys", s.handleDeploysPage),
		get("/deploys/{id}", s.handleDeployComparePage),
		get("/compare", s.handleComparePage),

		get("/incidents", s.handleIncidentsPage),
		post("/incidents", s.handleIncidentCreateForm),
		get("/incidents/new", s.handleIncidentNewPage),
		get("/incidents/{id}", s.handleIncidentPage),
		post("/incidents/{id}", s.handleIncidentUpdateForm),
		get("/incidents/{id}/edit", s.handleIncidentEditPage),
		get("/incidents/{id}/delete", s.handleIncidentDeletePage),
		post("/incidents/{id}/delete", s.deleteForm("incident", s.store.DeleteIncident, "/incidents")),
		post("/incidents/{id}/pins", s.handleIncidentPinForm),
		post("/incidents/{id}/finalize", s.snapshotForm(false)),
		post("/incidents/{id}/recompute", s.snapshotForm(true)),
		get("/incidents/{id}/report.md", s.handleReportMarkdown),
		get("/incidents/{id}/report.html", s.handleReportHTML),
		get("/incidents/{id}/report.json", s.handleReportJSON),
	}
}

// apiRoutes is the table of the JSON API (docs/API.md documents each row).
func (s *Server) apiRoutes() []route {
	api := func(method, pattern string, h http.HandlerFunc) route {
		access := auth.AccessReader
		if method != http.MethodGet {
			access = auth.AccessEditor
		}
		return route{Method: method, Pattern: apiPrefix + pattern, Surface: surfaceAPI, Mutates: method != http.MethodGet, Access: access, Handler: h}
	}
	// CI pipelines record deploy markers with a deploy-role API token.
	deploy := func(rt route) route { rt.Access = auth.AccessDeploy; return rt }
	const get, post, put, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete
	return []route{
		api(get, "/traces", s.handleAPITraceSearch),
		api(get, "/traces/compare", s.handleAPITraceCompare),
		api(get, "/traces/{traceID}", s.handleAPITrace),
		// Search's autocomplete (reader, like the traces it finds).
		api(get, "/attributes/keys", s.handleAPIAttributeKeys),
		api(get, "/attributes/values", s.handleAPIAttributeValues),
		api(get, "/traces/{traceID}/waterfall", s.handleTraceRows),

		api(get, "/services", s.handleAPIServices),
		api(get, "/latency", s.handleAPILatency),
		api(get, "/tenants", s.handleAPITenants),
		api(get, "/outliers", s.handleAPIOutliers),
		api(get, "/shape", s.handleAPIShape),
		api(get, "/compare", s.handleAPICompare),
		api(get, "/servicemap", s.handleAPIServiceMap),
		api(get, "/operations", s.handleAPIOperations),

		api(get, "/deploys", s.handleAPIDeploys),
		deploy(api(post, "/deploys", s.handleAPIDeployCreate)),
		api(get, "/deploys/{id}", s.handleAPIDeploy),

		api(get, "/budgets", s.handleAPIBudgets),
		api(post, "/budgets", s.handleAPIBudgetCreate),
		api(get, "/budgets/{id}", s.handleAPIBudget),
		api(put, "/budgets/{id}", s.handleAPIBudgetUpdate),
		api(del, "/budgets/{id}", s.handleAPIBudgetDelete),
		api(get, "/budgets/{id}/compliance", s.handleAPIBudgetCompliance),
		api(get, "/budgets/{id}/alerts", s.handleAPIBudgetAlerts),

		api(get, "/incidents", s.handleAPIIncidents),
		api(post, "/incidents", s.handleAPIIncidentCreate),
		api(get, "/incidents/{id}", s.handleAPIIncident),
		api(put, "/incidents/{id}", s.handleAPIIncidentUpdate),
		api(del, "/incidents/{id}", s.handleAPIIncidentDelete),
		api(post, "/incidents/{id}/finalize", s.snapshotAPI(false)),
		api(post, "/incidents/{id}/recompute", s.snapshotAPI(true)),
		api(get, "/incidents/{id}/revisions", s.handleAPIIncidentRevisions),
	}
}

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
	r.Use(s.allowedHost)

	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.pageError(w, r, notFound("there is no page at %s", truncateText(r.URL.Path, 120)))
	})
	api := chi.NewRouter()
	api.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.apiError(w, r, notFound("no API route %s %s", r.Method, r.URL.Path))
	})
	api.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.apiError(w, r, &Error{Status: http.StatusMethodNotAllowed, Message: "method " + r.Method + " not allowed on " + r.URL.Path})
	})
	for _, rt := range s.routes() {
		if rt.Surface == surfaceAPI {
			api.Method(rt.Method, strings.TrimPrefix(rt.Pattern, apiPrefix), s.guard(rt))
			continue
		}
		r.Method(rt.Method, rt.Pattern, s.guard(rt))
	}
	r.Mount(apiPrefix, api)
	return r
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.version})
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	type answer struct {
		Status      string         `json:"status"`
		Error       string         `json:"error,omitempty"`
		ReadReplica *readyzReplica `json:"read_replica,omitempty"`
	}
	if err := s.ready(r.Context()); err != nil {
		s.log.Warn("readiness: store not ready", "err", err)
		s.writeJSON(w, http.StatusServiceUnavailable, answer{Status: "unavailable", Error: "store not ready: unreachable, or its writes fail",
			ReadReplica: s.readyzReplica(r)})
		return
	}
	s.writeJSON(w, http.StatusOK, answer{Status: "ready", ReadReplica: s.readyzReplica(r)})
}
