//go:build linux

package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// tally records the answers to many concurrent exports: which requests
// were acknowledged (a 2xx with nothing rejected), and how many answers of
// each status and transport errors there were.
type tally struct {
	mu       sync.Mutex
	acked    []uint32
	statuses map[int]int
	errs     map[string]int // transport errors by message
	partial  int            // 2xx answers rejecting spans: never expected
}

func newTally() *tally { return &tally{statuses: map[int]int{}, errs: map[string]int{}} }

// send exports body, request number req, to addr and records the outcome.
func (ta *tally) send(ctx context.Context, c *http.Client, addr string, body []byte, req uint32) (acked bool) {
	r, err := postOTLP(ctx, c, addr, body, ctProtobuf, "")
	ta.mu.Lock()
	defer ta.mu.Unlock()
	if err != nil {
		ta.errs[errorKind(err)]++
		return false
	}
	ta.statuses[r.status]++
	if r.status/100 != 2 {
		return false
	}
	if r.rejected != 0 {
		ta.partial++
		return false
	}
	ta.acked = append(ta.acked, req)
	return true
}

// errorKind shortens a transport error to its cause, for counting.
func errorKind(err error) string {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "context: " + err.Error()
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

func (ta *tally) ackedRequests() []uint32 {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return slices.Clone(ta.acked)
}

func (ta *tally) count(status int) int {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return ta.statuses[status]
}

func (ta *tally) String() string {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	var parts []string
	codes := make([]int, 0, len(ta.statuses))
	for s := range ta.statuses {
		codes = append(codes, s)
	}
	sort.Ints(codes)
	for _, s := range codes {
		parts = append(parts, fmt.Sprintf("%d×%d", ta.statuses[s], s))
	}
	for e, n := range ta.errs {
		parts = append(parts, fmt.Sprintf("%d×error %q", n, e))
	}
	return fmt.Sprintf("%d acknowledged; answers: %s", len(ta.acked), strings.Join(parts, ", "))
}

// checkStored reads every trace of the given requests through the API and
// reports each one that is not complete: every span of an acknowledged
// request must be stored.
func checkStored(t *testing.T, c *http.Client, apiBase string, ft *feedTemplate, reqs []uint32) {
	t.Helper()
	waitLoaded(t, c, apiBase)
	missing := 0
	for _, req := range reqs {
		for tr, tid := range ft.traceIDs(req) {
			got := fetchTrace(t, c, apiBase, tid.String())
			if got == nil {
				missing += ft.shape.SpansPerTrace
				if missing <= 10*ft.shape.SpansPerTrace {
					t.Errorf("acknowledged request %d: trace %s not found", req, tid)
				}
				continue
			}
			have := map[string]bool{}
			for _, s := range got.Spans {
				have[s.SpanID] = true
			}
			for _, sid := range ft.spanIDs(req, tr) {
				if !have[sid.String()] {
					missing++
					if missing <= 10 {
						t.Errorf("acknowledged request %d: span %s of trace %s not found", req, sid, tid)
					}
				}
			}
			if len(got.Spans) != ft.shape.SpansPerTrace {
				t.Errorf("trace %s has %d spans, sent %d", tid, len(got.Spans), ft.shape.SpansPerTrace)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d acknowledged spans of %d requests are missing", missing, len(reqs))
	}
}

// storedRequests counts the requests among reqs whose first trace is
// stored: for requests that were not acknowledged, which may or may not
// have been committed.
func storedRequests(t *testing.T, c *http.Client, apiBase string, ft *feedTemplate, reqs []uint32) int {
	t.Helper()
	waitLoaded(t, c, apiBase)
	n := 0
	for _, req := range reqs {
		if fetchTrace(t, c, apiBase, ft.traceIDs(req)[0].String()) != nil {
			n++
		}
	}
	return n
}

// transportErrors returns how many exports got no answer.
func (ta *tally) transportErrors() int {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	n := 0
	for _, c := range ta.errs {
		n += c
	}
	return n
}

// metricLines returns the lines of the server's /metrics that contain
// any of the given strings, to explain in the log what the server did.
func metricLines(t *testing.T, c *http.Client, apiBase string, contains ...string) string {
	t.Helper()
	resp, err := c.Get(apiBase + "/metrics")
	if err != nil {
		t.Fatalf("get metrics: %v", err)
	}
	defer resp.Body.Close()
	var out []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") {
			continue
		}
		for _, s := range contains {
			if strings.Contains(l, s) {
				out = append(out, l)
				break
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read metrics: %v", err)
	}
	return strings.Join(out, "\n")
}

// waitLoaded waits until the server's write-ahead log loader has applied
// everything acknowledged so far (at once without a log): an
// acknowledgement means durable, and reads see the spans once loaded.
// There is no deadline of its own: the test binary's timeout catches a
// loader that never catches up.
func waitLoaded(tb testing.TB, c *http.Client, apiBase string) {
	tb.Helper()
	const metric = "tailscope_ingest_wal_unapplied_bytes "
	for {
		resp, err := c.Get(apiBase + "/metrics")
		if err != nil {
			tb.Fatalf("get metrics: %v", err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			tb.Fatalf("read metrics: %v", err)
		}
		i := strings.Index(string(b), "\n"+metric)
		if i < 0 {
			return // no log
		}
		v, _, _ := strings.Cut(string(b[i+1+len(metric):]), "\n")
		if v == "0" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
