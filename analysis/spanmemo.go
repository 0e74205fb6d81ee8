package analysis

import (
	"context"
	"sync"

	"github.com/tailscope/tailscope/store"
)

// SpanMemo is a SpanSource that reads each trace once: the analyses of
// one incident report (the outlier examination, a budget's hop table, the
// deploy comparisons' critical-path samples, the exemplars) read
// overlapping sets of whole traces, which are the bulk of a cold report's
// time. Concurrent readers of the same trace wait for one read. It also
// reads each sample query once: the report's latency, outliers, impact
// comparison and budget compliance all read the incident window's
// samples, and two compliance computations read the same burn window.
// What it hands out is what the source answered, so every analysis
// computes what it would over the source itself.
//
// It holds at most maxSpans spans and as many samples: once full, traces
// and sample queries not yet held are read from the source and handed
// out without being kept. A memo lives as long as the computation that
// made it (one report) and is dropped with it; it never sees spans
// written after it read them, so it must not outlive that computation.
// Like every SpanSource, it hands out shared slices that callers must not
// modify.
type SpanMemo struct {
	src      SpanSource
	maxSpans int

	mu          sync.Mutex
	held        int // spans in traces
	heldSamples int // samples in samples
	traces      map[store.TraceID]*memoTrace
	samples     map[memoSampleKey]*memoSamples
}

// memoSampleKey is a store.SampleQuery with its times as instants.
type memoSampleKey struct {
	service, endpoint, version string
	from, to                   int64
	limit                      int
	minDuration                int64
}

// memoSamples is one sample query's read, as memoTrace.
type memoSamples struct {
	ready  chan struct{}
	ss     []store.Sample
	failed bool
}

// memoTrace is one trace's read: ready closes when spans and ok are set;
// failed says the read failed and the reader must read it itself.
type memoTrace struct {
	ready  chan struct{}
	spans  []store.Span
	ok     bool // the trace exists
	failed bool
}

// NewSpanMemo reads through src, holding up to maxSpans spans.
func NewSpanMemo(src SpanSource, maxSpans int) *SpanMemo {
	return &SpanMemo{src: src, maxSpans: maxSpans, traces: map[store.TraceID]*memoTrace{}, samples: map[memoSampleKey]*memoSamples{}}
}

var _ SpanSource = (*SpanMemo)(nil)

// Samples answers q from an earlier or concurrent identical query, or
// reads it from the source.
func (m *SpanMemo) Samples(ctx context.Context, q store.SampleQuery) ([]store.Sample, error) {
	k := memoSampleKey{q.Service, q.Endpoint, q.Version, q.From.UnixNano(), q.To.UnixNano(), q.Limit, q.MinDurationNano}
	m.mu.Lock()
	e, waiting := m.samples[k]
	if !waiting {
		e = &memoSamples{ready: make(chan struct{})}
		m.samples[k] = e
	}
	m.mu.Unlock()
	if waiting {
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if !e.failed {
			return e.ss, nil
		}
		// Its reader failed: read it here, without the memo.
		return m.src.Samples(ctx, q)
	}
	ss, err := m.src.Samples(ctx, q)
	m.mu.Lock()
	e.ss, e.failed = ss, err != nil
	if e.failed || m.heldSamples+len(ss) > m.maxSpans {
		delete(m.samples, k)
	} else {
		m.heldSamples += len(ss)
	}
	m.mu.Unlock()
	close(e.ready)
	return ss, err
}

// Traces returns each trace of ids that exists, reading from the source
// only the ones no earlier or concurrent call has read.
func (m *SpanMemo) Traces(ctx context.Context, ids []store.TraceID) (map[store.TraceID][]store.Span, error) {
	own, wait := m.claim(ids)
	out := make(map[store.TraceID][]store.Span, len(ids))
	// Read the claimed traces before waiting for anyone else's, so two
	// calls waiting for each other's traces both progress.
	if len(own) > 0 {
		ownIDs := make([]store.TraceID, 0, len(own))
		for id := range own {
			ownIDs = append(ownIDs, id)
		}
		got, err := m.src.Traces(ctx, ownIDs)
		m.settle(own, got, err)
		if err != nil {
			return nil, err
		}
		for id, spans := range got {
			out[id] = spans
		}
	}
	var again []store.TraceID
	for id, e := range wait {
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		switch {
		case e.failed:
			again = append(again, id)
		case e.ok:
			out[id] = e.spans
		}
	}
	// A trace whose reader failed (its own context ended, say) is read
	// here, without the memo: this call's context may well be fine.
	if len(again) > 0 {
		got, err := m.src.Traces(ctx, again)
		if err != nil {
			return nil, err
		}
		for id, spans := range got {
			out[id] = spans
		}
	}
	return out, nil
}

// claim sorts ids into the ones this call reads (new entries it must
// settle) and the ones another call has read or is reading.
func (m *SpanMemo) claim(ids []store.TraceID) (own, wait map[store.TraceID]*memoTrace) {
	m.mu.Lock()
	defer m.mu.Unlock()
	own, wait = map[store.TraceID]*memoTrace{}, map[store.TraceID]*memoTrace{}
	for _, id := range ids {
		if e, ok := m.traces[id]; ok {
			if own[id] == nil {
				wait[id] = e
			}
			continue
		}
		e := &memoTrace{ready: make(chan struct{})}
		m.traces[id] = e
		own[id] = e
	}
	return own, wait
}

// settle publishes the result of reading the claimed traces. Traces that
// would take the memo past its bound, and failed reads, are handed to
// those already waiting and forgotten.
func (m *SpanMemo) settle(own map[store.TraceID]*memoTrace, got map[store.TraceID][]store.Span, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, e := range own {
		if err != nil {
			e.failed = true
			delete(m.traces, id)
		} else {
			e.spans, e.ok = got[id]
			if m.held+len(e.spans) > m.maxSpans {
				delete(m.traces, id)
			} else {
				m.held += len(e.spans)
			}
		}
		close(e.ready)
	}
}
