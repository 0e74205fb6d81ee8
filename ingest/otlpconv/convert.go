package otlpconv

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailscope/tailscope/store"
)

// Reason says why a span was rejected.
type Reason uint8

// Rejection reasons. They are metric label values, so their String forms are
// stable.
const (
	// ReasonInvalidTraceID: the trace id is all zero or (on the wire) not
	// 16 bytes / 32 hex digits.
	ReasonInvalidTraceID Reason = iota
	// ReasonInvalidSpanID: the span id is all zero, or the span id or
	// parent span id is not 8 bytes / 16 hex digits on the wire.
	ReasonInvalidSpanID
	// ReasonInvalidTime: the start time is missing (zero) or a timestamp
	// does not fit in int64 nanoseconds (after the year 2262).
	ReasonInvalidTime
	// ReasonEndBeforeStart: the end time is before the start time.
	ReasonEndBeforeStart
	// ReasonTooOld: the span started before the accepted range (more than
	// Options.MaxAge ago).
	ReasonTooOld
	// ReasonTooNew: the span starts after the accepted range (more than
	// Options.MaxClockSkew ahead of now).
	ReasonTooNew
	// ReasonWrongTenant: the span names a tenant the request's ingest
	// token may not write (the receiver checks this, not Convert).
	ReasonWrongTenant
	numReasons
)

var reasonNames = [numReasons]string{"invalid_trace_id", "invalid_span_id", "invalid_time", "end_before_start", "too_old", "too_new", "wrong_tenant"}

var reasonText = [numReasons]string{
	"invalid trace id (all-zero)",
	"invalid span id (all-zero)",
	"missing or out-of-range timestamp",
	"end time before start time",
	"start time before the accepted range",
	"start time after the accepted range",
	"tenant not allowed for this ingest token",
}

// String returns the metric label form ("invalid_trace_id", ...).
func (r Reason) String() string {
	if r >= numReasons {
		return "unknown"
	}
	return reasonNames[r]
}

// Reasons lists every rejection reason, for metrics that pre-create series.
func Reasons() []Reason {
	rs := make([]Reason, numReasons)
	for i := range rs {
		rs[i] = Reason(i)
	}
	return rs
}

// Result counts what Convert did to one request.
type Result struct {
	Spans        int // spans in the request
	rejected     [numReasons]int
	Truncated    int // attribute values, keys, names or messages cut to their limit
	Repaired     int // strings whose NUL bytes or invalid UTF-8 were replaced
	DroppedLinks int // links with an all-zero trace or span id
	Redacted     int // values rewritten by Options.Redaction

	// The accepted start times of this request, for Message.
	accepted       [2]time.Time
	maxAge, maxAhd time.Duration
}

// Rejected returns the number of spans rejected for any reason.
func (r *Result) Rejected() int {
	n := 0
	for _, c := range r.rejected {
		n += c
	}
	return n
}

// Reject counts n more spans rejected for reason, by a check made after
// Convert.
func (r *Result) Reject(reason Reason, n int) {
	if reason < numReasons {
		r.rejected[reason] += n
	}
}

// RejectedFor returns the number of spans rejected for reason.
func (r *Result) RejectedFor(reason Reason) int {
	if reason >= numReasons {
		return 0
	}
	return r.rejected[reason]
}

// Message explains the rejections for an OTLP partial_success
// error_message, e.g. "rejected 3 of 10 spans: 2 invalid span id (...), 1 end
// time before start time". It is "" when nothing was rejected.
func (r *Result) Message() string {
	n := r.Rejected()
	if n == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "rejected %d of %d spans:", n, r.Spans)
	sep := " "
	for i, c := range r.rejected {
		if c == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s%d %s", sep, c, reasonText[i])
		sep = ", "
	}
	if r.rejected[ReasonTooOld]+r.rejected[ReasonTooNew] > 0 {
		from := "any time"
		if r.maxAge > 0 {
			from = r.accepted[0].UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(&b, "; spans are accepted when they start from %s to %s (", from, r.accepted[1].UTC().Format(time.RFC3339))
		if r.maxAge > 0 {
			fmt.Fprintf(&b, "at most %v old, the retention; ", r.maxAge)
		}
		fmt.Fprintf(&b, "at most %v ahead of the receiver's clock)", r.maxAhd)
	}
	return b.String()
}

// Converter turns pdata traces into store spans. It is immutable and safe
// for concurrent use.
type Converter struct {
	opts        Options
	now         func() time.Time
	red         *redactor
	tenantKeys  []string
	payloadKeys []string
	// configLens has bit n set when a tenant or payload key is n bytes
	// long (n < 64; longer keys set bit 63), so most attributes skip the
	// key loops after one test.
	configLens uint64
}

// NewConverter returns a Converter, or an error when opts are unusable.
func NewConverter(opts Options) (*Converter, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	red, err := newRedactor(opts.Redaction)
	if err != nil {
		return nil, err
	}
	c := &Converter{
		opts:        opts,
		now:         opts.Now,
		red:         red,
		tenantKeys:  slices.Clone(opts.TenantKeys),
		payloadKeys: slices.Clone(opts.PayloadKeys),
	}
	if c.now == nil {
		c.now = time.Now
	}
	for _, k := range slices.Concat(c.tenantKeys, c.payloadKeys) {
		c.configLens |= lenBit(k)
	}
	return c, nil
}

// Convert returns the valid spans of td as store rows, in request order,
// redacted, and counts what it rejected, truncated, repaired and redacted.
// A span is valid when its ids are not zero, its times are in order and it
// starts within the accepted range: from Options.MaxAge before now to
// Options.MaxClockSkew after it. Every text field of the returned spans is
// valid UTF-8 without NUL. The spans share backing arrays (attribute bytes,
// event slices) with each other and must be treated as read-only.
func (c *Converter) Convert(td ptrace.Traces) ([]store.Span, Result) {
	st := state{c: c}
	st.res.Spans = td.SpanCount()
	now := c.now()
	st.res.accepted = [2]time.Time{now.Add(-c.opts.MaxAge), now.Add(c.opts.MaxClockSkew)}
	st.res.maxAge, st.res.maxAhd = c.opts.MaxAge, c.opts.MaxClockSkew
	st.minStart, st.maxStart = math.MinInt64, clampTime(st.res.accepted[1])
	if c.opts.MaxAge > 0 {
		st.minStart = clampTime(st.res.accepted[0])
	}
	spans := make([]store.Span, 0, st.res.Spans)
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		var ro resourceObs
		ro.tenantRank = len(c.tenantKeys)
		res := st.encodeMap(rs.Resource().Attributes(), nil, &ro)
		rd := resourceData{
			attrs:   res,
			service: st.text(ro.service),
			version: st.text(ro.version),
			host:    st.text(cmp.Or(ro.host, ro.instance)),
			tenant:  ro.tenant,
		}
		if rd.service == "" {
			rd.service = UnknownService
		}
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			sp := sss.At(j).Spans()
			for k := 0; k < sp.Len(); k++ {
				spans = st.appendSpan(spans, sp.At(k), &rd)
			}
		}
	}
	return spans, st.res
}

// resourceData is what every span of one ResourceSpans shares.
type resourceData struct {
	attrs                  store.Attributes
	service, version, host string
	tenant                 string // unsanitised; the span's own tenant wins
}

// Chunk sizes for the per-request arenas: big enough that a 100-span
// request allocates a handful of times, small enough that a tiny request
// does not pin much memory.
const (
	byteChunk  = 32 << 10
	minFree    = 2 << 10 // start a new chunk rather than grow one for a typical object
	eventChunk = 64
)

// maxDepth bounds nested arrays and maps in attribute values. pdata's
// decoders already refuse deeper nesting than this; the check keeps the
// encoder safe on values built in memory.
const maxDepth = 64

// clampTime is t in Unix nanoseconds, clamped to int64 (UnixNano is
// undefined outside 1678–2262).
func clampTime(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// state is the scratch of one Convert call.
type state struct {
	c         *Converter
	res       Result
	arena     []byte        // current chunk of encoded attribute objects
	events    []store.Event // current chunk of event slots
	truncated []string      // keys cut in the object being encoded
	// minStart and maxStart bound the accepted start times (Unix ns).
	minStart, maxStart int64
}

func (st *state) reject(r Reason) { st.res.rejected[r]++ }

func (st *state) appendSpan(dst []store.Span, sp ptrace.Span, rd *resourceData) []store.Span {
	tid := sp.TraceID()
	if tid.IsEmpty() {
		st.reject(ReasonInvalidTraceID)
		return dst
	}
	sid := sp.SpanID()
	if sid.IsEmpty() {
		st.reject(ReasonInvalidSpanID)
		return dst
	}
	start, end := uint64(sp.StartTimestamp()), uint64(sp.EndTimestamp())
	if start == 0 || start > math.MaxInt64 || end > math.MaxInt64 {
		st.reject(ReasonInvalidTime)
		return dst
	}
	if end < start {
		st.reject(ReasonEndBeforeStart)
		return dst
	}
	switch {
	case int64(start) < st.minStart:
		st.reject(ReasonTooOld)
		return dst
	case int64(start) > st.maxStart:
		st.reject(ReasonTooNew)
		return dst
	}

	dst = append(dst, store.Span{})
	s := &dst[len(dst)-1]
	s.TraceID = store.TraceID(tid)
	s.SpanID = store.SpanID(sid)
	s.ParentSpanID = store.SpanID(sp.ParentSpanID())
	s.Service = rd.service
	s.Name = st.text(sp.Name())
	if k := sp.Kind(); k >= ptrace.SpanKindUnspecified && k <= ptrace.SpanKindConsumer {
		s.Kind = store.SpanKind(k)
	}
	s.StartUnixNano = int64(start)
	s.DurationNano = int64(end - start)
	status := sp.Status()
	if code := status.Code(); code >= ptrace.StatusCodeUnset && code <= ptrace.StatusCodeError {
		s.StatusCode = store.StatusCode(code)
	}
	s.StatusMessage = st.text(st.redactText(status.Message()))
	s.Resource = rd.attrs

	var so spanObs
	so.reset(len(st.c.tenantKeys))
	s.Attributes = st.encodeMap(sp.Attributes(), &so, nil)

	s.Tenant = st.text(cmp.Or(so.tenant, rd.tenant))
	s.Version = rd.version
	s.Host = rd.host
	s.Dependency = st.text(so.dependency(s.Kind))
	s.PayloadBytes = so.payload()

	if evs := sp.Events(); evs.Len() > 0 {
		out := st.eventSlots(evs.Len())
		for i := range out {
			ev := evs.At(i)
			out[i] = store.Event{
				TimeUnixNano: clampNanos(uint64(ev.Timestamp())),
				Name:         st.text(ev.Name()),
				Attributes:   st.encodeMap(ev.Attributes(), nil, nil),
			}
		}
		s.Events = out
	}
	if links := sp.Links(); links.Len() > 0 {
		out := make([]store.Link, 0, links.Len())
		for i := 0; i < links.Len(); i++ {
			l := links.At(i)
			ltid, lsid := l.TraceID(), l.SpanID()
			if ltid.IsEmpty() || lsid.IsEmpty() {
				st.res.DroppedLinks++
				continue
			}
			out = append(out, store.Link{
				TraceID:    store.TraceID(ltid),
				SpanID:     store.SpanID(lsid),
				Attributes: st.encodeMap(l.Attributes(), nil, nil),
			})
		}
		if len(out) > 0 {
			s.Links = out
		}
	}
	return dst
}

func clampNanos(t uint64) int64 {
	if t > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(t)
}

// text sanitises a name-like string: NUL and invalid UTF-8 become U+FFFD and
// the result is cut to MaxNameBytes. Clean short strings (nearly all) are
// returned as they are, without allocating.
func (st *state) text(s string) string {
	limit := st.c.opts.MaxNameBytes
	cutDone := false
	if len(s) > limit {
		// Cut before repairing so a huge bad string costs little.
		s = cut(s, limit)
		cutDone = true
	}
	if needsRepair(s) {
		s = repair(s)
		st.res.Repaired++
		if len(s) > limit {
			s = cut(s, limit) // U+FFFD is 3 bytes; repair can grow s
			cutDone = true
		}
	}
	if cutDone {
		st.res.Truncated++
	}
	return s
}

func lenBit(k string) uint64 { return 1 << min(len(k), 63) }

// eventSlots returns n zeroed event slots carved from a shared chunk.
func (st *state) eventSlots(n int) []store.Event {
	if n > eventChunk {
		return make([]store.Event, n)
	}
	if n > cap(st.events)-len(st.events) {
		st.events = make([]store.Event, 0, eventChunk)
	}
	i := len(st.events)
	st.events = st.events[:i+n]
	return st.events[i : i+n : i+n]
}

// encodeMap encodes m as a JSON object (nil when m is empty), redacting as
// it goes and feeding the top-level keys to so or ro for derivation: one
// pass over the attributes serves all three. Derivation sees the redacted
// values, and nothing of a denied key, so a derived column cannot hold what
// redaction removed.
func (st *state) encodeMap(m pcommon.Map, so *spanObs, ro *resourceObs) store.Attributes {
	if m.Len() == 0 {
		return nil
	}
	// Encode straight into the arena: no scratch copy. When the chunk
	// fills up mid-object, append moves the chunk to a bigger array; the
	// objects already handed out keep the old one, so nothing breaks and
	// at most one chunk's worth is wasted.
	buf := st.arena
	if cap(buf)-len(buf) < minFree {
		buf = make([]byte, 0, byteChunk)
	}
	start := len(buf)
	buf = append(buf, '{')
	st.truncated = st.truncated[:0]
	first := true
	red := st.c.red
	for k, v := range m.All() {
		denied := red.denied(k)
		var (
			str           string
			isStr, strCut bool
			changed       bool
		)
		if !denied && v.Type() == pcommon.ValueTypeStr {
			isStr = true
			str, strCut, changed = st.scrubTop(m, k, v.Str())
		}
		if (so != nil || ro != nil) && !denied {
			ov := v
			if changed && st.c.derivesFrom(k) {
				ov = pcommon.NewValueStr(str)
			}
			if so != nil {
				st.c.observeSpan(so, k, ov)
			} else {
				st.c.observeResource(ro, k, ov)
			}
		}
		if !first {
			buf = append(buf, ',')
		}
		first = false
		key, keyCut := k, false
		if len(key) > st.c.opts.MaxNameBytes {
			key, keyCut = cut(key, st.c.opts.MaxNameBytes), true
		}
		var repaired, valCut bool
		buf, repaired = appendString(buf, key)
		if repaired {
			st.res.Repaired++
		}
		buf = append(buf, ':')
		switch {
		case denied:
			st.res.Redacted++
			buf = append(buf, `"`+RedactedValue+`"`...)
		case isStr:
			buf, valCut = st.appendStr(buf, str, strCut)
		default:
			buf, valCut = st.appendValue(buf, v, 0)
		}
		if keyCut || valCut {
			st.res.Truncated++
			st.truncated = append(st.truncated, key)
		}
	}
	if len(st.truncated) > 0 {
		buf = append(buf, `,"`+TruncatedKey+`":[`...)
		for i, k := range st.truncated {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf, _ = appendString(buf, k)
		}
		buf = append(buf, ']')
	}
	buf = append(buf, '}')
	st.arena = buf
	// Cap the object so an append by a later reader cannot spill into its
	// neighbour.
	return store.Attributes(buf[start:len(buf):len(buf)])
}

// redactMargin is how far past MaxValueBytes a value is read for
// redaction: a secret that starts before the cut and ends within this is
// still found, while a huge value costs no more than this to scan. What
// lies past the cut is dropped anyway.
const redactMargin = 1024

// scrubLimit cuts s to what redaction needs to read (see redactMargin).
func (st *state) scrubLimit(s string) (string, bool) {
	if n := st.c.opts.MaxValueBytes + redactMargin; len(s) > n {
		return cut(s, n), true
	}
	return s, false
}

// scrubTop redacts the string value of top-level key k of m: statements
// and URLs by their meaning, then the value patterns. It returns the value
// to store, whether it was cut on the way (scrubLimit) and whether
// redaction changed it.
func (st *state) scrubTop(m pcommon.Map, k, s string) (string, bool, bool) {
	red := st.c.red
	var (
		out       string
		cutBefore bool
	)
	switch {
	case red.sql != nil && (k == keyDBQueryText || k == keyDBStatement):
		s, cutBefore = st.scrubLimit(s)
		kind, dbms := statementKind(m)
		out = red.statement(s, kind, dbms)
	case red.urls && (k == keyURLFull || k == keyHTTPURL || k == keyHTTPTarget || k == keyURLQuery):
		s, cutBefore = st.scrubLimit(s)
		out = scrubURL(s, k == keyURLQuery)
	case len(red.patterns) == 0:
		return s, false, false
	default:
		s, cutBefore = st.scrubLimit(s)
		out = s
	}
	out, _ = red.patternsApply(out)
	if out == s {
		return s, cutBefore, false
	}
	st.res.Redacted++
	return out, cutBefore, true
}

// redactText runs the value patterns over a message.
func (st *state) redactText(s string) string {
	if len(st.c.red.patterns) == 0 || s == "" {
		return s
	}
	s, _ = st.scrubLimit(s)
	out, changed := st.c.red.patternsApply(s)
	if changed {
		st.res.Redacted++
	}
	return out
}

// appendStr appends s as a JSON string cut to MaxValueBytes and reports
// whether it was cut (or, per cutBefore, had been).
func (st *state) appendStr(buf []byte, s string, cutBefore bool) ([]byte, bool) {
	cutDone := cutBefore
	if limit := st.c.opts.MaxValueBytes; len(s) > limit {
		s, cutDone = cut(s, limit), true
	}
	buf, repaired := appendString(buf, s)
	if repaired {
		st.res.Repaired++
	}
	return buf, cutDone
}

// appendValue appends v as JSON, redacted, and reports whether anything in
// it was cut.
func (st *state) appendValue(buf []byte, v pcommon.Value, depth int) ([]byte, bool) {
	limit := st.c.opts.MaxValueBytes
	switch v.Type() {
	case pcommon.ValueTypeStr:
		s, cutBefore := v.Str(), false
		if len(st.c.red.patterns) > 0 {
			s, cutBefore = st.scrubLimit(s)
			var changed bool
			if s, changed = st.c.red.patternsApply(s); changed {
				st.res.Redacted++
			}
		}
		return st.appendStr(buf, s, cutBefore)
	case pcommon.ValueTypeInt:
		return strconv.AppendInt(buf, v.Int(), 10), false
	case pcommon.ValueTypeDouble:
		return appendFloat(buf, v.Double()), false
	case pcommon.ValueTypeBool:
		return strconv.AppendBool(buf, v.Bool()), false
	case pcommon.ValueTypeBytes:
		b, cutDone := v.Bytes().AsRaw(), false
		if len(b) > limit {
			b, cutDone = b[:limit], true
		}
		return appendBase64(buf, b), cutDone
	case pcommon.ValueTypeSlice:
		if depth >= maxDepth {
			return append(buf, "null"...), true
		}
		cutAny := false
		buf = append(buf, '[')
		sl := v.Slice()
		for i := 0; i < sl.Len(); i++ {
			if i > 0 {
				buf = append(buf, ',')
			}
			var c bool
			buf, c = st.appendValue(buf, sl.At(i), depth+1)
			cutAny = cutAny || c
		}
		return append(buf, ']'), cutAny
	case pcommon.ValueTypeMap:
		if depth >= maxDepth {
			return append(buf, "null"...), true
		}
		cutAny := false
		buf = append(buf, '{')
		first := true
		for k, mv := range v.Map().All() {
			if !first {
				buf = append(buf, ',')
			}
			first = false
			denied := st.c.red.denied(k)
			if len(k) > st.c.opts.MaxNameBytes {
				k, cutAny = cut(k, st.c.opts.MaxNameBytes), true
			}
			var repaired, c bool
			buf, repaired = appendString(buf, k)
			if repaired {
				st.res.Repaired++
			}
			buf = append(buf, ':')
			if denied {
				st.res.Redacted++
				buf = append(buf, `"`+RedactedValue+`"`...)
				continue
			}
			buf, c = st.appendValue(buf, mv, depth+1)
			cutAny = cutAny || c
		}
		return append(buf, '}'), cutAny
	default:
		return append(buf, "null"...), false
	}
}
