// Package demodata fills a running tailscope with real feedsvc traffic for
// tests: it starts feedsvc (simulated mode unless URLs are given) exporting
// to the server's OTLP endpoint, plays a scenario with an open-loop load,
// and flushes every exporter before returning, so the spans are committed.
package demodata

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tailscope/tailscope/feedsvc"
	"github.com/tailscope/tailscope/feedsvc/load"
	"github.com/tailscope/tailscope/feedsvc/scenario"
	"github.com/tailscope/tailscope/profile"
)

// Config says what to play.
type Config struct {
	// OTLPEndpoint is the server's OTLP/HTTP base URL.
	OTLPEndpoint string
	// Scenario is played from its start; its Steps' After times are real
	// time, so tests use short ones.
	Scenario scenario.Scenario
	// Rate and Duration of the load (override the scenario's).
	Rate     float64
	Duration time.Duration
	Seed     uint64
	// PostgresURL and RedisURL run feedsvc in real mode.
	PostgresURL, RedisURL string
	// Schema isolates feedsvc's tables in real mode.
	Schema string
	// Profile profiles the process continuously and uploads to the
	// server's profile receiver (on the OTLP/HTTP listener), with
	// feedsvc's spans labelling the CPU samples, as `tailscope demo` does.
	// One process may profile at a time: use it in a child process
	// (PlayProcess) when the test process profiles too.
	Profile bool
}

// Result tells what was played.
type Result struct {
	From, To time.Time
	Load     *load.Result
	Tenants  []feedsvc.Tenant
}

// Fill plays cfg and returns when every span has been exported.
func Fill(ctx context.Context, cfg Config) (Result, error) {
	sc := cfg.Scenario
	fc := sc.Configure(feedsvc.Config{
		OTLPEndpoint: cfg.OTLPEndpoint,
		PostgresURL:  cfg.PostgresURL,
		RedisURL:     cfg.RedisURL,
		Schema:       cfg.Schema,
		Seed:         cfg.Seed,
		ExportDelay:  200 * time.Millisecond,
	})
	res := Result{From: time.Now()}
	if cfg.Profile {
		stop, err := profile.StartSelfProfiling(ctx, cfg.OTLPEndpoint, "feedsvc", map[string]string{"environment": "test"},
			profile.WithUploadRate(5*time.Second))
		if err != nil {
			return res, fmt.Errorf("demodata: profiling: %w", err)
		}
		// Deferred before the cluster's close below, so it runs after it:
		// the last profile is uploaded once every span is flushed.
		defer stop()
		fc.WrapTracerProvider = profile.WrapTracerProvider
	}
	cluster, err := feedsvc.Start(ctx, fc)
	if err != nil {
		return res, fmt.Errorf("demodata: start feedsvc: %w", err)
	}
	res.Tenants = cluster.Tenants()
	runCtx, cancel := context.WithCancel(ctx)
	steps := make(chan error, 1)
	go func() { steps <- sc.Run(runCtx, cluster, nil) }()
	lc := sc.LoadConfig(cluster.FeedURL(), cluster.Tenants())
	if cfg.Rate > 0 {
		lc.Rate = cfg.Rate
	}
	if cfg.Duration > 0 {
		lc.Duration = cfg.Duration
	}
	lc.Seed = cfg.Seed
	res.Load, err = load.Run(runCtx, lc)
	cancel()
	if serr := <-steps; serr != nil && !errors.Is(serr, context.Canceled) && err == nil {
		err = serr
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	if cerr := cluster.Close(cctx); cerr != nil && err == nil {
		err = fmt.Errorf("demodata: flush feedsvc: %w", cerr)
	}
	res.To = time.Now()
	return res, err
}
