// Package demo runs `tailscope demo` (what `make run` starts): a tailscope
// server, the feedsvc demo application exporting its traces (and CPU
// profiles labelled with its spans) to it, an open-loop load against
// feedsvc, and a scenario's timed changes (by default a v1 → v2 deploy), so
// every page has real data within a minute.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/pprof"
	"time"

	"github.com/tailscope/tailscope/app"
	"github.com/tailscope/tailscope/feedsvc"
	"github.com/tailscope/tailscope/feedsvc/load"
	"github.com/tailscope/tailscope/feedsvc/play"
	"github.com/tailscope/tailscope/feedsvc/scenario"
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
	// ProfileEvery is how often CPU profiles are uploaded (default 10 s).
	ProfileEvery time.Duration
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

// Demo is a running demo.
type Demo struct {
	App      *app.App
	Cluster  *feedsvc.Cluster
	Scenario scenario.Scenario

	cfg  Config
	play *play.Run
}

// Start starts tailscope, then feedsvc with the profiler, the scenario's
// steps and the load (package play), and returns once they run.
func Start(ctx context.Context, cfg Config) (d *Demo, err error) {
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.ProfileEvery <= 0 {
		cfg.ProfileEvery = 10 * time.Second
	}
	sc, err := Plan(cfg.Scenario, cfg.DeployAfter)
	if err != nil {
		return nil, fmt.Errorf("demo: %w (known: %v)", err, append([]string{DefaultScenario}, scenario.Names()...))
	}
	if cfg.Rate > 0 {
		sc.Rate = cfg.Rate
	}
	d = &Demo{Scenario: sc, cfg: cfg}
	d.App = app.New(cfg.App)
	if err := startAs(ctx, "tailscope", d.App.Start); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	// The demo profiles its own process (feedsvc's five services, and
	// tailscope beside them) and uploads to its own profile receiver as
	// feedsvc; feedsvc's spans label the CPU samples taken while they are
	// active, and tailscope's goroutines file theirs under tailscope.
	otlp := "http://" + d.App.OTLPHTTPAddr()
	d.play, err = play.Start(ctx, play.Config{
		Feed: feedsvc.Config{
			OTLPEndpoint: otlp,
			PostgresURL:  cfg.FeedPostgresURL,
			RedisURL:     cfg.FeedRedisURL,
			Seed:         cfg.Seed,
			Logger:       cfg.Log,
		},
		Scenario: &sc,
		Duration: play.UntilStopped,
		Profile:  &play.Profile{URL: otlp, Environment: "demo", Every: cfg.ProfileEvery},
	})
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	d.Cluster = d.play.Cluster
	return d, nil
}

// PrintBanner writes where everything is.
func (d *Demo) PrintBanner(w io.Writer) {
	fmt.Fprintf(w, "\ntailscope is running: open %s\n\n", d.App.URL())
	fmt.Fprintf(w, "  store        %s (%s)\n", d.cfg.App.DatabaseURL, d.App.Backend())
	fmt.Fprintf(w, "  OTLP         http://%s/v1/traces · grpc %s · profiles http://%s/ingest\n", d.App.OTLPHTTPAddr(), d.App.OTLPGRPCAddr(), d.App.OTLPHTTPAddr())
	fmt.Fprintf(w, "  feedsvc      %s (%s mode, %s)\n", d.Cluster.FeedURL(), d.Cluster.Mode(), d.Cluster.Version())
	fmt.Fprintf(w, "  scenario     %s: %s\n", d.Scenario.Name, d.Scenario.Description)
	fmt.Fprintf(w, "  load         %.0f requests/s, open loop\n\nCtrl-C stops everything.\n", d.Scenario.Rate)
}

// Wait blocks until ctx ends or a part of the demo fails.
func (d *Demo) Wait(ctx context.Context) error {
	played := d.play.Done()
	for {
		select {
		case err := <-d.App.Err():
			return fmt.Errorf("demo: %w", err)
		case <-played:
			if err := d.play.Err(); err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			played = nil // the steps are done and the load was stopped: serve on
		case <-ctx.Done():
			return nil
		}
	}
}

// Drain stops the load and the scenario, flushes feedsvc's spans and
// uploads the last profile, leaving tailscope serving what was sent: tests
// query it afterwards. It returns the load generator's result.
func (d *Demo) Drain() (*load.Result, error) {
	if d.play == nil {
		return nil, nil
	}
	return d.play.Stop()
}

// Close drains and stops tailscope.
func (d *Demo) Close() error {
	_, err := d.Drain()
	if d.App != nil {
		err = errors.Join(err, d.App.Close())
	}
	return err
}

// Run starts the demo, prints where to look, and blocks until ctx ends
// (Ctrl-C); then it stops the load, flushes feedsvc and closes tailscope.
func Run(ctx context.Context, cfg Config) error {
	d, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	d.PrintBanner(d.cfg.Out)
	return d.serve(ctx)
}

// serve runs a started demo until ctx ends (Ctrl-C) or a part fails, then
// stops the load, flushes feedsvc, prints the load's summary and closes
// tailscope.
func (d *Demo) serve(ctx context.Context) error {
	werr := d.Wait(ctx)
	if res, _ := d.Drain(); res != nil {
		fmt.Fprintf(d.cfg.Out, "\nload generator (client side):\n%s\n", res.Summary())
	}
	return errors.Join(werr, d.Close())
}

// startAs runs start with the pprof label service_name=name on the calling
// goroutine. Goroutines inherit their creator's labels, so every goroutine
// start creates (servers, their connections, ingest, retention) carries
// it, and the profile receiver files their CPU samples under that
// application: the demo's one process profile then shows feedsvc's frames
// as feedsvc and tailscope's as tailscope.
func startAs(ctx context.Context, name string, start func(context.Context) error) error {
	var err error
	pprof.Do(ctx, pprof.Labels("service_name", name), func(ctx context.Context) { err = start(ctx) })
	return err
}
