package otlpconv

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailscope/tailscope/internal/spanname"
	"github.com/tailscope/tailscope/store"
)

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
	// keepOriginal: a templated span name as sent may be kept
	// (OriginalNameKey), neither it nor a URL key being denied.
	keepOriginal bool
	memos        sync.Pool // *attrMemo, ConvertProto's (memo.go)
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
	c.keepOriginal = !slices.ContainsFunc([]string{OriginalNameKey, keyURLPath, keyURLFull, keyHTTPURL, keyHTTPTarget}, red.denied)
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
	st := c.newState(td.SpanCount())
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
			rate:    ro.sampleRate,
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

// newState starts the conversion of a request of n spans.
func (c *Converter) newState(n int) state {
	st := state{c: c}
	st.res.Spans = n
	now := c.now()
	st.res.accepted = [2]time.Time{now.Add(-c.opts.MaxAge), now.Add(c.opts.MaxClockSkew)}
	st.res.maxAge, st.res.maxAhd = c.opts.MaxAge, c.opts.MaxClockSkew
	st.minStart, st.maxStart = math.MinInt64, clampTime(st.res.accepted[1])
	if c.opts.MaxAge > 0 {
		st.minStart = clampTime(st.res.accepted[0])
	}
	return st
}

// resourceData is what every span of one ResourceSpans shares.
type resourceData struct {
	attrs                  store.Attributes
	service, version, host string
	tenant                 string  // unsanitised; the span's own tenant wins
	rate                   float64 // SampleRate's weight; the span's own wins
}

// Chunk sizes for the per-request arenas: big enough that a 100-span
// request allocates a handful of times, small enough that a tiny request
// does not pin much memory.
const (
	byteChunk  = 32 << 10
	minFree    = 2 << 10 // start a new chunk rather than grow one for a typical object
	eventChunk = 64
	// maxFirstChunk bounds the first chunk of a protobuf request, sized
	// to its body (chunkFor).
	maxFirstChunk = 1 << 20
)

// chunkFor is the size of the first arena chunk of a protobuf request of
// n bytes. Its attribute objects take about as many bytes as the body
// (35 KB of JSON from the feed demo's 45 KB requests): one chunk the size
// of the body holds them all, where 32 KB chunks took two and left most
// of the second unused — a third of the bytes the decoder allocated, and
// the garbage collections they cost. Later chunks are byteChunk.
func chunkFor(n int) int { return min(max(n, 2*minFree), maxFirstChunk) }

// newChunk returns an empty chunk for at least need bytes.
func (st *state) newChunk(need int) []byte {
	n := byteChunk
	if st.chunk > 0 {
		n, st.chunk = st.chunk, 0
	}
	return make([]byte, 0, max(n, need))
}

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
	chunk     int           // the size of the next chunk, when not byteChunk (chunkFor)
	events    []store.Event // current chunk of event slots
	truncated []string      // keys cut in the object being encoded
	// minStart and maxStart bound the accepted start times (Unix ns).
	minStart, maxStart int64

	// The attribute object being encoded: its buffer, where it starts,
	// whether it has an entry yet, and its source for look-ups.
	obj      []byte
	objStart int
	objEmpty bool
	objPdata pcommon.Map
	objWire  []ref      // KeyValue messages when decoding protobuf
	objHints []memoHint // what memoLook found of each, when looked up (a span's)
	isWire   bool
	// The object's database kind, looked up once per object (statement):
	// a look-up scans the object, and per statement entry that was
	// quadratic — 40,000 entries keyed db.statement in a 1.1 MB request
	// took 29 s to convert.
	db dbLookup

	// borrowed is set when strings alias the request body (keep).
	borrowed bool
	kept     map[string]string
	recent   [recentSlots]string // kept strings by recentSlot, in front of kept
	wire     *wireScratch        // ConvertProto's, pooled with the memo
	nameBuf  []byte              // spanname.Append's scratch
	memo     *attrMemo           // ConvertProto's; nil for Convert
	memoPrev int32               // the memo's entry of the object's previous message, or -1 (memoEntry.next)
}

func (st *state) reject(r Reason) { st.res.rejected[r]++ }

// spanHead is what the row of a span takes from it besides attributes,
// events and links, as either decoder reads it.
type spanHead struct {
	traceID    [16]byte
	spanID     [8]byte
	parent     [8]byte
	name       string
	kind       int32
	start, end uint64
	statusMsg  string
	statusCode int32
	traceState string
}

func (st *state) appendSpan(dst []store.Span, sp ptrace.Span, rd *resourceData) []store.Span {
	status := sp.Status()
	h := spanHead{
		traceID: sp.TraceID(), spanID: sp.SpanID(), parent: sp.ParentSpanID(),
		name: sp.Name(), kind: int32(sp.Kind()),
		start: uint64(sp.StartTimestamp()), end: uint64(sp.EndTimestamp()),
		statusMsg: status.Message(), statusCode: int32(status.Code()),
		traceState: sp.TraceState().AsRaw(),
	}
	dst, s := st.newRow(dst, &h, rd)
	if s == nil {
		return dst
	}
	var so spanObs
	so.reset(len(st.c.tenantKeys))
	s.Attributes = st.encodeMap(sp.Attributes(), &so, nil)
	st.finishRow(s, &h, &so, rd)

	if evs := sp.Events(); evs.Len() > 0 {
		out := st.eventSlots(evs.Len())
		for i := range out {
			ev := evs.At(i)
			out[i] = st.event(uint64(ev.Timestamp()), ev.Name(), st.encodeMap(ev.Attributes(), nil, nil))
		}
		s.Events = out
	}
	if links := sp.Links(); links.Len() > 0 {
		var out []store.Link
		for i := 0; i < links.Len(); i++ {
			l := links.At(i)
			out = st.appendLink(out, links.Len(), l.TraceID(), l.SpanID(), func() store.Attributes {
				return st.encodeMap(l.Attributes(), nil, nil)
			})
		}
		s.Links = out
	}
	return dst
}

// newRow validates the span h and appends its row with the fields of h
// filled in, or counts its rejection and returns a nil row.
func (st *state) newRow(dst []store.Span, h *spanHead, rd *resourceData) ([]store.Span, *store.Span) {
	if h.traceID == [16]byte{} {
		st.reject(ReasonInvalidTraceID)
		return dst, nil
	}
	if h.spanID == [8]byte{} {
		st.reject(ReasonInvalidSpanID)
		return dst, nil
	}
	start, end := h.start, h.end
	if start == 0 || start > math.MaxInt64 || end > math.MaxInt64 {
		st.reject(ReasonInvalidTime)
		return dst, nil
	}
	if end < start {
		st.reject(ReasonEndBeforeStart)
		return dst, nil
	}
	switch {
	case int64(start) < st.minStart:
		st.reject(ReasonTooOld)
		return dst, nil
	case int64(start) > st.maxStart:
		st.reject(ReasonTooNew)
		return dst, nil
	}

	dst = append(dst, store.Span{})
	s := &dst[len(dst)-1]
	s.TraceID = store.TraceID(h.traceID)
	s.SpanID = store.SpanID(h.spanID)
	s.ParentSpanID = store.SpanID(h.parent)
	s.Service = rd.service
	s.Name = st.keep(st.text(h.name))
	if k := h.kind; k >= int32(ptrace.SpanKindUnspecified) && k <= int32(ptrace.SpanKindConsumer) {
		s.Kind = store.SpanKind(k)
	}
	s.StartUnixNano = int64(start)
	s.DurationNano = int64(end - start)
	if code := h.statusCode; code >= int32(ptrace.StatusCodeUnset) && code <= int32(ptrace.StatusCodeError) {
		s.StatusCode = store.StatusCode(code)
	}
	s.StatusMessage = st.keep(st.text(st.redactText(h.statusMsg)))
	s.Resource = rd.attrs
	return dst, s
}

// finishRow fills in the columns derived from the span's attributes.
func (st *state) finishRow(s *store.Span, h *spanHead, so *spanObs, rd *resourceData) {
	s.Tenant = st.keep(st.text(cmp.Or(so.tenant, rd.tenant)))
	s.Version = rd.version
	s.Host = rd.host
	s.Dependency = st.keep(st.text(so.dependency(s.Kind)))
	s.PayloadBytes = so.payload()
	s.Weight = weight(h.traceState, so.sampleRate, rd.rate)
	if st.c.opts.TemplateNames {
		st.templateSpanName(s, h, so)
	}
}

// templateSpanName stores the span under its name's template when its name
// carries values (internal/spanname): a statement as sent, literals and all, becomes
// the statement as redaction stored it; a path, its route or template. The
// path as sent is kept under OriginalNameKey when the span has no URL
// attribute to tell it; a statement is not, redaction removed its
// literals on purpose.
func (st *state) templateSpanName(s *store.Span, h *spanHead, so *spanObs) {
	if so.stmtRaw != "" && so.stmtRaw == h.name {
		s.Name = st.intern(st.text(so.stmtOut))
		st.res.Renamed++
		return
	}
	route := ""
	switch s.Kind {
	case store.KindServer:
		route = so.route
	case store.KindClient:
		route = so.urlTemplate
	}
	buf, changed := spanname.Append(st.nameBuf[:0], s.Name, route)
	st.nameBuf = buf
	if !changed {
		return
	}
	sent := s.Name
	// A route is an attribute value: clean and cut it as a name.
	s.Name = st.intern(st.text(unsafe.String(unsafe.SliceData(buf), len(buf))))
	st.res.Renamed++
	if so.hasURL || !st.c.keepOriginal {
		return
	}
	if st.c.red.urls {
		sent = scrubURL(sent, false)
	}
	if out, changed := st.c.red.patternsApply(sent); changed {
		sent = out
	}
	s.Attributes = st.withAttr(s.Attributes, OriginalNameKey, sent)
}

// intern returns s in memory of its own, one copy per distinct string per
// request, whichever decoder made it.
func (st *state) intern(s string) string {
	if s == "" {
		return ""
	}
	// A request's rows repeat a few names, tenants and dependencies over
	// and over: most look-ups find the string in recent, which costs a
	// comparison where the map costs a hash of the string and a probe.
	slot := recentSlot(s)
	if r := st.recent[slot]; r == s {
		return r
	}
	k, ok := st.kept[s]
	if !ok {
		if st.kept == nil {
			st.kept = make(map[string]string, 32)
		}
		k = strings.Clone(s)
		st.kept[k] = k
	}
	st.recent[slot] = k
	return k
}

// recentSlots is the size of state.recent, a power of two.
const recentSlots = 32

// recentSlot is where s (not empty) goes in state.recent: from its length
// and two of its bytes, which tell apart most strings a request repeats
// (names differ in length or ending, tenants and hosts in a digit).
func recentSlot(s string) int {
	return int(uint(len(s))*31+uint(s[len(s)-1])*7+uint(s[len(s)/2])) & (recentSlots - 1)
}

// withAttr returns the attribute object obj with the string attribute k:
// v added, encoded into the arena.
func (st *state) withAttr(obj store.Attributes, k, v string) store.Attributes {
	buf := st.arena
	if cap(buf)-len(buf) < len(obj)+len(k)+2*len(v)+16 {
		buf = st.newChunk(len(obj) + len(k) + 6*len(v) + 16)
	}
	start := len(buf)
	if len(obj) < 2 {
		buf = append(buf, '{')
	} else {
		buf = append(buf, obj[:len(obj)-1]...)
		if len(obj) > 2 {
			buf = append(buf, ',')
		}
	}
	buf, _ = appendString(buf, k)
	buf = append(buf, ':')
	buf, _ = st.appendStr(buf, v, false)
	buf = append(buf, '}')
	st.arena = buf
	return store.Attributes(buf[start:len(buf):len(buf)])
}

func (st *state) event(t uint64, name string, attrs store.Attributes) store.Event {
	return store.Event{TimeUnixNano: clampNanos(t), Name: st.keep(st.text(name)), Attributes: attrs}
}

// appendLink appends a link of a span with n links, or counts it dropped
// when an id is zero (its attributes are then not encoded).
func (st *state) appendLink(dst []store.Link, n int, tid [16]byte, sid [8]byte, attrs func() store.Attributes) []store.Link {
	if tid == [16]byte{} || sid == [8]byte{} {
		st.res.DroppedLinks++
		return dst
	}
	if dst == nil {
		dst = make([]store.Link, 0, n)
	}
	return append(dst, store.Link{TraceID: store.TraceID(tid), SpanID: store.SpanID(sid), Attributes: attrs()})
}

// keep returns s in memory of its own when s may alias the request body
// (ConvertProto, whose body buffer is reused once it returns): each
// distinct string is copied once per request.
func (st *state) keep(s string) string {
	if !st.borrowed || s == "" {
		return s
	}
	return st.intern(s)
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
