// Package ingest is tailscope's OTLP trace receiver: OTLP/HTTP (protobuf and
// JSON, optionally gzip) and OTLP/gRPC, validation, the accepted time range,
// redaction and derivation through ingest/otlpconv (one place, on decoded
// rows, whatever the protocol), and in front of store.Writer either a
// group-commit Pipeline or a Journal: a write-ahead log (ingest/wal) with
// group fsync, loaded into the store in batches.
//
// A success answer means the spans are durable: handlers wait for the
// commit of the batch holding their spans, or for the fsync of the log
// group holding them. Bad input is answered 400 or with
// a partial_success naming the rejected spans, never 500; overload and
// store outages are answered 429/503 with Retry-After (ResourceExhausted /
// Unavailable with RetryInfo on gRPC), so OTLP exporters retry.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/tailscope/tailscope/ingest/otlpconv"
	"github.com/tailscope/tailscope/store"
)

// Receiver serves OTLP trace exports over HTTP and gRPC and commits them
// through its Pipeline.
type Receiver struct {
	cfg  Config
	conv *otlpconv.Converter
	pipe committer // *Pipeline, or *Journal when cfg.WALDir is set
	m    *receiverMetrics
	log  *slog.Logger

	// slots is the decode semaphore: a request holds one while it is
	// decompressed, decoded and converted.
	slots chan struct{}
	// waiters bounds the requests waiting for a slot.
	waiters chan struct{}
	// budget bounds the HTTP bodies being read before a slot (body.go).
	budget *bodyBudget

	bufs  sync.Pool // *bytes.Buffer for HTTP bodies
	gzips sync.Pool // *gzip.Reader
}

// New returns a Receiver writing to w. deploys may be nil (no automatic
// deploy markers), reg may be nil (metrics not exported), log may be nil
// (silent). Call Close when done.
func New(cfg Config, w store.Writer, deploys DeployRecorder, reg prometheus.Registerer, log *slog.Logger) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	conv, err := otlpconv.NewConverter(cfg.convOptions())
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	m, err := newReceiverMetrics(reg)
	if err != nil {
		return nil, err
	}
	var pipe committer
	if cfg.WALDir != "" {
		pipe, err = NewJournal(cfg, w, deploys, reg, log)
	} else {
		pipe, err = NewPipeline(cfg, w, deploys, reg, log)
	}
	if err != nil {
		return nil, err
	}
	return &Receiver{
		cfg:     cfg,
		conv:    conv,
		pipe:    pipe,
		m:       m,
		log:     log,
		slots:   make(chan struct{}, cfg.MaxConcurrentDecodes),
		waiters: make(chan struct{}, 8*cfg.MaxConcurrentDecodes),
		budget:  newBodyBudget(cfg.MaxBodyBytesInFlight, cfg.MaxBodyBytesPerClient),
	}, nil
}

// Close stops the pipeline: queued spans are committed, then writers exit.
// Stop the HTTP and gRPC servers first so nothing new arrives (Serve does).
func (r *Receiver) Close(ctx context.Context) error {
	return r.pipe.Close(ctx)
}

// Replay waits until the write-ahead log left by a previous process is
// applied to the store (at once without a log). Call it before serving, so
// that reads reflect every span acknowledged before a restart.
func (r *Receiver) Replay(ctx context.Context) error {
	if j, ok := r.pipe.(*Journal); ok {
		return j.Replay(ctx)
	}
	return nil
}

// LoaderLag reports what the write-ahead log's loader has yet to apply
// (bytes) and the age of the oldest of it; ok is false without a log.
func (r *Receiver) LoaderLag() (bytes int64, age time.Duration, ok bool) {
	if j, isJournal := r.pipe.(*Journal); isJournal {
		bytes, age = j.Lag()
		return bytes, age, true
	}
	return 0, 0, false
}

// WriteHealth reports whether acknowledged spans can be made durable: an
// error while the write-ahead log cannot write (a full disk); nil without
// a log.
func (r *Receiver) WriteHealth() error {
	if j, ok := r.pipe.(*Journal); ok {
		return j.WriteHealth()
	}
	return nil
}

// ListenAndServe listens on cfg.HTTPAddr and cfg.GRPCAddr and serves until
// ctx ends; see Serve.
func (r *Receiver) ListenAndServe(ctx context.Context) error {
	var lc net.ListenConfig
	hl, err := lc.Listen(ctx, "tcp", r.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("ingest: listen otlp http: %w", err)
	}
	gl, err := lc.Listen(ctx, "tcp", r.cfg.GRPCAddr)
	if err != nil {
		hl.Close()
		return fmt.Errorf("ingest: listen otlp grpc: %w", err)
	}
	return r.Serve(ctx, hl, gl)
}

// shutdownGrace bounds the graceful stop of the servers: in-flight exports
// wait for their commit, which WriteTimeout bounds.
func (r *Receiver) shutdownGrace() time.Duration { return 2*r.cfg.WriteTimeout + 5*time.Second }

// Serve serves OTLP/HTTP on httpLis and OTLP/gRPC on grpcLis (either may
// be nil) until ctx ends, then stops both gracefully, letting in-flight
// exports finish their commits. It does not close the pipeline: call Close
// after Serve returns.
func (r *Receiver) Serve(ctx context.Context, httpLis, grpcLis net.Listener) error {
	g, ctx := errgroup.WithContext(ctx)
	if httpLis != nil {
		r.log.Info("otlp http listening", "addr", httpLis.Addr().String())
		hs := &http.Server{
			Handler:           r.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			// Bodies are paced by readWire; this bounds the rest.
			ReadTimeout: r.cfg.BodyReadTimeout + 10*time.Second,
			IdleTimeout: 2 * time.Minute,
			ErrorLog:    slog.NewLogLogger(r.log.Handler(), slog.LevelWarn),
		}
		g.Go(func() error {
			if err := hs.Serve(httpLis); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("ingest: serve otlp http: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), r.shutdownGrace())
			defer cancel()
			if err := hs.Shutdown(sctx); err != nil {
				return fmt.Errorf("ingest: stop otlp http: %w", err)
			}
			return nil
		})
	}
	if grpcLis != nil {
		r.log.Info("otlp grpc listening", "addr", grpcLis.Addr().String())
		gs := grpc.NewServer(r.GRPCServerOptions()...)
		r.RegisterGRPC(gs)
		g.Go(func() error {
			// ErrServerStopped: ctx ended before Serve began (a stop right
			// after start), which is a clean stop like http.ErrServerClosed.
			if err := gs.Serve(grpcLis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				return fmt.Errorf("ingest: serve otlp grpc: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			<-ctx.Done()
			stopped := make(chan struct{})
			go func() {
				gs.GracefulStop()
				close(stopped)
			}()
			select {
			case <-stopped:
			case <-time.After(r.shutdownGrace()):
				gs.Stop()
			}
			return nil
		})
	}
	return g.Wait()
}

// acquire takes a decode slot. When none is free it waits up to SlotWait:
// a burst of exports (clients released by one commit) should queue for a
// moment, not bounce off a 429 and wait Retry-After. Waiting costs no
// memory, since the body is not read yet, but the number of waiters is
// bounded too. A nearly full commit queue refuses at once: decoding spans
// the queue would refuse is wasted work under overload.
func (r *Receiver) acquire(ctx context.Context) bool {
	if r.pipe.Saturated() {
		return false
	}
	select {
	case r.slots <- struct{}{}:
		return true
	default:
	}
	if r.cfg.SlotWait <= 0 {
		return false
	}
	select {
	case r.waiters <- struct{}{}:
		defer func() { <-r.waiters }()
	default:
		return false
	}
	t := time.NewTimer(r.cfg.SlotWait)
	defer t.Stop()
	select {
	case r.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

func (r *Receiver) releaseSlot() { <-r.slots }

// errTooManySpans is a request over MaxSpansPerRequest.
var errTooManySpans = errors.New("too many spans")

// export converts td (a decode slot held; export releases it once the
// spans are converted, before waiting for the commit) and submits the
// valid spans. The error is errTooManySpans, or a Pipeline error.
func (r *Receiver) export(ctx context.Context, protocol string, td ptrace.Traces, tenant string, release func()) (otlpconv.Result, error) {
	n := td.SpanCount()
	if err := r.admitCount(protocol, n); err != nil {
		release()
		return otlpconv.Result{Spans: n}, err
	}
	spans, res := r.conv.Convert(td)
	release()
	return r.submit(ctx, protocol, spans, tenant, res)
}

// admitCount counts the n spans of a request as received and refuses a
// request of more than MaxSpansPerRequest.
func (r *Receiver) admitCount(protocol string, n int) error {
	r.m.spansReceived.WithLabelValues(protocol).Add(float64(n))
	if n > r.cfg.MaxSpansPerRequest {
		r.m.spansRejected.WithLabelValues(reasonTooManySpans).Add(float64(n))
		return fmt.Errorf("%w: %d in one request, limit %d; send smaller batches", errTooManySpans, n, r.cfg.MaxSpansPerRequest)
	}
	return nil
}

// submit keeps the spans of the request's tenant (keepTenant), counts
// what conversion did and hands the rows to the pipeline.
func (r *Receiver) submit(ctx context.Context, protocol string, spans []store.Span, tenant string, res otlpconv.Result) (otlpconv.Result, error) {
	spans = keepTenant(spans, tenant, &res)
	for _, reason := range otlpconv.Reasons() {
		if c := res.RejectedFor(reason); c > 0 {
			r.m.spansRejected.WithLabelValues(reason.String()).Add(float64(c))
		}
	}
	if res.Truncated > 0 {
		r.m.truncated.Add(float64(res.Truncated))
	}
	if res.Repaired > 0 {
		r.m.repaired.Add(float64(res.Repaired))
	}
	if res.Redacted > 0 {
		r.m.redacted.Add(float64(res.Redacted))
	}
	if res.Renamed > 0 {
		r.m.renamed.Add(float64(res.Renamed))
	}
	if err := r.pipe.Submit(ctx, spans); err != nil {
		reason := reasonUnavailable
		if errors.Is(err, ErrOverloaded) {
			reason = reasonOverloaded
		}
		r.m.spansRejected.WithLabelValues(reason).Add(float64(len(spans)))
		return res, err
	}
	r.m.spansAccepted.WithLabelValues(protocol).Add(float64(len(spans)))
	return res, nil
}

// retryAfterSeconds is cfg.RetryAfter in whole seconds, at least 1.
func (r *Receiver) retryAfterSeconds() int {
	return max(1, int((r.cfg.RetryAfter+time.Second-1)/time.Second))
}
