// Package otlptest builds OTLP payloads for ingest's tests and benchmarks:
// requests shaped like the feed demo's traffic, and the byte-level
// malformations pdata cannot express (ids of the wrong length).
package otlptest

import (
	"encoding/binary"
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"
)

// Base is the start time of generated spans (2025-01-01T00:00:00Z).
const Base = 1735689600_000000000

// FeedTraces returns one request of n spans as the feed demo's services
// send them: one resource (feed-api, with SDK and host attributes), spans
// from three instrumentation scopes (HTTP server and client, Postgres,
// Redis), about ten attributes per span, an exception event on every
// twentieth span. seed varies the ids.
func FeedTraces(n int, seed uint64) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	ra := rs.Resource().Attributes()
	ra.PutStr("service.name", "feed-api")
	ra.PutStr("service.version", "v2")
	ra.PutStr("service.namespace", "feed")
	ra.PutStr("service.instance.id", "feed-api-7f9c6d-abcde")
	ra.PutStr("host.name", "ip-10-0-3-17")
	ra.PutStr("telemetry.sdk.language", "go")
	ra.PutStr("telemetry.sdk.name", "opentelemetry")
	ra.PutStr("telemetry.sdk.version", "1.47.0")
	ra.PutInt("process.pid", 4242)
	ra.PutStr("deployment.environment.name", "production")

	scopes := [3]ptrace.ScopeSpans{}
	for i, name := range []string{
		"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
		"github.com/exaring/otelpgx",
		"github.com/redis/go-redis/extra/redisotel",
	} {
		scopes[i] = rs.ScopeSpans().AppendEmpty()
		scopes[i].Scope().SetName(name)
		scopes[i].Scope().SetVersion("0.72.0")
	}
	tenants := []string{"acme", "globex", "initech", "umbrella", "hooli"}
	for i := range n {
		trace := uint64(i/10) + seed*1_000_003
		var tid [16]byte
		binary.BigEndian.PutUint64(tid[:8], trace+1)
		binary.BigEndian.PutUint64(tid[8:], seed+0x9e3779b97f4a7c15)
		var sid, parent [8]byte
		binary.BigEndian.PutUint64(sid[:], uint64(i)+1+seed<<20)
		start := uint64(Base) + uint64(i)*1_000_000
		tenant := tenants[i%len(tenants)]

		var sp ptrace.Span
		switch i % 10 {
		case 0: // entry span
			sp = scopes[0].Spans().AppendEmpty()
			sp.SetName("GET /v1/feed")
			sp.SetKind(ptrace.SpanKindServer)
			a := sp.Attributes()
			a.PutStr("http.request.method", "GET")
			a.PutStr("url.path", "/v1/feed")
			a.PutStr("url.scheme", "http")
			a.PutStr("http.route", "/v1/feed")
			a.PutInt("http.response.status_code", 200)
			a.PutStr("server.address", "feed-api")
			a.PutInt("server.port", 8080)
			a.PutStr("network.protocol.version", "1.1")
			a.PutStr("user_agent.original", "tailscope-load/1.0")
			a.PutStr("tenant.id", tenant)
			a.PutInt("http.response.body.size", 18_432+int64(i))
		case 1, 2, 3: // HTTP client calls
			sp = scopes[0].Spans().AppendEmpty()
			dep := [...]string{"candidate-svc", "feature-svc", "profile-svc"}[i%10-1]
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
			a.PutInt("http.response.body.size", 4_096+int64(i))
			a.PutStr("tenant.id", tenant)
			a.PutStr("peer.service", dep)
		case 4, 5, 6: // Postgres
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
		default: // Redis
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
			a.PutBool("cache.hit", i%3 != 0)
			a.PutInt("pool.idle_conns", 8)
		}
		if i%10 != 0 {
			binary.BigEndian.PutUint64(parent[:], uint64(i-i%10)+1+seed<<20)
			sp.SetParentSpanID(parent)
		}
		sp.SetTraceID(tid)
		sp.SetSpanID(sid)
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
	return td
}

// Span is a hand-made span for byte-level payloads.
type Span struct {
	TraceID, SpanID, ParentSpanID []byte
	Name                          string
	Start, End                    uint64
	Attrs                         map[string]string
}

// ProtoRequest encodes an ExportTraceServiceRequest with one resource
// (service.name = service unless empty) holding spans, writing the ids as
// given, whatever their length, which pdata's builders cannot do.
func ProtoRequest(service string, spans ...Span) []byte {
	var res []byte
	if service != "" {
		res = protowire.AppendTag(res, 1, protowire.BytesType) // Resource.attributes
		res = protowire.AppendBytes(res, protoKV("service.name", service))
	}
	var ss []byte
	for _, s := range spans {
		var b []byte
		b = appendBytesField(b, 1, s.TraceID)
		b = appendBytesField(b, 2, s.SpanID)
		b = appendBytesField(b, 4, s.ParentSpanID)
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendString(b, s.Name)
		b = protowire.AppendTag(b, 7, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, s.Start)
		b = protowire.AppendTag(b, 8, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, s.End)
		for k, v := range s.Attrs {
			b = protowire.AppendTag(b, 9, protowire.BytesType)
			b = protowire.AppendBytes(b, protoKV(k, v))
		}
		ss = protowire.AppendTag(ss, 2, protowire.BytesType)
		ss = protowire.AppendBytes(ss, b)
	}
	var rs []byte
	rs = protowire.AppendTag(rs, 1, protowire.BytesType)
	rs = protowire.AppendBytes(rs, res)
	rs = protowire.AppendTag(rs, 2, protowire.BytesType)
	rs = protowire.AppendBytes(rs, ss)
	var req []byte
	req = protowire.AppendTag(req, 1, protowire.BytesType)
	return protowire.AppendBytes(req, rs)
}

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	if v == nil {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func protoKV(k, v string) []byte {
	var av []byte
	av = protowire.AppendTag(av, 1, protowire.BytesType) // AnyValue.string_value
	av = protowire.AppendString(av, v)
	var kv []byte
	kv = protowire.AppendTag(kv, 1, protowire.BytesType)
	kv = protowire.AppendString(kv, k)
	kv = protowire.AppendTag(kv, 2, protowire.BytesType)
	return protowire.AppendBytes(kv, av)
}

// JSONRequest is ProtoRequest in the OTLP JSON encoding; ids are written
// as the given strings.
func JSONRequest(service string, spans ...JSONSpan) []byte {
	var b strings.Builder
	b.WriteString(`{"resourceSpans":[{"resource":{"attributes":[`)
	if service != "" {
		fmt.Fprintf(&b, `{"key":"service.name","value":{"stringValue":%q}}`, service)
	}
	b.WriteString(`]},"scopeSpans":[{"scope":{"name":"test"},"spans":[`)
	for i, s := range spans {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"traceId":%s,"spanId":%s,"name":%q,"kind":2,"startTimeUnixNano":"%d","endTimeUnixNano":"%d"`,
			s.TraceID, s.SpanID, s.Name, s.Start, s.End)
		if s.ParentSpanID != "" {
			fmt.Fprintf(&b, `,"parentSpanId":%s`, s.ParentSpanID)
		}
		b.WriteString("}")
	}
	b.WriteString(`]}]}]}`)
	return []byte(b.String())
}

// JSONSpan is a span for JSONRequest; ids are raw JSON values (usually
// quoted hex) so tests can send numbers or bad strings.
type JSONSpan struct {
	TraceID, SpanID, ParentSpanID string
	Name                          string
	Start, End                    uint64
}
