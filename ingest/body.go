package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc/codes"
)

// HTTP bodies are read before their request takes a decode slot, so a
// client that sends slowly ties up bytes of a budget, not the slots every
// exporter needs (a slowloris with four connections used to refuse all
// ingest). Three rules bound what slow or greedy clients can hold:
//   - bytes in flight: a body reserves its size before its first byte is
//     read, from MaxBodyBytesInFlight;
//   - fairness: one client (remote IP) holds at most MaxBodyBytesPerClient
//     of it;
//   - pace: after BodyReadGrace a body must have averaged MinBodyRate, and
//     every body is read within BodyReadTimeout.

// errBodyBudget and errClientShare refuse a body for lack of budget (429).
var (
	errBodyBudget  = errors.New("too many request bodies being received; retry later")
	errClientShare = errors.New("this client is sending too many request bodies at once; retry later")
	// errSlowBody is a body that arrived slower than MinBodyRate (408).
	errSlowBody = errors.New("request body arrived too slowly")
)

// bodyBudget is the byte budget of bodies being read, with a share per
// client.
type bodyBudget struct {
	sem       *semaphore.Weighted
	perClient int64

	mu      sync.Mutex
	clients map[string]int64 // bytes reserved by each client
	total   int64
}

func newBodyBudget(total, perClient int64) *bodyBudget {
	return &bodyBudget{sem: semaphore.NewWeighted(total), perClient: perClient, clients: map[string]int64{}}
}

// reserve takes n bytes for client. Past the client's share it fails at
// once with errClientShare; when the shared budget is spent it waits up to
// wait, then fails with errBodyBudget.
func (b *bodyBudget) reserve(ctx context.Context, client string, n int64, wait time.Duration) error {
	if err := b.take(client, n); err != nil {
		return err
	}
	if b.sem.TryAcquire(n) {
		return nil
	}
	if wait > 0 {
		wctx, cancel := context.WithTimeout(ctx, wait)
		err := b.sem.Acquire(wctx, n)
		cancel()
		if err == nil {
			return nil
		}
	}
	b.give(client, n)
	return errBodyBudget
}

// grow reserves n more bytes for a body being read, without waiting.
func (b *bodyBudget) grow(client string, n int64) error {
	if err := b.take(client, n); err != nil {
		return err
	}
	if !b.sem.TryAcquire(n) {
		b.give(client, n)
		return errBodyBudget
	}
	return nil
}

// release returns n bytes reserved by client.
func (b *bodyBudget) release(client string, n int64) {
	b.sem.Release(n)
	b.give(client, n)
}

func (b *bodyBudget) take(client string, n int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.clients[client]+n > b.perClient {
		return errClientShare
	}
	b.clients[client] += n
	b.total += n
	return nil
}

func (b *bodyBudget) give(client string, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total -= n
	if b.clients[client] -= n; b.clients[client] <= 0 {
		delete(b.clients, client)
	}
}

// reserved returns the bytes reserved in all, for tests and metrics.
func (b *bodyBudget) reserved() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

// clientOf names the client of a request for fairness: its remote IP.
func clientOf(req *http.Request) string {
	if host, _, err := net.SplitHostPort(req.RemoteAddr); err == nil {
		return host
	}
	return req.RemoteAddr
}

// pacedReader reads a request body under a read deadline that moves with
// the bytes received: by grace + n/minRate after the start, n bytes must
// have arrived, and all of them by timeout. A client keeping a connection
// alive with a byte now and then is cut at the end of the grace.
type pacedReader struct {
	src      io.Reader
	rc       *http.ResponseController
	start    time.Time
	grace    time.Duration
	timeout  time.Duration
	minRate  int64
	n        int64
	deadline bool // the connection supports read deadlines
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if p.deadline {
		// In floating point: bytes × 1e9 overflows int64 past 9 GB.
		d := p.grace + time.Duration(float64(p.n)/float64(p.minRate)*float64(time.Second))
		if err := p.rc.SetReadDeadline(p.start.Add(min(d, p.timeout))); err != nil {
			p.deadline = false // not a net.Conn (an in-memory test server): no pace
		}
	}
	k, err := p.src.Read(b)
	p.n += int64(k)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("%w: %d bytes in %v; send at least %d bytes/s", errSlowBody, p.n, time.Since(p.start).Round(time.Millisecond), p.minRate)
	}
	return k, err
}

// A body of unknown length (chunked) reserves firstChunkReserve, then
// doubles its reservation each time it outgrows it, by at most
// chunkReserve at a time.
const (
	firstChunkReserve = 32 << 10
	chunkReserve      = 256 << 10
)

// wireBody is an HTTP body as sent, read before a decode slot is taken.
type wireBody struct {
	r        *Receiver
	buf      *bytes.Buffer
	client   string
	reserved int64
}

// free returns the buffer and the budget; it may be called more than once.
func (wb *wireBody) free() {
	if wb.buf == nil {
		return
	}
	wb.r.putBuffer(wb.buf)
	wb.r.budget.release(wb.client, wb.reserved)
	wb.buf, wb.reserved = nil, 0
}

// readWire reserves budget for the body of req and reads it, paced. The
// caller frees the result.
func (r *Receiver) readWire(w http.ResponseWriter, req *http.Request) (*wireBody, *httpError) {
	known := req.ContentLength >= 0
	want := int64(firstChunkReserve)
	if known {
		want = req.ContentLength
	}
	want = min(want, r.cfg.MaxRequestBytes)
	wb := &wireBody{r: r, client: clientOf(req)}
	if err := r.budget.reserve(req.Context(), wb.client, want, r.cfg.SlotWait); err != nil {
		return nil, overloadError(err)
	}
	wb.buf, wb.reserved = r.getBuffer(), want
	if known {
		wb.buf.Grow(int(want))
	}
	src := &pacedReader{
		src: http.MaxBytesReader(w, req.Body, r.cfg.MaxRequestBytes), rc: http.NewResponseController(w),
		start: time.Now(), grace: r.cfg.BodyReadGrace, timeout: r.cfg.BodyReadTimeout, minRate: r.cfg.MinBodyRate,
		deadline: true,
	}
	for {
		if room := wb.reserved - int64(wb.buf.Len()); room < bytes.MinRead {
			// Only a chunked body outgrows its reservation (a known length
			// is enforced by net/http); one past MaxRequestBytes is cut by
			// MaxBytesReader.
			more := min(max(wb.reserved, bytes.MinRead), chunkReserve)
			if err := r.budget.grow(wb.client, more); err != nil {
				wb.free()
				return nil, overloadError(err)
			}
			wb.reserved += more
		}
		wb.buf.Grow(bytes.MinRead)
		room := wb.reserved - int64(wb.buf.Len())
		b := wb.buf.AvailableBuffer()
		b = b[:min(int64(cap(b)), room)]
		n, err := src.Read(b)
		wb.buf.Write(b[:n])
		if err == io.EOF {
			return wb, nil
		}
		if err != nil {
			wb.free()
			return nil, bodyReadError(err, r.cfg.MaxRequestBytes)
		}
	}
}

// overloadError answers a refused reservation with 429.
func overloadError(err error) *httpError {
	return &httpError{http.StatusTooManyRequests, codes.ResourceExhausted, outcomeOverloaded, err.Error()}
}

// bodyReadError classifies a failed body read: too large (413), too slow
// (408) or broken (400).
func bodyReadError(err error, limit int64) *httpError {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return &httpError{http.StatusRequestEntityTooLarge, codes.ResourceExhausted, outcomeTooLarge,
			(&bodyTooLargeError{what: "body", limit: limit}).Error()}
	case errors.Is(err, errSlowBody):
		return &httpError{http.StatusRequestTimeout, codes.DeadlineExceeded, outcomeSlowBody, err.Error()}
	}
	return &httpError{http.StatusBadRequest, codes.InvalidArgument, outcomeBadRequest, "read body: " + err.Error()}
}
