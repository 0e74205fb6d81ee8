// Package profile is tailscope's continuous-profiling side: an HTTP handler
// for the Pyroscope ingest API that pyroscope-go clients push pprof profiles
// to, the conversion of those profiles into the compact form the store
// keeps (stacks stored once, samples summed per stack and span), pure
// functions that turn stored stacks into flame graphs (trees, top
// functions, outlier-versus-baseline diffs, layout), and a helper that lets
// tailscope and feedsvc profile themselves with span labels.
//
// Profiles link to traces through pprof labels: while a span is active its
// goroutine carries the labels span_id and span_name (set by
// github.com/grafana/otel-profiling-go; see WrapTracerProvider), the CPU
// profiler copies them onto every sample it takes, pyroscope-go uploads
// them, and the handler keeps them per sample.
package profile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailscope/tailscope/store"
)

// IngestPath is where pyroscope-go posts profiles: the client appends
// "/ingest" to its ServerAddress. Mount the handler there, on the
// OTLP/HTTP listener (ServerAddress "http://127.0.0.1:4318") or on a port
// of its own.
const IngestPath = "/ingest"

// Writer stores converted profiles; store.ProfileStore implements it.
type Writer interface {
	WriteProfiles(ctx context.Context, b store.ProfileBatch) error
}

// Config holds the handler's limits. Start from DefaultConfig.
//
// Worst-case memory is MaxConcurrent requests, each holding its body (at
// most MaxRequestBytes), the decompressed profile (MaxProfileBytes) and the
// decoded pprof with its conversion until its write commits. Decoded, a
// profile takes about 13 times its decompressed size, about 1 KB per
// labelled sample (measured: 100,000 samples, 7.5 MB of pprof, 95 MB
// live). With the defaults: 2 × (4 + 8 + ~110) MiB ≈ 250 MiB, reached only
// by uploads built to reach it; a busy service's 10 s CPU profile is
// 50–500 KiB decoded.
type Config struct {
	// MaxRequestBytes caps the request body as sent; more answers 413.
	MaxRequestBytes int64
	// MaxProfileBytes caps the pprof payload after decompression, so a
	// gzip bomb costs at most this much; more answers 413.
	MaxProfileBytes int64
	// MaxSamples and MaxLocations cap the samples and the locations
	// (and functions, and mappings) of one profile; more answers 413.
	// They are checked before the profile is decoded.
	MaxSamples   int
	MaxLocations int
	// MaxStackDepth caps the frames kept per stack; deeper stacks keep
	// their outermost frames and end in a "[truncated stack]" frame.
	MaxStackDepth int
	// MaxConcurrent caps requests being read, decoded and written at once.
	MaxConcurrent int
	// MaxQueued requests may wait up to QueueWait for one of those slots;
	// a request finding the queue full, or still waiting after QueueWait,
	// is refused with 429 and Retry-After. A waiting request has not read
	// its body, so waiting costs no memory to speak of. The queue exists
	// because pyroscope-go uploads a process's profile types at the same
	// moment, every process on the same wall-clock boundary, and drops an
	// upload that is refused instead of retrying it.
	MaxQueued int
	QueueWait time.Duration
	// WriteTimeout bounds one store write; a timeout answers 503.
	WriteTimeout time.Duration
	// RetryAfter is what 429 and 503 answers tell clients to wait.
	RetryAfter time.Duration
}

// DefaultConfig returns the defaults: 4 MiB bodies, 8 MiB decompressed
// profiles, 100,000 samples and locations, 1,024 frames per stack, 2
// concurrent requests with up to 256 more waiting up to 5 s, 10 s writes,
// Retry-After 5 s. 100,000 samples hold 15 s of CPU profile of 64 busy
// cores; two decode slots ingest about a hundred uploads a second (a
// typical upload decodes in ~20 ms, BenchmarkIngest), a thousand processes
// at pyroscope-go's 15 s upload rate.
func DefaultConfig() Config {
	return Config{
		MaxRequestBytes: 4 << 20,
		MaxProfileBytes: 8 << 20,
		MaxSamples:      100_000,
		MaxLocations:    100_000,
		MaxStackDepth:   1024,
		MaxConcurrent:   2,
		MaxQueued:       256,
		QueueWait:       5 * time.Second,
		WriteTimeout:    10 * time.Second,
		RetryAfter:      5 * time.Second,
	}
}

// Validate reports the first unusable setting.
func (c Config) Validate() error {
	switch {
	case c.MaxRequestBytes <= 0:
		return fmt.Errorf("profile: config: max request bytes %d: want > 0", c.MaxRequestBytes)
	case c.MaxProfileBytes <= 0:
		return fmt.Errorf("profile: config: max profile bytes %d: want > 0", c.MaxProfileBytes)
	case c.MaxSamples <= 0:
		return fmt.Errorf("profile: config: max samples %d: want > 0", c.MaxSamples)
	case c.MaxLocations <= 0:
		return fmt.Errorf("profile: config: max locations %d: want > 0", c.MaxLocations)
	case c.MaxStackDepth < 2:
		return fmt.Errorf("profile: config: max stack depth %d: want at least 2", c.MaxStackDepth)
	case c.MaxConcurrent <= 0:
		return fmt.Errorf("profile: config: max concurrent %d: want > 0", c.MaxConcurrent)
	case c.MaxQueued < 0:
		return fmt.Errorf("profile: config: max queued %d: want ≥ 0", c.MaxQueued)
	case c.MaxQueued > 0 && c.QueueWait <= 0:
		return fmt.Errorf("profile: config: queue wait %v: want > 0 when requests may queue", c.QueueWait)
	case c.WriteTimeout <= 0:
		return fmt.Errorf("profile: config: write timeout %v: want > 0", c.WriteTimeout)
	case c.RetryAfter < time.Second:
		return fmt.Errorf("profile: config: retry after %v: want at least 1s (Retry-After has whole seconds)", c.RetryAfter)
	}
	return nil
}

// Handler serves the Pyroscope ingest API (POST /ingest) for pyroscope-go
// clients. A 200 answer means every stored profile of the upload is
// committed: the handler writes synchronously. Bad payloads answer 400, too
// large ones 413, other methods 405, other paths 404; a full handler 429
// and a store outage 503, both with Retry-After. Sample types tailscope
// does not store (see the profile types in package store) are skipped and
// counted; an upload with none that it stores answers 400.
//
// pyroscope-go does not retry an upload that fails, whatever the status:
// every refused upload is a lost profile. Hence the bounded wait for a slot
// (Config.MaxQueued) before answering 429.
type Handler struct {
	cfg   Config
	w     Writer
	m     *metrics
	log   *slog.Logger
	slots chan struct{} // one per request being read, decoded or written
	// waiting counts requests queued for a slot.
	waiting atomic.Int64
	now     func() time.Time
}

// NewHandler returns a handler writing to w. reg may be nil (metrics not
// exported), log may be nil (silent).
func NewHandler(cfg Config, w Writer, reg prometheus.Registerer, log *slog.Logger) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if w == nil {
		return nil, errors.New("profile: nil writer")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Handler{cfg: cfg, w: w, m: m, log: log, slots: make(chan struct{}, cfg.MaxConcurrent), now: time.Now}, nil
}

// ServeHTTP handles one upload.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != IngestPath {
		h.fail(w, &ingestError{http.StatusNotFound, outcomeNotFound, "no such endpoint: profiles are accepted at " + IngestPath})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, &ingestError{http.StatusMethodNotAllowed, outcomeBadMethod, "method " + r.Method + " not allowed: use POST"})
		return
	}
	if enc := strings.TrimSpace(r.Header.Get("Content-Encoding")); enc != "" && !strings.EqualFold(enc, "identity") {
		// pyroscope-go compresses the pprof inside the form, not the body.
		h.fail(w, &ingestError{http.StatusUnsupportedMediaType, outcomeUnsupported, "content encoding " + strconv.Quote(truncate(enc, 40)) + " not supported"})
		return
	}
	if r.ContentLength > h.cfg.MaxRequestBytes {
		h.fail(w, tooLarge("body of %d bytes exceeds the limit of %d", r.ContentLength, h.cfg.MaxRequestBytes))
		return
	}
	if !h.acquire(r.Context()) {
		h.fail(w, &ingestError{http.StatusTooManyRequests, outcomeOverloaded, "too many profiles being ingested; retry later"})
		return
	}
	defer func() { <-h.slots }()
	h.m.inFlight.Inc()
	defer h.m.inFlight.Dec()

	start := time.Now()
	b, st, err := h.decode(w, r)
	h.m.decodeSeconds.Observe(time.Since(start).Seconds())
	for _, reason := range st.skipped {
		h.m.skipped.WithLabelValues(reason).Inc()
	}
	if st.negative > 0 {
		h.m.skipped.WithLabelValues(skipNegative).Add(float64(st.negative))
	}
	if err != nil {
		h.fail(w, err)
		return
	}

	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.WriteTimeout)
	defer cancel()
	start = time.Now()
	err = h.w.WriteProfiles(ctx, b)
	h.m.writeSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		h.fail(w, h.storeError(r.Context(), err))
		return
	}
	samples := 0
	for _, p := range b.Profiles {
		h.m.profiles.WithLabelValues(string(p.Type), p.Unit).Inc()
		samples += len(p.Samples)
	}
	h.m.samples.Add(float64(samples))
	h.m.requests.WithLabelValues(outcomeOK).Inc()
	writeJSON(w, http.StatusOK, map[string]int{"profiles": len(b.Profiles), "samples": samples, "stacks": len(b.Stacks)})
}

// acquire takes a request slot, waiting in the bounded queue when all are
// busy; false means the request is refused.
func (h *Handler) acquire(ctx context.Context) bool {
	select {
	case h.slots <- struct{}{}:
		return true
	default:
	}
	if h.waiting.Add(1) > int64(h.cfg.MaxQueued) {
		h.waiting.Add(-1)
		return false
	}
	defer h.waiting.Add(-1)
	t := time.NewTimer(h.cfg.QueueWait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// decode reads, decompresses, decodes and converts one upload.
func (h *Handler) decode(w http.ResponseWriter, r *http.Request) (store.ProfileBatch, convertStats, error) {
	u, err := parseQuery(r.URL.Query())
	if err != nil {
		return store.ProfileBatch{}, convertStats{}, err
	}
	body := http.MaxBytesReader(w, r.Body, h.cfg.MaxRequestBytes)
	if err := readBody(body, r.Header.Get("Content-Type"), &u); err != nil {
		return store.ProfileBatch{}, convertStats{}, err
	}
	data, err := decompress(u.pprof, h.cfg.MaxProfileBytes)
	if err != nil {
		return store.ProfileBatch{}, convertStats{}, err
	}
	u.pprof = nil // the compressed copy is no longer needed
	p, err := parsePprof(data, h.cfg)
	if err != nil {
		return store.ProfileBatch{}, convertStats{}, err
	}
	return convert(p, &u, h.cfg, h.now())
}

// storeError turns a failed write into an answer. Store text may name
// hosts and users, so clients get a generic message; the log gets the
// error, once.
func (h *Handler) storeError(reqCtx context.Context, err error) *ingestError {
	switch {
	case errors.Is(err, store.ErrInvalid):
		// The converter produced a batch the store refuses: our bug, but
		// retrying cannot help the client.
		h.log.Error("profile ingest: store refused a converted batch", "err", err)
		return badRequest("profile rejected by the store: %v", err)
	case reqCtx.Err() != nil:
		return &ingestError{http.StatusServiceUnavailable, outcomeUnavailable, "request ended before its profiles were committed; retry"}
	default:
		h.log.Warn("profile ingest: write failed", "err", err)
		return &ingestError{http.StatusServiceUnavailable, outcomeUnavailable, "profiles not committed: store unavailable; retry later"}
	}
}

// fail answers an error as JSON {"error": "..."}, the API's error shape.
func (h *Handler) fail(w http.ResponseWriter, err error) {
	var ie *ingestError
	if !errors.As(err, &ie) {
		ie = badRequest("%v", err)
	}
	h.m.requests.WithLabelValues(ie.outcome).Inc()
	if ie.status == http.StatusTooManyRequests || ie.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(int(h.cfg.RetryAfter/time.Second)))
	}
	if ie.status == http.StatusRequestEntityTooLarge || ie.status == http.StatusBadRequest {
		// The rest of the body is not read; do not let the server try to
		// drain an arbitrarily large remainder for keep-alive.
		w.Header().Set("Connection", "close")
	}
	writeJSON(w, ie.status, map[string]string{"error": ie.msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Maps of strings and ints always marshal; keep the status.
		body = nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client hanging up is not our error
}
