package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

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

// OpenStore opens (and migrates) the store a URL selects.
func OpenStore(ctx context.Context, url string, log *slog.Logger) (store.Store, Backend, error) {
	backend, target, err := ParseDatabaseURL(url)
	if err != nil {
		return nil, "", err
	}
	switch backend {
	case BackendPostgres:
		db, err := postgres.Open(ctx, target, postgres.WithLogger(log))
		if err != nil {
			return nil, "", fmt.Errorf("open postgres: %w", err)
		}
		return db, backend, nil
	default:
		db, err := sqlite.Open(ctx, target, sqlite.WithLogger(log))
		if err != nil {
			return nil, "", fmt.Errorf("open sqlite %s: %w", target, err)
		}
		return db, backend, nil
	}
}

// Migrate applies pending migrations without starting anything else.
func Migrate(ctx context.Context, url string) error {
	backend, target, err := ParseDatabaseURL(url)
	if err != nil {
		return err
	}
	if backend == BackendPostgres {
		return postgres.Migrate(ctx, target)
	}
	return sqlite.Migrate(ctx, target)
}
