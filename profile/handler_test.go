package profile

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tailscope/tailscope/store"
)

var (
	testFrom  = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	testUntil = testFrom.Add(15 * time.Second)
)

// validUpload is a typical pyroscope-go 1.x CPU upload.
func validUpload(t testing.TB) (target, contentType string, body []byte) {
	t.Helper()
	b := cpuPprof().
		sample("runtime.main;main.main;main.handle", []int64{3, 30_000_000}, "span_id=00f067aa0ba902b7", "span_name=GET /").
		sample("runtime.main;main.main;runtime.gcBgMarkWorker", []int64{1, 10_000_000})
	body, ct := form(t, b.bytes(t), nil)
	return ingestQuery("feedsvc{__session_id__=abc}", testFrom, testUntil), ct, body
}

// gzipOf compresses b.
func gzipOf(t testing.TB, b []byte) []byte {
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

func TestHandlerAcceptsUpload(t *testing.T) {
	w := &memWriter{}
	reg := prometheus.NewRegistry()
	h, err := NewHandler(DefaultConfig(), w, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	target, ct, body := validUpload(t)
	rec := post(h, target, ct, body)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var resp map[string]int
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp["profiles"] != 1 || resp["samples"] != 2 {
		t.Errorf("answer %s (%v), want 1 profile with 2 samples", rec.Body, err)
	}
	if w.count() != 1 {
		t.Fatalf("%d batches written, want 1", w.count())
	}
	p := w.batches[0].Profiles[0]
	if p.Service != "feedsvc" || p.Type != store.ProfileCPU || !p.Start.Equal(testFrom) || !p.End.Equal(testUntil) || p.Labels["__session_id__"] != "abc" {
		t.Errorf("stored profile = %+v", p)
	}
	if got := testutil.ToFloat64(h.m.requests.WithLabelValues(outcomeOK)); got != 1 {
		t.Errorf("requests_total{outcome=ok} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(h.m.samples); got != 2 {
		t.Errorf("samples_stored_total = %v, want 2", got)
	}
	// The raw body form (no multipart) is accepted too.
	raw := cpuPprof().sample("main.main", []int64{1, 1}).bytes(t)
	if rec := post(h, target, "application/octet-stream", raw); rec.Code != http.StatusOK {
		t.Errorf("raw body: status %d: %s", rec.Code, rec.Body)
	}
}

// TestHandlerRejectsBadPayloads sends what a broken or hostile client
// might, checks each answer, and checks after each that the handler still
// takes a good upload.
func TestHandlerRejectsBadPayloads(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxRequestBytes = 1 << 20
	cfg.MaxProfileBytes = 4 << 20
	cfg.MaxSamples = 1000
	w := &memWriter{}
	h := newTestHandler(t, cfg, w)
	target, ct, good := validUpload(t)
	goodPprof := cpuPprof().sample("main.main", []int64{1, 1}).bytes(t)

	manySamples := cpuPprof()
	for i := range cfg.MaxSamples + 1 {
		manySamples.sample(fmt.Sprintf("main.f%d", i%10), []int64{1, 1})
	}
	bomb := gzipOf(t, make([]byte, 64<<20)) // 64 MiB of zeros, ~64 KiB compressed
	huge := make([]byte, cfg.MaxRequestBytes+1)

	multipartOf := func(parts ...string) (string, []byte) {
		body := "--b\r\n"
		for i, p := range parts {
			if i > 0 {
				body += "\r\n--b\r\n"
			}
			body += p
		}
		return "multipart/form-data; boundary=b", []byte(body + "\r\n--b--\r\n")
	}
	noProfileCT, noProfile := multipartOf("Content-Disposition: form-data; name=\"other\"\r\n\r\nx")
	badConfig, badConfigCT := formWithConfigText(t, goodPprof, "{not json")
	bombForm, bombFormCT := form(t, bomb, nil)
	hugeForm, hugeFormCT := form(t, huge, nil)

	tests := []struct {
		name   string
		method string
		target string
		ct     string
		enc    string
		body   []byte
		// chunked hides the length, so the limit is hit while reading.
		chunked bool
		status  int
	}{
		{name: "truncated gzip", target: target, ct: "application/octet-stream", body: goodPprof[:len(goodPprof)/2], status: 400},
		{name: "truncated form", target: target, ct: ct, body: good[:len(good)-40], status: 400},
		{name: "truncated pprof", target: target, ct: "application/octet-stream",
			body: cpuPprof().sample("main.main", []int64{1, 1}).rawBytes(t)[:20], status: 400},
		{name: "not pprof", target: target, ct: "application/octet-stream", body: []byte("hello, this is not a profile"), status: 400},
		{name: "gzip of not pprof", target: target, ct: "application/octet-stream", body: gzipOf(t, []byte("{\"json\": true}")), status: 400},
		{name: "empty body", target: target, ct: "application/octet-stream", body: nil, status: 400},
		{name: "form without profile", target: target, ct: noProfileCT, body: noProfile, status: 400},
		{name: "form without boundary", target: target, ct: "multipart/form-data", body: good, status: 400},
		{name: "bad sample_type_config", target: target, ct: badConfigCT, body: badConfig, status: 400},
		{name: "huge body", target: target, ct: "application/octet-stream", body: huge, status: 413},
		{name: "huge body, length unknown", target: target, ct: "application/octet-stream", body: huge, chunked: true, status: 413},
		{name: "huge form, length unknown", target: target, ct: hugeFormCT, body: hugeForm, chunked: true, status: 413},
		{name: "gzip bomb", target: target, ct: "application/octet-stream", body: bomb, status: 413},
		{name: "gzip bomb in a form", target: target, ct: bombFormCT, body: bombForm, status: 413},
		{name: "too many samples", target: target, ct: "application/octet-stream", body: manySamples.bytes(t), status: 413},
		{name: "wrong method", method: http.MethodGet, target: target, status: 405},
		{name: "PUT", method: http.MethodPut, target: target, ct: ct, body: good, status: 405},
		{name: "wrong path", target: "/v1/traces", ct: ct, body: good, status: 404},
		{name: "no name", target: IngestPath + "?from=1", ct: ct, body: good, status: 400},
		{name: "unsupported format", target: target + "&format=jfr", ct: ct, body: good, status: 400},
		{name: "inverted window", target: ingestQuery("app", testFrom.Add(time.Minute), testFrom), ct: ct, body: good, status: 400},
		{name: "compressed body", target: target, ct: ct, enc: "gzip", body: gzipOf(t, good), status: 415},
		{name: "no supported sample type", target: target, ct: "application/octet-stream",
			body: newPprof("wall/nanoseconds").sample("main.main", []int64{1}).bytes(t), status: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			var body io.Reader = bytes.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // hides the length from NewRequest
			}
			req := httptest.NewRequest(method, tc.target, body)
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			if tc.enc != "" {
				req.Header.Set("Content-Encoding", tc.enc)
			}
			rec := httptest.NewRecorder()
			before := w.count()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Errorf("status %d (%s), want %d", rec.Code, strings.TrimSpace(rec.Body.String()), tc.status)
			}
			var e struct{ Error string }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Errorf("body %q: want JSON {\"error\": ...}", rec.Body)
			}
			if tc.status == 405 && rec.Header().Get("Allow") != http.MethodPost {
				t.Errorf("Allow = %q, want POST", rec.Header().Get("Allow"))
			}
			if w.count() != before {
				t.Errorf("a refused upload was written")
			}
			// The handler keeps serving.
			if rec := post(h, target, ct, good); rec.Code != http.StatusOK {
				t.Fatalf("good upload after %q: status %d: %s", tc.name, rec.Code, rec.Body)
			}
		})
	}
}

// formWithConfigText is a form whose sample_type_config part is the
// given text.
func formWithConfigText(t testing.TB, pprof []byte, config string) (body []byte, contentType string) {
	t.Helper()
	body, ct := form(t, pprof, nil)
	boundary := ct[strings.Index(ct, "boundary=")+len("boundary="):]
	end := []byte("--" + boundary + "--")
	part := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"sample_type_config\"; filename=\"c.json\"\r\n\r\n" + config + "\r\n"
	return bytes.Replace(body, end, append([]byte(part), end...), 1), ct
}

func TestHandlerOverloaded(t *testing.T) {
	target, ct, body := validUpload(t)
	t.Run("queue full", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.MaxConcurrent, cfg.MaxQueued = 1, 0
		w := &memWriter{entered: make(chan struct{}), release: make(chan struct{})}
		h := newTestHandler(t, cfg, w)
		first := make(chan *httptest.ResponseRecorder)
		go func() { first <- post(h, target, ct, body) }()
		<-w.entered // the first upload holds the only slot, inside its write

		rec := post(h, target, ct, body)
		if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "5" {
			t.Errorf("second upload: status %d, Retry-After %q; want 429 with Retry-After 5", rec.Code, rec.Header().Get("Retry-After"))
		}
		close(w.release)
		if rec := <-first; rec.Code != http.StatusOK {
			t.Errorf("first upload: status %d: %s", rec.Code, rec.Body)
		}
		// The slot is free again.
		w.entered = nil
		if rec := post(h, target, ct, body); rec.Code != http.StatusOK {
			t.Errorf("upload after the overload: status %d: %s", rec.Code, rec.Body)
		}
	})
	t.Run("a queued upload waits for the slot", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.MaxConcurrent, cfg.MaxQueued = 1, 1
		w := &memWriter{entered: make(chan struct{}), release: make(chan struct{})}
		h := newTestHandler(t, cfg, w)
		answers := make(chan *httptest.ResponseRecorder, 2)
		go func() { answers <- post(h, target, ct, body) }()
		<-w.entered
		go func() { answers <- post(h, target, ct, body) }()
		// The second upload is queued once waiting counts it; then a third
		// finds the queue full.
		for h.waiting.Load() == 0 {
			runtime.Gosched()
		}
		if rec := post(h, target, ct, body); rec.Code != http.StatusTooManyRequests {
			t.Errorf("third upload: status %d, want 429", rec.Code)
		}
		w.release <- struct{}{} // the first write commits; the queued one takes the slot
		<-w.entered
		close(w.release)
		for range 2 {
			if rec := <-answers; rec.Code != http.StatusOK {
				t.Errorf("status %d: %s", rec.Code, rec.Body)
			}
		}
		if w.count() != 2 {
			t.Errorf("%d uploads written, want 2", w.count())
		}
	})
	t.Run("queue wait expires", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.MaxConcurrent, cfg.MaxQueued, cfg.QueueWait = 1, 1, time.Millisecond
		w := &memWriter{entered: make(chan struct{}), release: make(chan struct{})}
		h := newTestHandler(t, cfg, w)
		first := make(chan *httptest.ResponseRecorder)
		go func() { first <- post(h, target, ct, body) }()
		<-w.entered
		if rec := post(h, target, ct, body); rec.Code != http.StatusTooManyRequests {
			t.Errorf("queued upload after its wait: status %d, want 429", rec.Code)
		}
		close(w.release)
		<-first
	})
}

func TestHandlerStoreErrors(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
	}{
		{"unavailable", fmt.Errorf("sqlite: write profiles: %w: disk full", store.ErrUnavailable), http.StatusServiceUnavailable},
		{"unknown error", fmt.Errorf("postgres: write profiles: connection to 10.0.0.3 user admin failed"), http.StatusServiceUnavailable},
		{"invalid", fmt.Errorf("sqlite: write profiles: %w: bad", store.ErrInvalid), http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHandler(t, DefaultConfig(), &memWriter{err: tc.err})
			target, ct, body := validUpload(t)
			rec := post(h, target, ct, body)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if tc.status == http.StatusServiceUnavailable {
				if rec.Header().Get("Retry-After") == "" {
					t.Errorf("503 without Retry-After")
				}
				if strings.Contains(rec.Body.String(), "10.0.0.3") {
					t.Errorf("store error text leaked to the client: %s", rec.Body)
				}
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	bad := []func(*Config){
		func(c *Config) { c.MaxRequestBytes = 0 },
		func(c *Config) { c.MaxProfileBytes = -1 },
		func(c *Config) { c.MaxSamples = 0 },
		func(c *Config) { c.MaxLocations = 0 },
		func(c *Config) { c.MaxStackDepth = 1 },
		func(c *Config) { c.MaxConcurrent = 0 },
		func(c *Config) { c.MaxQueued = -1 },
		func(c *Config) { c.QueueWait = 0 },
		func(c *Config) { c.WriteTimeout = 0 },
		func(c *Config) { c.RetryAfter = time.Millisecond },
	}
	for i, f := range bad {
		c := DefaultConfig()
		f(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("case %d: Validate accepted %+v", i, c)
		}
		if _, err := NewHandler(c, &memWriter{}, nil, nil); err == nil {
			t.Errorf("case %d: NewHandler accepted %+v", i, c)
		}
	}
	if _, err := NewHandler(DefaultConfig(), nil, nil, nil); err == nil {
		t.Errorf("NewHandler accepted a nil writer")
	}
	reg := prometheus.NewRegistry()
	if _, err := NewHandler(DefaultConfig(), &memWriter{}, reg, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := NewHandler(DefaultConfig(), &memWriter{}, reg, nil); err == nil {
		t.Errorf("a second handler registered the same metrics without an error")
	}
}
