package otlpconv_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailscope/tailscope/ingest/internal/otlptest"
	"github.com/tailscope/tailscope/ingest/otlpconv"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpora in testdata/fuzz")

// protoSeeds and jsonSeeds are the seed inputs: realistic requests, the
// id malformations the repair pass handles, and near-misses of both.
func protoSeeds() [][]byte {
	var pm ptrace.ProtoMarshaler
	feed, _ := pm.MarshalTraces(otlptest.FeedTraces(12, 1))
	return [][]byte{
		feed,
		otlptest.ProtoRequest("svc", protoSpan("ok", goodTrace, goodSpan, goodParent)),
		otlptest.ProtoRequest("svc", protoSpan("short-trace", goodTrace[:5], goodSpan, nil),
			protoSpan("ok", goodTrace, goodSpan2, nil)),
		otlptest.ProtoRequest("", protoSpan("bad-parent", goodTrace, goodSpan, goodParent[:2])),
		otlptest.ProtoRequest("svc\xff\x00", otlptest.Span{TraceID: goodTrace, SpanID: goodSpan, Name: "a\x00\xc3",
			Start: otlptest.Base, End: otlptest.Base - 1, Attrs: map[string]string{"k\xfe": "v\x00"}}),
		{},
		[]byte("\x0a\x00"),
	}
}

func jsonSeeds() [][]byte {
	var jm ptrace.JSONMarshaler
	feed, _ := jm.MarshalTraces(otlptest.FeedTraces(12, 1))
	return [][]byte{
		feed,
		otlptest.JSONRequest("svc", otlptest.JSONSpan{TraceID: `"5b8efff798038103d269b633813fc60c"`,
			SpanID: `"eee19b7ec3c1b174"`, Name: "ok", Start: otlptest.Base, End: otlptest.Base + 5}),
		otlptest.JSONRequest("svc", otlptest.JSONSpan{TraceID: `"5b8e"`, SpanID: `17`, ParentSpanID: `"xyz"`,
			Name: "bad", Start: otlptest.Base, End: otlptest.Base + 5}),
		[]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",` +
			`"startTimeUnixNano":"1","endTimeUnixNano":"2","links":[{"traceId":"00","spanId":"eee19b7ec3c1b174"}],` +
			`"attributes":[{"key":"d","value":{"doubleValue":"NaN"}},{"key":"a","value":{"arrayValue":{"values":[{"kvlistValue":{"values":[]}}]}}}]}]}]}]}`),
		[]byte(`{}`),
		[]byte(`[]`),
		[]byte(`null`),
	}
}

// checkDecoded converts whatever decoded and asserts the span invariants.
func checkDecoded(t *testing.T, td ptrace.Traces) {
	c := newConverter(t, nil)
	spans, res := c.Convert(td)
	if len(spans)+res.Rejected() != res.Spans {
		t.Fatalf("accepted %d + rejected %d != %d spans", len(spans), res.Rejected(), res.Spans)
	}
	for _, s := range spans {
		checkSpan(t, s)
	}
}

func FuzzDecodeProtobuf(f *testing.F) {
	for _, s := range protoSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		td, err := otlpconv.DecodeProto(body)
		if err != nil {
			return
		}
		checkDecoded(t, td)
	})
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range jsonSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		td, err := otlpconv.DecodeJSON(body)
		if err != nil {
			return
		}
		checkDecoded(t, td)
	})
}

// FuzzConvertRedacted converts a span carrying an arbitrary value under
// each key redaction treats specially (statement, URL, denied, plain) and
// each database system: whatever the value, the span keeps the store's
// invariants and its attributes are valid JSON, and a denied key's value
// is never stored.
func FuzzConvertRedacted(f *testing.F) {
	keys := []string{"db.query.text", "db.statement", "url.full", "url.query", "http.target", "http.request.header.authorization", "app.note"}
	systems := []string{"", "postgresql", "mysql", "mssql", "redis", "mongodb"}
	for i, v := range []string{"SELECT * FROM t WHERE a = 'x\\' OR b = 'y'", "https://u:p@h/p?q=1#f=2", "Bearer abcdefgh12345678",
		"set k v", "eyJabcd.eyJefgh.sig", "\x00\xff", "'unterminated", "$$body$$"} {
		f.Add(uint8(i), uint8(i), v)
	}
	c, err := otlpconv.NewConverter(otlpconv.DefaultOptions())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key, system uint8, value string) {
		k := keys[int(key)%len(keys)]
		td := oneSpan(func(_ pcommon.Map, sp ptrace.Span) {
			if sys := systems[int(system)%len(systems)]; sys != "" {
				sp.Attributes().PutStr("db.system", sys)
			}
			sp.Attributes().PutStr(k, value)
		})
		spans, _ := c.Convert(td)
		if len(spans) != 1 {
			t.Fatalf("span rejected")
		}
		checkSpan(t, spans[0])
		var m map[string]any
		if err := json.Unmarshal(spans[0].Attributes, &m); err != nil {
			t.Fatalf("attributes %s: %v", spans[0].Attributes, err)
		}
		if k == "http.request.header.authorization" && m[k] != otlpconv.RedactedValue {
			t.Fatalf("denied key stored as %v", m[k])
		}
	})
}

// TestWriteFuzzCorpus rewrites testdata/fuzz from the seed functions when
// run with -update-corpus, so the corpora stay in step with the fixtures.
func TestWriteFuzzCorpus(t *testing.T) {
	if !*updateCorpus {
		t.Skip("run with -update-corpus to rewrite testdata/fuzz")
	}
	for name, seeds := range map[string][][]byte{"FuzzDecodeProtobuf": protoSeeds(), "FuzzDecodeJSON": jsonSeeds()} {
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
