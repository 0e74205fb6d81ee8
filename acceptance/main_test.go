package acceptance

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

// feedplay is the scenario player the tests run as a child process. It is
// built at most once per test binary, when a test first needs it. It is
// package state because a test binary has exactly one build directory.
var feedplay lazyBinary

type lazyBinary struct {
	dir  string // set by TestMain; removed when the tests end
	once sync.Once
	path string
	err  error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tailscope-acceptance-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "acceptance: create build directory:", err)
		os.Exit(1)
	}
	feedplay.dir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// feedplayBinary builds ./acceptance/internal/feedplay (once) and returns
// its path. The build never uses the race detector, whatever the tests
// were built with: see the package comment.
func feedplayBinary(tb testing.TB) string {
	tb.Helper()
	feedplay.once.Do(func() {
		out := filepath.Join(feedplay.dir, "feedplay")
		// `go test` runs in the package directory and puts its own
		// toolchain first in PATH; the module root is the parent.
		cmd := exec.Command("go", "build", "-o", out, "./acceptance/internal/feedplay")
		cmd.Dir = ".."
		// A -race in GOFLAGS must not reach this build either.
		cmd.Env = append(os.Environ(), "GOFLAGS="+withoutRace(os.Getenv("GOFLAGS")))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			feedplay.err = fmt.Errorf("go build ./acceptance/internal/feedplay: %w\n%s", err, stderr.String())
			return
		}
		feedplay.path = out
	})
	if feedplay.err != nil {
		tb.Fatal(feedplay.err)
	}
	return feedplay.path
}

// withoutRace returns GOFLAGS without its -race flag.
func withoutRace(goflags string) string {
	fields := slices.DeleteFunc(strings.Fields(goflags), func(f string) bool {
		return f == "-race" || f == "--race" || f == "-race=true" || f == "--race=true"
	})
	return strings.Join(fields, " ")
}
