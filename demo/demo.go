// Package demo runs `tailscope demo` (what `make run` starts): a tailscope
// server, the feedsvc demo application exporting its traces to it, an
// open-loop load against feedsvc, and a scenario's timed changes (by
// default a v1 → v2 deploy), so every page has real data within a minute.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/tailscope/tailscope/app"
	"github.com/tailscope/tailscope/feedsvc"
	"github.com/tailscope/tailscope/feedsvc/load"
	"github.com/tailscope/tailscope/feedsvc/scenario"
	"github.com/tailscope/tailscope/profile"
)

// DefaultScenario is what the demo plays when none is named: v1 with a
// slow profile-svc for one tenant, then a deploy of v2 — so the outliers
// page has a cause to find and the deploys page a comparison to show.
const DefaultScenario = "demo"

// Config configures the demo.
type Config struct {
	App app.Config
	// Scenario names a feedsvc scenario, or DefaultScenario.
	Scenario string
	// Rate overrides the scenario's requests per second when > 0.
	Rate float64
	// DeployAfter is when the default scenario deploys v2.
	DeployAfter time.Duration
	// FeedPostgresURL and FeedRedisURL run feedsvc against real
	// dependencies; both empty means simulated mode.
	FeedPostgresURL, FeedRedisURL string
	Seed                          uint64
	// Out receives the human-readable progress (the URL to open).
	Out io.Writer
	Log *slog.Logger
}

// Plan returns the scenario the demo plays.
func Plan(name string, deployAfter time.Duration) (scenario.Scenario, error) {
	if name == "" || name == DefaultScenario {
		sc, err := scenario.Lookup("slow-profile-for-acme")
		if err != nil {
			return sc, err
		}
		if deployAfter <= 0 {
			deployAfter = 3 * time.Minute
		}
		sc.Name = DefaultScenario
		sc.Description = "feedsvc v1 with a slow profile-svc for tenant acme; v2 (parallel fan-out, cache, index) is deployed after " + deployAfter.String() + "."
		sc.Steps = append(sc.Steps, scenario.Step{After: deployAfter, Version: feedsvc.V2, Note: "deploy v2"})
		return sc, nil
	}
	return scenario.Lookup(name)
}

// Run starts everything and blocks until ctx ends (Ctrl-C), then stops
// the load, flushes feedsvc's exporters and closes tailscope.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	sc, err := Plan(cfg.Scenario, cfg.DeployAfter)
	if err != nil {
		return fmt.Errorf("demo: %w (known: %v)", err, append([]string{DefaultScenario}, scenario.Names()...))
	}
	if cfg.Rate > 0 {
		sc.Rate = cfg.Rate
	}

	a := app.New(cfg.App)
	if err := a.Start(ctx); err != nil {
		return err
	}
	defer a.Close()

	// The demo profiles its own process (feedsvc's five services, and
	// tailscope beside them) and uploads to its own profile receiver;
	// feedsvc's spans label the CPU samples taken while they are active.
	stopProfiling, err := profile.StartSelfProfiling(ctx, "http://"+a.OTLPHTTPAddr(), "feedsvc",
		map[string]string{"environment": "demo"}, profile.WithUploadRate(10*time.Second), profile.WithSelfLogger(cfg.Log))
	if err != nil {
		return fmt.Errorf("demo: profiling: %w", err)
	}
	defer stopProfiling()
	fcfg := sc.Configure(feedsvc.Config{
		OTLPEndpoint:       "http://" + a.OTLPHTTPAddr(),
		PostgresURL:        cfg.FeedPostgresURL,
		RedisURL:           cfg.FeedRedisURL,
		Seed:               cfg.Seed,
		Logger:             cfg.Log,
		WrapTracerProvider: profile.WrapTracerProvider,
	})
	cluster, err := feedsvc.Start(ctx, fcfg)
	if err != nil {
		return fmt.Errorf("demo: start feedsvc: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := cluster.Close(cctx); err != nil {
			cfg.Log.Warn("demo: stop feedsvc", "err", err)
		}
	}()

	fmt.Fprintf(cfg.Out, "\ntailscope is running: open %s\n\n", a.URL())
	fmt.Fprintf(cfg.Out, "  store        %s (%s)\n", cfg.App.DatabaseURL, a.Backend())
	fmt.Fprintf(cfg.Out, "  OTLP         http://%s/v1/traces · grpc %s\n", a.OTLPHTTPAddr(), a.OTLPGRPCAddr())
	fmt.Fprintf(cfg.Out, "  feedsvc      %s (%s mode, %s)\n", cluster.FeedURL(), cluster.Mode(), cluster.Version())
	fmt.Fprintf(cfg.Out, "  scenario     %s: %s\n", sc.Name, sc.Description)
	fmt.Fprintf(cfg.Out, "  load         %.0f requests/s, open loop\n\nCtrl-C stops everything.\n", sc.Rate)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 2)
	go func() { done <- sc.Run(runCtx, cluster, nil) }()
	go func() {
		lc := sc.LoadConfig(cluster.FeedURL(), cluster.Tenants())
		lc.Rate = sc.Rate
		lc.Duration = 365 * 24 * time.Hour // until Ctrl-C
		lc.Seed = cfg.Seed
		res, err := load.Run(runCtx, lc)
		if res != nil {
			fmt.Fprintf(cfg.Out, "\nload generator (client side):\n%s\n", res.Summary())
		}
		done <- err
	}()
	for pending := 2; pending > 0; {
		select {
		case err := <-a.Err():
			return fmt.Errorf("demo: %w", err)
		case err := <-done:
			pending--
			if err != nil && !errors.Is(err, context.Canceled) && runCtx.Err() == nil {
				return fmt.Errorf("demo: %w", err)
			}
		case <-ctx.Done():
			cancel()
			// Let the load generator print its summary.
			for ; pending > 0; pending-- {
				<-done
			}
			return nil
		}
	}
	<-ctx.Done()
	return nil
}
