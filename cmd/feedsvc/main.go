// Command feedsvc runs tailscope's demo service (five OpenTelemetry services
// on loopback, see package feedsvc) and its open-loop load generator.
//
//	feedsvc [flags]                  run the services until interrupted
//	feedsvc load --target URL [...]  send load, print client-side percentiles
//	feedsvc scenarios [--json]       list the scenarios and their causes
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/tailscope/tailscope/feedsvc"
	"github.com/tailscope/tailscope/feedsvc/load"
	"github.com/tailscope/tailscope/feedsvc/play"
	"github.com/tailscope/tailscope/feedsvc/scenario"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: exit code out, output to the writers.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "load":
			return runLoad(ctx, args[1:], stdout, stderr)
		case "scenarios":
			return runScenarios(args[1:], stdout, stderr)
		}
	}
	return runServe(ctx, args, stdout, stderr)
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func newFlags(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	return fs
}

// parse handles -h (exit 0) and bad flags (exit 2); ok false means return code.
func parse(fs *flag.FlagSet, args []string) (code int, ok bool) {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0, false
	case err != nil:
		return 2, false
	case fs.NArg() > 0:
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return 2, false
	}
	return 0, true
}

const serveUsage = `Usage: feedsvc [flags]

Runs the five feed services (feed-api, candidate-svc, feature-svc, profile-svc,
ranker) on loopback, exporting OTLP traces to tailscope. With --postgres-url and
--redis-url the data path is real (a million-item catalogue is seeded once);
without them it is simulated. Admin: GET/POST /admin/faults, /admin/version on
feed-api. Subcommands: load, scenarios (feedsvc load -h).

Flags:
`

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("feedsvc", serveUsage, stderr)
	otlp := fs.String("otlp-endpoint", env("FEEDSVC_OTLP_ENDPOINT", "http://127.0.0.1:4318"), "tailscope's OTLP/HTTP base URL (env FEEDSVC_OTLP_ENDPOINT)")
	pg := fs.String("postgres-url", env("FEEDSVC_POSTGRES_URL", ""), "PostgreSQL URL; with --redis-url selects the real mode (env FEEDSVC_POSTGRES_URL)")
	rd := fs.String("redis-url", env("FEEDSVC_REDIS_URL", ""), "Redis URL (env FEEDSVC_REDIS_URL)")
	version := fs.String("version", feedsvc.V1, "version to start with: v1, v2 or v3")
	listen := fs.String("listen", "127.0.0.1:8081", "feed-api listen address (the other services take free loopback ports)")
	scen := fs.String("scenario", "", "play a scenario: its version, faults and timed steps (see feedsvc scenarios)")
	rate := fs.Float64("rate", 0, "also send open-loop load at this many requests/s (0: none; with --scenario, 0 means the scenario's rate)")
	seed := fs.Uint64("seed", 1, "seed of the catalogue, latency models and load")
	items := fs.Int("catalog-items", feedsvc.DefaultCatalogItems, "catalogue size")
	schema := fs.String("schema", "feedsvc", "PostgreSQL schema (and Redis key prefix) feedsvc owns")
	envName := fs.String("environment", "demo", "deployment.environment of every service")
	pyro := fs.String("pyroscope-url", env("FEEDSVC_PYROSCOPE_URL", ""), "profile continuously and upload to this Pyroscope-compatible URL, e.g. tailscope's http://127.0.0.1:4318 (env FEEDSVC_PYROSCOPE_URL)")
	verbose := fs.Bool("v", false, "debug logging")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	pc := play.Config{
		Feed: feedsvc.Config{
			OTLPEndpoint: *otlp, PostgresURL: *pg, RedisURL: *rd, Version: *version, FeedAddr: *listen,
			Seed: *seed, CatalogItems: *items, Schema: *schema, Environment: *envName, Logger: log,
		},
		Rate:     *rate,
		Duration: play.UntilStopped,
	}
	if *scen != "" {
		sc, err := scenario.Lookup(*scen)
		if err != nil {
			fmt.Fprintln(stderr, "feedsvc:", err)
			return 2
		}
		pc.Scenario = &sc
	}
	if *pyro != "" {
		pc.Profile = &play.Profile{URL: *pyro, Environment: *envName}
	}
	run, err := play.Start(ctx, pc)
	if err != nil {
		fmt.Fprintln(stderr, "feedsvc:", err)
		return 1
	}
	c := run.Cluster
	fmt.Fprintf(stdout, "feedsvc %s (%s mode): feed %s\n", c.Version(), c.Mode(), c.FeedURL())
	fmt.Fprintf(stdout, "  try: curl '%s?tenant=acme&user_id=1'\n", c.FeedURL())
	fmt.Fprintf(stdout, "  faults: curl -d '{\"slow_profile\":{\"tenant\":\"acme\"}}' %s/admin/faults\n", c.AdminURL())

	code := 0
	select {
	case <-ctx.Done():
	case <-run.Done():
		// Without load, or when the steps or load failed; otherwise the
		// cluster keeps serving until Ctrl-C.
		if err := run.Err(); err != nil {
			fmt.Fprintln(stderr, "feedsvc:", err)
			code = 1
		} else {
			<-ctx.Done()
		}
	}
	res, err := run.Stop()
	if res != nil {
		fmt.Fprint(stdout, res.Summary())
	}
	if err != nil {
		fmt.Fprintln(stderr, "feedsvc:", err)
		code = 1
	}
	return code
}

const loadUsage = `Usage: feedsvc load --target URL --rate N --duration D [flags]

Sends GET URL?tenant=T&user_id=U at a constant arrival rate (open loop: a slow
response never delays the next send) and prints client-side p50/p95/p99 from an
HdrHistogram, measured from each request's scheduled send time. When
--max-in-flight requests are outstanding, a request is dropped and counted
rather than delayed.

Flags:
`

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("feedsvc load", loadUsage, stderr)
	target := fs.String("target", "http://127.0.0.1:8081/v1/feed", "feed URL")
	rate := fs.Float64("rate", 20, "requests per second")
	duration := fs.Duration("duration", 30*time.Second, "how long to send")
	arrival := fs.String("arrival", string(load.Poisson), "arrival process: poisson or uniform")
	tenants := fs.String("tenants", "", `tenant mix: "acme=5,globex=1", or names in Zipf order "acme,initech,globex" (default: feedsvc's tenants and weights)`)
	users := fs.Int("users", 1000, "user ids are drawn from 1..users")
	limit := fs.Int("limit", 0, "limit parameter (0: the service's default)")
	inflight := fs.Int("max-in-flight", 512, "bound on outstanding requests")
	timeout := fs.Duration("timeout", 10*time.Second, "per-request timeout")
	seed := fs.Uint64("seed", 1, "seed of the schedule and the mix")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	var mix []load.Weighted
	if *tenants == "" {
		for _, t := range feedsvc.DefaultTenants() {
			mix = append(mix, load.Weighted{Name: t.Name, Weight: t.TrafficWeight})
		}
	} else {
		var err error
		if mix, err = load.ParseMix(*tenants); err != nil {
			fmt.Fprintln(stderr, "feedsvc load:", err)
			return 2
		}
	}
	res, err := load.Run(ctx, load.Config{
		Target: *target, Rate: *rate, Duration: *duration, Arrival: load.Arrival(*arrival), Tenants: mix,
		Users: *users, Limit: *limit, MaxInFlight: *inflight, Timeout: *timeout, Seed: *seed,
	})
	if res == nil {
		fmt.Fprintln(stderr, "feedsvc load:", err)
		return 2
	}
	fmt.Fprint(stdout, res.Summary())
	if err != nil {
		fmt.Fprintln(stderr, "feedsvc load: interrupted:", err)
		return 1
	}
	return 0
}

func runScenarios(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("feedsvc scenarios", "Usage: feedsvc scenarios [--json]\n\nLists the scenarios and the causes they inject.\n\nFlags:\n", stderr)
	asJSON := fs.Bool("json", false, "print the scenarios as JSON")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(scenario.All()); err != nil {
			fmt.Fprintln(stderr, "feedsvc scenarios:", err)
			return 1
		}
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTART\tCAUSES\tDESCRIPTION")
	for _, s := range scenario.All() {
		var causes []string
		for _, c := range s.Causes {
			parts := []string{c.Fault}
			for _, p := range []string{c.Dependency, c.Tenant, c.Version} {
				if p != "" {
					parts = append(parts, p)
				}
			}
			causes = append(causes, strings.Join(parts, "/"))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.Version, strings.Join(causes, " + "), s.Description)
	}
	if err := tw.Flush(); err != nil {
		fmt.Fprintln(stderr, "feedsvc scenarios:", err)
		return 1
	}
	return 0
}
