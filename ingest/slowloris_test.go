package ingest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc/codes"

	"github.com/tailscope/tailscope/ingest/internal/otlptest"
)

// clientFrom is an HTTP client whose connections leave from local IP ip
// (any 127.0.0.0/8 address on Linux), so tests can be several clients.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// slowExport is a slowloris: a raw connection from local IP src that sends
// an OTLP export's headers with Content-Length n, then one byte every
// 250 ms until stop is called. resp yields the answer, if one comes.
type slowExport struct {
	conn net.Conn
	stop func()
	resp chan *http.Response
}

func startSlowExport(t *testing.T, addr, src string, n int) *slowExport {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	header := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", TracesPath, addr, contentTypeProtobuf, n)
	if _, err := io.WriteString(conn, header); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	se := &slowExport{conn: conn, resp: make(chan *http.Response, 1)}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for range n {
			if _, err := conn.Write([]byte{0x0a}); err != nil {
				return
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	go func() {
		defer wg.Done()
		if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
			resp.Body.Close()
			se.resp <- resp
		}
		close(se.resp)
	}()
	se.stop = sync.OnceFunc(func() {
		close(done)
		conn.Close()
		wg.Wait()
	})
	t.Cleanup(se.stop)
	return se
}

// TestSlowBodiesDoNotRefuseFastClients: 100 connections sending a
// 100,000-byte body one byte at a time (which used to take every decode
// slot, so legitimate exports got 429 and gRPC RESOURCE_EXHAUSTED) hold
// no decode slot; a fast HTTP export and a gRPC export from the same host
// are committed meanwhile.
func TestSlowBodiesDoNotRefuseFastClients(t *testing.T) {
	cfg := testConfig()
	cfg.SlotWait = 0 // refuse at once if the slots were taken
	// Long enough that the slow bodies are still being read when the fast
	// clients send; TestSlowBodyIsCut tests the cut.
	cfg.BodyReadGrace, cfg.BodyReadTimeout = time.Hour, time.Hour
	sr := serveReceiver(t, cfg)
	const slow, size = 100, 100_000
	var exports []*slowExport
	for range slow {
		exports = append(exports, startSlowExport(t, sr.httpAddr, "127.0.0.1", size))
	}
	waitFor(t, "every slow body to be read", func() bool { return sr.budget.reserved() == slow*size })
	if n := len(sr.slots); n != 0 {
		t.Errorf("%d decode slots held by slow bodies", n)
	}

	body := protoBody(t, otlptest.FeedTraces(20, 1))
	resp, err := http.Post("http://"+sr.httpAddr+TracesPath, contentTypeProtobuf, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("fast HTTP export: status %d, want 200", resp.StatusCode)
	}
	conn := dialGRPC(t, sr.grpcAddr)
	if _, err := ptraceotlp.NewGRPCClient(conn).Export(context.Background(),
		ptraceotlp.NewExportRequestFromTraces(otlptest.FeedTraces(20, 2))); err != nil {
		t.Errorf("gRPC export: %v", err)
	}
	if got := len(sr.w.stored()); got != 40 {
		t.Errorf("stored %d spans, want the fast clients' 40", got)
	}
	if got := sr.budget.reserved(); got != slow*size {
		t.Errorf("%d body bytes reserved, want the slow bodies' %d (they must still be in flight)", got, slow*size)
	}
	for _, e := range exports {
		e.stop()
	}
	waitFor(t, "the slow bodies' budget to come back", func() bool { return sr.budget.reserved() == 0 })
}

// TestSlowBodyIsCut: a body slower than MinBodyRate after the grace is
// answered 408 and gives its budget back.
func TestSlowBodyIsCut(t *testing.T) {
	cfg := testConfig()
	cfg.BodyReadGrace = 300 * time.Millisecond
	sr := serveReceiver(t, cfg)
	e := startSlowExport(t, sr.httpAddr, "127.0.0.1", 100_000)
	resp, ok := <-e.resp
	if !ok {
		t.Fatal("no answer to a slow body")
	}
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("status %d, want 408", resp.StatusCode)
	}
	waitFor(t, "the budget to come back", func() bool { return sr.budget.reserved() == 0 })
	sr.keepsServing(t)
}

// TestBodyBudget: one client holds at most its share of the body budget
// (its next request is refused at once while others still get through),
// and when the whole budget is spent a request waits SlotWait, then 429.
func TestBodyBudget(t *testing.T) {
	const size = 64 << 10
	cfg := testConfig()
	cfg.MaxRequestBytes = size
	cfg.MaxBodyBytesPerClient = 2 * size
	cfg.MaxBodyBytesInFlight = 3 * size
	cfg.SlotWait = 10 * time.Millisecond
	cfg.BodyReadGrace, cfg.BodyReadTimeout = time.Hour, time.Hour
	tr := newTestReceiver(t, cfg)
	addr := strings.TrimPrefix(tr.srv.URL, "http://")
	small := func() io.Reader {
		return bytes.NewReader(protoBody(t, otlptest.FeedTraces(5, uint64(time.Now().UnixNano()))))
	}

	a1 := startSlowExport(t, addr, "127.0.0.1", size)
	a2 := startSlowExport(t, addr, "127.0.0.1", size)
	waitFor(t, "client A's bodies to be read", func() bool { return tr.budget.reserved() == 2*size })

	r := tr.do(t, httpReq{contentType: contentTypeProtobuf, body: small(), from: "127.0.0.1"})
	if st := decodeStatus(t, r); r.status != http.StatusTooManyRequests || !strings.Contains(st.GetMessage(), "this client") ||
		codes.Code(st.GetCode()) != codes.ResourceExhausted || r.header.Get("Retry-After") == "" {
		t.Errorf("client A past its share: status %d %q, want 429 naming the client", r.status, st.GetMessage())
	}
	decodeSuccess(t, tr.do(t, httpReq{contentType: contentTypeProtobuf, body: small(), from: "127.0.0.2"}), contentTypeProtobuf)

	startSlowExport(t, addr, "127.0.0.3", size)
	waitFor(t, "the budget to be spent", func() bool { return tr.budget.reserved() == 3*size })
	r = tr.do(t, httpReq{contentType: contentTypeProtobuf, body: small(), from: "127.0.0.2"})
	if st := decodeStatus(t, r); r.status != http.StatusTooManyRequests || !strings.Contains(st.GetMessage(), "too many request bodies") {
		t.Errorf("budget spent: status %d %q, want 429", r.status, st.GetMessage())
	}
	a1.stop()
	a2.stop()
	waitFor(t, "client A's budget to come back", func() bool { return tr.budget.reserved() == size })
	decodeSuccess(t, tr.do(t, httpReq{contentType: contentTypeProtobuf, body: small(), from: "127.0.0.1"}), contentTypeProtobuf)
}

// TestChunkedBodyGrowsItsReservation: a body without Content-Length
// reserves as it grows, and gives it all back.
func TestChunkedBodyGrowsItsReservation(t *testing.T) {
	tr := newTestReceiver(t, httpConfig())
	body := protoBody(t, otlptest.FeedTraces(150, 1))
	if len(body) <= 2*firstChunkReserve {
		t.Fatalf("body of %d bytes does not outgrow a first reservation", len(body))
	}
	decodeSuccess(t, tr.do(t, httpReq{contentType: contentTypeProtobuf, body: noLen{bytes.NewReader(body)}}), contentTypeProtobuf)
	if got := len(tr.w.stored()); got != 150 {
		t.Errorf("stored %d spans, want 150", got)
	}
	if n := tr.budget.reserved(); n != 0 {
		t.Errorf("%d bytes still reserved", n)
	}
}
