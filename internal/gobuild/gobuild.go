// Package gobuild builds the project's commands for tests that run them
// as child processes (crash tests, scenario players), once per test binary.
package gobuild

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Cache builds each package at most once into its directory. Make one in
// TestMain (NewCache) and Close it when the tests end.
type Cache struct {
	dir  string
	mu   sync.Mutex
	done map[string]*build
}

type build struct {
	once sync.Once
	path string
	err  error
}

// NewCache makes a build directory.
func NewCache(prefix string) (*Cache, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, fmt.Errorf("gobuild: %w", err)
	}
	return &Cache{dir: dir, done: map[string]*build{}}, nil
}

// Close removes the built binaries.
func (c *Cache) Close() error { return os.RemoveAll(c.dir) }

// Binary builds pkg (a path from the module root, like "./cmd/tailscope")
// and returns the executable, failing tb when the build fails. Binaries
// are never built with the race detector, whatever the tests run with: a
// child process stands for a production process, and an instrumented one
// is five to ten times slower at CPU work, which would turn latency tests
// into tests of the detector.
func (c *Cache) Binary(tb testing.TB, pkg string) string {
	tb.Helper()
	c.mu.Lock()
	b := c.done[pkg]
	if b == nil {
		b = &build{}
		c.done[pkg] = b
	}
	c.mu.Unlock()
	b.once.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			b.err = err
			return
		}
		out := filepath.Join(c.dir, filepath.Base(pkg))
		// `go test` puts its own toolchain first in PATH.
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOFLAGS="+withoutRace(os.Getenv("GOFLAGS")))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			b.err = fmt.Errorf("go build %s: %w\n%s", pkg, err, stderr.String())
			return
		}
		b.path = out
	})
	if b.err != nil {
		tb.Fatal(b.err)
	}
	return b.path
}

// moduleRoot finds the directory holding go.mod above the working
// directory (go test runs in the package's directory).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("gobuild: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("gobuild: no go.mod above the working directory")
		}
		dir = parent
	}
}

// withoutRace returns GOFLAGS without a -race flag.
func withoutRace(goflags string) string {
	fields := slices.DeleteFunc(strings.Fields(goflags), func(f string) bool {
		return f == "-race" || f == "--race" || f == "-race=true" || f == "--race=true"
	})
	return strings.Join(fields, " ")
}
