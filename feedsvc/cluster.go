package feedsvc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tailscope/tailscope/feedsvc/load"
	"github.com/tailscope/tailscope/feedsvc/ranking"
)

// Cluster is the six running services.
type Cluster struct {
	cfg     Config
	log     *slog.Logger
	tenants *tenantSet
	tel     *telemetry
	tps     map[string]*serviceTP
	cur     atomic.Pointer[generation]
	rng     *lockedRand
	model   *ranking.Model

	pg       *pgDB  // real mode
	sim      *simDB // simulated mode
	catalogs map[string]catalog
	cache    featureCache

	transport *http.Transport
	clients   map[string]*client // feed-api's, by callee
	servers   map[string]*http.Server
	urls      map[string]string
	serveErr  chan error

	deployMu sync.Mutex // one deploy at a time

	faults     atomic.Pointer[Faults]
	faultMu    sync.Mutex
	stopFaults func()

	sink atomic.Pointer[[]byte] // keeps the GC-pressure garbage reachable briefly

	// tracking counts feed-api's fire-and-forget analytics calls in
	// flight; Close waits for them before stopping analytics-svc.
	tracking sync.WaitGroup

	base      context.Context // background work (fault workers); cancelled by Close
	cancel    context.CancelFunc
	closeOnce sync.Once
	closeErr  error
}

// Start starts the six services on 127.0.0.1:0 ports. In real mode it
// first seeds the catalogue if needed (about 15 s for a million items, once
// per database and schema) and migrates the index for cfg.Version. ctx
// bounds the start only; Close stops the cluster.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	instance := make([]byte, 6)
	_, _ = rand.Read(instance) // crypto/rand does not fail on supported platforms
	c := &Cluster{
		cfg:        cfg,
		log:        cfg.Logger,
		tenants:    newTenantSet(cfg.Tenants, cfg.CatalogItems),
		tel:        &telemetry{cfg: cfg, instance: hex.EncodeToString(instance)},
		tps:        map[string]*serviceTP{},
		rng:        newLockedRand(cfg.Seed, 0xfeed),
		model:      ranking.NewModel(cfg.Seed),
		catalogs:   map[string]catalog{},
		clients:    map[string]*client{},
		servers:    map[string]*http.Server{},
		urls:       map[string]string{},
		serveErr:   make(chan error, len(services)),
		stopFaults: func() {},
		transport: &http.Transport{
			Proxy:               nil, // loopback only
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		},
	}
	c.base, c.cancel = context.WithCancel(context.Background())
	c.faults.Store(&Faults{})
	for _, s := range services {
		c.tps[s] = &serviceTP{service: s, current: c.cur.Load}
	}
	g, err := c.tel.newGeneration(ctx, cfg.Version)
	if err != nil {
		return nil, err
	}
	c.cur.Store(g)
	if err := c.start(ctx); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return nil, errors.Join(err, c.Close(cctx))
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	if err := c.openData(ctx); err != nil {
		return err
	}
	listeners := map[string]net.Listener{}
	for _, s := range services {
		addr := "127.0.0.1:0"
		if s == FeedAPI {
			addr = c.cfg.FeedAddr
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return fmt.Errorf("feedsvc: listen for %s: %w", s, err)
		}
		listeners[s] = l
		c.urls[s] = "http://" + l.Addr().String()
	}
	for _, callee := range services[1:] {
		c.clients[callee] = newClient(callee, c.urls[callee], c.tps[FeedAPI], c.transport)
	}
	muxes := c.routes()
	for _, s := range services {
		srv := &http.Server{
			Handler:           c.instrument(s, muxes[s]),
			ReadHeaderTimeout: 5 * time.Second,
			ErrorLog:          slog.NewLogLogger(c.log.Handler(), slog.LevelWarn),
		}
		c.servers[s] = srv
		go func() {
			if err := srv.Serve(listeners[s]); err != nil && !errors.Is(err, http.ErrServerClosed) {
				c.log.Error("feedsvc: server stopped", slog.String("service", s), slog.Any("err", err))
				c.serveErr <- fmt.Errorf("feedsvc: %s: %w", s, err)
			}
		}()
	}
	if err := c.SetFaults(ctx, c.cfg.Faults); err != nil {
		return err
	}
	c.log.Info("feedsvc: started",
		slog.String("mode", string(c.cfg.mode())), slog.String("version", c.cfg.Version),
		slog.String("feed", c.FeedURL()), slog.Any("services", c.urls))
	return nil
}

func (c *Cluster) openData(ctx context.Context) error {
	if c.cfg.mode() == ModeSimulated {
		c.sim = newSimDB(c.cfg, c.tenants)
		c.sim.indexed.Store(behaviourOf(c.cfg.Version, 1).index)
		for _, s := range []string{CandidateSvc, FeatureSvc} {
			c.catalogs[s] = newSimCatalog(c.sim, c.tps[s], c.cfg.PoolSize)
		}
		c.cache = newSimCache(c.tps[FeatureSvc], c.cfg.Seed)
		return nil
	}
	pg, err := openPostgres(ctx, c.cfg, c.tenants)
	if err != nil {
		return err
	}
	c.pg = pg
	if err := pg.ensureSeeded(ctx); err != nil {
		return err
	}
	if err := pg.setIndex(ctx, behaviourOf(c.cfg.Version, 1).index); err != nil {
		return err
	}
	for _, s := range []string{CandidateSvc, FeatureSvc} {
		cat, err := pg.newCatalog(ctx, c.tps[s])
		if err != nil {
			return err
		}
		c.catalogs[s] = cat
	}
	rc, err := openRedis(ctx, c.cfg.RedisURL, c.tps[FeatureSvc])
	if err != nil {
		return err
	}
	c.cache = rc
	return nil
}

func (c *Cluster) routes() map[string]*http.ServeMux {
	m := map[string]*http.ServeMux{}
	for _, s := range services {
		m[s] = http.NewServeMux()
		m[s].HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "service": s})
		})
	}
	m[FeedAPI].HandleFunc("GET /v1/feed", c.handle(c.handleFeed))
	m[FeedAPI].HandleFunc("GET /admin/faults", c.handleGetFaults)
	m[FeedAPI].HandleFunc("POST /admin/faults", c.handle(c.handlePostFaults))
	m[FeedAPI].HandleFunc("GET /admin/version", c.handleGetVersion)
	m[FeedAPI].HandleFunc("POST /admin/version", c.handle(c.handlePostVersion))
	m[CandidateSvc].HandleFunc("GET /v1/candidates", c.handle(c.handleCandidates))
	m[FeatureSvc].HandleFunc("POST /v1/features", c.handle(c.handleFeatures))
	m[ProfileSvc].HandleFunc("GET /v1/profile", c.handle(c.handleProfile))
	m[Ranker].HandleFunc("POST /v1/rank", c.handle(c.handleRank))
	m[Analytics].HandleFunc("POST /v1/track", c.handle(c.handleTrack))
	return m
}

// Mode reports whether the cluster runs on real PostgreSQL and Redis.
func (c *Cluster) Mode() Mode { return c.cfg.mode() }

// FeedURL is the feed endpoint, http://127.0.0.1:PORT/v1/feed.
func (c *Cluster) FeedURL() string { return c.urls[FeedAPI] + "/v1/feed" }

// AdminURL is feed-api's base URL; the admin endpoints are under /admin/.
func (c *Cluster) AdminURL() string { return c.urls[FeedAPI] }

// ServiceURLs returns each service's base URL by service name.
func (c *Cluster) ServiceURLs() map[string]string {
	out := make(map[string]string, len(c.urls))
	for k, v := range c.urls {
		out[k] = v
	}
	return out
}

// Tenants returns the cluster's tenants.
func (c *Cluster) Tenants() []Tenant { return slices.Clone(c.tenants.list) }

// Version returns the deployed version.
func (c *Cluster) Version() string { return c.cur.Load().version }

// SetVersion deploys version v: the schema migration first (real mode: the
// composite index is created for v2/v3, dropped for v1; this takes a few
// seconds on a million items), then every service switches to tracer
// providers whose resource says service.version = v. Requests already
// running finish on the old providers, which are then shut down, flushing
// their spans; ctx bounds that wait.
func (c *Cluster) SetVersion(ctx context.Context, v string) error {
	if !slices.Contains(Versions(), v) {
		return fmt.Errorf("feedsvc: deploy: unknown version %q (want one of %v)", v, Versions())
	}
	c.deployMu.Lock()
	defer c.deployMu.Unlock()
	if c.base.Err() != nil {
		return errors.New("feedsvc: deploy: cluster closed")
	}
	old := c.cur.Load()
	if old.version == v {
		return nil
	}
	index := behaviourOf(v, 1).index
	if c.pg != nil {
		if err := c.pg.setIndex(ctx, index); err != nil {
			return fmt.Errorf("feedsvc: deploy %s: %w", v, err)
		}
	}
	g, err := c.tel.newGeneration(ctx, v)
	if err != nil {
		return fmt.Errorf("feedsvc: deploy %s: %w", v, err)
	}
	if c.sim != nil {
		c.sim.indexed.Store(index)
	}
	c.cur.Store(g)
	old.retire()
	c.log.Info("feedsvc: deployed", slog.String("from", old.version), slog.String("to", v))
	// The deploy is done: the new version serves. A slow flush of the old
	// version's last spans (the collector answering 429 under load, say)
	// loses those spans but does not undo or fail the deploy.
	if err := c.retireGeneration(ctx, old); err != nil {
		c.log.Warn("feedsvc: retiring the old version", slog.String("version", old.version), slog.Any("err", err))
	}
	return nil
}

// retireGeneration waits for old's requests, then flushes and shuts down
// its providers. If ctx ends first the providers are shut down anyway and
// spans of the requests still running are lost.
func (c *Cluster) retireGeneration(ctx context.Context, old *generation) error {
	var waitErr error
	select {
	case <-old.drained:
	case <-ctx.Done():
		waitErr = fmt.Errorf("feedsvc: waiting for %s requests: %w", old.version, ctx.Err())
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := old.shutdown(sctx); err != nil {
		return errors.Join(waitErr, fmt.Errorf("feedsvc: flush %s spans: %w", old.version, err))
	}
	return waitErr
}

// Faults returns the active faults (with defaults filled in).
func (c *Cluster) Faults() Faults { return c.faults.Load().withDefaults(c.cfg.PoolSize) }

// SetFaults replaces the active faults: all switches at once, so an empty
// Faults turns every fault off. Background parts (cache flushes, held
// connections, the hot tenant's extra traffic) are stopped and restarted.
func (c *Cluster) SetFaults(ctx context.Context, f Faults) error {
	if err := f.validate(c.cfg.Tenants); err != nil {
		return fmt.Errorf("feedsvc: faults: %w", err)
	}
	f = f.withDefaults(c.cfg.PoolSize)
	if p := f.PoolExhaustion; p != nil && p.Held >= c.cfg.PoolSize {
		// Holding every connection would stall the service for good, which
		// is an outage, not a latency cause.
		p.Held = c.cfg.PoolSize - 1
	}
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	if c.base.Err() != nil {
		return errors.New("feedsvc: faults: cluster closed")
	}
	c.stopFaults()
	c.faults.Store(&f)
	c.stopFaults = c.startFaultWorkers(f)
	c.log.Info("feedsvc: faults set", slog.Any("active", f.Active()))
	return nil
}

// startFaultWorkers starts the background parts of f and returns a
// function that stops them and waits.
func (c *Cluster) startFaultWorkers(f Faults) func() {
	ctx, cancel := context.WithCancel(c.base)
	var wg sync.WaitGroup
	var releases []func()
	if s := f.Stampede; s != nil {
		prefix := c.cfg.CachePrefix + ":"
		if s.Tenant != "" {
			prefix += s.Tenant + ":"
		}
		wg.Go(func() {
			t := time.NewTicker(time.Duration(s.Every))
			defer t.Stop()
			for {
				if n, err := c.cache.flush(ctx, prefix); err != nil {
					if ctx.Err() == nil {
						c.log.Warn("feedsvc: stampede flush", slog.Any("err", err))
					}
				} else {
					c.log.Debug("feedsvc: cache flushed", slog.String("prefix", prefix), slog.Int("keys", n))
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	if p := f.PoolExhaustion; p != nil && p.Held > 0 {
		releases = append(releases, c.catalogs[p.Service].exhaust(p.Held))
	}
	if h := f.HotTenant; h != nil && h.Rate > 0 {
		wg.Go(func() {
			_, err := load.Run(ctx, load.Config{
				Target:   c.FeedURL(),
				Rate:     h.Rate,
				Duration: 365 * 24 * time.Hour, // until the fault is switched off
				Tenants:  []load.Weighted{{Name: h.Tenant, Weight: 1}},
				Seed:     c.cfg.Seed ^ 0x407,
				Client:   &http.Client{Transport: c.transport},
			})
			if err != nil && !errors.Is(err, context.Canceled) {
				c.log.Warn("feedsvc: hot tenant traffic", slog.Any("err", err))
			}
		})
	}
	return func() {
		cancel()
		wg.Wait()
		for _, r := range releases {
			r()
		}
	}
}

// Close stops the services, waits for their requests, flushes every
// exporter and closes the database and cache clients. Safe to call twice.
func (c *Cluster) Close(ctx context.Context) error {
	c.closeOnce.Do(func() { c.closeErr = c.close(ctx) })
	return c.closeErr
}

func (c *Cluster) close(ctx context.Context) error {
	var errs []error
	c.faultMu.Lock()
	c.cancel()
	c.stopFaults()
	c.stopFaults = func() {}
	c.faultMu.Unlock()
	for _, s := range services {
		if s == Analytics {
			// feed-api has stopped: no new tracking call starts; let the
			// ones in flight reach analytics-svc before it stops.
			waitGroup(ctx, &c.tracking)
		}
		if srv := c.servers[s]; srv != nil {
			if err := srv.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("feedsvc: stop %s: %w", s, err))
			}
		}
	}
	c.deployMu.Lock()
	g := c.cur.Load()
	if g != nil {
		g.retire()
		if err := c.retireGeneration(ctx, g); err != nil {
			errs = append(errs, err)
		}
	}
	c.deployMu.Unlock()
	for _, cat := range c.catalogs {
		cat.close()
	}
	if c.cache != nil {
		if err := c.cache.close(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.pg != nil {
		c.pg.close()
	}
	c.transport.CloseIdleConnections()
	return errors.Join(errs...)
}

// waitGroup waits for wg or until ctx is done.
func waitGroup(ctx context.Context, wg *sync.WaitGroup) {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
