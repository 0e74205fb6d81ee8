package acceptance

import (
	"fmt"
	"os"
	"testing"

	"github.com/tailscope/tailscope/internal/gobuild"
)

// binaries builds the scenario player the tests run as a child process,
// once per test binary. It is package state because a test binary has
// exactly one build directory.
var binaries *gobuild.Cache

func TestMain(m *testing.M) {
	var err error
	binaries, err = gobuild.NewCache("tailscope-acceptance-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "acceptance:", err)
		os.Exit(1)
	}
	code := m.Run()
	binaries.Close()
	os.Exit(code)
}

// feedplayBinary returns internal/feedplay, built without the race
// detector (see the package comment).
func feedplayBinary(tb testing.TB) string {
	tb.Helper()
	return binaries.Binary(tb, "./internal/feedplay")
}
