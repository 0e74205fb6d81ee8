package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tailscope/tailscope/app"
)

// TestBadInputKeepsServing sends the real server one request of each kind
// of bad input, checks the documented answer, and after each one checks
// that a valid export still succeeds and is readable through the API.
func TestBadInputKeepsServing(t *testing.T) {
	const maxBody, maxDecompressed = 1 << 20, 2 << 20
	a := startApp(t, backends()[0].url(t), func(cfg *app.Config) {
		cfg.Ingest.MaxRequestBytes = maxBody
		cfg.Ingest.MaxDecompressedBytes = maxDecompressed
	})
	c := newClient(t, 2)
	ft := newFeedTemplate(t, feedShape{Service: "e2e-bad-input", Traces: 1, SpansPerTrace: 10, Start: time.Now()})
	otlpURL := "http://" + a.OTLPHTTPAddr() + "/v1/traces"

	big := make([]byte, maxBody+1)
	rand.Read(big)
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	zw.Write(make([]byte, maxDecompressed+1))
	zw.Close()

	// A request of three spans, the last with an all-zero trace id. Its
	// number is apart from those of the valid exports (1, 2, …).
	const partialReq = 1000
	partial := buildFeed(feedShape{Service: "e2e-bad-input", Traces: 1, SpansPerTrace: 3, Start: time.Now()}, ft.nonce, partialReq)
	partial.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(2).SetTraceID(pcommon.NewTraceIDEmpty())
	var pm ptrace.ProtoMarshaler
	partialBody, err := pm.MarshalTraces(partial)
	if err != nil {
		t.Fatal(err)
	}
	partialTrace := feedTraceID(ft.nonce, partialReq, 0).String()

	post := func(ct, enc string, body io.Reader) func(context.Context) *http.Request {
		return func(ctx context.Context) *http.Request {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, otlpURL, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", ct)
			if enc != "" {
				req.Header.Set("Content-Encoding", enc)
			}
			return req
		}
	}
	tests := []struct {
		name       string
		req        func(context.Context) *http.Request
		wantStatus int
		wantCode   codes.Code // of the google.rpc.Status body of an error
		wantAllow  string
	}{
		{name: "garbage protobuf", req: post(ctProtobuf, "", strings.NewReader("\x0a\xff\xff\xff")),
			wantStatus: 400, wantCode: codes.InvalidArgument},
		{name: "bad json", req: post(ctJSON, "", strings.NewReader(`{"resourceSpans":[{`)),
			wantStatus: 400, wantCode: codes.InvalidArgument},
		{name: "json null", req: post(ctJSON, "", strings.NewReader("null")),
			wantStatus: 400, wantCode: codes.InvalidArgument},
		{name: "over-size body", req: post(ctProtobuf, "", bytes.NewReader(big)),
			wantStatus: 413, wantCode: codes.ResourceExhausted},
		{name: "over-size body chunked", req: post(ctProtobuf, "", struct{ io.Reader }{bytes.NewReader(big)}),
			wantStatus: 413, wantCode: codes.ResourceExhausted},
		{name: "gzip bomb", req: post(ctProtobuf, "gzip", bytes.NewReader(bomb.Bytes())),
			wantStatus: 413, wantCode: codes.ResourceExhausted},
		{name: "unsupported content type", req: post("text/plain", "", strings.NewReader("hello")),
			wantStatus: 415, wantCode: codes.InvalidArgument},
		{name: "GET", req: func(ctx context.Context) *http.Request {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, otlpURL, nil)
			return req
		}, wantStatus: 405, wantCode: codes.Unimplemented, wantAllow: "POST"},
		{name: "zero trace id", req: post(ctProtobuf, "", bytes.NewReader(partialBody)), wantStatus: 200},
	}
	next := uint32(1)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			r, err := doOTLP(c, tt.req(ctx))
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %q", r.status, tt.wantStatus, r.body)
			}
			if got := r.header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow %q, want %q", got, tt.wantAllow)
			}
			if tt.wantStatus == 200 {
				// The valid spans are committed; the bad one is named.
				if r.rejected != 1 || !strings.Contains(r.message, "invalid trace id") {
					t.Errorf("partial_success rejected %d, %q; want 1 invalid trace id", r.rejected, r.message)
				}
				if tr := waitTrace(t, c, a.URL(), partialTrace, 2); len(tr.Spans) != 2 {
					t.Errorf("trace of the partial request has %d spans, want the 2 valid ones", len(tr.Spans))
				}
			} else {
				st := rpcStatus(t, r)
				if codes.Code(st.GetCode()) != tt.wantCode || st.GetMessage() == "" {
					t.Errorf("status body code %v message %q, want code %v and a message", codes.Code(st.GetCode()), st.GetMessage(), tt.wantCode)
				}
			}

			// The server keeps serving: a valid export is committed and
			// readable.
			req := next
			next++
			ok, err := postOTLP(ctx, c, a.OTLPHTTPAddr(), ft.request(nil, req), ctProtobuf, "")
			if err != nil {
				t.Fatalf("valid export after %s: %v", tt.name, err)
			}
			if ok.status != http.StatusOK || ok.rejected != 0 {
				t.Fatalf("valid export after %s: status %d, %d rejected, body %q", tt.name, ok.status, ok.rejected, ok.body)
			}
			tid := ft.traceIDs(req)[0].String()
			if tr := waitTrace(t, c, a.URL(), tid, 10); len(tr.Spans) != 10 {
				t.Errorf("valid export after %s: %d spans readable, want 10", tt.name, len(tr.Spans))
			}
		})
	}
	var ready map[string]string
	if status, err := getJSON(context.Background(), c, a.URL()+"/readyz", &ready); err != nil || status != http.StatusOK {
		t.Errorf("readyz after bad input: status %d, %v", status, err)
	}
}

// rpcStatus decodes the google.rpc.Status body of an OTLP/HTTP error
// answer, in the answer's encoding.
func rpcStatus(t *testing.T, r exportResult) *spb.Status {
	t.Helper()
	var st spb.Status
	var err error
	if strings.HasPrefix(r.header.Get("Content-Type"), ctProtobuf) {
		err = proto.Unmarshal(r.body, &st)
	} else {
		err = protojson.Unmarshal(r.body, &st)
	}
	if err != nil {
		t.Fatalf("error body %q (%s) is not a google.rpc.Status: %v", r.body, r.header.Get("Content-Type"), err)
	}
	return &st
}
