package ingest

import (
	"fmt"
	"runtime"
	"time"

	"github.com/tailscope/tailscope/ingest/otlpconv"
)

// Config holds every limit and knob of the receiver. Start from
// DefaultConfig; the cmd layer maps flags onto the fields.
//
// Worst-case memory. Requests pass four stages, each bounded:
//
//	read:    MaxBodyBytesInFlight (HTTP bodies as sent, read before a decode slot)
//	decode:  MaxConcurrentDecodes × MaxDecompressedBytes × max(1 + Kpdata, Kpdata + Kconv)
//	queue:   QueueBytes + Kconv × MaxDecompressedBytes (one request admitted into an empty queue)
//	batches: nothing extra (batched spans stay counted in the queue until their commit ends)
//
// Kpdata is pdata's in-memory size over wire size: measured 3.2 for the
// feed demo's protobuf requests, 7.6 for a pathological payload of tiny
// integer attributes, at most 2.2 for JSON. Kconv is the converted rows
// over wire size: measured 1.5, at most 6 for text that is all control
// characters (JSON writes each as \u00XX). The body buffers are released
// before conversion. gRPC reads a message before its handler runs: add
// gRPC connections × MaxConcurrentDecodes streams × MaxDecompressedBytes
// for messages being received (the tap refuses new streams while every
// decode slot is busy). With the defaults on 2 cores: 64 MiB of bodies,
// 4 × 16 MiB × 4.7 ≈ 300 MiB typical, ≈ 580 MiB pathological, plus 128 MiB
// + 24 MiB of queue.
// These are live bytes; the heap can reach twice that before a collection
// (GOGC=100), so set GOMEMLIMIT to keep the process near the bound.
type Config struct {
	// Auth, when set and requiring tokens, refuses exports without a
	// valid ingest token and keeps a tenant-bound token to its tenant.
	Auth Authenticator
	// HTTPAddr and GRPCAddr are where ListenAndServe listens. A port of 0
	// picks a free one; the chosen address is logged.
	HTTPAddr string
	GRPCAddr string

	// MaxRequestBytes caps an HTTP body as sent (compressed when gzip);
	// more answers 413.
	MaxRequestBytes int64
	// MaxDecompressedBytes caps a request after decompression (HTTP) and a
	// gRPC message (its max receive size); more answers 413 /
	// ResourceExhausted, so a gzip bomb costs at most this much memory.
	MaxDecompressedBytes int64
	// MaxSpansPerRequest caps the spans of one request; more answers 413 /
	// InvalidArgument (the client should send smaller batches).
	MaxSpansPerRequest int
	// MaxConcurrentDecodes caps requests being decompressed, decoded and
	// converted at once. An HTTP body is read before its request takes a
	// slot, so slow clients cannot hold slots. When all are busy a request
	// waits up to SlotWait for one, then is refused with 429 /
	// ResourceExhausted.
	MaxConcurrentDecodes int
	// SlotWait is how long a request waits for a decode slot before it is
	// refused with 429 (at most 8 × MaxConcurrentDecodes wait at once); 0
	// refuses at once.
	SlotWait time.Duration

	// MaxBodyBytesInFlight bounds the HTTP bodies being read, as sent: a
	// request reserves its Content-Length (a chunked body reserves as it
	// grows) before its first byte is read. When the budget is spent a
	// request waits up to SlotWait, then gets 429; so slow connections
	// cost bytes of this budget, never decode slots.
	MaxBodyBytesInFlight int64
	// MaxBodyBytesPerClient is one client's (remote IP's) share of that
	// budget: past it, the client's next request gets 429 at once, so one
	// host with many connections cannot starve the others. Behind a proxy
	// or a Collector every request comes from one address; raise it there.
	MaxBodyBytesPerClient int64
	// MinBodyRate (bytes/s) and BodyReadGrace: after the grace, a body must
	// have arrived at MinBodyRate on average or its request is cut with
	// 408 (a slowloris). BodyReadTimeout caps the read however fast.
	MinBodyRate     int64
	BodyReadGrace   time.Duration
	BodyReadTimeout time.Duration

	// MaxSpanAge, when positive, rejects spans that started longer ago:
	// app sets it to the retention, so a span is never acknowledged and
	// then deleted. MaxClockSkew rejects spans that start further ahead of
	// now. Both are per span, in partial_success; see otlpconv.Options.
	MaxSpanAge   time.Duration
	MaxClockSkew time.Duration
	// Now is the clock of that range; nil means time.Now.
	Now func() time.Time
	// Redaction is applied to every span before it is queued.
	Redaction otlpconv.Redaction
	// TemplateSpanNames stores spans named after their request path or
	// SQL statement under the name's template (otlpconv.Options).
	TemplateSpanNames bool

	// MaxValueBytes caps attribute values (cut and listed under
	// otlpconv.TruncatedKey); MaxNameBytes caps keys, names and the
	// derived columns. See otlpconv.Options.
	MaxValueBytes int
	MaxNameBytes  int
	// TenantKeys are searched in order for the tenant column, in span
	// attributes, then resource attributes.
	TenantKeys []string
	// PayloadKeys, when present on a span, give its payload_bytes (summed)
	// instead of the semantic-convention body-size keys.
	PayloadKeys []string

	// QueueSpans and QueueBytes bound the spans waiting for or in a commit
	// (with a write-ahead log: waiting for their fsync). A request that
	// does not fit answers 429 / ResourceExhausted at once.
	// MaxSpansPerRequest must not exceed QueueSpans.
	QueueSpans int
	QueueBytes int64
	// BatchSpans caps the spans of one WriteSpans call (one COPY or
	// transaction). A batch takes whatever is queued when a writer is
	// free, up to this many, and never waits for more.
	BatchSpans int
	// Writers is the number of concurrent batch writers: 2 suits
	// PostgreSQL, 1 SQLite (one writer at a time anyway).
	Writers int
	// WriteTimeout bounds one WriteSpans call; a timeout is a store error.
	WriteTimeout time.Duration
	// RetryAfter is what 429/503 answers tell clients to wait.
	RetryAfter time.Duration
	// WALDir, when set, puts a write-ahead log in front of the store (see
	// Journal): a request is answered once its rows are fsynced to the log,
	// one fsync per group of requests, and a loader applies the log to the
	// store in batches of up to BatchSpans. Empty: each request waits for
	// its own store commit (Pipeline). Writers then does not apply (one
	// loader writes); WALMaxBytes bounds the backlog.
	WALDir string
	// WALMaxBytes bounds the log on disk; past it requests are refused
	// with 429 / ResourceExhausted, as a full queue is.
	WALMaxBytes int64
	// WALSegmentBytes is the log's file size: applied segments are deleted
	// whole.
	WALSegmentBytes int64
	// WALLoadDelay is how long the loader lets a batch gather records when
	// the log has fewer than BatchSpans spans: the longest a span takes to
	// become readable beyond the commit itself, traded for commits of
	// hundreds of spans instead of one request's.
	WALLoadDelay time.Duration
	// TraceIndexDelay is, with a write-ahead log, the loader's flush
	// interval for the trace index rows of traces new to the store, which
	// it holds back so that the parts of a trace that arrive meanwhile
	// (each service exports its own) make one row insert instead of an
	// insert and a rewrite each; a row is stored at the second flush after
	// it was first held, so it is held for one to two intervals, and the
	// log keeps the records until their rows are stored. A new trace shows
	// in another process's trace search up to two intervals later than its
	// spans are loaded (a search in this process stores the held rows
	// first). 0: rows are written with their spans.
	TraceIndexDelay time.Duration
	// DeployCacheSize bounds the (service, version) pairs remembered for
	// automatic deploy markers; past it the set is forgotten and markers
	// are re-sent (the store keeps one per pair).
	DeployCacheSize int
}

// DefaultConfig returns the defaults: listeners on 127.0.0.1:4318 (HTTP)
// and 127.0.0.1:4317 (gRPC), 8 MiB bodies, 16 MiB decompressed, 20,000
// spans per request, 2 decode slots per core (at least 4), 64 MiB of
// bodies in flight (half per client) arriving at ≥ 16 KiB/s after 5 s,
// spans up to 1 h ahead, otlpconv.DefaultRedaction, 4 KiB attribute
// values, a 100,000-span / 128 MiB queue, 8,192-span batches, 2 writers.
func DefaultConfig() Config {
	conv := otlpconv.DefaultOptions()
	return Config{
		HTTPAddr:              "127.0.0.1:4318",
		GRPCAddr:              "127.0.0.1:4317",
		MaxRequestBytes:       8 << 20,
		MaxDecompressedBytes:  16 << 20,
		MaxSpansPerRequest:    20_000,
		MaxConcurrentDecodes:  max(4, 2*runtime.GOMAXPROCS(0)),
		SlotWait:              500 * time.Millisecond,
		MaxBodyBytesInFlight:  64 << 20,
		MaxBodyBytesPerClient: 32 << 20,
		MinBodyRate:           16 << 10,
		BodyReadGrace:         5 * time.Second,
		BodyReadTimeout:       time.Minute,
		MaxClockSkew:          conv.MaxClockSkew,
		Redaction:             conv.Redaction,
		TemplateSpanNames:     conv.TemplateNames,
		MaxValueBytes:         conv.MaxValueBytes,
		MaxNameBytes:          conv.MaxNameBytes,
		TenantKeys:            conv.TenantKeys,
		PayloadKeys:           conv.PayloadKeys,
		QueueSpans:            100_000,
		QueueBytes:            128 << 20,
		BatchSpans:            8_192,
		Writers:               2,
		WriteTimeout:          10 * time.Second,
		RetryAfter:            2 * time.Second,
		DeployCacheSize:       10_000,
		WALMaxBytes:           1 << 30,
		WALSegmentBytes:       64 << 20,
		WALLoadDelay:          200 * time.Millisecond,
		TraceIndexDelay:       time.Second,
	}
}

// Validate reports the first unusable setting.
func (c Config) Validate() error {
	switch {
	case c.MaxRequestBytes <= 0:
		return fmt.Errorf("ingest: config: max request bytes %d: want > 0", c.MaxRequestBytes)
	case c.MaxDecompressedBytes <= 0:
		return fmt.Errorf("ingest: config: max decompressed bytes %d: want > 0", c.MaxDecompressedBytes)
	case c.MaxDecompressedBytes > 1<<31-1:
		return fmt.Errorf("ingest: config: max decompressed bytes %d: want < 2 GiB (gRPC's limit)", c.MaxDecompressedBytes)
	case c.MaxSpansPerRequest <= 0:
		return fmt.Errorf("ingest: config: max spans per request %d: want > 0", c.MaxSpansPerRequest)
	case c.SlotWait < 0:
		return fmt.Errorf("ingest: config: slot wait %v: want ≥ 0", c.SlotWait)
	case c.MaxConcurrentDecodes <= 0:
		return fmt.Errorf("ingest: config: max concurrent decodes %d: want > 0", c.MaxConcurrentDecodes)
	case c.MaxBodyBytesPerClient < c.MaxRequestBytes:
		return fmt.Errorf("ingest: config: body bytes per client %d: want at least max request bytes (%d)", c.MaxBodyBytesPerClient, c.MaxRequestBytes)
	case c.MaxBodyBytesInFlight < c.MaxBodyBytesPerClient:
		return fmt.Errorf("ingest: config: body bytes in flight %d: want at least the per-client share (%d)", c.MaxBodyBytesInFlight, c.MaxBodyBytesPerClient)
	case c.MinBodyRate <= 0:
		return fmt.Errorf("ingest: config: min body rate %d: want > 0 bytes/s", c.MinBodyRate)
	case c.BodyReadGrace <= 0 || c.BodyReadTimeout < c.BodyReadGrace:
		return fmt.Errorf("ingest: config: body read grace %v and timeout %v: want 0 < grace ≤ timeout", c.BodyReadGrace, c.BodyReadTimeout)
	case c.QueueSpans < c.MaxSpansPerRequest:
		return fmt.Errorf("ingest: config: queue spans %d: want at least max spans per request (%d)", c.QueueSpans, c.MaxSpansPerRequest)
	case c.QueueBytes <= 0:
		return fmt.Errorf("ingest: config: queue bytes %d: want > 0", c.QueueBytes)
	case c.BatchSpans <= 0:
		return fmt.Errorf("ingest: config: batch spans %d: want > 0", c.BatchSpans)
	case c.Writers <= 0:
		return fmt.Errorf("ingest: config: writers %d: want > 0", c.Writers)
	case c.WriteTimeout <= 0:
		return fmt.Errorf("ingest: config: write timeout %v: want > 0", c.WriteTimeout)
	case c.RetryAfter < time.Second:
		return fmt.Errorf("ingest: config: retry after %v: want at least 1s (Retry-After has whole seconds)", c.RetryAfter)
	case c.WALDir != "" && (c.WALMaxBytes <= 0 || c.WALSegmentBytes <= 0):
		return fmt.Errorf("ingest: config: write-ahead log max bytes %d, segment bytes %d: want > 0", c.WALMaxBytes, c.WALSegmentBytes)
	case c.TraceIndexDelay < 0:
		return fmt.Errorf("ingest: config: trace index delay %v: want ≥ 0", c.TraceIndexDelay)
	case c.WALLoadDelay < 0:
		return fmt.Errorf("ingest: config: write-ahead log load delay %v: want ≥ 0", c.WALLoadDelay)
	case c.DeployCacheSize <= 0:
		return fmt.Errorf("ingest: config: deploy cache size %d: want > 0", c.DeployCacheSize)
	}
	if err := c.convOptions().Validate(); err != nil {
		return fmt.Errorf("ingest: config: %w", err)
	}
	return nil
}

func (c Config) convOptions() otlpconv.Options {
	return otlpconv.Options{
		TenantKeys:    c.TenantKeys,
		PayloadKeys:   c.PayloadKeys,
		MaxValueBytes: c.MaxValueBytes,
		MaxNameBytes:  c.MaxNameBytes,
		MaxAge:        c.MaxSpanAge,
		MaxClockSkew:  c.MaxClockSkew,
		Now:           c.Now,
		Redaction:     c.Redaction,
		TemplateNames: c.TemplateSpanNames,
	}
}
