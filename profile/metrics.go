package profile

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of an ingest request (label of the requests metric).
const (
	outcomeOK          = "ok"
	outcomeBadRequest  = "bad_request" // undecodable or unsupported profile
	outcomeTooLarge    = "too_large"   // body, decompressed profile, samples or locations over the limit
	outcomeUnsupported = "unsupported" // content encoding
	outcomeOverloaded  = "overloaded"  // every slot busy
	outcomeUnavailable = "unavailable" // store error, client gone
	outcomeNotFound    = "not_found"   // HTTP path
	outcomeBadMethod   = "bad_method"  // HTTP method
)

type metrics struct {
	requests      *prometheus.CounterVec // outcome
	profiles      *prometheus.CounterVec // type, unit
	samples       prometheus.Counter
	skipped       *prometheus.CounterVec // reason
	decodeSeconds prometheus.Histogram
	writeSeconds  prometheus.Histogram
	inFlight      prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "tailscope", Subsystem: "profile", Name: name, Help: help}
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts(opts("requests_total",
			"Profile uploads by outcome.")), []string{"outcome"}),
		profiles: prometheus.NewCounterVec(prometheus.CounterOpts(opts("profiles_stored_total",
			"Profiles committed, by type and unit (one per stored sample type of an upload).")), []string{"type", "unit"}),
		samples: prometheus.NewCounter(prometheus.CounterOpts(opts("samples_stored_total",
			"Sample rows committed (pprof samples summed per stack and span)."))),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts(opts("skipped_total",
			"Sample types (or, for negative_value, sample values) not stored, by reason.")), []string{"reason"}),
		decodeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "tailscope", Subsystem: "profile", Name: "decode_seconds",
			Help:    "Time to read, decompress, decode and convert one upload.",
			Buckets: prometheus.ExponentialBuckets(100e-6, 2, 16), // 100µs … 3.3s
		}),
		writeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "tailscope", Subsystem: "profile", Name: "write_seconds",
			Help:    "Duration of one WriteProfiles call.",
			Buckets: prometheus.ExponentialBuckets(250e-6, 2, 16), // 250µs … 8s
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts(opts("in_flight",
			"Uploads being read, decoded or written."))),
	}
	// Pre-create the error series so dashboards see zeros.
	for _, o := range []string{outcomeOK, outcomeBadRequest, outcomeTooLarge, outcomeOverloaded, outcomeUnavailable} {
		m.requests.WithLabelValues(o)
	}
	for _, r := range []string{skipUnknown, skipAmbiguous, skipCumulative, skipUnit, skipNegative} {
		m.skipped.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.requests, m.profiles, m.samples, m.skipped, m.decodeSeconds, m.writeSeconds, m.inFlight} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("profile: register metrics: %w", err)
	}
	return m, nil
}
