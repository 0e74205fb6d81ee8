package ingest

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/tailscope/tailscope/ingest/internal/otlptest"
	"github.com/tailscope/tailscope/store"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpora in testdata/fuzz")

// nopWriter commits instantly and keeps nothing.
type nopWriter struct{}

func (nopWriter) WriteSpans(context.Context, []store.Span) error { return nil }

type httpSeed struct {
	body                  []byte
	contentType, encoding string
	compress              bool
}

func httpSeeds(t testing.TB) []httpSeed {
	td := otlptest.FeedTraces(8, 1)
	pb, jb := protoBody(t, td), jsonBody(t, td)
	return []httpSeed{
		{pb, contentTypeProtobuf, "", false},
		{jb, contentTypeJSON, "", false},
		{pb, contentTypeProtobuf, "gzip", true},
		{jb, "application/json; charset=utf-8", "gzip", true},
		{pb, contentTypeProtobuf, "gzip", false}, // says gzip, is not
		{jb, contentTypeProtobuf, "", false},     // JSON labelled protobuf
		{[]byte("\x0a\xff"), contentTypeProtobuf, "", false},
		{[]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"ab","spanId":"cd"}]}]}]}`), contentTypeJSON, "", false},
		{otlptest.ProtoRequest("svc\xff", otlptest.Span{TraceID: []byte{1, 2}, SpanID: bytes.Repeat([]byte{1}, 8), Start: 5, End: 4}), contentTypeProtobuf, "identity", false},
		{[]byte("hello"), "text/plain", "", false},
		{[]byte("x"), contentTypeProtobuf, "br", false},
		{nil, "", "", false},
		{make([]byte, 4096), contentTypeProtobuf, "gzip", true},
		{[]byte("null"), contentTypeJSON, "", false},
	}
}

// FuzzHTTP throws arbitrary bodies, content types and encodings at the
// handler: it must never panic, never hold a decode slot or body budget
// after answering, and never answer a 5xx other than 503 (a store outage, which the no-op
// writer never has).
func FuzzHTTP(f *testing.F) {
	for _, s := range httpSeeds(f) {
		f.Add(s.body, s.contentType, s.encoding, s.compress)
	}
	cfg := testConfig()
	cfg.MaxRequestBytes = 64 << 10
	cfg.MaxDecompressedBytes = 256 << 10
	cfg.MaxSpansPerRequest = 1000
	cfg.QueueSpans = 1000
	r, err := New(cfg, nopWriter{}, nil, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = r.Close(context.Background()) })
	h := r.Handler()
	allowed := map[int]bool{200: true, 400: true, 413: true, 415: true, 429: true}

	f.Fuzz(func(t *testing.T, body []byte, contentType, encoding string, compress bool) {
		if compress {
			body = gzipped(t, body)
		}
		req := httptest.NewRequest(http.MethodPost, TracesPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Content-Encoding", encoding)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !allowed[rec.Code] {
			t.Fatalf("status %d for %q %q: %q", rec.Code, contentType, encoding, rec.Body.Bytes())
		}
		if n := len(r.slots); n != 0 {
			t.Fatalf("%d decode slots held after the answer", n)
		}
		if n := r.budget.reserved(); n != 0 {
			t.Fatalf("%d body bytes reserved after the answer", n)
		}
		resp := httpResp{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
		if rec.Code != http.StatusOK {
			decodeStatus(t, resp)
			return
		}
		out := ptraceotlp.NewExportResponse()
		var err error
		if rec.Header().Get("Content-Type") == contentTypeJSON {
			err = out.UnmarshalJSON(resp.body)
		} else {
			err = out.UnmarshalProto(resp.body)
		}
		if err != nil {
			t.Fatalf("undecodable 200 answer %q: %v", resp.body, err)
		}
	})
}

// TestWriteFuzzCorpus rewrites testdata/fuzz/FuzzHTTP from httpSeeds when
// run with -update-corpus.
func TestWriteFuzzCorpus(t *testing.T) {
	if !*updateCorpus {
		t.Skip("run with -update-corpus to rewrite testdata/fuzz")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzHTTP")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range httpSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nstring(%q)\nstring(%q)\nbool(%v)\n", s.body, s.contentType, s.encoding, s.compress)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkGRPCExport is BenchmarkHandler's protobuf case through the
// OTLP gRPC service's handler, without the network or gRPC's own framing:
// decode, convert, queue and group commit into a no-op writer, from the
// message bytes gRPC hands over.
func BenchmarkGRPCExport(b *testing.B) {
	body := protoBody(b, otlptest.FeedTraces(100, 1))
	r, err := New(DefaultConfig(), nopWriter{}, nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(context.Background())
	g := &grpcServer{r: r}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	ctx := context.Background()
	for b.Loop() {
		if _, err := g.export(ctx, &rawMessage{b: body}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "spans/s")
}

// BenchmarkHandler measures the HTTP path without the network or a store:
// read, decode, convert, queue and group commit into a no-op writer, for
// 100-span feed requests.
func BenchmarkHandler(b *testing.B) {
	td := otlptest.FeedTraces(100, 1)
	for _, bc := range []struct {
		name, contentType, encoding string
		body                        []byte
	}{
		{"protobuf", contentTypeProtobuf, "", protoBody(b, td)},
		{"protobuf+gzip", contentTypeProtobuf, "gzip", gzipped(b, protoBody(b, td))},
		{"json", contentTypeJSON, "", jsonBody(b, td)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := DefaultConfig()
			r, err := New(cfg, nopWriter{}, nil, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close(context.Background())
			h := r.Handler()
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodPost, TracesPath, bytes.NewReader(bc.body))
					req.Header.Set("Content-Type", bc.contentType)
					if bc.encoding != "" {
						req.Header.Set("Content-Encoding", bc.encoding)
					}
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Errorf("status %d: %s", rec.Code, strings.TrimSpace(rec.Body.String()))
						return
					}
				}
			})
			b.ReportMetric(float64(100*b.N)/time.Since(start).Seconds(), "spans/s")
		})
	}
}
