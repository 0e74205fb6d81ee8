// Package web serves tailscope's JSON API and pages: chi routes, handlers
// that parse requests, call the store and the analysis package, and render
// JSON or templ components. Numbers shown on pages and served by the API
// come from the same analysis calls.
package web

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/cache"
	"github.com/tailscope/tailscope/internal/admission"
	"github.com/tailscope/tailscope/internal/auth"
	"github.com/tailscope/tailscope/internal/flight"
	"github.com/tailscope/tailscope/static"
	"github.com/tailscope/tailscope/store"
)

// Store is what the web layer reads and edits.
type Store interface {
	store.Reader
	store.DeployStore
	store.BudgetStore
	store.IncidentStore
	store.ProfileStore
	store.OperationReader
	store.AttributeSuggester
	store.RollupReader
	// Firings lists burn-rate alert firings (store.AlertStore).
	Firings(ctx context.Context, q store.AlertQuery) ([]store.AlertFiring, error)
	Ping(ctx context.Context) error
}

// Config wires a Server.
type Config struct {
	Store Store
	// Cache holds analysis results; nil computes every time.
	Cache *cache.Aside
	// Metrics serves /metrics (a Prometheus handler); nil serves 404.
	Metrics http.Handler
	// Ready answers /readyz (nil error: ready); nil means Store.Ping.
	Ready func(ctx context.Context) error
	// Replica tells how far the read replica the store reads spans from
	// trails the primary (Config.DatabaseReadURL in app); nil when reads
	// go to the primary. /readyz reports it, and page footers when it
	// matters.
	Replica func(ctx context.Context) (ReplicaState, error)
	Log     *slog.Logger
	// Now is the clock used to resolve relative time ranges.
	Now func() time.Time
	// Version is reported by /healthz and in page footers.
	Version string
	// Assets are the embedded CSS and JavaScript.
	Assets *static.Assets
	// Auth identifies requests and holds the login sessions; nil means
	// authentication off (everyone an editor), as on loopback.
	Auth *auth.Authenticator
	// Pprof serves /debug/pprof/ (app's loopback rule inside); nil: none.
	Pprof http.Handler
	// AllowedHosts are the Host values requests may name (host:port, or a
	// host for any port); empty accepts any (tests, loopback defaults
	// are set by app).
	AllowedHosts []string
	// RequestTimeout bounds a request's context (0: none), so a page that
	// runs several analyses answers before the server's write timeout.
	RequestTimeout time.Duration
	// Analysis bounds the analyses (concurrency, memory, time); nil
	// means admission.New with default limits.
	Analysis *admission.Pool
	// BurnRules are the budgets' burn-rate alert rules, the ones the
	// background evaluator fires on (analysis.DefaultBurnRules when nil).
	BurnRules []analysis.BurnRule
	// PublicURL ("https://tailscope.example.com", no trailing slash) is
	// the base of every absolute link in exports; empty uses the URL each
	// request reached.
	PublicURL string
}

// Server holds the handlers' dependencies.
type Server struct {
	store   Store
	cache   *cache.Aside
	metrics http.Handler
	ready   func(ctx context.Context) error
	replica func(ctx context.Context) (ReplicaState, error)
	log     *slog.Logger
	now     func() time.Time
	version string
	assets  *static.Assets
	// markers classifies deploy markers (first seen or deploy) and
	// remembers the settled ones.
	markers *analysis.DeployClassifier
	pool    *admission.Pool
	auth    *auth.Authenticator
	hosts   map[string]bool
	pprof   http.Handler
	timeout time.Duration
	// flights coalesces identical analyses when there is no cache.
	flights flight.Group[any]
	// traces remembers the last traces' details for a few seconds.
	traces traceMemo
	// burnRules judge every budget's burn rates (Config.BurnRules).
	burnRules []analysis.BurnRule
	publicURL string
}

// New returns a Server; Handler gives its routes.
func New(cfg Config) *Server {
	s := &Server{
		store:     cfg.Store,
		burnRules: cfg.BurnRules,
		cache:     cfg.Cache,
		metrics:   cfg.Metrics,
		ready:     cfg.Ready,
		replica:   cfg.Replica,
		log:       cfg.Log,
		now:       cfg.Now,
		version:   cfg.Version,
		assets:    cfg.Assets,
		publicURL: strings.TrimRight(cfg.PublicURL, "/"),
		pool:      cfg.Analysis,
		timeout:   cfg.RequestTimeout,
		auth:      cfg.Auth,
		hosts:     hostSet(cfg.AllowedHosts),
		pprof:     cfg.Pprof,
	}
	if s.auth == nil {
		s.auth, _ = auth.New(auth.Config{Mode: auth.ModeNone}) // cannot fail
	}
	if s.pool == nil {
		// Unbounded but for coalescing: the bounds are the app's
		// configuration (app.Config.Analysis), not a library default.
		s.pool = admission.New(admission.Limits{Concurrency: 1 << 12, QueueWait: time.Hour, Timeout: time.Hour})
	}
	if s.log == nil {
		s.log = discardLogger()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.ready == nil {
		s.ready = func(ctx context.Context) error { return s.store.Ping(ctx) }
	}
	s.markers = &analysis.DeployClassifier{Spans: s.store, Deploys: s.store}
	return s
}
