// Command tailscope receives OpenTelemetry traces and explains slow p99s.
//
//	tailscope serve     receiver, API and UI
//	tailscope demo      serve + the feedsvc demo application and its load
//	tailscope migrate   apply database migrations
//	tailscope load      open-loop load generator against a feed URL
//	tailscope version   print the version
//
// Every flag has an environment fallback (TAILSCOPE_<FLAG>, upper case with
// underscores). This file only parses flags and wires packages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tailscope/tailscope/alert"
	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/app"
	"github.com/tailscope/tailscope/demo"
	"github.com/tailscope/tailscope/feedsvc/load"
	"github.com/tailscope/tailscope/feedsvc/scenario"
	"github.com/tailscope/tailscope/ingest/otlpconv"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `tailscope — find what your p99 outliers share.

Usage:
  tailscope serve   [flags]   run the OTLP receiver, JSON API and UI
  tailscope demo    [flags]   serve plus the feedsvc demo app and its load
  tailscope migrate [flags]   apply database migrations and exit
  tailscope load    [flags]   open-loop load against a feed URL
  tailscope hash-password     read a password on stdin, print its argon2id hash
  tailscope new-token         print a random API or ingest token and its sha256
  tailscope version           print the version

Run 'tailscope <command> --help' for a command's flags.
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "tailscope:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "migrate":
		return migrate(ctx, args[1:], stdout, stderr)
	case "load":
		return runLoad(ctx, args[1:], stdout, stderr)
	case "hash-password":
		return hashPassword(os.Stdin, stdout, stderr)
	case "new-token":
		return newToken(stdout)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "tailscope", version)
		return nil
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

// envName maps a flag name to its environment variable.
func envName(flagName string) string {
	return "TAILSCOPE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// applyEnv sets every flag not given on the command line from its
// environment variable, so flags win over the environment.
func applyEnv(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", envName(f.Name), v, e)
			}
		}
	})
	return err
}

func newFlagSet(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: tailscope %s [flags]\n\n%s\n\nFlags (environment fallback in brackets):\n", name, summary)
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" {
				def = " (default " + f.DefValue + ")"
			}
			fmt.Fprintf(stderr, "  --%s [%s]\n      %s%s\n", f.Name, envName(f.Name), f.Usage, def)
		})
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return applyEnv(fs)
}

// listFlags are the server flags that hold lists, parsed by
// finishServerFlags.
type listFlags struct {
	tenantKeys, redactKeys, redactPatterns *string
	redactRegexps                          []string
	exposure                               *exposureFlags
	alertRules                             *string
}

// serverFlags registers the flags shared by serve and demo.
func serverFlags(fs *flag.FlagSet) (*app.Config, *listFlags) {
	cfg := app.DefaultConfig()
	cfg.Version = version
	lists := &listFlags{}
	fs.StringVar(&cfg.HTTPAddr, "http", cfg.HTTPAddr, "UI and JSON API listen address (port 0 picks a free one)")
	fs.StringVar(&cfg.Ingest.HTTPAddr, "otlp-http", cfg.Ingest.HTTPAddr, "OTLP/HTTP receiver listen address")
	fs.StringVar(&cfg.Ingest.GRPCAddr, "otlp-grpc", cfg.Ingest.GRPCAddr, "OTLP/gRPC receiver listen address")
	fs.StringVar(&cfg.DatabaseURL, "database-url", cfg.DatabaseURL, "store: postgres://user@host/db or sqlite:PATH")
	fs.StringVar(&cfg.DatabaseReadURL, "database-read-url", "", "PostgreSQL streaming replica of --database-url that pages and the API read spans from (default: read the primary)")
	fs.DurationVar(&cfg.DatabaseWait, "database-wait", cfg.DatabaseWait, "how long start-up retries a database it cannot reach (PostgreSQL starting) before giving up; 0 tries once")
	fs.DurationVar(&cfg.StatsInterval, "stats-interval", cfg.StatsInterval, "how often planner statistics are refreshed (PostgreSQL: ANALYZE of tables that changed by a tenth; SQLite: PRAGMA optimize); 0: on day changes and at open/close only")
	fs.StringVar(&cfg.RedisURL, "redis-url", "", "Redis for the shared analysis cache (default: in-process cache)")
	fs.DurationVar(&cfg.CacheTTL, "cache-ttl", cfg.CacheTTL, "how long analysis results are cached")
	fs.IntVar(&cfg.Analysis.Concurrency, "analysis-concurrency", cfg.Analysis.Concurrency, "analyses computed at once (default GOMAXPROCS/4: ingest keeps priority)")
	fs.DurationVar(&cfg.Analysis.QueueWait, "analysis-queue-wait", cfg.Analysis.QueueWait, "how long an analysis waits for a slot before the answer is 503 busy, Retry-After")
	fs.DurationVar(&cfg.Analysis.Timeout, "analysis-timeout", cfg.Analysis.Timeout, "longest one analysis may run before the answer is 422 too large: narrow the range")
	fs.Func("analysis-memory", fmt.Sprintf("heap size (MiB) above which a new analysis waits for a running one to end (0: no budget; default %d)", cfg.Analysis.MemoryBytes>>20), func(v string) error {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return fmt.Errorf("want a whole number of MiB: %w", err)
		}
		cfg.Analysis.MemoryBytes = n << 20
		return nil
	})
	fs.DurationVar(&cfg.Retention, "retention", cfg.Retention, "delete spans older than this, and refuse older spans at ingest (0 keeps everything)")
	fs.DurationVar(&cfg.RollupRetention, "rollup-retention", cfg.RollupRetention, "delete hour rollups (the services overview's counts and latency sketches) older than this (0 keeps them)")
	fs.DurationVar(&cfg.Ingest.MaxClockSkew, "max-clock-skew", cfg.Ingest.MaxClockSkew, "refuse spans that start further than this ahead of the receiver's clock")
	fs.Int64Var(&cfg.Ingest.MaxRequestBytes, "max-request-bytes", cfg.Ingest.MaxRequestBytes, "largest OTLP body as sent (413 above)")
	fs.Int64Var(&cfg.Ingest.MaxDecompressedBytes, "max-decompressed-bytes", cfg.Ingest.MaxDecompressedBytes, "largest OTLP body after gunzip (413 above)")
	fs.Int64Var(&cfg.Ingest.MaxBodyBytesInFlight, "max-body-bytes-in-flight", cfg.Ingest.MaxBodyBytesInFlight, "OTLP/HTTP body bytes received at once, before decoding (429 beyond)")
	fs.Int64Var(&cfg.Ingest.MaxBodyBytesPerClient, "max-body-bytes-per-client", cfg.Ingest.MaxBodyBytesPerClient, "one client address's share of those (raise it behind a proxy or Collector)")
	fs.Int64Var(&cfg.Ingest.MinBodyRate, "min-body-rate", cfg.Ingest.MinBodyRate, "bytes/s an OTLP/HTTP body must average once --body-read-grace is over (408 below)")
	fs.DurationVar(&cfg.Ingest.BodyReadGrace, "body-read-grace", cfg.Ingest.BodyReadGrace, "time an OTLP/HTTP body may take before --min-body-rate applies")
	fs.IntVar(&cfg.Ingest.MaxSpansPerRequest, "max-spans-per-request", cfg.Ingest.MaxSpansPerRequest, "most spans in one export request")
	fs.IntVar(&cfg.Ingest.MaxValueBytes, "max-attribute-bytes", cfg.Ingest.MaxValueBytes, "attribute values are truncated to this length (and marked)")
	fs.IntVar(&cfg.Ingest.QueueSpans, "queue-spans", cfg.Ingest.QueueSpans, "spans waiting for commit before exports get 429")
	fs.IntVar(&cfg.Ingest.BatchSpans, "batch-spans", cfg.Ingest.BatchSpans, "most spans in one store commit")
	fs.IntVar(&cfg.Ingest.Writers, "writers", cfg.Ingest.Writers, "concurrent store writers without a write-ahead log (SQLite always uses 1)")
	fs.StringVar(&cfg.WALDir, "wal-dir", cfg.WALDir, `ingest write-ahead log directory: exports are answered once fsynced there and loaded into the store in batches; "auto" puts it beside an SQLite database and uses none with PostgreSQL, "off" uses none`)
	fs.Int64Var(&cfg.Ingest.WALMaxBytes, "wal-max-bytes", cfg.Ingest.WALMaxBytes, "write-ahead log size before exports get 429 (the store's backlog)")
	fs.DurationVar(&cfg.Ingest.WALLoadDelay, "wal-load-delay", cfg.Ingest.WALLoadDelay, "how long the write-ahead log's loader lets a small batch gather more spans before committing it (reads lag by up to this)")
	fs.DurationVar(&cfg.Ingest.TraceIndexDelay, "trace-index-delay", cfg.Ingest.TraceIndexDelay, "how long the write-ahead log's loader holds, at least, the trace index rows of new traces, so a trace's later parts merge in memory (each row is stored at the second flush after it was first held: new traces show in other processes' searches up to twice this much later; 0: write them with their spans)")
	lists.tenantKeys = fs.String("tenant-keys", strings.Join(cfg.Ingest.TenantKeys, ","), "attribute keys holding the tenant, first present wins")
	lists.redactKeys = fs.String("redact-keys", strings.Join(otlpconv.DefaultRedactKeys, ","),
		"attribute keys, or last key segments, whose values are stored as REDACTED (empty: none)")
	lists.redactPatterns = fs.String("redact-patterns", strings.Join(otlpconv.DefaultPatterns, ","),
		"built-in value patterns to redact, of "+strings.Join(otlpconv.BuiltinPatternNames(), ", ")+" (empty: none)")
	fs.Func("redact-regexp", "a regular expression whose matches in string values are stored as REDACTED; repeatable (the environment variable holds one per line)",
		func(v string) error {
			for _, re := range strings.Split(v, "\n") {
				if re = strings.TrimSpace(re); re != "" {
					lists.redactRegexps = append(lists.redactRegexps, re)
				}
			}
			return nil
		})
	fs.BoolVar(&cfg.Ingest.Redaction.SQL, "redact-sql", cfg.Ingest.Redaction.SQL, "store db.statement and db.query.text with their literals replaced by ?")
	fs.BoolVar(&cfg.Ingest.Redaction.URLQuery, "redact-url-query", cfg.Ingest.Redaction.URLQuery, "store URLs with query values and user:password replaced by REDACTED")
	fs.BoolVar(&cfg.Ingest.TemplateSpanNames, "span-name-templates", cfg.Ingest.TemplateSpanNames,
		`store spans named after their request path or SQL statement under the name's template ("GET /users/{id}", literals as ?), the name as sent kept in tailscope.original_name when no URL attribute has it`)
	lists.alertRules = fs.String("alert-rules", "14.4:1h:5m,6:6h:30m,3:1d:2h:ticket",
		"budgets' burn-rate alert rules, factor:long:short[:severity] comma separated: both windows at or above the factor fire")
	fs.DurationVar(&cfg.Alerts.Interval, "alert-interval", time.Minute, "how often budgets' burn-rate alerts are evaluated")
	fs.Func("alert-webhook", "a URL that gets every alert firing and resolve as JSON, or slack=URL for a Slack-compatible payload; repeatable (the environment variable holds one per line)",
		func(v string) error {
			for _, u := range strings.Split(v, "\n") {
				if u = strings.TrimSpace(u); u == "" {
					continue
				}
				t, err := alert.ParseTarget(u)
				if err != nil {
					return err
				}
				cfg.Alerts.Targets = append(cfg.Alerts.Targets, t)
			}
			return nil
		})
	fs.StringVar(&cfg.PublicURL, "public-url", "", "the URL people reach tailscope at (https://tailscope.example.com): the base of links in report exports and alert notifications, a Host name the UI answers to, and with https Secure session cookies")
	fs.StringVar(&cfg.SelfTraces, "self-traces", "", `send tailscope's own traces: "self" or an OTLP/HTTP URL`)
	fs.StringVar(&cfg.Pprof, "pprof", cfg.Pprof, `serve Go profiles at /debug/pprof/ on the --http listener: "loopback" (loopback clients only), "all" or "off"`)
	fs.StringVar(&cfg.SelfProfile, "self-profile", "", `profile tailscope continuously: "self" or a Pyroscope URL`)
	lists.exposure = registerExposureFlags(fs, &cfg)
	return &cfg, lists
}

// splitList splits a comma-separated flag value, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, k := range strings.Split(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, k)
		}
	}
	return out
}

func finishServerFlags(cfg *app.Config, lists *listFlags, stderr io.Writer, verbose bool) error {
	cfg.Ingest.TenantKeys = splitList(*lists.tenantKeys)
	rules, err := analysis.ParseBurnRules(*lists.alertRules)
	if err != nil {
		return fmt.Errorf("--alert-rules: %w", err)
	}
	cfg.Alerts.Rules = rules
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	cfg.Ingest.Redaction.Keys = splitList(*lists.redactKeys)
	cfg.Ingest.Redaction.Patterns = nil
	for _, name := range splitList(*lists.redactPatterns) {
		re, ok := otlpconv.BuiltinPattern(name)
		if !ok {
			return fmt.Errorf("--redact-patterns: unknown pattern %q: want some of %s", name, strings.Join(otlpconv.BuiltinPatternNames(), ", "))
		}
		cfg.Ingest.Redaction.Patterns = append(cfg.Ingest.Redaction.Patterns, re)
	}
	cfg.Ingest.Redaction.Patterns = append(cfg.Ingest.Redaction.Patterns, lists.redactRegexps...)
	if err := lists.exposure.finish(cfg); err != nil {
		return err
	}
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	return nil
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "Run the OTLP receiver, the JSON API and the UI.", stderr)
	cfg, lists := serverFlags(fs)
	verbose := fs.Bool("v", false, "debug logging")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := finishServerFlags(cfg, lists, stderr, *verbose); err != nil {
		return err
	}
	a := app.New(*cfg)
	if err := a.Start(ctx); err != nil {
		return err
	}
	defer a.Close()
	fmt.Fprintf(stdout, "tailscope %s: open %s (OTLP http %s, grpc %s)\n", version, a.URL(), a.OTLPHTTPAddr(), a.OTLPGRPCAddr())
	select {
	case <-ctx.Done():
		return a.Close()
	case err := <-a.Err():
		return err
	}
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "Serve plus the feedsvc demo application, its load and a scenario (what 'make run' starts).", stderr)
	cfg, lists := serverFlags(fs)
	var dc demo.Config
	fs.StringVar(&dc.Scenario, "scenario", demo.DefaultScenario, "scenario to play: "+demo.DefaultScenario+", "+strings.Join(scenario.Names(), ", "))
	fs.Float64Var(&dc.Rate, "rate", 0, "feed requests per second (default: the scenario's)")
	fs.DurationVar(&dc.DeployAfter, "deploy-after", 3*time.Minute, "when the default scenario deploys v2")
	fs.StringVar(&dc.FeedPostgresURL, "feed-postgres-url", "", "run feedsvc against this PostgreSQL (with --feed-redis-url); default simulated")
	fs.StringVar(&dc.FeedRedisURL, "feed-redis-url", "", "run feedsvc against this Redis (with --feed-postgres-url)")
	seed := fs.Uint64("seed", 1, "random seed of feedsvc and the load")
	verbose := fs.Bool("v", false, "debug logging")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := finishServerFlags(cfg, lists, stderr, *verbose); err != nil {
		return err
	}
	dc.App, dc.Seed, dc.Out, dc.Log = *cfg, *seed, stdout, cfg.Log
	return demo.Run(ctx, dc)
}

func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", "Apply pending database migrations, build the rollups of spans stored before them, and exit.", stderr)
	url := fs.String("database-url", app.DefaultDatabaseURL, "store: postgres://user@host/db or sqlite:PATH")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := app.Migrate(ctx, *url); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("load", "Open-loop load at a constant arrival rate: a slow response never delays the next send.", stderr)
	target := fs.String("target", "http://127.0.0.1:8081/v1/feed", "feed URL")
	rate := fs.Float64("rate", 20, "requests per second")
	duration := fs.Duration("duration", time.Minute, "how long to send")
	arrival := fs.String("arrival", "poisson", "arrival process: poisson or uniform")
	tenants := fs.String("tenants", load.DefaultMix, `tenant mix "name=weight,…" (or "name:weight,…"), or names in Zipf order "acme,globex"`)
	seed := fs.Uint64("seed", 1, "random seed")
	if err := parse(fs, args); err != nil {
		return err
	}
	mix, err := load.ParseMix(*tenants)
	if err != nil {
		return err
	}
	arr := load.Poisson
	switch *arrival {
	case "poisson":
	case "uniform":
		arr = load.Uniform
	default:
		return fmt.Errorf("--arrival %q: want poisson or uniform", *arrival)
	}
	res, err := load.Run(ctx, load.Config{Target: *target, Rate: *rate, Duration: *duration, Arrival: arr, Tenants: mix, Seed: *seed})
	if res != nil {
		fmt.Fprintln(stdout, res.Summary())
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
