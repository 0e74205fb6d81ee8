// Package app wires tailscope together: the store, the OTLP receiver, the
// cache, the web server and the background jobs, with a Start/Close life
// cycle so cmd/tailscope stays a thin flag parser and end-to-end tests can
// start the whole server on port 0.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tailscope/tailscope/alert"
	"github.com/tailscope/tailscope/cache"
	"github.com/tailscope/tailscope/ingest"
	"github.com/tailscope/tailscope/internal/admission"
	"github.com/tailscope/tailscope/profile"
	"github.com/tailscope/tailscope/static"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/web"
)

// Config is everything the server needs; cmd/tailscope maps flags onto it.
type Config struct {
	// HTTPAddr serves the UI, the JSON API, /healthz, /readyz and /metrics.
	HTTPAddr string
	// DatabaseURL selects the store: postgres://… or sqlite:PATH.
	DatabaseURL string
	// DatabaseReadURL, when set, is a PostgreSQL streaming replica of
	// DatabaseURL that pages and the API read spans from (readsplit.go);
	// writes and records stay on the primary.
	DatabaseReadURL string
	// DatabaseWait is how long Start retries a store it cannot reach
	// (PostgreSQL starting up) before giving up; 0 tries once.
	DatabaseWait time.Duration
	// StatsInterval is how often the store refreshes planner statistics
	// (PostgreSQL: ANALYZE of the tables that changed by a tenth; SQLite:
	// PRAGMA optimize); 0 leaves it to day changes (PostgreSQL) and to
	// open and close (SQLite).
	StatsInterval time.Duration
	// RedisURL, when set, shares the analysis cache through Redis;
	// otherwise each process keeps an in-process LRU.
	RedisURL string
	// CacheTTL bounds how long a cached analysis can hide new spans.
	CacheTTL time.Duration
	// Exposure: authentication, allowed host names, TLS.
	Exposure Exposure
	// Analysis bounds the analyses: concurrent runs, queue wait, time per
	// run (under the UI's write timeout) and a heap budget.
	Analysis admission.Limits
	// Ingest holds the OTLP listeners and every receiver limit.
	Ingest ingest.Config
	// Profiles holds the limits of the Pyroscope-compatible profile
	// receiver (POST /ingest on the OTLP/HTTP listener).
	Profiles profile.Config
	// WALDir places the ingest write-ahead log (ingest.Config.WALDir):
	// WALAuto puts it beside an SQLite database and uses none with
	// PostgreSQL; WALOff uses none; anything else is the directory.
	WALDir string
	// Retention removes spans older than this (0 keeps everything). The
	// receiver refuses older spans (Ingest.MaxSpanAge is set to it), so a
	// span is never acknowledged and then deleted.
	Retention time.Duration
	// RollupRetention removes hour rollups (the services overview's
	// counts and latency sketches) older than this (0 keeps them); they
	// are kept longer than spans because they are small.
	RollupRetention time.Duration
	// SelfTraces sends tailscope's own HTTP traces: "" (off), "self" (to
	// its own OTLP/HTTP receiver) or an OTLP/HTTP base URL.
	SelfTraces string
	// SelfProfile profiles tailscope continuously with pyroscope-go:
	// "" (off), "self" (to its own profile receiver) or a Pyroscope URL.
	// With SelfTraces, CPU samples carry the span they were spent in.
	SelfProfile string
	// Pprof serves net/http/pprof at /debug/pprof/ on the UI listener:
	// PprofLoopback (default) to loopback clients, PprofAll, or PprofOff.
	Pprof string
	// Alerts configures burn-rate alerting: the rules (which the budget
	// pages show too), how often they are evaluated and the webhooks that
	// get each firing.
	Alerts alert.Config
	// PublicURL is the URL people reach tailscope at
	// ("https://tailscope.example.com", no trailing slash): the base of
	// every absolute link in report exports and alert notifications
	// (Alerts.BaseURL, when that is not set itself). Empty uses the URL
	// each request reached, and relative links in notifications.
	PublicURL string
	Version   string
	Log       *slog.Logger
}

// uiWriteTimeout bounds writing one answer of the UI and API listener.
const uiWriteTimeout = 2 * time.Minute

// DefaultConfig returns the defaults of `tailscope serve`.
func DefaultConfig() Config {
	return Config{
		HTTPAddr:     "127.0.0.1:8080",
		DatabaseURL:  DefaultDatabaseURL,
		DatabaseWait: time.Minute,
		// The stores' own default.
		StatsInterval: 10 * time.Minute,
		CacheTTL:      15 * time.Second,
		Analysis: admission.Limits{
			Concurrency: admission.DefaultConcurrency(),
			QueueWait:   admission.DefaultQueueWait,
			Timeout:     admission.DefaultTimeout,
			MemoryBytes: 1 << 30,
		},
		Ingest:    ingest.DefaultConfig(),
		Profiles:  profile.DefaultConfig(),
		Retention: 7 * 24 * time.Hour,

		RollupRetention: 90 * 24 * time.Hour,
		WALDir:          WALAuto,
		Pprof:           PprofLoopback,
		Version:         "dev",
	}
}

// App is a running tailscope server.
type App struct {
	cfg Config
	log *slog.Logger

	store   store.Store
	backend Backend
	// reads is what the pages read: the store, or a readSplit over it
	// and the replica (replica non-nil).
	reads    web.Store
	replica  *replicaStatus
	cache    cache.Cache
	receiver *ingest.Receiver
	web      *http.Server
	// ingestHTTP serves OTLP/HTTP traces and Pyroscope profile uploads.
	ingestHTTP *http.Server
	selfStop   func(context.Context) error
	profStop   func()

	httpLis, otlpHTTPLis, otlpGRPCLis net.Listener
	scheme                            string // of URL: http or https

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	errs      chan error
	closeOnce sync.Once
	closeErr  error
}

// New returns an App that Start will run.
func New(cfg Config) *App {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 15 * time.Second
	}
	return &App{cfg: cfg, log: cfg.Log, errs: make(chan error, 4)}
}

// Start opens the store, binds every listener and starts serving in the
// background. When it returns nil, the addresses are bound and the server
// accepts requests. Call Close to stop.
func (a *App) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	authn, err := newAuthenticator(a.cfg)
	if err != nil {
		return err
	}
	if err := checkExposure(a.cfg, authn); err != nil {
		return err
	}
	var cert *tls.Certificate
	a.scheme = "http"
	if a.cfg.Exposure.TLSCert != "" || a.cfg.Exposure.TLSKey != "" {
		c, err := tls.LoadX509KeyPair(a.cfg.Exposure.TLSCert, a.cfg.Exposure.TLSKey)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		cert, a.scheme = &c, "https"
	}
	a.cfg.Ingest.Auth = authn
	a.store, a.backend, err = OpenStoreWait(ctx, a.cfg.DatabaseURL, a.cfg.DatabaseWait, a.cfg.StatsInterval, a.log)
	if err != nil {
		return err
	}
	a.log.Info("store open", "backend", a.backend)
	a.reads = a.store
	if a.cfg.DatabaseReadURL != "" {
		if a.backend != BackendPostgres {
			return fmt.Errorf("database read url: a read replica needs a PostgreSQL primary, not %s", a.backend)
		}
		rdb, err := openReplica(ctx, a.cfg.DatabaseReadURL, a.cfg.DatabaseWait, a.log)
		if err != nil {
			return err
		}
		a.reads = readSplit{Store: a.store, replica: rdb}
		a.replica = &replicaStatus{db: rdb, now: time.Now}
		a.log.Info("span reads from a replica")
	}
	if a.backend == BackendSQLite && a.cfg.Ingest.Writers > 1 {
		// SQLite has one writer; more goroutines only contend for it.
		a.cfg.Ingest.Writers = 1
	}

	if a.cfg.Ingest.WALDir, err = walDir(a.cfg.WALDir, a.cfg.DatabaseURL); err != nil {
		return err
	}

	// One accepted range for every span: what retention would delete is
	// refused at the door (and, in PostgreSQL, costs no partition).
	a.cfg.Ingest.MaxSpanAge = a.cfg.Retention

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	a.receiver, err = ingest.New(a.cfg.Ingest, a.store, a.store, reg, a.log)
	if err != nil {
		return fmt.Errorf("receiver: %w", err)
	}
	if a.cfg.Ingest.WALDir != "" {
		// What the last process acknowledged but did not load goes into
		// the store before anything else is served.
		a.log.Info("ingest write-ahead log", "dir", a.cfg.Ingest.WALDir)
		if err := a.receiver.Replay(ctx); err != nil {
			return fmt.Errorf("receiver: %w", err)
		}
	}
	profiles, err := profile.NewHandler(a.cfg.Profiles, a.store, reg, a.log)
	if err != nil {
		return fmt.Errorf("profile receiver: %w", err)
	}
	// OTLP/HTTP traces and Pyroscope profile uploads share one listener,
	// so an application points both of its agents at the same address.
	ingestMux := http.NewServeMux()
	ingestMux.Handle(ingest.TracesPath, a.receiver.Handler())
	ingestMux.Handle(profile.IngestPath, requireIngestToken(authn, profiles))
	ingestMux.Handle("/", a.receiver.Handler()) // the receiver's own 404s for other paths
	a.ingestHTTP = &http.Server{
		Handler:           ingestMux,
		ReadHeaderTimeout: 10 * time.Second,
		// The receiver paces trace bodies itself (ingest/body.go); this
		// bounds profile uploads and the rest.
		ReadTimeout: a.cfg.Ingest.BodyReadTimeout + 10*time.Second,
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}

	if a.cfg.RedisURL != "" {
		rc, err := cache.OpenRedis(ctx, a.cfg.RedisURL, "tailscope:")
		if err != nil {
			return err
		}
		a.cache = rc
		a.log.Info("analysis cache", "backend", "redis")
	} else {
		mc, err := cache.NewMemory(512)
		if err != nil {
			return fmt.Errorf("cache: %w", err)
		}
		a.cache = mc
	}

	assets, err := static.Load()
	if err != nil {
		return err
	}

	var lc net.ListenConfig
	if a.httpLis, err = lc.Listen(ctx, "tcp", a.cfg.HTTPAddr); err != nil {
		return fmt.Errorf("listen http %s: %w", a.cfg.HTTPAddr, err)
	}
	if a.otlpHTTPLis, err = lc.Listen(ctx, "tcp", a.cfg.Ingest.HTTPAddr); err != nil {
		return fmt.Errorf("listen otlp http %s: %w", a.cfg.Ingest.HTTPAddr, err)
	}
	if a.otlpGRPCLis, err = lc.Listen(ctx, "tcp", a.cfg.Ingest.GRPCAddr); err != nil {
		return fmt.Errorf("listen otlp grpc %s: %w", a.cfg.Ingest.GRPCAddr, err)
	}
	hosts, err := allowedHosts(a.cfg, a.httpLis.Addr())
	if err != nil {
		return err
	}
	// HTTP/1.1 on the HTTP listeners (net/http serves TLS connections it
	// is handed), h2 for gRPC, which requires it.
	a.httpLis = tlsListener(a.httpLis, cert, "http/1.1")
	a.otlpHTTPLis = tlsListener(a.otlpHTTPLis, cert, "http/1.1")
	a.otlpGRPCLis = tlsListener(a.otlpGRPCLis, cert, "h2")

	// Profiles go through the route table, so the access rules apply to
	// them as to /metrics; withPprof keeps its loopback rule inside.
	var pprofHandler http.Handler
	if a.cfg.Pprof != PprofOff {
		if pprofHandler, err = withPprof(http.NotFoundHandler(), a.cfg.Pprof); err != nil {
			return err
		}
	}
	var handler http.Handler = web.New(web.Config{
		Store:     a.reads,
		Replica:   a.replicaState(),
		Cache:     cache.NewAside(a.cache, a.cfg.CacheTTL, 0.2, a.log),
		Metrics:   promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
		Ready:     a.Ready,
		Log:       a.log,
		Version:   a.cfg.Version,
		Assets:    assets,
		BurnRules: a.cfg.Alerts.Rules,
		PublicURL: a.cfg.PublicURL,
		// Past this a page is answered with "too long: narrow the range"
		// before the write timeout cuts it off with an empty reply.
		RequestTimeout: uiWriteTimeout - 10*time.Second,
		Analysis:       admission.New(a.cfg.Analysis),
		Auth:           authn,
		AllowedHosts:   hosts,
		Pprof:          pprofHandler,
	}).Handler()
	if a.cfg.SelfTraces != "" {
		endpoint := a.cfg.SelfTraces
		if endpoint == "self" {
			endpoint = a.scheme + "://" + a.otlpHTTPLis.Addr().String()
		}
		h, stop, err := selfTracing(ctx, endpoint, a.cfg.Version, handler, a.cfg.SelfProfile != "")
		if err != nil {
			return err
		}
		handler, a.selfStop = h, stop
		a.log.Info("self tracing", "endpoint", endpoint)
	}
	if a.cfg.SelfProfile != "" {
		addr := a.cfg.SelfProfile
		if addr == "self" {
			addr = a.scheme + "://" + a.otlpHTTPLis.Addr().String()
		}
		stop, err := profile.StartSelfProfiling(context.WithoutCancel(ctx), addr, "tailscope",
			map[string]string{"version": a.cfg.Version}, profile.WithSelfLogger(a.log))
		if err != nil {
			return fmt.Errorf("self profiling: %w", err)
		}
		a.profStop = stop
		a.log.Info("self profiling", "endpoint", addr)
	}
	a.web = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      uiWriteTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	a.wg.Add(3)
	go func() {
		defer a.wg.Done()
		// The receiver serves gRPC itself; HTTP goes through ingestMux.
		if err := a.receiver.Serve(runCtx, nil, a.otlpGRPCLis); err != nil {
			a.report(err)
		}
	}()
	go func() {
		defer a.wg.Done()
		if err := a.ingestHTTP.Serve(a.otlpHTTPLis); !errors.Is(err, http.ErrServerClosed) {
			a.report(fmt.Errorf("serve otlp http: %w", err))
		}
	}()
	go func() {
		defer a.wg.Done()
		if err := a.web.Serve(a.httpLis); !errors.Is(err, http.ErrServerClosed) {
			a.report(fmt.Errorf("serve http: %w", err))
		}
	}()
	// Burn-rate alerts run beside ingest, reading samples on their own
	// schedule; notifications are sent from their own goroutines.
	alerts := a.cfg.Alerts
	if alerts.BaseURL == "" {
		alerts.BaseURL = a.cfg.PublicURL
	}
	alerts.Log = a.log.With("component", "alerts")
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		alert.New(a.store, alerts).Run(runCtx)
	}()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.rollupLoop(runCtx)
	}()
	if a.cfg.Retention > 0 {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.retentionLoop(runCtx)
		}()
	}
	a.log.Info("tailscope listening", "ui", a.URL(), "otlp_http", a.otlpHTTPLis.Addr().String(), "otlp_grpc", a.otlpGRPCLis.Addr().String())
	return nil
}

func (a *App) report(err error) {
	select {
	case a.errs <- err:
	default:
	}
}

// Err delivers the first error of a background server; the caller usually
// stops when one arrives.
func (a *App) Err() <-chan error { return a.errs }

// retentionLoop deletes spans past the retention every hour.
func (a *App) retentionLoop(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		cutoff := time.Now().Add(-a.cfg.Retention)
		if err := a.store.DeleteBefore(ctx, cutoff); err != nil && ctx.Err() == nil {
			a.log.Warn("retention: spans", "cutoff", cutoff, "err", err)
		}
		if err := a.store.DeleteProfilesBefore(ctx, cutoff); err != nil && ctx.Err() == nil {
			a.log.Warn("retention: profiles", "cutoff", cutoff, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// writeHealthChecker is a store that can tell when its writes fail while
// its reads work (SQLite with a full disk).
type writeHealthChecker interface {
	WriteHealth(ctx context.Context) error
}

// MaxLoaderLag is how far behind the write-ahead log's loader may fall
// before /readyz fails: a load balancer then sends new exports elsewhere
// while this server catches up (or its store comes back).
const MaxLoaderLag = 30 * time.Second

// Ready reports whether the server can do its work (GET /readyz): the
// store answers, the write-ahead log's loader is less than MaxLoaderLag
// behind and, when the store can tell, its writes commit.
func (a *App) Ready(ctx context.Context) error {
	if err := a.reads.Ping(ctx); err != nil {
		return err
	}
	if err := a.receiver.WriteHealth(); err != nil {
		return err
	}
	if bytes, age, ok := a.receiver.LoaderLag(); ok && age > MaxLoaderLag {
		return fmt.Errorf("ingest: write-ahead log loader is %s behind (%d bytes not yet in the store)", age.Round(time.Second), bytes)
	}
	if wh, ok := a.store.(writeHealthChecker); ok {
		return wh.WriteHealth(ctx)
	}
	return nil
}

// WaitLoaded waits until every span acknowledged so far is in the store:
// with the ingest write-ahead log, acknowledged means durable in the log,
// and reads see spans once its loader applied them (normally within a
// commit). Tests and tools that read right after sending call it.
func (a *App) WaitLoaded(ctx context.Context) error {
	return a.receiver.Replay(ctx)
}

// URL is the UI's base URL.
func (a *App) URL() string { return a.scheme + "://" + a.httpLis.Addr().String() }

// OTLPHTTPAddr is the bound OTLP/HTTP address (host:port).
func (a *App) OTLPHTTPAddr() string { return a.otlpHTTPLis.Addr().String() }

// OTLPGRPCAddr is the bound OTLP/gRPC address (host:port).
func (a *App) OTLPGRPCAddr() string { return a.otlpGRPCLis.Addr().String() }

// Store is the open store (for the demo and tests).
func (a *App) Store() store.Store { return a.store }

// Backend names the store in use.
func (a *App) Backend() Backend { return a.backend }

// Close stops accepting, lets in-flight exports commit, stops the web
// server and closes the store. It is safe to call more than once.
func (a *App) Close() error {
	a.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var errs []error
		if a.profStop != nil {
			// Upload the last profile while the receiver still listens.
			a.profStop()
		}
		if a.web != nil {
			if err := a.web.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("stop http: %w", err))
			}
		}
		if a.ingestHTTP != nil {
			// In-flight exports wait for their commit before answering.
			if err := a.ingestHTTP.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("stop otlp http: %w", err))
			}
		}
		if a.cancel != nil {
			a.cancel() // stops the receiver's servers gracefully and the retention loop
		}
		a.wg.Wait()
		if a.receiver != nil {
			if err := a.receiver.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("stop receiver: %w", err))
			}
		}
		for _, l := range []net.Listener{a.httpLis, a.otlpHTTPLis, a.otlpGRPCLis} {
			if l != nil {
				l.Close()
			}
		}
		if a.selfStop != nil {
			if err := a.selfStop(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if a.cache != nil {
			a.cache.Close()
		}
		if a.replica != nil {
			if err := a.replica.db.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close read replica: %w", err))
			}
		}
		if a.store != nil {
			if err := a.store.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close store: %w", err))
			}
		}
		a.closeErr = errors.Join(errs...)
	})
	return a.closeErr
}
