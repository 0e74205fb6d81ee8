//go:build linux

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// process is `tailscope serve` running as a child process on free ports.
type process struct {
	cmd    *exec.Cmd
	stderr *tailBuffer
	done   chan struct{} // closed when the process has exited and its output is read

	apiURL   string // http://host:port of the UI and JSON API
	otlpHTTP string // host:port
	otlpGRPC string // host:port
}

// listening is the line `tailscope serve` prints on stdout once every
// listener is bound.
var listening = regexp.MustCompile(`open (http://\S+) \(OTLP http (\S+), grpc (\S+)\)`)

// startProcess runs `tailscope serve` with args after the listener flags
// and env added to the test's environment without its TAILSCOPE_
// variables, so only the given flags configure the server. It returns
// once the server prints its addresses. The process is killed when tb
// ends if it is still running; its log is shown when tb failed.
func startProcess(tb testing.TB, env []string, args ...string) *process {
	tb.Helper()
	bin := tailscopeBinary(tb)
	args = append([]string{"serve", "--http", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0", "--otlp-grpc", "127.0.0.1:0"}, args...)
	p := &process{
		cmd:    exec.Command(bin, args...),
		stderr: &tailBuffer{max: 256 << 10},
		done:   make(chan struct{}),
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TAILSCOPE_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(p.cmd.Env, env...)
	addrs := make(chan []string, 1)
	p.cmd.Stdout = &lineWriter{line: func(l string) {
		if m := listening.FindStringSubmatch(l); m != nil {
			select {
			case addrs <- m[1:]:
			default:
			}
		}
	}}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if tb.Failed() {
			tb.Logf("tailscope %s log (tail):\n%s", strings.Join(args, " "), p.stderr)
		}
	})
	select {
	case a := <-addrs:
		p.apiURL, p.otlpHTTP, p.otlpGRPC = a[0], a[1], a[2]
	case <-p.done:
		tb.Fatalf("tailscope exited before listening (%v):\n%s", p.cmd.ProcessState, p.stderr)
	case <-time.After(2 * time.Minute):
		tb.Fatalf("tailscope printed no addresses within 2 minutes:\n%s", p.stderr)
	}
	return p
}

// kill sends SIGKILL — no chance to flush or commit anything — and waits
// for the process to die of it.
func (p *process) kill(tb testing.TB) {
	tb.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		tb.Fatalf("kill tailscope: %v", err)
	}
	<-p.done
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		tb.Fatalf("tailscope ended with %v, not by SIGKILL: it was not running when killed", p.cmd.ProcessState)
	}
}

// stop sends SIGTERM and expects a clean exit.
func (p *process) stop(tb testing.TB) {
	tb.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		tb.Fatalf("stop tailscope: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(2 * time.Minute):
		tb.Fatal("tailscope did not exit within 2 minutes of SIGTERM")
	}
	if !p.cmd.ProcessState.Success() {
		tb.Errorf("tailscope exited with %v after SIGTERM, want status 0", p.cmd.ProcessState)
	}
}

// peakRSS returns the process's peak resident set size (VmHWM).
func (p *process) peakRSS(tb testing.TB) int64 {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		tb.Fatalf("read process status: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				tb.Fatalf("parse %q: %v", l, err)
			}
			return kb << 10
		}
	}
	tb.Fatal("no VmHWM in /proc/PID/status")
	return 0
}

// lineWriter calls line for each complete line written to it.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	line func(string)
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(b), nil
}

// tailBuffer keeps the last max bytes written to it: a server's log under
// load can be long, and the end is what explains a failure.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
