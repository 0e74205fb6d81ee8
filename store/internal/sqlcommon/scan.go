package sqlcommon

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/tailscope/tailscope/store"
)

// Scanner is the row interface both pgx.Rows and *sql.Rows satisfy.
type Scanner interface {
	Scan(dest ...any) error
}

// SpanColumns lists the spans columns in the order ScanSpan reads them and
// the writers bind them.
const SpanColumns = `trace_id, span_id, parent_span_id, service, name, kind, start_ns, duration_ns,
status_code, status_message, attributes, resource, events, links,
tenant, version, dependency, payload_bytes, host, weight`

// SpanColumnNames is SpanColumns as a slice (for COPY).
var SpanColumnNames = strings.Split(strings.Join(strings.Fields(SpanColumns), ""), ",")

// ShapeColumns lists the columns ScanShape reads: SpanColumns without
// attributes, resource and events, the JSON that costs most of a span's
// decoding and that analyses of a trace's shape (its tree, critical path
// and hops) never look at. Links stay: the trace tree follows them.
const ShapeColumns = `trace_id, span_id, parent_span_id, service, name, kind, start_ns, duration_ns,
status_code, status_message, links,
tenant, version, dependency, payload_bytes, host, weight`

// ShapeColumnNames is ShapeColumns as a slice.
var ShapeColumnNames = strings.Split(strings.Join(strings.Fields(ShapeColumns), ""), ",")

// ScanSpan reads one row selected with SpanColumns.
func ScanSpan(sc Scanner) (store.Span, error) {
	var (
		s                         store.Span
		tid, sid, pid             []byte
		kind, status              int64
		attrs, res, events, links []byte
	)
	if err := sc.Scan(&tid, &sid, &pid, &s.Service, &s.Name, &kind, &s.StartUnixNano, &s.DurationNano,
		&status, &s.StatusMessage, &attrs, &res, &events, &links,
		&s.Tenant, &s.Version, &s.Dependency, &s.PayloadBytes, &s.Host, &s.Weight); err != nil {
		return s, err
	}
	if err := finishSpan(&s, tid, sid, pid, kind, status, links); err != nil {
		return s, err
	}
	s.Attributes = attributes(attrs)
	s.Resource = attributes(res)
	if len(events) > 0 {
		if err := json.Unmarshal(events, &s.Events); err != nil {
			return s, fmt.Errorf("decode events: %w", err)
		}
	}
	return s, nil
}

// ScanShape reads one row selected with ShapeColumns: a span as ScanSpan
// reads it with Attributes, Resource and Events nil.
func ScanShape(sc Scanner) (store.Span, error) {
	var (
		s             store.Span
		tid, sid, pid []byte
		kind, status  int64
		links         []byte
	)
	if err := sc.Scan(&tid, &sid, &pid, &s.Service, &s.Name, &kind, &s.StartUnixNano, &s.DurationNano,
		&status, &s.StatusMessage, &links,
		&s.Tenant, &s.Version, &s.Dependency, &s.PayloadBytes, &s.Host, &s.Weight); err != nil {
		return s, err
	}
	return s, finishSpan(&s, tid, sid, pid, kind, status, links)
}

// finishSpan sets the columns ScanSpan and ScanShape both read that need
// converting: ids, kind, status and links.
func finishSpan(s *store.Span, tid, sid, pid []byte, kind, status int64, links []byte) error {
	if err := copyID(s.TraceID[:], tid, "trace id"); err != nil {
		return err
	}
	if err := copyID(s.SpanID[:], sid, "span id"); err != nil {
		return err
	}
	if pid != nil {
		if err := copyID(s.ParentSpanID[:], pid, "parent span id"); err != nil {
			return err
		}
	}
	s.Kind = store.SpanKind(kind)
	s.StatusCode = store.StatusCode(status)
	if len(links) > 0 {
		if err := json.Unmarshal(links, &s.Links); err != nil {
			return fmt.Errorf("decode links: %w", err)
		}
	}
	return nil
}

// attributes normalises a stored object: empty objects read back as nil, as
// store.Attributes documents.
func attributes(b []byte) store.Attributes {
	if len(b) == 0 || string(b) == "{}" {
		return nil
	}
	return store.Attributes(b)
}

func copyID(dst, src []byte, what string) error {
	if len(src) != len(dst) {
		return fmt.Errorf("stored %s has %d bytes, want %d", what, len(src), len(dst))
	}
	copy(dst, src)
	return nil
}

// encodeEvents encodes span events for storage (nil when there are none).
func encodeEvents(ev []store.Event) ([]byte, error) {
	if len(ev) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode events: %w", err)
	}
	return CleanJSON(b), nil
}

// EncodeEventsLinks encodes a span's events and links for storage.
func EncodeEventsLinks(s *store.Span) (events, links []byte, err error) {
	if events, err = encodeEvents(s.Events); err != nil {
		return nil, nil, err
	}
	if links, err = encodeLinks(s.Links); err != nil {
		return nil, nil, err
	}
	return events, links, nil
}

// encodeLinks encodes span links for storage (nil when there are none).
func encodeLinks(ls []store.Link) ([]byte, error) {
	if len(ls) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(ls)
	if err != nil {
		return nil, fmt.Errorf("encode links: %w", err)
	}
	return CleanJSON(b), nil
}

// SampleColumns lists the columns a SampleBuilder assembles, in order.
const SampleColumns = "trace_id, span_id, service, name, tenant, version, host, start_ns, duration_ns, status_code, payload_bytes, weight"

// SampleBuilder assembles the ~100k Samples of one analysis read without an
// allocation per text column: the stores scan text and ids into driver-owned
// buffers and the builder interns the few distinct service, endpoint,
// tenant, version and host names. Results are gathered in fixed chunks so
// the result slice is never regrown and copied.
type SampleBuilder struct {
	strs   map[string]string
	chunks [][]store.Sample
	n      int
}

// NewSampleBuilder returns an empty builder.
func NewSampleBuilder() *SampleBuilder {
	return &SampleBuilder{strs: make(map[string]string)}
}

const (
	sampleChunk = 8192
	maxInterned = 1 << 14 // bounds memory when a column is high-cardinality
)

func (b *SampleBuilder) intern(v []byte) string {
	if s, ok := b.strs[string(v)]; ok { // no allocation for the lookup
		return s
	}
	s := string(v)
	if len(b.strs) < maxInterned {
		b.strs[s] = s
	}
	return s
}

// Add appends one row; the byte slices may be reused after it returns.
func (b *SampleBuilder) Add(tid, sid, service, name, tenant, version, host []byte, start, dur, status, payload int64, weight float64) error {
	s := store.Sample{
		Service: b.intern(service), Name: b.intern(name), Tenant: b.intern(tenant),
		Version: b.intern(version), Host: b.intern(host),
		StartUnixNano: start, DurationNano: dur, PayloadBytes: payload, Weight: store.NormWeight(weight),
		Error: store.StatusCode(status) == store.StatusError,
	}
	if err := copyID(s.TraceID[:], tid, "trace id"); err != nil {
		return err
	}
	if err := copyID(s.SpanID[:], sid, "span id"); err != nil {
		return err
	}
	if len(b.chunks) == 0 || len(b.chunks[len(b.chunks)-1]) == sampleChunk {
		b.chunks = append(b.chunks, make([]store.Sample, 0, sampleChunk))
	}
	last := &b.chunks[len(b.chunks)-1]
	*last = append(*last, s)
	b.n++
	return nil
}

// Samples returns the rows added ordered by start, then trace id and span
// id. Rows usually arrive nearly ordered, which pdqsort handles in about
// linear time.
func (b *SampleBuilder) Samples() []store.Sample {
	out := make([]store.Sample, 0, b.n)
	for _, c := range b.chunks {
		out = append(out, c...)
	}
	slices.SortFunc(out, func(x, y store.Sample) int {
		if c := cmp.Compare(x.StartUnixNano, y.StartUnixNano); c != 0 {
			return c
		}
		if c := bytes.Compare(x.TraceID[:], y.TraceID[:]); c != 0 {
			return c
		}
		return bytes.Compare(x.SpanID[:], y.SpanID[:])
	})
	return out
}

// MatchRow is one row of the trace search query built by BuildTraceSearch.
type MatchRow struct {
	TraceID       store.TraceID
	FirstMatch    int64
	LastMatch     int64
	MatchDuration int64
}

// ScanMatch reads one MatchRow.
func ScanMatch(sc Scanner) (MatchRow, error) {
	var (
		m   MatchRow
		tid []byte
	)
	if err := sc.Scan(&tid, &m.FirstMatch, &m.LastMatch, &m.MatchDuration); err != nil {
		return m, err
	}
	return m, copyID(m.TraceID[:], tid, "trace id")
}

// ScanSummary reads one row of SummarySQL.
func ScanSummary(sc Scanner) (store.TraceSummary, error) {
	var (
		s                            store.TraceSummary
		tid                          []byte
		isRoot                       bool
		n, errs, firstStart, lastEnd int64
	)
	if err := sc.Scan(&tid, &s.RootService, &s.RootName, &s.StartUnixNano, &s.DurationNano,
		&s.Tenant, &s.Version, &isRoot, &n, &errs, &firstStart, &lastEnd); err != nil {
		return s, err
	}
	if err := copyID(s.TraceID[:], tid, "trace id"); err != nil {
		return s, err
	}
	s.SpanCount, s.ErrorCount = int(n), int(errs)
	if !isRoot {
		// No root yet: the earliest span names the trace and the duration
		// is the extent of what has arrived.
		s.StartUnixNano = firstStart
		s.DurationNano = lastEnd - firstStart
	}
	return s, nil
}

// OrderSummaries returns the summaries in the order of matches, filling in
// MatchDurationNano. Traces that vanished between the two queries (retention)
// are dropped.
func OrderSummaries(matches []MatchRow, sums []store.TraceSummary) []store.TraceSummary {
	byID := make(map[store.TraceID]store.TraceSummary, len(sums))
	for _, s := range sums {
		byID[s.TraceID] = s
	}
	out := make([]store.TraceSummary, 0, len(matches))
	for _, m := range matches {
		s, ok := byID[m.TraceID]
		if !ok {
			continue
		}
		s.MatchDurationNano = m.MatchDuration
		out = append(out, s)
	}
	return out
}

// SortEndpoints orders endpoints by service then name, bytewise, so both
// dialects agree whatever the database collation.
func SortEndpoints(eps []store.Endpoint) {
	slices.SortFunc(eps, func(a, b store.Endpoint) int {
		if c := strings.Compare(a.Service, b.Service); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
}

// SortBudgets orders budgets by service, endpoint, id, bytewise.
func SortBudgets(bs []store.Budget) {
	slices.SortFunc(bs, func(a, b store.Budget) int {
		if c := strings.Compare(a.Service, b.Service); c != 0 {
			return c
		}
		if c := strings.Compare(a.Endpoint, b.Endpoint); c != 0 {
			return c
		}
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
}

// SpanOrder orders the spans of a trace as store.Reader.Trace returns
// them: by start, then span id. Reads of many traces sort each trace with
// it rather than have the database sort every row they read.
func SpanOrder(a, b store.Span) int {
	return cmp.Or(cmp.Compare(a.StartUnixNano, b.StartUnixNano), bytes.Compare(a.SpanID[:], b.SpanID[:]))
}
