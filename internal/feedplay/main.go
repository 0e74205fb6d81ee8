// Command feedplay plays one feedsvc scenario for tests, in
// a process of its own: it reads a demodata.Config as JSON on stdin, runs
// internal/demodata.Fill (feedsvc exporting to the tailscope under test,
// the scenario's steps, an open-loop load, a flush of every exporter) and
// writes a demodata.Played as JSON on stdout (demodata.PlayProcess runs it).
//
// The tests build it without the race detector even when they themselves
// run under -race: feedsvc's ranker and feature derivation are CPU work
// by design, and instrumented they cost five to ten times as much, so the
// latency the analysis is checked against would be the detector's, not
// the injected causes'. Logs go to stderr.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/tailscope/tailscope/internal/demodata"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Stdin, os.Stdout, os.Stderr))
}

// run is main without the process: the exit code out, output to the
// writers.
func run(ctx context.Context, in io.Reader, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	var cfg demodata.Config
	dec := json.NewDecoder(in)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		fmt.Fprintf(stderr, "feedplay: read config from stdin: %v\n", err)
		return 2
	}
	log.Info("feedplay: playing", "scenario", cfg.Scenario.Name, "rate", cfg.Rate, "duration", cfg.Duration)
	res, err := demodata.Fill(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "feedplay: %v\n", err)
		return 1
	}
	if err := json.NewEncoder(stdout).Encode(demodata.PlayedOf(res)); err != nil {
		fmt.Fprintf(stderr, "feedplay: write result: %v\n", err)
		return 1
	}
	return 0
}
