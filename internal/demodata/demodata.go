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
	"github.com/tailscope/tailscope/feedsvc/play"
	"github.com/tailscope/tailscope/feedsvc/scenario"
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
	pc := play.Config{
		Feed: feedsvc.Config{
			OTLPEndpoint: cfg.OTLPEndpoint,
			PostgresURL:  cfg.PostgresURL,
			RedisURL:     cfg.RedisURL,
			Schema:       cfg.Schema,
			Seed:         cfg.Seed,
			ExportDelay:  200 * time.Millisecond,
		},
		Scenario: &sc,
		Rate:     cfg.Rate,
		Duration: cfg.Duration,
	}
	if cfg.Profile {
		pc.Profile = &play.Profile{URL: cfg.OTLPEndpoint, Environment: "test", Every: 5 * time.Second}
	}
	res := Result{From: time.Now()}
	run, err := play.Start(ctx, pc)
	if err != nil {
		return res, fmt.Errorf("demodata: %w", err)
	}
	res.Tenants = run.Cluster.Tenants()
	select {
	case <-run.Done():
	case <-ctx.Done():
	}
	var serr error
	res.Load, serr = run.Stop()
	res.To = time.Now()
	if err := errors.Join(run.Err(), serr); err != nil {
		return res, fmt.Errorf("demodata: %w", err)
	}
	return res, ctx.Err()
}
