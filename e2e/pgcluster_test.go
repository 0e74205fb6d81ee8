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

// pgPair is a PostgreSQL primary and a streaming replica of it that a test
// runs itself, on free ports, with PostgreSQL's own tools (initdb,
// pg_basebackup -R, pg_ctl): the setup a team reading from a replica has,
// on one machine. Both are stopped and removed when the test ends.
type pgPair struct {
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

// startPGPair starts a primary and a streaming replica of it.
func startPGPair(tb testing.TB) *pgPair {
	tb.Helper()
	bin := pgBinDir(tb)
	base, err := os.MkdirTemp("", "tailscope-pgpair-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(base) })
	// PostgreSQL refuses to run as root: as root, run its tools as the
	// postgres user, who must own the data directories.
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			tb.Fatalf("running as root and no postgres user to run PostgreSQL as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(base, uid, gid); err != nil {
			tb.Fatal(err)
		}
	}
	run := func(tb testing.TB, name string, args ...string) {
		tb.Helper()
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = base
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	primary, replica := filepath.Join(base, "primary"), filepath.Join(base, "replica")
	pport, rport := freeTCPPort(tb), freeTCPPort(tb)
	opts := func(port int) string {
		// fsync off: the test is about tailscope's acknowledgements, not
		// PostgreSQL's durability, and it runs on a shared CI machine.
		return fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c fsync=off -c wal_level=replica -c max_wal_senders=4 -c hot_standby=on -c max_connections=60 -c shared_buffers=32MB", port, base)
	}
	stop := func(dir string) func() {
		return func() {
			cmd := exec.Command(filepath.Join(bin, "pg_ctl"), "-D", dir, "-m", "immediate", "-w", "stop")
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
			cmd.Run()
		}
	}
	run(tb, "initdb", "-D", primary, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	run(tb, "pg_ctl", "-D", primary, "-l", filepath.Join(base, "primary.log"), "-o", opts(pport), "-w", "-t", "120", "start")
	tb.Cleanup(stop(primary))
	run(tb, "pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(pport), "-U", "postgres", "-D", replica, "-R", "-X", "stream", "-c", "fast", "--no-sync")
	run(tb, "pg_ctl", "-D", replica, "-l", filepath.Join(base, "replica.log"), "-o", opts(rport), "-w", "-t", "120", "start")
	tb.Cleanup(stop(replica))
	url := func(port int) string {
		return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	}
	return &pgPair{primaryURL: url(pport), replicaURL: url(rport)}
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
