package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tailscope/tailscope/ingest/internal/otlptest"
	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/store"
)

// httpConfig has small limits so the limit tests stay cheap.
func httpConfig() Config {
	cfg := testConfig()
	cfg.MaxRequestBytes = 256 << 10
	cfg.MaxDecompressedBytes = 1 << 20
	cfg.MaxSpansPerRequest = 200
	cfg.QueueSpans = 200
	return cfg
}

type testReceiver struct {
	*Receiver
	w   *memWriter
	reg *prometheus.Registry
	srv *httptest.Server
}

func newTestReceiver(t *testing.T, cfg Config) *testReceiver {
	t.Helper()
	w := newMemWriter()
	reg := prometheus.NewRegistry()
	r, err := New(cfg, w, &fakeDeploys{}, reg, testenv.Logger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &testReceiver{Receiver: r, w: w, reg: reg, srv: srv}
}

func protoBody(t testing.TB, td ptrace.Traces) []byte {
	t.Helper()
	var m ptrace.ProtoMarshaler
	b, err := m.MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jsonBody(t testing.TB, td ptrace.Traces) []byte {
	t.Helper()
	var m ptrace.JSONMarshaler
	b, err := m.MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type httpReq struct {
	method, path, contentType, encoding string
	body                                io.Reader
	from                                string // local IP to send from (default 127.0.0.1)
}

type httpResp struct {
	status int
	header http.Header
	body   []byte
}

func (tr *testReceiver) do(t *testing.T, r httpReq) httpResp {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.path == "" {
		r.path = TracesPath
	}
	req, err := http.NewRequest(r.method, tr.srv.URL+r.path, r.body)
	if err != nil {
		t.Fatal(err)
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.encoding != "" {
		req.Header.Set("Content-Encoding", r.encoding)
	}
	client := tr.srv.Client()
	if r.from != "" {
		client = clientFrom(r.from)
		defer client.CloseIdleConnections()
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return httpResp{resp.StatusCode, resp.Header, body}
}

// post sends a body in one encoding.
func (tr *testReceiver) post(t *testing.T, contentType, encoding string, body []byte) httpResp {
	t.Helper()
	return tr.do(t, httpReq{contentType: contentType, encoding: encoding, body: bytes.NewReader(body)})
}

// decodeSuccess parses a 200 answer in the format of contentType.
func decodeSuccess(t *testing.T, r httpResp, contentType string) ptraceotlp.ExportResponse {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200; body %q", r.status, r.body)
	}
	resp := ptraceotlp.NewExportResponse()
	var err error
	if strings.HasPrefix(contentType, contentTypeJSON) {
		err = resp.UnmarshalJSON(r.body)
	} else {
		err = resp.UnmarshalProto(r.body)
	}
	if err != nil {
		t.Fatalf("decode ExportTraceServiceResponse %q: %v", r.body, err)
	}
	return resp
}

// decodeStatus parses an error answer's google.rpc.Status.
func decodeStatus(t *testing.T, r httpResp) *spb.Status {
	t.Helper()
	st := &spb.Status{}
	var err error
	switch ct := r.header.Get("Content-Type"); ct {
	case contentTypeJSON:
		err = protojson.Unmarshal(r.body, st)
	case contentTypeProtobuf:
		err = proto.Unmarshal(r.body, st)
	default:
		t.Fatalf("error answer with content type %q", ct)
	}
	if err != nil {
		t.Fatalf("decode google.rpc.Status %q: %v", r.body, err)
	}
	return st
}

// keepsServing checks a valid export still succeeds.
func (tr *testReceiver) keepsServing(t *testing.T) {
	t.Helper()
	r := tr.post(t, contentTypeProtobuf, "", protoBody(t, otlptest.FeedTraces(10, uint64(time.Now().UnixNano()))))
	if r.status != http.StatusOK {
		t.Fatalf("valid export after the case: status %d %q", r.status, r.body)
	}
}

func TestHTTPAccepts(t *testing.T) {
	td := otlptest.FeedTraces(100, 7)
	tests := []struct {
		name, contentType, encoding string
		body                        []byte
	}{
		{"protobuf", contentTypeProtobuf, "", protoBody(t, td)},
		{"json", contentTypeJSON, "", jsonBody(t, td)},
		{"json with charset", "application/json; charset=utf-8", "", jsonBody(t, td)},
		{"protobuf gzip", contentTypeProtobuf, "gzip", gzipped(t, protoBody(t, td))},
		{"json gzip", contentTypeJSON, "GZIP", gzipped(t, jsonBody(t, td))},
		{"identity encoding", contentTypeProtobuf, "identity", protoBody(t, td)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTestReceiver(t, httpConfig())
			r := tr.post(t, tt.contentType, tt.encoding, tt.body)
			resp := decodeSuccess(t, r, tt.contentType)
			if resp.PartialSuccess().RejectedSpans() != 0 || resp.PartialSuccess().ErrorMessage() != "" {
				t.Errorf("partial success on a valid request: %d %q", resp.PartialSuccess().RejectedSpans(), resp.PartialSuccess().ErrorMessage())
			}
			wantCT := contentTypeProtobuf
			if strings.HasPrefix(tt.contentType, contentTypeJSON) {
				wantCT = contentTypeJSON
			}
			if ct := r.header.Get("Content-Type"); ct != wantCT {
				t.Errorf("answer content type %q, want %q", ct, wantCT)
			}
			// 200 means committed: the spans are in the store now.
			stored := tr.w.stored()
			if len(stored) != 100 {
				t.Fatalf("stored %d spans, want 100", len(stored))
			}
			deps := map[string]int{}
			for _, s := range stored {
				deps[s.Dependency]++
				if s.Service != "feed-api" || s.Version != "v2" {
					t.Fatalf("span %s/%s", s.Service, s.Version)
				}
			}
			if deps["postgresql/feed"] != 30 || deps["profile-svc"] != 10 {
				t.Errorf("dependencies = %v", deps)
			}
			if got := testutil.ToFloat64(tr.m.spansAccepted.WithLabelValues(protoHTTP)); got != 100 {
				t.Errorf("spans_accepted_total = %v, want 100", got)
			}
			// Resending the same request stores nothing new.
			decodeSuccess(t, tr.post(t, tt.contentType, tt.encoding, tt.body), tt.contentType)
			if got := len(tr.w.stored()); got != 100 {
				t.Errorf("after a resend: %d spans stored, want 100", got)
			}
		})
	}
}

func TestHTTPPartialSuccess(t *testing.T) {
	for _, ct := range []string{contentTypeProtobuf, contentTypeJSON} {
		t.Run(ct, func(t *testing.T) {
			tr := newTestReceiver(t, httpConfig())
			td := otlptest.FeedTraces(10, 1)
			spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
			bad := spans.At(0)
			bad.SetEndTimestamp(bad.StartTimestamp() - 1)
			spans.At(1).SetSpanID([8]byte{})
			body := protoBody(t, td)
			if ct == contentTypeJSON {
				body = jsonBody(t, td)
			}
			resp := decodeSuccess(t, tr.post(t, ct, "", body), ct)
			ps := resp.PartialSuccess()
			if ps.RejectedSpans() != 2 {
				t.Errorf("rejected_spans = %d, want 2", ps.RejectedSpans())
			}
			for _, want := range []string{"rejected 2 of 10 spans", "end time before start time", "invalid span id"} {
				if !strings.Contains(ps.ErrorMessage(), want) {
					t.Errorf("error_message %q lacks %q", ps.ErrorMessage(), want)
				}
			}
			if got := len(tr.w.stored()); got != 8 {
				t.Errorf("stored %d spans, want the 8 valid ones", got)
			}
			if got := testutil.ToFloat64(tr.m.spansRejected.WithLabelValues("end_before_start")); got != 1 {
				t.Errorf("spans_rejected_total{end_before_start} = %v", got)
			}
		})
	}
}

// gzipBomb is a small gzip body that inflates to n bytes.
func gzipBomb(t *testing.T, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zero := make([]byte, 64<<10)
	for written := 0; written < n; written += len(zero) {
		if _, err := zw.Write(zero); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// noLen hides a reader's length so the client sends it chunked.
type noLen struct{ io.Reader }

func TestHTTPErrors(t *testing.T) {
	cfg := httpConfig()
	big := make([]byte, cfg.MaxRequestBytes+1)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	bomb := gzipBomb(t, 8<<20)
	if int64(len(bomb)) > cfg.MaxRequestBytes {
		t.Fatalf("bomb of %d bytes is not small", len(bomb))
	}
	tooMany := protoBody(t, otlptest.FeedTraces(cfg.MaxSpansPerRequest+1, 1))

	tests := []struct {
		name       string
		req        func() httpReq
		wantStatus int
		wantCode   codes.Code
		wantAllow  string
		wantInMsg  string
	}{
		{name: "garbage protobuf", req: func() httpReq {
			return httpReq{contentType: contentTypeProtobuf, body: strings.NewReader("\x0a\xff\xff")}
		}, wantStatus: 400, wantCode: codes.InvalidArgument, wantInMsg: "decode protobuf"},
		{name: "garbage json", req: func() httpReq {
			return httpReq{contentType: contentTypeJSON, body: strings.NewReader(`{"resourceSpans":[{`)}
		}, wantStatus: 400, wantCode: codes.InvalidArgument, wantInMsg: "decode json"},
		{name: "json null", req: func() httpReq {
			return httpReq{contentType: contentTypeJSON, body: strings.NewReader("null")}
		}, wantStatus: 400, wantCode: codes.InvalidArgument, wantInMsg: "must be a JSON object"},
		{name: "json array", req: func() httpReq {
			return httpReq{contentType: contentTypeJSON, body: strings.NewReader(" [] ")}
		}, wantStatus: 400, wantCode: codes.InvalidArgument, wantInMsg: "must be a JSON object"},
		// A payload pdata refuses is refused whole, as the Collector does.
		{name: "wrong-length span id", req: func() httpReq {
			good := otlptest.Span{TraceID: bytes.Repeat([]byte{1}, 16), SpanID: bytes.Repeat([]byte{2}, 8),
				Name: "good", Start: otlptest.Base, End: otlptest.Base + 5}
			bad := good
			bad.SpanID = []byte{3, 3, 3}
			return httpReq{contentType: contentTypeProtobuf, body: bytes.NewReader(otlptest.ProtoRequest("svc", good, bad))}
		}, wantStatus: 400, wantCode: codes.InvalidArgument, wantInMsg: "decode protobuf"},
		{name: "wrong-length trace id, json", req: func() httpReq {
			return httpReq{contentType: contentTypeJSON, body: strings.NewReader(
				`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8e","spanId":"eee19b7ec3c1b174","startTimeUnixNano":"1"}]}]}]}`)}
		}, wantStatus: 400, wantCode: codes.InvalidArgument, wantInMsg: "decode json"},
		{name: "protobuf sent as json", req: func() httpReq {
			return httpReq{contentType: contentTypeJSON, body: bytes.NewReader(protoBody(t, otlptest.FeedTraces(3, 1)))}
		}, wantStatus: 400, wantCode: codes.InvalidArgument},
		{name: "corrupt gzip", req: func() httpReq {
			return httpReq{contentType: contentTypeProtobuf, encoding: "gzip", body: strings.NewReader("not gzip at all")}
		}, wantStatus: 400, wantCode: codes.InvalidArgument, wantInMsg: "gunzip body"},
		{name: "truncated gzip", req: func() httpReq {
			gz := gzipped(t, protoBody(t, otlptest.FeedTraces(20, 1)))
			return httpReq{contentType: contentTypeProtobuf, encoding: "gzip", body: bytes.NewReader(gz[:len(gz)/2])}
		}, wantStatus: 400, wantCode: codes.InvalidArgument},
		{name: "unknown path", req: func() httpReq {
			return httpReq{path: "/v1/metrics", contentType: contentTypeProtobuf, body: strings.NewReader("")}
		}, wantStatus: 404, wantCode: codes.NotFound},
		{name: "GET", req: func() httpReq {
			return httpReq{method: http.MethodGet, contentType: contentTypeJSON}
		}, wantStatus: 405, wantCode: codes.Unimplemented, wantAllow: "POST"},
		{name: "PUT", req: func() httpReq {
			return httpReq{method: http.MethodPut, contentType: contentTypeProtobuf, body: strings.NewReader("")}
		}, wantStatus: 405, wantCode: codes.Unimplemented, wantAllow: "POST"},
		{name: "body over the limit with a length", req: func() httpReq {
			return httpReq{contentType: contentTypeProtobuf, body: bytes.NewReader(big)}
		}, wantStatus: 413, wantCode: codes.ResourceExhausted, wantInMsg: "exceeds the limit"},
		{name: "body over the limit chunked", req: func() httpReq {
			return httpReq{contentType: contentTypeProtobuf, body: noLen{bytes.NewReader(big)}}
		}, wantStatus: 413, wantCode: codes.ResourceExhausted, wantInMsg: "exceeds the limit"},
		{name: "gzip bomb", req: func() httpReq {
			return httpReq{contentType: contentTypeProtobuf, encoding: "gzip", body: bytes.NewReader(bomb)}
		}, wantStatus: 413, wantCode: codes.ResourceExhausted, wantInMsg: "decompressed body exceeds"},
		{name: "too many spans", req: func() httpReq {
			return httpReq{contentType: contentTypeProtobuf, body: bytes.NewReader(tooMany)}
		}, wantStatus: 413, wantCode: codes.InvalidArgument, wantInMsg: "send smaller batches"},
		{name: "unknown content type", req: func() httpReq {
			return httpReq{contentType: "text/plain", body: strings.NewReader("hello")}
		}, wantStatus: 415, wantCode: codes.InvalidArgument, wantInMsg: "unsupported content type"},
		{name: "no content type", req: func() httpReq {
			return httpReq{body: strings.NewReader("hello")}
		}, wantStatus: 415, wantCode: codes.InvalidArgument},
		{name: "unknown content encoding", req: func() httpReq {
			return httpReq{contentType: contentTypeProtobuf, encoding: "br", body: strings.NewReader("x")}
		}, wantStatus: 415, wantCode: codes.InvalidArgument, wantInMsg: "unsupported content encoding"},
	}
	tr := newTestReceiver(t, cfg) // one server: it must survive every case
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tr.do(t, tt.req())
			if r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %q", r.status, tt.wantStatus, r.body)
			}
			st := decodeStatus(t, r)
			if codes.Code(st.GetCode()) != tt.wantCode {
				t.Errorf("status code %v, want %v", codes.Code(st.GetCode()), tt.wantCode)
			}
			if !strings.Contains(st.GetMessage(), tt.wantInMsg) {
				t.Errorf("message %q lacks %q", st.GetMessage(), tt.wantInMsg)
			}
			if got := r.header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
			if ra := r.header.Get("Retry-After"); ra != "" {
				t.Errorf("Retry-After %q on a non-retryable answer", ra)
			}
			tr.keepsServing(t)
		})
	}
	if n := len(tr.slots); n != 0 {
		t.Errorf("%d decode slots still held after the errors", n)
	}
	if n := tr.budget.reserved(); n != 0 {
		t.Errorf("%d body bytes still reserved after the errors", n)
	}
	if n := len(tr.w.stored()); n != 10*len(tests) {
		t.Errorf("stored %d spans, want only keepsServing's %d", n, 10*len(tests))
	}
}

func TestHTTPErrorBodyInRequestFormat(t *testing.T) {
	tr := newTestReceiver(t, httpConfig())
	for _, ct := range []string{contentTypeProtobuf, contentTypeJSON + "; charset=utf-8"} {
		r := tr.post(t, ct, "", []byte("\x0a\xff\xff"))
		want := contentTypeProtobuf
		if strings.HasPrefix(ct, contentTypeJSON) {
			want = contentTypeJSON
		}
		if got := r.header.Get("Content-Type"); got != want {
			t.Errorf("request %s: error answer in %s, want %s", ct, got, want)
		}
		decodeStatus(t, r)
	}
}

func TestHTTPOverloadedQueue(t *testing.T) {
	cfg := httpConfig()
	cfg.QueueSpans = cfg.MaxSpansPerRequest
	tr := newTestReceiver(t, cfg)
	entered, release := tr.w.hold()
	defer release()

	first := make(chan httpResp, 1)
	go func() { first <- tr.post(t, contentTypeProtobuf, "", protoBody(t, otlptest.FeedTraces(150, 1))) }()
	<-entered // 150 of 200 queue spans are being committed

	r := tr.post(t, contentTypeProtobuf, "", protoBody(t, otlptest.FeedTraces(100, 2)))
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429; body %q", r.status, r.body)
	}
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1", got)
	}
	if st := decodeStatus(t, r); codes.Code(st.GetCode()) != codes.ResourceExhausted {
		t.Errorf("status code %v", codes.Code(st.GetCode()))
	}
	release()
	decodeSuccess(t, <-first, contentTypeProtobuf)
	tr.keepsServing(t)
	if got := testutil.ToFloat64(tr.m.requests.WithLabelValues(protoHTTP, outcomeOverloaded)); got != 1 {
		t.Errorf("requests_total{overloaded} = %v", got)
	}
}

// holdSlots takes every decode slot of r, as requests being decoded would;
// the returned function gives them back.
func holdSlots(r *Receiver) func() {
	for range cap(r.slots) {
		r.slots <- struct{}{}
	}
	return sync.OnceFunc(func() {
		for range cap(r.slots) {
			<-r.slots
		}
	})
}

func TestHTTPOverloadedDecoders(t *testing.T) {
	cfg := httpConfig()
	cfg.MaxConcurrentDecodes = 1
	cfg.SlotWait = 50 * time.Millisecond // then refuse
	tr := newTestReceiver(t, cfg)
	release := holdSlots(tr.Receiver)
	defer release()
	r := tr.post(t, contentTypeProtobuf, "", protoBody(t, otlptest.FeedTraces(5, 2)))
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("status %d Retry-After %q, want 429 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
	release()
	tr.keepsServing(t)
	if n := tr.budget.reserved(); n != 0 {
		t.Errorf("%d body bytes still reserved", n)
	}
}

func TestHTTPStoreUnavailable(t *testing.T) {
	tr := newTestReceiver(t, httpConfig())
	for _, failure := range []error{errStoreDown, fmt.Errorf("some driver error")} {
		tr.w.setFail(func([]store.Span) error { return failure })
		for _, ct := range []string{contentTypeProtobuf, contentTypeJSON} {
			body := protoBody(t, otlptest.FeedTraces(10, 3))
			if ct == contentTypeJSON {
				body = jsonBody(t, otlptest.FeedTraces(10, 3))
			}
			r := tr.post(t, ct, "", body)
			if r.status != http.StatusServiceUnavailable {
				t.Fatalf("%v: status %d, want 503; body %q", failure, r.status, r.body)
			}
			if got := r.header.Get("Retry-After"); got != "1" {
				t.Errorf("Retry-After = %q, want 1", got)
			}
			if st := decodeStatus(t, r); codes.Code(st.GetCode()) != codes.Unavailable {
				t.Errorf("status code %v, want Unavailable", codes.Code(st.GetCode()))
			}
		}
	}
	if len(tr.w.stored()) != 0 {
		t.Fatal("spans stored during the outage")
	}
	tr.w.setFail(nil) // the store is back: ingestion resumes by itself
	tr.keepsServing(t)
	if got := len(tr.w.stored()); got != 10 {
		t.Errorf("stored %d spans after recovery, want 10", got)
	}
}

// A burst waits briefly for a decode slot instead of bouncing off a 429.
func TestHTTPWaitsForADecodeSlot(t *testing.T) {
	cfg := httpConfig()
	cfg.MaxConcurrentDecodes = 1
	cfg.SlotWait = time.Minute // the test releases the slot well before
	tr := newTestReceiver(t, cfg)
	release := holdSlots(tr.Receiver)
	defer release()
	first := make(chan httpResp, 1)
	go func() { first <- tr.post(t, contentTypeProtobuf, "", protoBody(t, otlptest.FeedTraces(5, 1))) }()
	waitFor(t, "the request to wait", func() bool { return len(tr.waiters) == 1 })
	release()
	decodeSuccess(t, <-first, contentTypeProtobuf)
	second := tr.post(t, contentTypeProtobuf, "", protoBody(t, otlptest.FeedTraces(5, 2)))
	decodeSuccess(t, second, contentTypeProtobuf)
	if got := len(tr.w.stored()); got != 10 {
		t.Errorf("stored %d spans, want both requests' 10", got)
	}
}
