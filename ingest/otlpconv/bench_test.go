package otlpconv_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tailscope/tailscope/ingest/internal/otlptest"
	"github.com/tailscope/tailscope/ingest/otlpconv"
)

// BenchmarkDecode is the decode-only ceiling of the receiver: pdata
// unmarshal, validation, attribute encoding and derivation of 100-span
// requests shaped like the feed demo's, without HTTP or storage. spans/s is
// per core when run with -cpu 1.
func BenchmarkDecode(b *testing.B) {
	td := otlptest.FeedTraces(100, 1)
	var pm ptrace.ProtoMarshaler
	pb, err := pm.MarshalTraces(td)
	if err != nil {
		b.Fatal(err)
	}
	var jm ptrace.JSONMarshaler
	jb, err := jm.MarshalTraces(td)
	if err != nil {
		b.Fatal(err)
	}
	conv, err := otlpconv.NewConverter(otlpconv.DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		body   []byte
		decode func([]byte) (ptrace.Traces, error)
	}{
		{"protobuf", pb, otlpconv.DecodeProto},
		{"json", jb, otlpconv.DecodeJSON},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			spans := 0
			defer reportCPU(b, &spans)()
			for b.Loop() {
				td, err := bc.decode(bc.body)
				if err != nil {
					b.Fatal(err)
				}
				out, _ := conv.Convert(td)
				spans += len(out)
			}
			b.ReportMetric(float64(spans)/b.Elapsed().Seconds(), "spans/s")
		})
	}
	// protobuf-direct is the OTLP/HTTP protobuf path: ConvertProto,
	// without pdata; compare it with protobuf above.
	// protobuf-direct-sampled is the same request head-sampled: every
	// span carries a tracestate with a th threshold (weight.go).
	// protobuf-direct-sdk is the same request in the field order of the
	// SDKs' exporters (protobuf-go's), where pdata writes fields in
	// reverse.
	sampled := otlptest.FeedTraces(100, 1)
	for _, rs := range sampled.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				sp.TraceState().FromRaw("rojo=00f067aa0ba902b7,ot=rv:0123456789abcd;th:c")
			}
		}
	}
	spb, err := pm.MarshalTraces(sampled)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		body []byte
	}{
		{"protobuf-direct", pb}, {"protobuf-direct-sampled", spb}, {"protobuf-direct-sdk", sdkOrder(b, pb)},
		{"protobuf-direct-unique", uniqueValues(b, td)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			spans := 0
			defer reportCPU(b, &spans)()
			for b.Loop() {
				out, _, err := conv.ConvertProto(bc.body)
				if err != nil {
					b.Fatal(err)
				}
				spans += len(out)
			}
			b.ReportMetric(float64(spans)/b.Elapsed().Seconds(), "spans/s")
		})
	}
	b.Run("convert-only", func(b *testing.B) { benchConvert(b, conv, td) })
	// The same conversion without redaction: the difference with
	// convert-only is what redaction costs on the feed demo's spans (a
	// URL query on 3 spans in 10, a SQL statement on 3, a Redis command
	// on 3).
	plain, err := otlpconv.NewConverter(func() otlpconv.Options {
		o := otlpconv.DefaultOptions()
		o.Redaction = otlpconv.Redaction{}
		return o
	}())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("convert-no-redaction", func(b *testing.B) { benchConvert(b, plain, td) })
	b.Run("unmarshal-only", func(b *testing.B) {
		b.ReportAllocs()
		spans := 0
		defer reportCPU(b, &spans)()
		for b.Loop() {
			if _, err := otlpconv.DecodeProto(pb); err != nil {
				b.Fatal(err)
			}
			spans += 100
		}
		b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "spans/s")
	})
}

// uniqueValues is td marshalled with every attribute value of every span
// made unique — a suffix on strings, an offset on integers — so that no
// attribute repeats (but a boolean's): the worst case of ConvertProto's attribute memo,
// which pays its look-ups and remembers nothing useful.
// protobuf-direct-unique against protobuf-direct is that cost.
func uniqueValues(tb testing.TB, td ptrace.Traces) []byte {
	u := ptrace.NewTraces()
	td.CopyTo(u)
	n := 0
	for _, rs := range u.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				for _, v := range sp.Attributes().All() {
					n++
					switch v.Type() {
					case pcommon.ValueTypeStr:
						v.SetStr(fmt.Sprintf("%s-%d", v.Str(), n))
					case pcommon.ValueTypeInt:
						v.SetInt(v.Int() + int64(n)<<20)
					}
				}
			}
		}
	}
	var pm ptrace.ProtoMarshaler
	b, err := pm.MarshalTraces(u)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkRedact is the cost of redaction on spans that need it most:
// every span carries an Authorization header, a URL with a query, a SQL
// statement with literals that differ per span (no cache hits), and an
// exception message with a bearer token; "plain" is the same conversion
// with redaction off.
func BenchmarkRedact(b *testing.B) {
	td := otlptest.FeedTraces(100, 1)
	rss := td.ResourceSpans()
	n := 0
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			sp := sss.At(j).Spans()
			for k := 0; k < sp.Len(); k++ {
				a := sp.At(k).Attributes()
				a.PutEmptySlice("http.request.header.authorization").AppendEmpty().SetStr("Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc")
				a.PutStr("url.full", fmt.Sprintf("https://api.example.com/v1/items?id=%d&token=abc", n))
				a.PutStr("db.query.text", fmt.Sprintf("SELECT * FROM items WHERE id = %d AND owner = 'ada'", n))
				a.PutStr("exception.message", "upstream said 401 to Bearer abcdefgh12345678")
				n++
			}
		}
	}
	for _, bc := range []struct {
		name string
		red  otlpconv.Redaction
	}{
		{"plain", otlpconv.Redaction{}},
		{"default", otlpconv.DefaultRedaction()},
	} {
		o := otlpconv.DefaultOptions()
		o.Redaction = bc.red
		conv, err := otlpconv.NewConverter(o)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) { benchConvert(b, conv, td) })
	}
}

// reportCPU reports spans per second of process CPU time (garbage
// collection included), which a machine shared with other work disturbs
// far less than wall-clock spans/s: with -cpu 1 it is spans/s per core.
// Call the returned function when the loop is done.
func reportCPU(b *testing.B, spans *int) func() {
	start := cpuTime()
	return func() {
		if d := cpuTime() - start; d > 0 {
			b.ReportMetric(float64(*spans)/d.Seconds(), "spans/cpu-s")
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchConvert measures conv.Convert(td) alone.
func benchConvert(b *testing.B, conv *otlpconv.Converter, td ptrace.Traces) {
	b.ReportAllocs()
	spans := 0
	defer reportCPU(b, &spans)()
	for b.Loop() {
		out, _ := conv.Convert(td)
		spans += len(out)
	}
	b.ReportMetric(float64(spans)/b.Elapsed().Seconds(), "spans/s")
}

// BenchmarkConvertRepeatedKey converts one span whose attributes repeat a
// key n times (the wire format allows it; pdata keeps every copy), for
// keys the conversion treats specially: a database statement (scrubbed by
// its system, looked up in the same object), a URL, a tenant. Per entry,
// the time must not grow with n: a look-up per entry over the whole
// object made 40,000 statements take 29 s.
//
//	go test ./ingest/otlpconv -run '^$' -bench ConvertRepeatedKey
func BenchmarkConvertRepeatedKey(b *testing.B) {
	conv, err := otlpconv.NewConverter(otlpconv.DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	for _, key := range []string{"db.statement", "url.full", "tenant.id"} {
		for _, n := range []int{1_000, 20_000} {
			body := repeatedKeyRequest(key, "SELECT a FROM t WHERE b = 'c'", n)
			b.Run(fmt.Sprintf("%s/n=%d", key, n), func(b *testing.B) {
				for b.Loop() {
					if _, _, err := conv.ConvertProto(body); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
			})
		}
	}
}

// repeatedKeyRequest is an ExportTraceServiceRequest of one span with n
// string attributes key=value, built on the wire (pdata's Map would merge
// the repeats).
func repeatedKeyRequest(key, value string, n int) []byte {
	msg := func(num protowire.Number, parts ...[]byte) []byte {
		var inner []byte
		for _, p := range parts {
			inner = append(inner, p...)
		}
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), inner)
	}
	str := func(num protowire.Number, s string) []byte {
		return protowire.AppendString(protowire.AppendTag(nil, num, protowire.BytesType), s)
	}
	fixed := func(num protowire.Number, v uint64) []byte {
		return protowire.AppendFixed64(protowire.AppendTag(nil, num, protowire.Fixed64Type), v)
	}
	kv := func(k, v string) []byte { return append(str(1, k), msg(2, str(1, v))...) }
	now := uint64(time.Now().UnixNano())
	attr := msg(9, kv(key, value))
	span := [][]byte{str(1, string(make([]byte, 15))+"\x01"), str(2, "\x00\x00\x00\x00\x00\x00\x00\x01"), str(5, "op"),
		fixed(7, now), fixed(8, now+1_000_000)}
	for range n {
		span = append(span, attr)
	}
	resource := msg(1, msg(1, kv("service.name", "svc")))
	return msg(1, resource, msg(2, msg(2, span...)))
}
