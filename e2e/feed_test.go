package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tailscope/tailscope/store"
)

// feedShape describes OTLP export requests shaped like the feed demo's
// traffic: one resource, Traces traces of SpansPerTrace spans each, a
// server entry span per trace and HTTP, PostgreSQL and Redis client spans
// under it, about ten attributes per span.
type feedShape struct {
	Service       string
	Traces        int
	SpansPerTrace int
	// Start is when request 0's first span starts; request req starts
	// req × feedRequestStep later. Spans within a request are spread
	// over the following milliseconds.
	Start time.Time
}

func (s feedShape) spans() int { return s.Traces * s.SpansPerTrace }

// Ids and times of generated spans. Request req of a shape has ids that
// look random, as real trace ids do (they spread over the stores'
// indexes), but are a function of (nonce, req, index), so a test can tell
// which spans a request held. The nonce keeps templates of different tests
// apart in a shared store. Request req starts req × feedRequestStep after
// the shape's Start, so a stream of requests moves forward in time as live
// traffic does.
const feedRequestStep = 10 * time.Millisecond

func feedTraceID(nonce uint64, req uint32, trace int) store.TraceID {
	// (req, trace) → one uint64, then mix64, a bijection: distinct inputs
	// give distinct ids.
	h := mix64(nonce ^ uint64(req)<<20 ^ uint64(trace))
	var id store.TraceID
	binary.BigEndian.PutUint64(id[:8], h)
	binary.BigEndian.PutUint64(id[8:], mix64(h))
	return id
}

func feedSpanID(nonce uint64, req uint32, span int) store.SpanID {
	h := mix64(^nonce ^ uint64(req)<<24 ^ uint64(span))
	if h == 0 {
		h = 1 // the one input mix64 maps to 0; a zero span id is invalid
	}
	var id store.SpanID
	binary.BigEndian.PutUint64(id[:], h)
	return id
}

// mix64 is SplitMix64's finaliser, a bijection on uint64.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

var feedTenants = [...]string{"acme", "globex", "initech", "umbrella", "hooli"}

// buildFeed returns request req of shape s.
func buildFeed(s feedShape, nonce uint64, req uint32) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	ra := rs.Resource().Attributes()
	ra.PutStr("service.name", s.Service)
	ra.PutStr("service.version", "v2")
	ra.PutStr("service.namespace", "feed")
	ra.PutStr("service.instance.id", s.Service+"-7f9c6d-abcde")
	ra.PutStr("host.name", "ip-10-0-3-17")
	ra.PutStr("telemetry.sdk.language", "go")
	ra.PutStr("telemetry.sdk.name", "opentelemetry")
	ra.PutStr("telemetry.sdk.version", "1.47.0")
	ra.PutInt("process.pid", 4242)
	ra.PutStr("deployment.environment.name", "production")

	var scopes [3]ptrace.ScopeSpans
	for i, name := range []string{
		"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
		"github.com/exaring/otelpgx",
		"github.com/redis/go-redis/extra/redisotel",
	} {
		scopes[i] = rs.ScopeSpans().AppendEmpty()
		scopes[i].Scope().SetName(name)
		scopes[i].Scope().SetVersion("0.72.0")
	}
	base := uint64(s.Start.Add(time.Duration(req) * feedRequestStep).UnixNano())
	for t := range s.Traces {
		tid := feedTraceID(nonce, req, t)
		tenant := feedTenants[t%len(feedTenants)]
		root := feedSpanID(nonce, req, t*s.SpansPerTrace)
		for j := range s.SpansPerTrace {
			i := t*s.SpansPerTrace + j
			var sp ptrace.Span
			switch {
			case j == 0:
				sp = scopes[0].Spans().AppendEmpty()
				sp.SetName("GET /v1/feed")
				sp.SetKind(ptrace.SpanKindServer)
				a := sp.Attributes()
				a.PutStr("http.request.method", "GET")
				a.PutStr("url.path", "/v1/feed")
				a.PutStr("url.scheme", "http")
				a.PutStr("http.route", "/v1/feed")
				a.PutInt("http.response.status_code", 200)
				a.PutStr("server.address", s.Service)
				a.PutInt("server.port", 8080)
				a.PutStr("network.protocol.version", "1.1")
				a.PutStr("user_agent.original", "tailscope-load/1.0")
				a.PutStr("tenant.id", tenant)
				a.PutInt("http.response.body.size", 18_432+int64(t))
			case j%10 <= 3:
				sp = scopes[0].Spans().AppendEmpty()
				dep := [...]string{"candidate-svc", "feature-svc", "profile-svc", "ranker"}[j%4]
				sp.SetName("GET")
				sp.SetKind(ptrace.SpanKindClient)
				a := sp.Attributes()
				a.PutStr("http.request.method", "GET")
				a.PutStr("url.full", "http://"+dep+":8080/v1/"+dep+"?tenant="+tenant)
				a.PutStr("server.address", dep)
				a.PutInt("server.port", 8080)
				a.PutInt("http.response.status_code", 200)
				a.PutStr("network.protocol.version", "1.1")
				a.PutInt("http.request.body.size", 0)
				a.PutInt("http.response.body.size", 4_096+int64(j))
				a.PutStr("tenant.id", tenant)
				a.PutStr("peer.service", dep)
			case j%10 <= 6:
				sp = scopes[1].Spans().AppendEmpty()
				sp.SetName("SELECT candidates")
				sp.SetKind(ptrace.SpanKindClient)
				a := sp.Attributes()
				a.PutStr("db.system.name", "postgresql")
				a.PutStr("db.namespace", "feed")
				a.PutStr("db.operation.name", "SELECT")
				a.PutStr("db.collection.name", "candidates")
				a.PutStr("db.query.text", "SELECT id, score, author_id, created_at FROM candidates WHERE tenant_id = $1 AND created_at > $2 ORDER BY score DESC LIMIT 500")
				a.PutStr("server.address", "10.0.4.12")
				a.PutInt("server.port", 5432)
				a.PutInt("db.response.returned_rows", 500)
				a.PutStr("network.peer.address", "10.0.4.12")
				a.PutInt("network.peer.port", 5432)
			default:
				sp = scopes[2].Spans().AppendEmpty()
				sp.SetName("mget")
				sp.SetKind(ptrace.SpanKindClient)
				a := sp.Attributes()
				a.PutStr("db.system", "redis")
				a.PutStr("db.operation.name", "mget")
				a.PutStr("db.query.text", "mget features:"+tenant+":1 features:"+tenant+":2 features:"+tenant+":3")
				a.PutStr("server.address", "10.0.4.20")
				a.PutInt("server.port", 6379)
				a.PutStr("network.transport", "tcp")
				a.PutInt("db.redis.database_index", 0)
				a.PutStr("code.function.name", "github.com/tailscope/tailscope/feedsvc.(*Features).Get")
				a.PutBool("cache.hit", j%3 != 0)
				a.PutInt("pool.idle_conns", 8)
			}
			if j != 0 {
				sp.SetParentSpanID(pcommon.SpanID(root))
			}
			sp.SetTraceID(pcommon.TraceID(tid))
			sp.SetSpanID(pcommon.SpanID(feedSpanID(nonce, req, i)))
			start := base + uint64(i)*1_000_000
			sp.SetStartTimestamp(pcommon.Timestamp(start))
			sp.SetEndTimestamp(pcommon.Timestamp(start + uint64(1_000_000+i*7919%50_000_000)))
			if i%20 == 7 {
				sp.Status().SetCode(ptrace.StatusCodeError)
				sp.Status().SetMessage("context deadline exceeded")
				ev := sp.Events().AppendEmpty()
				ev.SetName("exception")
				ev.SetTimestamp(pcommon.Timestamp(start + 500_000))
				ev.Attributes().PutStr("exception.type", "*url.Error")
				ev.Attributes().PutStr("exception.message", "Get \"http://profile-svc:8080\": context deadline exceeded")
			}
		}
	}
	return td
}

// feedTemplate is an encoded OTLP/HTTP protobuf request whose ids and
// timestamps can be rewritten in place: request req is request 0 with
// req's ids and times. A load generator thus sends many distinct requests
// for the price of a copy instead of building and encoding each one, which
// would cost about as much CPU as the server's decoding and distort what is
// measured.
type feedTemplate struct {
	shape feedShape
	nonce uint64
	body  []byte // request 0
	spans []spanSlots
}

// spanSlots locates one span's ids and timestamps in a template's body.
type spanSlots struct {
	trace, index int   // the span's trace and its index in the request
	traceAt      int   // offset of the 16 trace id bytes
	spanAt       int   // offset of the 8 span id bytes
	parentAt     int   // offset of the 8 parent span id bytes; -1 for a root
	timesAt      []int // offsets of the fixed64 start, end and event times
}

// newFeedTemplate encodes request 0 of shape and finds where in the
// encoding each span's ids and timestamps are.
func newFeedTemplate(tb testing.TB, shape feedShape) *feedTemplate {
	tb.Helper()
	ft := &feedTemplate{shape: shape}
	var nb [8]byte
	if _, err := rand.Read(nb[:]); err != nil {
		tb.Fatal(err)
	}
	ft.nonce = binary.BigEndian.Uint64(nb[:])
	var m ptrace.ProtoMarshaler
	body, err := m.MarshalTraces(buildFeed(shape, ft.nonce, 0))
	if err != nil {
		tb.Fatal(err)
	}
	ft.body = body
	traceOf := map[store.TraceID]int{}
	for t := range shape.Traces {
		traceOf[feedTraceID(ft.nonce, 0, t)] = t
	}
	indexOf := map[store.SpanID]int{}
	for i := range shape.spans() {
		indexOf[feedSpanID(ft.nonce, 0, i)] = i
	}
	err = walkSpans(body, func(s spanSlots) error {
		var ok bool
		if s.trace, ok = traceOf[store.TraceID(body[s.traceAt:s.traceAt+16])]; !ok {
			return fmt.Errorf("unknown trace id at byte %d", s.traceAt)
		}
		if s.index, ok = indexOf[store.SpanID(body[s.spanAt:s.spanAt+8])]; !ok {
			return fmt.Errorf("unknown span id at byte %d", s.spanAt)
		}
		ft.spans = append(ft.spans, s)
		return nil
	})
	if err != nil {
		tb.Fatalf("feed template: %v", err)
	}
	if len(ft.spans) != shape.spans() {
		tb.Fatalf("feed template: found %d spans, want %d", len(ft.spans), shape.spans())
	}
	return ft
}

// walkSpans calls fn with the slots of every span of an encoded
// ExportTraceServiceRequest (opentelemetry/proto/trace/v1/trace.proto);
// trace and index are left for the caller.
func walkSpans(b []byte, fn func(spanSlots) error) error {
	isBytes := func(f protoField, num protowire.Number) bool { return f.num == num && f.typ == protowire.BytesType }
	isFixed64 := func(f protoField, num protowire.Number) bool { return f.num == num && f.typ == protowire.Fixed64Type }
	return eachField(b, 0, len(b), func(f protoField) error {
		if !isBytes(f, 1) { // ExportTraceServiceRequest.resource_spans
			return nil
		}
		return eachField(b, f.at, f.end, func(f protoField) error {
			if !isBytes(f, 2) { // ResourceSpans.scope_spans
				return nil
			}
			return eachField(b, f.at, f.end, func(f protoField) error {
				if !isBytes(f, 2) { // ScopeSpans.spans
					return nil
				}
				s := spanSlots{traceAt: -1, spanAt: -1, parentAt: -1}
				err := eachField(b, f.at, f.end, func(f protoField) error {
					switch {
					case isBytes(f, 1) && f.end-f.at == 16: // trace_id
						s.traceAt = f.at
					case isBytes(f, 2) && f.end-f.at == 8: // span_id
						s.spanAt = f.at
					case isBytes(f, 4) && f.end-f.at == 8: // parent_span_id
						s.parentAt = f.at
					case isFixed64(f, 7), isFixed64(f, 8): // start and end times
						s.timesAt = append(s.timesAt, f.at)
					case isBytes(f, 11): // events
						return eachField(b, f.at, f.end, func(f protoField) error {
							if isFixed64(f, 1) { // Event.time_unix_nano
								s.timesAt = append(s.timesAt, f.at)
							}
							return nil
						})
					}
					return nil
				})
				if err != nil {
					return err
				}
				if s.traceAt < 0 || s.spanAt < 0 {
					return fmt.Errorf("span at byte %d lacks an id", f.at)
				}
				return fn(s)
			})
		})
	})
}

// protoField is one field of an encoded protobuf message: its value is
// b[at:end] (without the length prefix for bytes).
type protoField struct {
	num     protowire.Number
	typ     protowire.Type
	at, end int
}

// eachField calls visit for each field of the message encoded in
// b[off:end].
func eachField(b []byte, off, end int, visit func(protoField) error) error {
	for off < end {
		num, typ, n := protowire.ConsumeTag(b[off:end])
		if n < 0 {
			return fmt.Errorf("byte %d: %w", off, protowire.ParseError(n))
		}
		off += n
		f := protoField{num: num, typ: typ}
		if typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b[off:end])
			if m < 0 {
				return fmt.Errorf("byte %d: %w", off, protowire.ParseError(m))
			}
			f.at, f.end = off+m-len(v), off+m
			off += m
		} else {
			m := protowire.ConsumeFieldValue(num, typ, b[off:end])
			if m < 0 {
				return fmt.Errorf("byte %d: %w", off, protowire.ParseError(m))
			}
			f.at, f.end = off, off+m
			off += m
		}
		if err := visit(f); err != nil {
			return err
		}
	}
	return nil
}

// request appends request req's body to dst[:0].
func (ft *feedTemplate) request(dst []byte, req uint32) []byte {
	dst = append(dst[:0], ft.body...)
	shift := uint64(time.Duration(req) * feedRequestStep)
	traces := ft.traceIDs(req)
	for _, s := range ft.spans {
		copy(dst[s.traceAt:], traces[s.trace][:])
		id := feedSpanID(ft.nonce, req, s.index)
		copy(dst[s.spanAt:], id[:])
		if s.parentAt >= 0 { // buildFeed parents every span on its trace's root
			p := feedSpanID(ft.nonce, req, s.trace*ft.shape.SpansPerTrace)
			copy(dst[s.parentAt:], p[:])
		}
		for _, at := range s.timesAt {
			binary.LittleEndian.PutUint64(dst[at:], binary.LittleEndian.Uint64(dst[at:])+shift)
		}
	}
	return dst
}

// traceIDs returns the trace ids of request req.
func (ft *feedTemplate) traceIDs(req uint32) []store.TraceID {
	ids := make([]store.TraceID, ft.shape.Traces)
	for t := range ids {
		ids[t] = feedTraceID(ft.nonce, req, t)
	}
	return ids
}

// spanIDs returns the span ids of trace t of request req.
func (ft *feedTemplate) spanIDs(req uint32, t int) []store.SpanID {
	ids := make([]store.SpanID, ft.shape.SpansPerTrace)
	for j := range ids {
		ids[j] = feedSpanID(ft.nonce, req, t*ft.shape.SpansPerTrace+j)
	}
	return ids
}

// TestFeedTemplate checks that rewriting the template gives exactly the
// request built and encoded directly, for several request numbers.
func TestFeedTemplate(t *testing.T) {
	shape := feedShape{Service: "feed-api", Traces: 3, SpansPerTrace: 10, Start: time.Now()}
	ft := newFeedTemplate(t, shape)
	var m ptrace.ProtoMarshaler
	seen := map[store.SpanID]uint32{}
	for _, req := range []uint32{0, 1, 2, 77, 0xa1b2c3d4} {
		want, err := m.MarshalTraces(buildFeed(shape, ft.nonce, req))
		if err != nil {
			t.Fatal(err)
		}
		if got := ft.request(nil, req); !bytes.Equal(got, want) {
			t.Fatalf("request %d from the template differs from the one built directly", req)
		}
		for tr := range shape.Traces {
			for _, id := range ft.spanIDs(req, tr) {
				if other, dup := seen[id]; dup {
					t.Errorf("span id %s in requests %d and %d", id, other, req)
				}
				seen[id] = req
			}
		}
	}
}
