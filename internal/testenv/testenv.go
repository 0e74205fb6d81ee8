// Package testenv gives tests the external services they need (PostgreSQL,
// Redis, Chromium) and decides what happens when one is missing: on a
// developer's laptop the test is skipped; in CI, where .ci/run sets
// TAILSCOPE_REQUIRE_SERVICES=1, it fails, so an integration test can never
// pass by silently skipping.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables read by this package.
const (
	EnvRequire  = "TAILSCOPE_REQUIRE_SERVICES" // "1": missing services fail tests
	EnvPostgres = "TAILSCOPE_TEST_POSTGRES_URL"
	EnvRedis    = "TAILSCOPE_TEST_REDIS_URL"
	EnvChromium = "TAILSCOPE_TEST_CHROMIUM" // path to a Chromium binary
)

// Required reports whether missing services must fail tests.
func Required() bool { return os.Getenv(EnvRequire) == "1" }

// missing skips or fails tb, depending on Required.
func missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		tb.Fatalf("%s (required: %s=1)", msg, EnvRequire)
	}
	tb.Skipf("%s; set %s=1 to make this a failure", msg, EnvRequire)
}

// PostgresURL returns the URL of the test PostgreSQL server (database
// "test"), skipping or failing when it is not configured or unreachable.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(EnvPostgres)
	if u == "" {
		missing(tb, "PostgreSQL not configured: %s is empty", EnvPostgres)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		missing(tb, "PostgreSQL at %s unreachable: %v", redact(u), err)
	}
	conn.Close(ctx)
	return u
}

// FreshPostgres creates an empty database for one test on the test server,
// drops it when the test ends, and returns its URL. Tests that migrate or
// write use it so they never see each other's rows.
func FreshPostgres(tb testing.TB) string {
	tb.Helper()
	base := PostgresURL(tb)
	name := "ts_" + strings.ToLower(randomHex(6))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("testenv: connect: %v", err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("testenv: create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Logf("testenv: drop %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Logf("testenv: drop %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("testenv: parse %s: %v", EnvPostgres, err)
	}
	u.Path = "/" + name
	return u.String()
}

// RedisURL returns the URL of the test Redis server, skipping or failing
// when it is not configured or unreachable.
func RedisURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(EnvRedis)
	if u == "" {
		missing(tb, "Redis not configured: %s is empty", EnvRedis)
	}
	pu, err := url.Parse(u)
	if err != nil {
		tb.Fatalf("testenv: parse %s: %v", EnvRedis, err)
	}
	c, err := net.DialTimeout("tcp", pu.Host, 3*time.Second)
	if err != nil {
		missing(tb, "Redis at %s unreachable: %v", pu.Host, err)
	}
	c.Close()
	return u
}

// Chromium returns the path of a headless-capable Chromium, skipping or
// failing when there is none.
func Chromium(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv(EnvChromium); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	missing(tb, "no Chromium found (install Debian's chromium or set %s)", EnvChromium)
	return ""
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Redacted()
}

// Logger sends warnings and errors to the test's output, so a failing test
// shows what the server complained about.
func Logger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}
