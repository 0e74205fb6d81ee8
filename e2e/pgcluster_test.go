//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tailscope/tailscope/internal/testenv"
)

// pgServer is a PostgreSQL server a test runs itself, on a free port, with
// PostgreSQL's own tools (initdb, pg_ctl, pg_basebackup): a server the
// test may stop, restart or replicate, which the shared test server is
// not. It is stopped and removed when the test ends.
type pgServer struct {
	bin, base, dir string
	port           int
	cred           *syscall.Credential
}

// pgPair is a primary and a streaming replica of it: the setup of a team
// reading from a replica, on one machine.
type pgPair struct {
	primary, replica       *pgServer
	primaryURL, replicaURL string
}

// pgBinDir finds the directory of initdb and pg_ctl: Debian keeps them
// out of PATH, under /usr/lib/postgresql/VERSION/bin.
func pgBinDir(tb testing.TB) string {
	tb.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return pgMajor(b) - pgMajor(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	if testenv.Required() {
		tb.Fatalf("PostgreSQL server tools (initdb, pg_ctl, pg_basebackup) not found (required: %s=1)", testenv.EnvRequire)
	}
	tb.Skip("PostgreSQL server tools (initdb, pg_ctl, pg_basebackup) not found")
	return ""
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// pgBase makes the directory the test's servers live in. PostgreSQL
// refuses to run as root: as root, its tools run as the postgres user,
// who must own the directory.
func pgBase(tb testing.TB) (string, *syscall.Credential) {
	tb.Helper()
	base, err := os.MkdirTemp("", "tailscope-pg-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(base) })
	if os.Geteuid() != 0 {
		return base, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		tb.Fatalf("running as root and no postgres user to run PostgreSQL as: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(base, uid, gid); err != nil {
		tb.Fatal(err)
	}
	return base, &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// run runs one of PostgreSQL's tools, failing tb when it fails.
func (s *pgServer) run(tb testing.TB, name string, args ...string) {
	tb.Helper()
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.base
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// newPGServer initialises a server in base/name; start starts it.
func newPGServer(tb testing.TB, bin, base string, cred *syscall.Credential, name string) *pgServer {
	tb.Helper()
	s := &pgServer{bin: bin, base: base, dir: filepath.Join(base, name), port: freeTCPPort(tb), cred: cred}
	tb.Cleanup(func() {
		cmd := exec.Command(filepath.Join(bin, "pg_ctl"), "-D", s.dir, "-m", "immediate", "-w", "stop")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Run() // not running is fine
	})
	return s
}

// startPG initialises and starts one server.
func startPG(tb testing.TB) *pgServer {
	tb.Helper()
	bin := pgBinDir(tb)
	base, cred := pgBase(tb)
	s := newPGServer(tb, bin, base, cred, "primary")
	s.run(tb, "initdb", "-D", s.dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	s.start(tb)
	return s
}

// start starts the server (again) on its port.
func (s *pgServer) start(tb testing.TB) {
	tb.Helper()
	// fsync off: these tests are about tailscope's acknowledgements, not
	// PostgreSQL's durability, and run on a shared CI machine.
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c fsync=off -c wal_level=replica -c max_wal_senders=4 -c hot_standby=on -c max_connections=60 -c shared_buffers=32MB", s.port, s.base)
	s.run(tb, "pg_ctl", "-D", s.dir, "-l", s.dir+".log", "-o", opts, "-w", "-t", "120", "start")
}

// stop stops the server at once, as a crash or a failover would.
func (s *pgServer) stop(tb testing.TB) {
	tb.Helper()
	s.run(tb, "pg_ctl", "-D", s.dir, "-m", "immediate", "-w", "stop")
}

func (s *pgServer) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
}

// startPGPair starts a primary and a streaming replica of it.
func startPGPair(tb testing.TB) *pgPair {
	tb.Helper()
	primary := startPG(tb)
	replica := newPGServer(tb, primary.bin, primary.base, primary.cred, "replica")
	primary.run(tb, "pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(primary.port), "-U", "postgres", "-D", replica.dir, "-R", "-X", "stream", "-c", "fast", "--no-sync")
	replica.start(tb)
	return &pgPair{primary: primary, replica: replica, primaryURL: primary.url(), replicaURL: replica.url()}
}

// freeTCPPort returns a loopback port nothing listens on now.
func freeTCPPort(tb testing.TB) int {
	tb.Helper()
	_, port, _ := net.SplitHostPort(freePort(tb))
	n, _ := strconv.Atoi(port)
	return n
}

// replicaExec runs a statement on the replica (pg_wal_replay_pause, …).
func (p *pgPair) replicaExec(tb testing.TB, sql string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, p.replicaURL)
	if err != nil {
		tb.Fatalf("connect to replica: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql); err != nil {
		tb.Fatalf("replica: %s: %v", sql, err)
	}
}
