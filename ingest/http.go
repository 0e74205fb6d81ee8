package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tailscope/tailscope/ingest/otlpconv"
)

// TracesPath is the OTLP/HTTP traces endpoint.
const TracesPath = "/v1/traces"

// Media types of OTLP/HTTP.
const (
	contentTypeProtobuf = "application/x-protobuf"
	contentTypeJSON     = "application/json"
)

// Handler serves POST /v1/traces (OTLP/HTTP): 405 with Allow for other
// methods, 404 for other paths. Answers, success or error, are in the
// request's encoding: an ExportTraceServiceResponse, or a google.rpc.Status
// for errors (JSON when the request's type is unsupported).
func (r *Receiver) Handler() http.Handler {
	return http.HandlerFunc(r.serveHTTP)
}

// wireFormat is a request's encoding.
type wireFormat int

const (
	formatJSON wireFormat = iota // also for answers to unsupported types
	formatProtobuf
)

func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	format, typeOK := requestFormat(req.Header.Get("Content-Type"))
	if req.URL.Path != TracesPath {
		r.fail(w, format, http.StatusNotFound, codes.NotFound, outcomeNotFound, "no such endpoint: OTLP traces are accepted at "+TracesPath)
		return
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.fail(w, format, http.StatusMethodNotAllowed, codes.Unimplemented, outcomeBadMethod, "method "+req.Method+" not allowed: use POST")
		return
	}
	tenant, authOK := r.caller(req.Header.Get("Authorization"))
	if !authOK {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tailscope ingest"`)
		r.fail(w, format, http.StatusUnauthorized, codes.Unauthenticated, outcomeUnauthenticated, unauthenticatedMessage)
		return
	}
	if !typeOK {
		r.fail(w, formatJSON, http.StatusUnsupportedMediaType, codes.InvalidArgument, outcomeUnsupported,
			fmt.Sprintf("unsupported content type %q: use %s or %s", req.Header.Get("Content-Type"), contentTypeProtobuf, contentTypeJSON))
		return
	}
	gzipped, encOK := requestEncoding(req.Header.Get("Content-Encoding"))
	if !encOK {
		r.fail(w, format, http.StatusUnsupportedMediaType, codes.InvalidArgument, outcomeUnsupported,
			fmt.Sprintf("unsupported content encoding %q: use gzip or none", req.Header.Get("Content-Encoding")))
		return
	}
	if req.ContentLength > r.cfg.MaxRequestBytes {
		r.fail(w, format, http.StatusRequestEntityTooLarge, codes.ResourceExhausted, outcomeTooLarge,
			fmt.Sprintf("body of %d bytes exceeds the limit of %d", req.ContentLength, r.cfg.MaxRequestBytes))
		return
	}
	if r.pipe.Saturated() {
		// Reading and decoding spans the queue would refuse is wasted work.
		r.overloaded(w, format, "commit queue full")
		return
	}
	// The body is read before a decode slot is taken (body.go).
	body, herr := r.readWire(w, req)
	if herr != nil {
		if herr.status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", strconv.Itoa(r.retryAfterSeconds()))
		}
		r.fail(w, format, herr.status, herr.code, herr.outcome, herr.msg)
		return
	}
	defer body.free()
	if !r.acquire(req.Context()) {
		r.overloaded(w, format, "too many requests being decoded")
		return
	}
	// The slot is held until the spans are converted; every path below
	// releases it exactly once.
	var once sync.Once
	release := func() { once.Do(r.releaseSlot) }
	defer release()

	start := time.Now()
	td, herr := r.decodeHTTP(body, format, gzipped)
	if herr != nil {
		r.fail(w, format, herr.status, herr.code, herr.outcome, herr.msg)
		return
	}
	encLabel := encodingJSON
	if format == formatProtobuf {
		encLabel = encodingProtobuf
	}
	res, err := r.export(req.Context(), protoHTTP, td, tenant, func() {
		r.m.decodeSeconds.WithLabelValues(encLabel).Observe(time.Since(start).Seconds())
		release()
	})
	switch {
	case errors.Is(err, errTooManySpans):
		r.fail(w, format, http.StatusRequestEntityTooLarge, codes.InvalidArgument, outcomeTooLarge, err.Error())
		return
	case errors.Is(err, ErrOverloaded):
		r.overloaded(w, format, err.Error())
		return
	case err != nil:
		// The pipeline logged the store error, once per batch.
		w.Header().Set("Retry-After", strconv.Itoa(r.retryAfterSeconds()))
		r.fail(w, format, http.StatusServiceUnavailable, codes.Unavailable, outcomeUnavailable, unavailableMessage(err))
		return
	}
	r.succeed(w, format, res)
}

// httpError is a failed request's answer.
type httpError struct {
	status  int
	code    codes.Code
	outcome string
	msg     string
}

// decodeHTTP decompresses and decodes a body read by readWire. The body
// buffers go back to the pool before it returns: pdata copies what it
// keeps, and a handler waiting for its commit must hold only its converted
// spans, which the queue accounts for.
func (r *Receiver) decodeHTTP(body *wireBody, format wireFormat, gzipped bool) (ptrace.Traces, *httpError) {
	defer body.free()
	raw := body.buf.Bytes()
	if gzipped {
		buf := r.getBuffer()
		defer r.putBuffer(buf)
		if err := r.gunzip(raw, buf); err != nil {
			var tooBig *bodyTooLargeError
			if errors.As(err, &tooBig) {
				return ptrace.Traces{}, &httpError{http.StatusRequestEntityTooLarge, codes.ResourceExhausted, outcomeTooLarge, tooBig.Error()}
			}
			return ptrace.Traces{}, &httpError{http.StatusBadRequest, codes.InvalidArgument, outcomeBadRequest, "gunzip body: " + err.Error()}
		}
		raw = buf.Bytes()
	}
	var (
		td  ptrace.Traces
		err error
	)
	if format == formatProtobuf {
		td, err = otlpconv.DecodeProto(raw)
	} else {
		td, err = otlpconv.DecodeJSON(raw)
	}
	if err != nil {
		return ptrace.Traces{}, &httpError{http.StatusBadRequest, codes.InvalidArgument, outcomeBadRequest, err.Error()}
	}
	return td, nil
}

// requestFormat maps a Content-Type (parameters allowed) to a format.
func requestFormat(contentType string) (wireFormat, bool) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return formatJSON, false
	}
	switch mt {
	case contentTypeProtobuf, "application/protobuf":
		return formatProtobuf, true
	case contentTypeJSON:
		return formatJSON, true
	}
	return formatJSON, false
}

// requestEncoding reports whether a Content-Encoding is gzip, and whether
// it is supported at all.
func requestEncoding(enc string) (gzipped, ok bool) {
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "", "identity":
		return false, true
	case "gzip", "x-gzip":
		return true, true
	}
	return false, false
}

type bodyTooLargeError struct {
	what  string
	limit int64
}

func (e *bodyTooLargeError) Error() string {
	return fmt.Sprintf("%s exceeds the limit of %d bytes", e.what, e.limit)
}

// gunzip decompresses b into buf, at most MaxDecompressedBytes, streaming
// so that a gzip bomb costs no more than the limit.
func (r *Receiver) gunzip(b []byte, buf *bytes.Buffer) error {
	zr, err := r.getGzipReader(bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer r.gzips.Put(zr)
	limit := r.cfg.MaxDecompressedBytes
	n, err := buf.ReadFrom(io.LimitReader(zr, limit+1))
	if err != nil {
		return err
	}
	if n > limit {
		return &bodyTooLargeError{what: "decompressed body", limit: limit}
	}
	return nil
}

// unavailableMessage tells a client why its spans were not committed
// without passing on store error text, which may name hosts and users.
func unavailableMessage(err error) string {
	switch {
	case errors.Is(err, ErrClosed):
		return "receiver shutting down; retry later"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "request ended before its spans were committed; retry"
	default:
		return "spans not committed: store unavailable; retry later"
	}
}

// statusMessage makes an error message fit a protobuf string: decoder
// errors may quote the client's bytes, which need not be UTF-8, and
// protobuf refuses to marshal such strings.
func statusMessage(msg string) string {
	const maxLen = 1024
	if len(msg) > maxLen {
		msg = msg[:maxLen] + "…"
	}
	return strings.ToValidUTF8(msg, "\uFFFD")
}

func (r *Receiver) overloaded(w http.ResponseWriter, format wireFormat, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(r.retryAfterSeconds()))
	r.fail(w, format, http.StatusTooManyRequests, codes.ResourceExhausted, outcomeOverloaded, msg)
}

// fail answers an error with a google.rpc.Status body, as the OTLP/HTTP
// specification asks.
func (r *Receiver) fail(w http.ResponseWriter, format wireFormat, status int, code codes.Code, outcome, msg string) {
	r.m.requests.WithLabelValues(protoHTTP, outcome).Inc()
	st := &spb.Status{Code: int32(code), Message: statusMessage(msg)}
	var (
		body []byte
		err  error
	)
	if format == formatProtobuf {
		body, err = proto.Marshal(st)
	} else {
		body, err = protojson.Marshal(st)
	}
	if err != nil {
		// A Status of a code and a string always marshals; keep the status.
		body = nil
	}
	writeBody(w, format, status, body)
}

// succeed answers 200 with an ExportTraceServiceResponse carrying
// partial_success when spans were rejected.
func (r *Receiver) succeed(w http.ResponseWriter, format wireFormat, res otlpconv.Result) {
	outcome := outcomeOK
	resp := ptraceotlp.NewExportResponse()
	if n := res.Rejected(); n > 0 {
		outcome = outcomePartial
		resp.PartialSuccess().SetRejectedSpans(int64(n))
		resp.PartialSuccess().SetErrorMessage(res.Message())
	}
	r.m.requests.WithLabelValues(protoHTTP, outcome).Inc()
	var (
		body []byte
		err  error
	)
	if format == formatProtobuf {
		body, err = resp.MarshalProto()
	} else {
		body, err = resp.MarshalJSON()
	}
	if err != nil {
		// The spans are committed; an empty body still says so.
		r.log.Warn("otlp http: marshal response", "err", err)
		body = nil
	}
	writeBody(w, format, http.StatusOK, body)
}

func writeBody(w http.ResponseWriter, format wireFormat, status int, body []byte) {
	ct := contentTypeJSON
	if format == formatProtobuf {
		ct = contentTypeProtobuf
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client hanging up is not our error
}

// maxPooledBuffer bounds the body buffers kept for reuse: one huge
// request must not pin its memory for good.
const maxPooledBuffer = 1 << 20

func (r *Receiver) getBuffer() *bytes.Buffer {
	if b, ok := r.bufs.Get().(*bytes.Buffer); ok {
		return b
	}
	return new(bytes.Buffer)
}

func (r *Receiver) putBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	r.bufs.Put(b)
}

func (r *Receiver) getGzipReader(src io.Reader) (*gzip.Reader, error) {
	if zr, ok := r.gzips.Get().(*gzip.Reader); ok {
		if err := zr.Reset(src); err != nil {
			r.gzips.Put(zr)
			return nil, err
		}
		return zr, nil
	}
	return gzip.NewReader(src)
}
