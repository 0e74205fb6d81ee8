package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/tailscope/tailscope/app"
	"github.com/tailscope/tailscope/internal/testenv"
)

// backend is a store tailscope can run on.
type backend struct {
	name string
	// url returns a database URL for an empty store that lives as long
	// as tb; it skips (laptop) or fails (CI) tb when the store is missing.
	url func(tb testing.TB) string
}

// backends lists both stores: SQLite always, PostgreSQL through testenv.
func backends() []backend {
	return []backend{
		{"sqlite", func(tb testing.TB) string {
			return "sqlite:" + filepath.Join(tb.TempDir(), "tailscope.db")
		}},
		{"postgres", func(tb testing.TB) string {
			return testenv.FreshPostgres(tb)
		}},
	}
}

// startApp starts tailscope in process on free ports with the store at
// dbURL; configure, when not nil, adjusts the configuration first. The app
// is closed when tb ends.
func startApp(tb testing.TB, dbURL string, configure func(*app.Config)) *app.App {
	tb.Helper()
	cfg := app.DefaultConfig()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Ingest.HTTPAddr = "127.0.0.1:0"
	cfg.Ingest.GRPCAddr = "127.0.0.1:0"
	cfg.DatabaseURL = dbURL
	cfg.Retention = 0
	cfg.Version = "e2e"
	cfg.Log = testenv.Logger(tb)
	if configure != nil {
		configure(&cfg)
	}
	a := app.New(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		tb.Fatalf("start tailscope: %v", err)
	}
	tb.Cleanup(func() {
		if err := a.Close(); err != nil {
			tb.Errorf("close tailscope: %v", err)
		}
	})
	return a
}

// Media types of OTLP/HTTP.
const (
	ctProtobuf = "application/x-protobuf"
	ctJSON     = "application/json"
)

// exportResult is an OTLP/HTTP answer.
type exportResult struct {
	status int
	header http.Header
	body   []byte
	// rejected and message are the partial_success of a 200 answer.
	rejected int64
	message  string
}

// postOTLP sends one OTLP/HTTP export to addr (host:port). encoding is ""
// or a Content-Encoding such as "gzip". An error means no answer was
// read (connection refused or reset, or an undecodable success body).
func postOTLP(ctx context.Context, c *http.Client, addr string, body []byte, contentType, encoding string) (exportResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/traces", bytes.NewReader(body))
	if err != nil {
		return exportResult{}, err
	}
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	return doOTLP(c, req)
}

func doOTLP(c *http.Client, req *http.Request) (exportResult, error) {
	resp, err := c.Do(req)
	if err != nil {
		return exportResult{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return exportResult{}, fmt.Errorf("read answer: %w", err)
	}
	r := exportResult{status: resp.StatusCode, header: resp.Header, body: b}
	if resp.StatusCode != http.StatusOK || len(b) == 0 {
		return r, nil
	}
	er := ptraceotlp.NewExportResponse()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), ctProtobuf) {
		err = er.UnmarshalProto(b)
	} else {
		err = er.UnmarshalJSON(b)
	}
	if err != nil {
		return r, fmt.Errorf("decode export response %q: %w", b, err)
	}
	r.rejected = er.PartialSuccess().RejectedSpans()
	r.message = er.PartialSuccess().ErrorMessage()
	return r, nil
}

// apiTrace is the body of GET /api/v1/traces/{id}.
type apiTrace struct {
	TraceID string    `json:"trace_id"`
	Spans   []apiSpan `json:"spans"`
}

type apiSpan struct {
	SpanID        string          `json:"span_id"`
	ParentSpanID  string          `json:"parent_span_id"`
	Service       string          `json:"service"`
	Name          string          `json:"name"`
	Kind          string          `json:"kind"`
	StartUnixNano string          `json:"start_unix_nano"`
	DurationNs    int64           `json:"duration_ns"`
	StatusCode    string          `json:"status_code"`
	StatusMessage string          `json:"status_message"`
	Tenant        string          `json:"tenant"`
	Version       string          `json:"version"`
	Dependency    string          `json:"dependency"`
	PayloadBytes  int64           `json:"payload_bytes"`
	Host          string          `json:"host"`
	Attributes    json.RawMessage `json:"attributes"`
	Resource      json.RawMessage `json:"resource"`
	Events        []apiEvent      `json:"events"`
	Links         []apiLink       `json:"links"`
}

type apiEvent struct {
	TimeUnixNano int64           `json:"time_unix_nano"`
	Name         string          `json:"name"`
	Attributes   json.RawMessage `json:"attributes"`
}

type apiLink struct {
	TraceID    string          `json:"trace_id"`
	SpanID     string          `json:"span_id"`
	Attributes json.RawMessage `json:"attributes"`
}

// apiSummary is one row of GET /api/v1/traces.
type apiSummary struct {
	TraceID     string `json:"trace_id"`
	RootService string `json:"root_service"`
	RootName    string `json:"root_name"`
	SpanCount   int    `json:"span_count"`
	ErrorCount  int    `json:"error_count"`
	Tenant      string `json:"tenant"`
	Version     string `json:"version"`
}

// getJSON fetches url into v when the answer is 200 and returns the
// status.
func getJSON(ctx context.Context, c *http.Client, url string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return resp.StatusCode, fmt.Errorf("decode %s: %w", url, err)
	}
	return resp.StatusCode, nil
}

// fetchTrace returns a trace through the API, or nil when the API answers
// 404.
func fetchTrace(tb testing.TB, c *http.Client, apiBase, traceID string) *apiTrace {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var tr apiTrace
	status, err := getJSON(ctx, c, apiBase+"/api/v1/traces/"+traceID, &tr)
	switch {
	case err != nil:
		tb.Fatalf("get trace %s: %v", traceID, err)
	case status == http.StatusNotFound:
		return nil
	case status != http.StatusOK:
		tb.Fatalf("get trace %s: status %d", traceID, status)
	}
	return &tr
}

// waitTrace polls the API until the trace has at least spans spans. An
// export is committed when it is acknowledged, so the first poll normally
// succeeds; the bounded wait only keeps a broken server from hanging the
// test, and is generous because the machine may be busy.
func waitTrace(tb testing.TB, c *http.Client, apiBase, traceID string, spans int) *apiTrace {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		tr := fetchTrace(tb, c, apiBase, traceID)
		if tr != nil && len(tr.Spans) >= spans {
			return tr
		}
		if time.Now().After(deadline) {
			got := 0
			if tr != nil {
				got = len(tr.Spans)
			}
			tb.Fatalf("trace %s: %d spans readable through the API after a minute, want %d", traceID, got, spans)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// searchTraces runs GET /api/v1/traces with the query string q.
func searchTraces(tb testing.TB, c *http.Client, apiBase, q string) []apiSummary {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var body struct {
		Traces []apiSummary `json:"traces"`
	}
	status, err := getJSON(ctx, c, apiBase+"/api/v1/traces?"+q, &body)
	if err != nil {
		tb.Fatalf("search traces: %v", err)
	}
	if status != http.StatusOK {
		tb.Fatalf("search traces?%s: status %d", q, status)
	}
	return body.Traces
}

// newClient returns an HTTP client keeping up to conns connections to one
// host alive, as an OTLP exporter pool would.
func newClient(tb testing.TB, conns int) *http.Client {
	tr := &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     time.Minute,
	}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}
}
