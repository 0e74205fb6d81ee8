package otlpconv_test

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/tailscope/tailscope/ingest/internal/otlptest"
	"github.com/tailscope/tailscope/ingest/otlpconv"
	"github.com/tailscope/tailscope/store"
)

// differentialConverters are the option sets both paths are compared
// under: the defaults, and tight limits with every derivation key
// configured so truncation, redaction and the accepted range fire often.
func differentialConverters(tb testing.TB) []*otlpconv.Converter {
	now := time.Unix(0, otlptest.Base).Add(time.Minute)
	clock := func() time.Time { return now }
	return []*otlpconv.Converter{
		newConverter(tb, func(o *otlpconv.Options) { o.Now = clock }),
		newConverter(tb, func(o *otlpconv.Options) {
			o.Now = clock
			o.MaxValueBytes, o.MaxNameBytes = 16, 16
			o.MaxAge = time.Hour
			o.MaxClockSkew = time.Second
			o.TenantKeys = append(o.TenantKeys, "org")
			o.PayloadKeys = []string{"app.bytes", "app.more"}
			o.Redaction.Patterns = append(o.Redaction.Patterns, "[0-9]{4,}")
			o.Redaction.Keys = append(o.Redaction.Keys, "user")
		}),
	}
}

// checkSameAsPdata decodes body both ways with c and requires identical
// rows and Result, or an error from both; then it overwrites body and
// requires the rows unchanged (ConvertProto's rows must not alias it).
func checkSameAsPdata(t *testing.T, c *otlpconv.Converter, body []byte) {
	t.Helper()
	td, perr := otlpconv.DecodeProto(body)
	var (
		want    []store.Span
		wantRes otlpconv.Result
	)
	if perr == nil {
		want, wantRes = c.Convert(td)
	}
	body = bytes.Clone(body)
	got, gotRes, err := c.ConvertProto(body)
	switch {
	case (perr == nil) != (err == nil):
		t.Fatalf("pdata error %v, ConvertProto error %v", perr, err)
	case err != nil:
		return
	}
	for i := range body {
		body[i] = 0xA5
	}
	if !reflect.DeepEqual(got, want) {
		for i := range min(len(got), len(want)) {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("span %d differs:\nproto %+v\npdata %+v", i, got[i], want[i])
			}
		}
		t.Fatalf("ConvertProto gave %d spans, pdata %d", len(got), len(want))
	}
	if !reflect.DeepEqual(gotRes, wantRes) {
		t.Fatalf("results differ:\nproto %+v\npdata %+v", gotRes, wantRes)
	}
}

// corpusBodies reads the []byte arguments of Go fuzz corpus files in dir.
func corpusBodies(tb testing.TB, dir string) [][]byte {
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if q, ok := strings.CutPrefix(line, "[]byte("); ok {
				if s, err := strconv.Unquote(strings.TrimSuffix(q, ")")); err == nil {
					out = append(out, []byte(s))
				}
			}
		}
	}
	return out
}

// richTraces is a request with every kind of thing a span can carry, and
// the malformations Convert repairs or rejects.
func richTraces() ptrace.Traces {
	td := otlptest.FeedTraces(20, 7)
	rs := td.ResourceSpans().AppendEmpty()
	res := rs.Resource().Attributes()
	res.PutStr("service.name", "svc\xff\x00")
	res.PutInt("service.version", 42)
	res.PutStr("service.instance.id", "i-1")
	res.PutStr("org", "acme")
	res.PutDouble("SampleRate", 3.5)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("lib")
	ss.Scope().Attributes().PutBool("x", true)
	add := func(edit func(sp ptrace.Span)) {
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{1, 2, 3})
		sp.SetSpanID(pcommon.SpanID{4, 5})
		sp.SetParentSpanID(pcommon.SpanID{6})
		sp.SetName("op")
		sp.SetKind(ptrace.SpanKindClient)
		sp.SetStartTimestamp(otlptest.Base)
		sp.SetEndTimestamp(otlptest.Base + 1000)
		edit(sp)
	}
	add(func(sp ptrace.Span) {
		a := sp.Attributes()
		a.PutStr("db.system", "postgresql")
		a.PutStr("db.statement", "SELECT * FROM t WHERE id = 12345 AND name = 'ada'")
		a.PutStr("url.full", "https://u:p@h/p?token=abc#frag")
		a.PutStr("peer.service", "billing")
		a.PutInt("http.request.body.size", 12)
		a.PutDouble("http.response.body.size", 3.5)
		a.PutDouble("nan", math.NaN())
		a.PutDouble("inf", math.Inf(-1))
		a.PutDouble("tiny", 1e-9)
		a.PutBool("ok", true)
		a.PutEmptyBytes("blob").FromRaw([]byte{0, 1, 2, 0xff})
		a.PutEmptyBytes("empty.blob")
		a.PutEmpty("nothing")
		sl := a.PutEmptySlice("list")
		sl.AppendEmpty().SetStr("a\x00b")
		sl.AppendEmpty().SetInt(-1)
		m := sl.AppendEmpty().SetEmptyMap()
		m.PutStr("password", "hunter2")
		m.PutEmptyMap("deep").PutEmptySlice("deeper").AppendEmpty().SetDouble(2)
		a.PutStr("authorization", "Bearer abcdefgh12345678")
		a.PutStr(strings.Repeat("k", 2000), strings.Repeat("v", 10000))
		a.PutStr("app.bytes", " 77 ")
		a.PutStr("app.more", "3")
		a.PutStr("user", "ada")
		a.PutStr("tenant.id", "t\xc3")
		a.PutStr("dup", "first")
		a.PutStr("org", "o")
		sp.Status().SetCode(ptrace.StatusCodeError)
		sp.Status().SetMessage("failed for Bearer abcdefgh12345678 \xfe")
		ev := sp.Events().AppendEmpty()
		ev.SetName("exception")
		ev.SetTimestamp(otlptest.Base + 10)
		ev.Attributes().PutStr("exception.message", strings.Repeat("é", 5000))
		sp.Events().AppendEmpty().SetTimestamp(math.MaxUint64)
		l := sp.Links().AppendEmpty()
		l.SetTraceID(pcommon.TraceID{9})
		l.SetSpanID(pcommon.SpanID{9})
		l.Attributes().PutStr("link.kind", "follows")
		sp.Links().AppendEmpty().SetTraceID(pcommon.TraceID{9}) // dropped: zero span id
	})
	add(func(sp ptrace.Span) {
		sp.SetKind(ptrace.SpanKindProducer)
		sp.Attributes().PutStr("messaging.system", "kafka")
		sp.TraceState().FromRaw("rojo=00f067aa0ba902b7,ot=rv:0123456789abcd;th:c")
	})
	add(func(sp ptrace.Span) {
		sp.TraceState().FromRaw("ot=th:\xff8")
		sp.Attributes().PutStr("SampleRate", "25")
	})
	// Names templateName rewrites: a raw path alone (kept as sent in
	// OriginalNameKey), a method with a route, a statement.
	add(func(sp ptrace.Span) { sp.SetName("GET /users/12345/x?token=s3cr3t") })
	add(func(sp ptrace.Span) {
		sp.SetName("GET")
		sp.SetKind(ptrace.SpanKindServer)
		sp.Attributes().PutStr("http.route", "/users/{id}")
	})
	add(func(sp ptrace.Span) {
		sp.SetName("SELECT 1 FROM t WHERE id = 7")
		sp.Attributes().PutStr("db.statement", "SELECT 1 FROM t WHERE id = 7")
	})
	add(func(sp ptrace.Span) { sp.SetTraceID(pcommon.TraceID{}) })
	add(func(sp ptrace.Span) { sp.SetSpanID(pcommon.SpanID{}) })
	add(func(sp ptrace.Span) { sp.SetStartTimestamp(0) })
	add(func(sp ptrace.Span) { sp.SetEndTimestamp(otlptest.Base - 1) })
	add(func(sp ptrace.Span) { sp.SetStartTimestamp(otlptest.Base - pcommon.Timestamp(48*time.Hour)) })
	add(func(sp ptrace.Span) { sp.SetStartTimestamp(math.MaxUint64); sp.SetEndTimestamp(math.MaxUint64) })
	add(func(sp ptrace.Span) { sp.SetStartTimestamp(otlptest.Base + pcommon.Timestamp(2*time.Hour)) })
	add(func(sp ptrace.Span) { sp.SetKind(ptrace.SpanKind(9)); sp.Status().SetCode(ptrace.StatusCode(7)) })
	// A resource without attributes, an empty scope.
	td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	return td
}

// repeatTraces repeats attributes byte for byte where their entries
// depend on where they stand, for ConvertProto's attribute memo (memo.go):
// one statement under several database systems, and in an object without
// one; attributes met first in a resource or an event, then in a span,
// whose derivation reads them; cut, repaired, denied and redacted values
// met again.
func repeatTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	res := rs.Resource().Attributes()
	res.PutStr("service.name", "svc")
	res.PutStr("tenant.id", "acme")
	res.PutStr("org", "initech")
	ss := rs.ScopeSpans().AppendEmpty()
	// Scrubbed three ways: "ada" is a string to MySQL, a name to
	// PostgreSQL, and Redis keeps the first two words.
	const stmt = `SELECT a FROM t WHERE id = 12345 AND name = "ada" -- 0123456789`
	shared := func(a pcommon.Map) {
		a.PutStr("tenant.id", "acme")
		a.PutStr("org", "initech")
		a.PutStr("user", "ada")
		a.PutStr("peer.service", "billing-with-a-long-name")
		a.PutStr("a-key-longer-than-sixteen-bytes", "v")
		a.PutStr("note", "a\x00b\xff")
		a.PutStr("url.full", "https://u:p@h/p?token=abc")
		a.PutStr("http.route", "/users/{id}")
		a.PutInt("app.bytes", 120)
		a.PutInt("http.response.body.size", 4096)
	}
	for i, sys := range []struct{ key, value string }{
		{"db.system", "postgresql"},
		{"db.system", "mysql"},
		{"db.system.name", "redis"},
		{"db.system", "mongodb"},
		{"", ""},
		{"db.system", "postgresql"},
	} {
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{9, byte(i)})
		sp.SetSpanID(pcommon.SpanID{1, byte(i)})
		sp.SetName("query")
		sp.SetKind(ptrace.SpanKindClient)
		sp.SetStartTimestamp(otlptest.Base + pcommon.Timestamp(i))
		sp.SetEndTimestamp(otlptest.Base + 1000)
		a := sp.Attributes()
		if sys.key != "" {
			a.PutStr(sys.key, sys.value)
		}
		a.PutStr("db.statement", stmt)
		a.PutStr("db.query.text", stmt)
		if i%2 == 0 {
			// The shared attributes in an event first: nothing derives
			// from an event's, the next span's must be derived.
			shared(sp.Events().AppendEmpty().Attributes())
		} else {
			shared(a)
		}
	}
	return td
}

// manyTraces holds more distinct attributes than the memo remembers
// (memoMaxEntries), half of every span's repeating, so that the memo stays
// on and fills up.
func manyTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	ss := rs.ScopeSpans().AppendEmpty()
	for i := range 300 {
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{7, byte(i >> 8), byte(i)})
		sp.SetSpanID(pcommon.SpanID{7, byte(i >> 8), byte(i)})
		sp.SetName("op")
		sp.SetStartTimestamp(otlptest.Base)
		sp.SetEndTimestamp(otlptest.Base + 1000)
		a := sp.Attributes()
		for k := range 5 {
			a.PutStr(fmt.Sprintf("common.%d", k), "value")
			a.PutInt(fmt.Sprintf("unique.%d", k), int64(i))
		}
	}
	return td
}

// protoDiffSeeds are the seeds of FuzzProtoDecoderMatchesPdata.
func protoDiffSeeds(tb testing.TB) [][]byte {
	var pm ptrace.ProtoMarshaler
	var seeds [][]byte
	for _, td := range []ptrace.Traces{otlptest.FeedTraces(100, 1), richTraces(), weightTraces(), repeatTraces(), manyTraces()} {
		b, err := pm.MarshalTraces(td)
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	// The same requests as an SDK exporter writes them: protobuf-go puts
	// each message's fields in number order (a KeyValue's key first),
	// pdata in reverse (its value first). (richTraces holds invalid
	// UTF-8, which protobuf-go refuses to decode.)
	seeds = append(seeds, sdkOrder(tb, seeds[0]), sdkOrder(tb, seeds[2]))
	seeds = append(seeds, protoSeeds()...)
	seeds = append(seeds, corpusBodies(tb, filepath.Join("testdata", "fuzz", "FuzzDecodeProtobuf"))...)
	seeds = append(seeds, corpusBodies(tb, filepath.Join("..", "testdata", "fuzz", "FuzzHTTP"))...)
	// Wire-level quirks: an unknown field, a group, a ten-byte varint,
	// a repeated scalar, an overlong id.
	seeds = append(seeds,
		[]byte("\x0a\x04\xf8\x3e\x01\x00"),                         // resource_spans with an unknown field 1007
		[]byte("\x0a\x04\x0b\x08\x01\x0c"),                         // a group inside resource_spans
		[]byte("\x98\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f"), // ten-byte varint in an unknown field
		[]byte("\x0a\x05\x12\x03\x12\x01\x00"),
	)
	return seeds
}

func TestProtoDecoderMatchesPdata(t *testing.T) {
	for _, c := range differentialConverters(t) {
		for _, s := range protoDiffSeeds(t) {
			checkSameAsPdata(t, c, s)
			checkSameAsPdata(t, c, twice(s))
		}
	}
}

// TestConvertProtoConcurrent converts different requests at once through
// one Converter, whose attribute memos are pooled: each must come out as
// it does alone (run with -race in CI).
func TestConvertProtoConcurrent(t *testing.T) {
	c := differentialConverters(t)[1]
	seeds := protoDiffSeeds(t)
	type result struct {
		rows []store.Span
		res  otlpconv.Result
		err  error
	}
	want := make([]result, len(seeds))
	for i, s := range seeds {
		rows, res, err := c.ConvertProto(twice(s))
		want[i] = result{rows, res, err}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for round := range 20 {
				i := (g*7 + round) % len(seeds)
				rows, res, err := c.ConvertProto(twice(seeds[i]))
				if (err == nil) != (want[i].err == nil) || !reflect.DeepEqual(rows, want[i].rows) || !reflect.DeepEqual(res, want[i].res) {
					t.Errorf("seed %d converted concurrently differs from alone", i)
					return
				}
			}
		})
	}
	wg.Wait()
}

// twice is body followed by itself: one request of both requests'
// resources (protobuf concatenates repeated fields), so every attribute
// of the second half repeats one of the first byte for byte and
// ConvertProto's memo replays it.
func twice(body []byte) []byte {
	return append(bytes.Clone(body), body...)
}

// FuzzProtoDecoderMatchesPdata holds ConvertProto to pdata's decoder and
// Convert, the reference: every input gives identical rows and Result
// both ways, or both refuse it.
func FuzzProtoDecoderMatchesPdata(f *testing.F) {
	for _, s := range protoDiffSeeds(f) {
		f.Add(s)
	}
	convs := differentialConverters(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, c := range convs {
			checkSameAsPdata(t, c, body)
			checkSameAsPdata(t, c, twice(body))
		}
	})
}

// sdkOrder re-encodes an ExportTraceServiceRequest with protobuf-go, the
// encoder of the OpenTelemetry SDKs' exporters.
func sdkOrder(tb testing.TB, b []byte) []byte {
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		tb.Fatal(err)
	}
	out, err := proto.MarshalOptions{Deterministic: true}.Marshal(&req)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
