package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/postgres"
	"github.com/tailscope/tailscope/store/sqlite"
)

// DefaultDatabaseURL is the embedded store used when no URL is given.
const DefaultDatabaseURL = "sqlite:./data/tailscope.db"

// Backend names the kind of store a URL selects.
type Backend string

// Backends.
const (
	BackendPostgres Backend = "postgres"
	BackendSQLite   Backend = "sqlite"
)

// ParseDatabaseURL tells which backend a URL selects and what to pass it:
// postgres:// and postgresql:// URLs go to PostgreSQL as they are;
// sqlite:PATH, sqlite://PATH and file:PATH go to SQLite with the path.
func ParseDatabaseURL(url string) (Backend, string, error) {
	switch {
	case url == "":
		return ParseDatabaseURL(DefaultDatabaseURL)
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return BackendPostgres, url, nil
	case strings.HasPrefix(url, "sqlite://"):
		return sqlitePath(strings.TrimPrefix(url, "sqlite://"), url)
	case strings.HasPrefix(url, "sqlite:"):
		return sqlitePath(strings.TrimPrefix(url, "sqlite:"), url)
	case strings.HasPrefix(url, "file:"):
		return sqlitePath(strings.TrimPrefix(url, "file:"), url)
	default:
		return "", "", fmt.Errorf("database url %q: want postgres://… or sqlite:PATH", url)
	}
}

func sqlitePath(p, url string) (Backend, string, error) {
	if p == "" {
		return "", "", fmt.Errorf("database url %q: missing file path", url)
	}
	return BackendSQLite, p, nil
}

// OpenStore opens (and migrates) the store a URL selects; statsEvery is
// Config.StatsInterval.
func OpenStore(ctx context.Context, url string, statsEvery time.Duration, log *slog.Logger) (store.Store, Backend, error) {
	backend, target, err := ParseDatabaseURL(url)
	if err != nil {
		return nil, "", err
	}
	switch backend {
	case BackendPostgres:
		db, err := postgres.Open(ctx, target, postgres.WithLogger(log), postgres.WithStatsInterval(statsEvery))
		if err != nil {
			return nil, "", fmt.Errorf("open postgres: %w", err)
		}
		return db, backend, nil
	default:
		db, err := sqlite.Open(ctx, target, sqlite.WithLogger(log), sqlite.WithStatsInterval(statsEvery))
		if err != nil {
			return nil, "", fmt.Errorf("open sqlite %s: %w", target, err)
		}
		return db, backend, nil
	}
}

// Backoff between attempts of OpenStoreWait.
const (
	firstOpenBackoff = 250 * time.Millisecond
	maxOpenBackoff   = 5 * time.Second
)

// OpenStoreWait is OpenStore, retried while the store is unavailable
// (PostgreSQL still starting, or not reachable yet, as when a database and
// tailscope start together) for up to wait, with exponential backoff and a
// log line per failed attempt. Errors that retrying cannot fix (a bad URL,
// a wrong password, a missing database) end it at once, as does wait 0.
func OpenStoreWait(ctx context.Context, url string, wait, statsEvery time.Duration, log *slog.Logger) (store.Store, Backend, error) {
	giveUp := time.Now().Add(wait)
	backoff := firstOpenBackoff
	for attempt := 1; ; attempt++ {
		s, backend, err := OpenStore(ctx, url, statsEvery, log)
		if err == nil {
			if attempt > 1 {
				log.Info("store reachable", "backend", backend, "attempts", attempt)
			}
			return s, backend, nil
		}
		left := time.Until(giveUp)
		if !errors.Is(err, store.ErrUnavailable) || left <= 0 {
			if attempt > 1 {
				err = fmt.Errorf("%w (gave up after %d attempts in %v)", err, attempt, wait)
			}
			return nil, "", err
		}
		d := min(backoff, left)
		log.Warn("store unreachable; retrying", "attempt", attempt, "retry_in", d, "give_up_in", left.Round(time.Second), "err", err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, "", fmt.Errorf("open store: %w (last error: %w)", ctx.Err(), err)
		case <-t.C:
		}
		backoff = min(2*backoff, maxOpenBackoff)
	}
}

// Migrate applies pending migrations and builds the rollups of spans stored
// before them, without starting anything else.
func Migrate(ctx context.Context, url string) error {
	backend, target, err := ParseDatabaseURL(url)
	if err != nil {
		return err
	}
	// Opening a store migrates it and builds the rollups of spans stored
	// before the rollups migration (backfill), before anything writes.
	var s interface{ Close() error }
	if backend == BackendPostgres {
		s, err = postgres.Open(ctx, target)
	} else {
		s, err = sqlite.Open(ctx, target)
	}
	if err != nil {
		return err
	}
	return s.Close()
}

// Values of Config.WALDir besides a directory.
const (
	WALAuto = "auto"
	WALOff  = "off"
)

// walDir resolves Config.WALDir for a database URL. With SQLite the data
// already lives in a directory, and the log goes beside the database
// ("data/tailscope.db" → "data/tailscope.db.ingest-wal"). PostgreSQL gets
// no log unless one is named: a tailscope process in front of PostgreSQL
// is stateless (run many behind a load balancer, replace them at will),
// and a log makes it hold acknowledged spans on its own disk; a default
// under the temp directory would lose them at a reboot, and one under a
// per-user state directory would be shared by every process of that user.
func walDir(setting, databaseURL string) (string, error) {
	switch setting {
	case WALOff:
		return "", nil
	case "", WALAuto:
	default:
		return setting, nil
	}
	backend, target, err := ParseDatabaseURL(databaseURL)
	if err != nil {
		return "", err
	}
	if backend != BackendSQLite || strings.Contains(target, ":memory:") || strings.Contains(target, "mode=memory") {
		return "", nil
	}
	path, _, _ := strings.Cut(target, "?")
	return path + ".ingest-wal", nil
}
