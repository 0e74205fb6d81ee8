// Package play runs feedsvc with a scenario and an open-loop load: the one
// runner behind `tailscope demo`, `feedsvc --scenario` and the tests'
// demodata.Fill. It starts (optionally) continuous profiling, the feedsvc
// cluster, the scenario's timed steps and the load, and on Stop tears them
// down in the order that loses no data: load and steps first, then the
// cluster's exporters are flushed, then the last profile is uploaded.
package play

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tailscope/tailscope/feedsvc"
	"github.com/tailscope/tailscope/feedsvc/load"
	"github.com/tailscope/tailscope/feedsvc/scenario"
	"github.com/tailscope/tailscope/profile"
)

// flushTimeout bounds Stop's flush of feedsvc's exporters.
const flushTimeout = 30 * time.Second

// UntilStopped is a load duration that outlasts any run: the load ends on Stop.
const UntilStopped = 365 * 24 * time.Hour

// Config says what to run.
type Config struct {
	// Feed configures feedsvc; the scenario, when set, configures it further.
	Feed feedsvc.Config
	// Scenario, when set, sets the starting version and faults and plays
	// its steps; its rate and duration are the load's defaults.
	Scenario *scenario.Scenario
	// Rate of the load in requests/s; 0 takes the scenario's, and without
	// a scenario means no load.
	Rate float64
	// Duration of the load; 0 takes the scenario's, and without one it is
	// UntilStopped. When the load ends the steps stop too.
	Duration time.Duration
	// Profile, when set, profiles this process and uploads to a Pyroscope
	// ingest URL, with feedsvc's spans labelling the CPU samples.
	Profile *Profile
}

// Profile configures continuous profiling of the process running feedsvc.
type Profile struct {
	URL         string        // Pyroscope-compatible base URL, e.g. tailscope's OTLP/HTTP listener
	Environment string        // deployment.environment label
	Every       time.Duration // upload period; 0 is pyroscope-go's default
}

// Run is a running feedsvc, scenario and load.
type Run struct {
	Cluster *feedsvc.Cluster
	// Load is the load's configuration (zero Rate: no load).
	Load load.Config

	cancel   context.CancelFunc
	finished chan struct{} // closed once the steps and the load have returned
	err      error         // the first failure of the steps or the load; set before finished closes
	result   *load.Result
	stopProf func()

	stopOnce sync.Once
	stopErr  error
}

// Start starts everything and returns once it runs. The steps and the load
// outlive ctx's cancellation (a deadline on ctx bounds only the start):
// Stop ends them.
func Start(ctx context.Context, cfg Config) (r *Run, err error) {
	fc := cfg.Feed
	if cfg.Scenario != nil {
		fc = cfg.Scenario.Configure(fc)
	}
	log := fc.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r = &Run{cancel: func() {}, finished: make(chan struct{})}
	if p := cfg.Profile; p != nil {
		opts := []profile.SelfOption{profile.WithSelfLogger(log)}
		if p.Every > 0 {
			opts = append(opts, profile.WithUploadRate(p.Every))
		}
		r.stopProf, err = profile.StartSelfProfiling(context.WithoutCancel(ctx), p.URL, "feedsvc", map[string]string{"environment": p.Environment}, opts...)
		if err != nil {
			return nil, fmt.Errorf("play: profiling: %w", err)
		}
		// CPU samples name the span they were spent in.
		fc.WrapTracerProvider = profile.WrapTracerProvider
	}
	r.Cluster, err = feedsvc.Start(ctx, fc)
	if err != nil {
		close(r.finished)
		r.Stop()
		return nil, fmt.Errorf("play: start feedsvc: %w", err)
	}
	r.Load = loadConfig(cfg, r.Cluster)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	go r.run(runCtx, cfg.Scenario)
	return r, nil
}

// loadConfig is the scenario's load with cfg's overrides; an unset
// duration runs until Stop.
func loadConfig(cfg Config, c *feedsvc.Cluster) load.Config {
	var lc load.Config
	if cfg.Scenario != nil {
		lc = cfg.Scenario.LoadConfig(c.FeedURL(), c.Tenants())
	} else {
		lc = scenario.Scenario{}.LoadConfig(c.FeedURL(), c.Tenants())
	}
	if cfg.Rate > 0 {
		lc.Rate = cfg.Rate
	}
	if cfg.Duration > 0 {
		lc.Duration = cfg.Duration
	}
	if lc.Duration <= 0 {
		lc.Duration = UntilStopped
	}
	lc.Seed = cfg.Feed.Seed
	return lc
}

// run plays the steps and the load; when the load ends, the steps stop.
func (r *Run) run(ctx context.Context, sc *scenario.Scenario) {
	defer close(r.finished)
	stepsCtx, stopSteps := context.WithCancel(ctx)
	defer stopSteps()
	steps := make(chan error, 1)
	if sc != nil {
		go func() { steps <- sc.Run(stepsCtx, r.Cluster, nil) }()
	} else {
		steps <- nil
	}
	var lerr error
	if r.Load.Rate > 0 {
		r.result, lerr = load.Run(ctx, r.Load)
		stopSteps()
	}
	serr := <-steps
	for _, err := range []error{lerr, serr} {
		if err != nil && !errors.Is(err, context.Canceled) && r.err == nil {
			r.err = err
		}
	}
}

// Done is closed once the steps and the load have both returned (a load
// without a duration returns only on Stop).
func (r *Run) Done() <-chan struct{} { return r.finished }

// Err is the first failure of the steps or the load (cancellation is not
// one); valid once Done is closed.
func (r *Run) Err() error { return r.err }

// Stop ends the load and the steps, flushes feedsvc's spans, and uploads
// the last profile. It returns the load's result (nil without a load) and
// the flush's error; Err has the run's. Calling it again returns the same.
func (r *Run) Stop() (*load.Result, error) {
	r.stopOnce.Do(func() {
		r.cancel()
		<-r.finished
		if r.Cluster != nil {
			ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
			defer cancel()
			if err := r.Cluster.Close(ctx); err != nil {
				r.stopErr = fmt.Errorf("play: flush feedsvc: %w", err)
			}
		}
		if r.stopProf != nil {
			r.stopProf()
		}
	})
	return r.result, r.stopErr
}
