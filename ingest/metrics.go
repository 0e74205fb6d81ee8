package ingest

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailscope/tailscope/ingest/otlpconv"
)

// Label values of the request and span metrics.
const (
	protoHTTP = "http"
	protoGRPC = "grpc"

	outcomeOK          = "ok"          // every span committed
	outcomePartial     = "partial"     // committed, some spans rejected
	outcomeBadRequest  = "bad_request" // undecodable
	outcomeTooLarge    = "too_large"   // body, decompressed body or span count over the limit
	outcomeUnsupported = "unsupported" // content type or encoding
	outcomeOverloaded  = "overloaded"  // queue or decode slots full
	outcomeUnavailable = "unavailable" // store error, shutdown, client gone
	outcomeNotFound    = "not_found"   // HTTP path
	outcomeBadMethod   = "bad_method"  // HTTP method
	outcomeSlowBody    = "slow_body"   // HTTP body slower than the minimum rate

	// Span rejection reasons besides otlpconv's.
	reasonTooManySpans = "too_many_spans"
	reasonOverloaded   = "overloaded"
	reasonUnavailable  = "unavailable"

	encodingProtobuf = "protobuf"
	encodingJSON     = "json"
	encodingGRPC     = "grpc"

	resultOK    = "ok"
	resultError = "error"
)

const (
	metricNamespace = "tailscope"
	metricSubsystem = "ingest"
)

// receiverMetrics are the request-level metrics.
type receiverMetrics struct {
	requests      *prometheus.CounterVec   // protocol, outcome
	spansReceived *prometheus.CounterVec   // protocol
	spansAccepted *prometheus.CounterVec   // protocol
	spansRejected *prometheus.CounterVec   // reason
	decodeSeconds *prometheus.HistogramVec // encoding
	truncated     prometheus.Counter
	repaired      prometheus.Counter
	redacted      prometheus.Counter
	renamed       prometheus.Counter
}

// pipelineMetrics are the queue and commit metrics.
type pipelineMetrics struct {
	queueSpans    prometheus.Gauge
	queueBytes    prometheus.Gauge
	batchSpans    prometheus.Histogram
	commitSeconds prometheus.Histogram
	commits       *prometheus.CounterVec // outcome
	deploys       *prometheus.CounterVec // outcome
}

func opts(name, help string) prometheus.Opts {
	return prometheus.Opts{Namespace: metricNamespace, Subsystem: metricSubsystem, Name: name, Help: help}
}

func newReceiverMetrics(reg prometheus.Registerer) (*receiverMetrics, error) {
	m := &receiverMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts(opts("requests_total",
			"OTLP export requests by protocol and outcome.")), []string{"protocol", "outcome"}),
		spansReceived: prometheus.NewCounterVec(prometheus.CounterOpts(opts("spans_received_total",
			"Spans in decoded export requests.")), []string{"protocol"}),
		spansAccepted: prometheus.NewCounterVec(prometheus.CounterOpts(opts("spans_accepted_total",
			"Spans acknowledged: committed to the store, or fsynced to the write-ahead log when there is one.")), []string{"protocol"}),
		spansRejected: prometheus.NewCounterVec(prometheus.CounterOpts(opts("spans_rejected_total",
			"Spans not stored, by reason: invalid data, too many in a request, queue full, store unavailable.")), []string{"reason"}),
		decodeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricNamespace, Subsystem: metricSubsystem, Name: "decode_seconds",
			Help:    "Time to decompress, decode and convert one request, once its body is read.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16), // 50µs … 1.6s
		}, []string{"encoding"}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts(opts("values_truncated_total",
			"Attribute values, keys, names and messages cut to their configured limit."))),
		repaired: prometheus.NewCounter(prometheus.CounterOpts(opts("strings_repaired_total",
			"Strings whose NUL bytes or invalid UTF-8 were replaced with U+FFFD."))),
		redacted: prometheus.NewCounter(prometheus.CounterOpts(opts("values_redacted_total",
			"Attribute values and messages rewritten by redaction before storage."))),
		renamed: prometheus.NewCounter(prometheus.CounterOpts(opts("span_names_templated_total",
			"Spans named after their request path or SQL statement, stored under the name's template."))),
	}
	// Pre-create the rejection series so dashboards see zeros.
	for _, r := range otlpconv.Reasons() {
		m.spansRejected.WithLabelValues(r.String())
	}
	for _, r := range []string{reasonTooManySpans, reasonOverloaded, reasonUnavailable} {
		m.spansRejected.WithLabelValues(r)
	}
	return m, register(reg, m.requests, m.spansReceived, m.spansAccepted, m.spansRejected, m.decodeSeconds, m.truncated, m.repaired, m.redacted, m.renamed)
}

func newPipelineMetrics(reg prometheus.Registerer) (*pipelineMetrics, error) {
	m := &pipelineMetrics{
		queueSpans: prometheus.NewGauge(prometheus.GaugeOpts(opts("queue_spans",
			"Spans waiting for or in a commit."))),
		queueBytes: prometheus.NewGauge(prometheus.GaugeOpts(opts("queue_bytes",
			"Approximate memory of the spans waiting for or in a commit."))),
		batchSpans: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricNamespace, Subsystem: metricSubsystem, Name: "batch_spans",
			Help:    "Spans per WriteSpans call (group commit batch size).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10), // 1 … 262144
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricNamespace, Subsystem: metricSubsystem, Name: "commit_seconds",
			Help:    "Duration of one WriteSpans call.",
			Buckets: prometheus.ExponentialBuckets(250e-6, 2, 16), // 250µs … 8s
		}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts(opts("commits_total",
			"WriteSpans calls by outcome.")), []string{"outcome"}),
		deploys: prometheus.NewCounterVec(prometheus.CounterOpts(opts("deploy_markers_total",
			"Automatic deploy markers recorded for newly seen (service, version) pairs.")), []string{"outcome"}),
	}
	for _, o := range []string{resultOK, resultError} {
		m.commits.WithLabelValues(o)
		m.deploys.WithLabelValues(o)
	}
	return m, register(reg, m.queueSpans, m.queueBytes, m.batchSpans, m.commitSeconds, m.commits, m.deploys)
}

func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	var errs []error
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ingest: register metrics: %w", err)
	}
	return nil
}

// walMetrics are the write-ahead log's and its loader's metrics.
type walMetrics struct {
	syncs       *prometheus.CounterVec // outcome
	syncSeconds prometheus.Histogram
	groupRecs   prometheus.Histogram
	setAside    prometheus.Counter
	gauges      []prometheus.Collector
}

func newWALMetrics(j *Journal) *walMetrics {
	m := &walMetrics{
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts(opts("wal_fsyncs_total",
			"Group fsyncs of the write-ahead log by outcome; each answers every request appended since the previous one.")), []string{"outcome"}),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricNamespace, Subsystem: metricSubsystem, Name: "wal_fsync_seconds",
			Help:    "Duration of one write-ahead log write and fsync (what an acknowledged request waits, at most twice).",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16), // 50µs … 1.6s
		}),
		groupRecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricNamespace, Subsystem: metricSubsystem, Name: "wal_group_requests",
			Help:    "Requests made durable by one group fsync.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12), // 1 … 2048
		}),
		setAside: prometheus.NewCounter(prometheus.CounterOpts(opts("wal_set_aside_spans_total",
			"Logged spans the store refused repeatedly for a reason other than an outage, kept in the log directory's rejected/ folder."))),
	}
	m.gauges = []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("wal_bytes",
			"Size of the write-ahead log: segments on disk plus records waiting for their fsync.")),
			func() float64 { return float64(j.log.Bytes()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("wal_unapplied_bytes",
			"Logged bytes the loader has not yet applied to the store.")),
			func() float64 { n, _ := j.Lag(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("wal_lag_seconds",
			"Age of the oldest logged request the loader is applying (0 when caught up): how late reads see new spans.")),
			func() float64 { _, age := j.Lag(); return age.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("trace_index_held_traces",
			"Traces whose trace index row the loader holds until a flush stores it (the second after it was first held, one every --trace-index-delay): they show in other processes' searches after it.")),
			func() float64 {
				if j.index == nil {
					return 0
				}
				return float64(j.index.HeldTraceIndexRows())
			}),
	}
	for _, o := range []string{resultOK, resultError} {
		m.syncs.WithLabelValues(o)
	}
	return m
}

func (m *walMetrics) register(reg prometheus.Registerer) error {
	return register(reg, append([]prometheus.Collector{m.syncs, m.syncSeconds, m.groupRecs, m.setAside}, m.gauges...)...)
}

// observeSync is the log's Observe hook.
func (m *walMetrics) observeSync(records int, _ int64, d time.Duration, err error) {
	if err != nil {
		m.syncs.WithLabelValues(resultError).Inc()
		return
	}
	m.syncs.WithLabelValues(resultOK).Inc()
	m.syncSeconds.Observe(d.Seconds())
	m.groupRecs.Observe(float64(records))
}
