package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/tailscope/tailscope/internal/gobuild"
)

// binaries builds the executable the process tests run, at most once per
// test binary and only when a test asks for it, so the in-process tests
// and `make bench` never pay for the build. It is package state because a
// test binary has exactly one build directory.
var binaries *gobuild.Cache

func TestMain(m *testing.M) {
	var err error
	binaries, err = gobuild.NewCache("tailscope-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	code := m.Run()
	binaries.Close()
	os.Exit(code)
}

// tailscopeBinary builds ./cmd/tailscope (once) and returns its path.
func tailscopeBinary(tb testing.TB) string {
	tb.Helper()
	return binaries.Binary(tb, "./cmd/tailscope")
}
