package otlpconv_test

import (
	"bytes"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tailscope/tailscope/ingest/internal/otlptest"
	"github.com/tailscope/tailscope/ingest/otlpconv"
)

var (
	goodTrace  = bytes.Repeat([]byte{0xab}, 16)
	goodSpan   = []byte{1, 2, 3, 4, 5, 6, 7, 8}
	goodSpan2  = []byte{2, 2, 3, 4, 5, 6, 7, 8}
	goodParent = []byte{9, 9, 9, 9, 9, 9, 9, 9}
)

func protoSpan(name string, tid, sid, parent []byte) otlptest.Span {
	return otlptest.Span{TraceID: tid, SpanID: sid, ParentSpanID: parent, Name: name,
		Start: otlptest.Base, End: otlptest.Base + 1000}
}

// TestDecodeRejectsMalformedIDs: a payload with an id of the wrong length
// is refused whole, as the OpenTelemetry Collector refuses it, with an
// error that says what was wrong.
func TestDecodeRejectsMalformedIDs(t *testing.T) {
	good := protoSpan("good", goodTrace, goodSpan, goodParent)
	link := func(tid, sid []byte) []byte {
		var b []byte
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, tid)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, sid)
		return protowire.AppendBytes(protowire.AppendTag(nil, 13, protowire.BytesType), b)
	}
	protoCases := []struct {
		name string
		body []byte
	}{
		{"short trace id", otlptest.ProtoRequest("svc", good, protoSpan("bad", goodTrace[:15], goodSpan2, nil))},
		{"long trace id", otlptest.ProtoRequest("svc", good, protoSpan("bad", append(goodTrace, 1), goodSpan2, nil))},
		{"short span id", otlptest.ProtoRequest("svc", good, protoSpan("bad", goodTrace, goodSpan2[:4], nil))},
		{"long span id", otlptest.ProtoRequest("svc", good, protoSpan("bad", goodTrace, goodTrace, nil))},
		{"bad parent span id", otlptest.ProtoRequest("svc", good, protoSpan("bad", goodTrace, goodSpan2, goodParent[:7]))},
		{"bad link span id", appendToOnlySpan(t, otlptest.ProtoRequest("svc", good), link(goodTrace, goodParent[:3]))},
	}
	conv := newConverter(t, nil)
	for _, tt := range protoCases {
		t.Run("proto/"+tt.name, func(t *testing.T) {
			if _, err := otlpconv.DecodeProto(tt.body); err == nil || !strings.Contains(err.Error(), "id") {
				t.Errorf("DecodeProto = %v, want an error about the id", err)
			}
			if _, _, err := conv.ConvertProto(tt.body); err == nil || !strings.Contains(err.Error(), "id") {
				t.Errorf("ConvertProto = %v, want an error about the id", err)
			}
		})
	}
	goodJSON := otlptest.JSONSpan{TraceID: `"5b8efff798038103d269b633813fc60c"`, SpanID: `"eee19b7ec3c1b174"`,
		ParentSpanID: `"eee19b7ec3c1b173"`, Name: "good", Start: otlptest.Base, End: otlptest.Base + 1000}
	jsonCases := []struct{ name, trace, span, parent string }{
		{"short trace id", `"5b8efff798038103d269b633813fc6"`, `"eee19b7ec3c1b175"`, ""},
		{"non-hex trace id", `"zz8efff798038103d269b633813fc60c"`, `"eee19b7ec3c1b175"`, ""},
		{"numeric trace id", `12345`, `"eee19b7ec3c1b175"`, ""},
		{"base64 trace id", `"W47/95gDgQPSabYzgT/GDA=="`, `"eee19b7ec3c1b175"`, ""},
		{"long span id", `"5b8efff798038103d269b633813fc60c"`, `"eee19b7ec3c1b17500"`, ""},
		{"bad parent", `"5b8efff798038103d269b633813fc60c"`, `"eee19b7ec3c1b175"`, `"abc"`},
	}
	for _, tt := range jsonCases {
		t.Run("json/"+tt.name, func(t *testing.T) {
			bad := otlptest.JSONSpan{TraceID: tt.trace, SpanID: tt.span, ParentSpanID: tt.parent, Name: "bad",
				Start: otlptest.Base, End: otlptest.Base + 1}
			if _, err := otlpconv.DecodeJSON(otlptest.JSONRequest("svc", goodJSON, bad)); err == nil {
				t.Errorf("DecodeJSON decoded a malformed id")
			}
		})
	}
}

// TestDecodeZeroIDs: absent and all-zero ids decode (pdata reads an absent
// id as zero) and only their spans are rejected, by Convert.
func TestDecodeZeroIDs(t *testing.T) {
	c := newConverter(t, nil)
	good := protoSpan("good", goodTrace, goodSpan, goodParent)
	for _, tt := range []struct {
		name string
		bad  otlptest.Span
		want otlpconv.Reason
	}{
		{"all-zero trace id", protoSpan("bad", make([]byte, 16), goodSpan2, nil), otlpconv.ReasonInvalidTraceID},
		{"missing span id", protoSpan("bad", goodTrace, nil, nil), otlpconv.ReasonInvalidSpanID},
	} {
		t.Run(tt.name, func(t *testing.T) {
			td, err := otlpconv.DecodeProto(otlptest.ProtoRequest("svc", good, tt.bad))
			if err != nil {
				t.Fatalf("DecodeProto: %v", err)
			}
			spans, res := c.Convert(td)
			if len(spans) != 1 || spans[0].Name != "good" {
				t.Fatalf("accepted %v, want only the good span", spans)
			}
			if res.Rejected() != 1 || res.RejectedFor(tt.want) != 1 {
				t.Errorf("rejected %d (%s), want 1 for %v", res.Rejected(), res.Message(), tt.want)
			}
		})
	}
}

// appendToOnlySpan appends raw fields to the single span of a request made
// by otlptest.ProtoRequest.
func appendToOnlySpan(t *testing.T, req []byte, fields ...[]byte) []byte {
	t.Helper()
	field := func(b []byte, want protowire.Number) (before, val, after []byte) {
		for pos := 0; pos < len(b); {
			num, typ, n := protowire.ConsumeTag(b[pos:])
			m := protowire.ConsumeFieldValue(num, typ, b[pos+n:])
			if n < 0 || m < 0 {
				t.Fatalf("bad fixture")
			}
			if num == want {
				v, _ := protowire.ConsumeBytes(b[pos+n:])
				return b[:pos], v, b[pos+n+m:]
			}
			pos += n + m
		}
		t.Fatalf("field %d not found", want)
		return nil, nil, nil
	}
	wrap := func(before []byte, num protowire.Number, val, after []byte) []byte {
		out := append([]byte{}, before...)
		out = protowire.AppendTag(out, num, protowire.BytesType)
		out = protowire.AppendBytes(out, val)
		return append(out, after...)
	}
	b1, rs, a1 := field(req, 1)
	b2, ss, a2 := field(rs, 2)
	b3, sp, a3 := field(ss, 2)
	sp = bytes.Join(append([][]byte{sp}, fields...), nil)
	return wrap(b1, 1, wrap(b2, 2, wrap(b3, 2, sp, a3), a2), a1)
}

func TestDecodeJSONRules(t *testing.T) {
	// OTLP JSON: hex ids, int64 as strings (or numbers), enums as numbers,
	// camelCase or snake_case field names.
	body := `{"resource_spans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"feed-api"}},
		{"key":"process.pid","value":{"intValue":"4242"}}]},
		"scopeSpans":[{"spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C","span_id":"eee19b7ec3c1b174",
		"name":"GET /v1/feed","kind":2,"startTimeUnixNano":"1735689600000000000","endTimeUnixNano":1735689600250000000,
		"attributes":[{"key":"http.response.status_code","value":{"intValue":200}},
		{"key":"big","value":{"intValue":"9223372036854775807"}}],
		"status":{"code":2,"message":"boom"}}]}]}]}`
	td, err := otlpconv.DecodeJSON([]byte(body))
	if err != nil {
		t.Fatalf("DecodeJSON: %v", err)
	}
	s := convertOne(t, newConverter(t, nil), td)
	if s.TraceID.String() != "5b8efff798038103d269b633813fc60c" || s.SpanID.String() != "eee19b7ec3c1b174" {
		t.Errorf("ids = %v %v", s.TraceID, s.SpanID)
	}
	if s.Service != "feed-api" || s.DurationNano != 250_000_000 || s.StatusMessage != "boom" {
		t.Errorf("span = %+v", s)
	}
	if string(s.Attributes) != `{"http.response.status_code":200,"big":9223372036854775807}` {
		t.Errorf("attributes = %s", s.Attributes)
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	tests := []struct {
		name   string
		decode func([]byte) (ptrace.Traces, error)
		body   string
	}{
		{"proto truncated varint", otlpconv.DecodeProto, "\x0a\xff"},
		{"proto length past end", otlpconv.DecodeProto, "\x0a\x10abc"},
		{"proto wrong wire type", otlpconv.DecodeProto, "\x08\x01"},
		{"proto text", otlpconv.DecodeProto, "hello, world"},
		{"proto bad id plus garbage", otlpconv.DecodeProto,
			string(otlptest.ProtoRequest("svc", protoSpan("bad", goodTrace[:3], goodSpan, nil))) + "\x0a\xff"},
		{"json not json", otlpconv.DecodeJSON, "{resourceSpans"},
		{"json wrong type", otlpconv.DecodeJSON, `{"resourceSpans":{"a":1}}`},
		{"json bad id plus garbage", otlpconv.DecodeJSON, `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"ab"}]}]}],`},
		{"json bad int", otlpconv.DecodeJSON, `{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"soon"}]}]}]}`},
		{"json null", otlpconv.DecodeJSON, "null"},
		{"json null in space", otlpconv.DecodeJSON, " \n null \t"},
		{"json array", otlpconv.DecodeJSON, "[]"},
		{"json string", otlpconv.DecodeJSON, `"resourceSpans"`},
		{"json number", otlpconv.DecodeJSON, "0"},
		{"json true", otlpconv.DecodeJSON, "true"},
		{"json empty", otlpconv.DecodeJSON, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.decode([]byte(tt.body)); err == nil {
				t.Errorf("decoded garbage without error")
			} else if !strings.HasPrefix(err.Error(), "otlpconv: decode") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestDecodeEmpty(t *testing.T) {
	for name, decode := range map[string]func([]byte) (ptrace.Traces, error){
		"proto": otlpconv.DecodeProto, "json": otlpconv.DecodeJSON,
	} {
		t.Run(name, func(t *testing.T) {
			body := []byte{}
			if name == "json" {
				body = []byte(`{}`)
			}
			td, err := decode(body)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if td.SpanCount() != 0 {
				t.Errorf("spans = %d", td.SpanCount())
			}
		})
	}
}
