package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// tailscope is the executable the process tests run. It is built at
// most once per test binary, and only when a test asks for it, so that the
// in-process tests and `make bench` never pay for the build. It is package
// state because a test binary has exactly one build directory.
var tailscope lazyBinary

type lazyBinary struct {
	dir  string // set by TestMain; removed when the tests end
	once sync.Once
	path string
	err  error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tailscope-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: create build directory:", err)
		os.Exit(1)
	}
	tailscope.dir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// tailscopeBinary builds ./cmd/tailscope (once) and returns its path.
func tailscopeBinary(tb testing.TB) string {
	tb.Helper()
	tailscope.once.Do(func() {
		out := filepath.Join(tailscope.dir, "tailscope")
		// `go test` puts its own GOROOT/bin first in PATH, so this is the
		// toolchain running the tests. The module root is the parent of
		// this package's directory, where `go test` runs the binary.
		cmd := exec.Command("go", "build", "-o", out, "./cmd/tailscope")
		cmd.Dir = ".."
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			tailscope.err = fmt.Errorf("go build ./cmd/tailscope: %w\n%s", err, stderr.String())
			return
		}
		tailscope.path = out
	})
	if tailscope.err != nil {
		tb.Fatal(tailscope.err)
	}
	return tailscope.path
}
