package otlpconv_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailscope/tailscope/ingest/otlpconv"
	"github.com/tailscope/tailscope/store"
)

// TestTemplateSpanNames checks what a span named after its request or its
// statement is stored as, through both decoders.
func TestTemplateSpanNames(t *testing.T) {
	const stmt = "SELECT * FROM users WHERE id = 42"
	for _, tc := range []struct {
		name     string
		opts     func(*otlpconv.Options)
		spanName string
		kind     ptrace.SpanKind
		attrs    map[string]string
		want     string
		original any // the OriginalNameKey attribute; nil when absent
	}{
		{name: "path with url.path", spanName: "GET /users/12345", kind: ptrace.SpanKindServer,
			attrs: map[string]string{"url.path": "/users/12345"}, want: "GET /users/{id}"},
		{name: "path alone keeps the name as sent, query redacted", spanName: "GET /reset/12345?token=s3cr3t",
			kind: ptrace.SpanKindServer, want: "GET /reset/{id}", original: "GET /reset/12345?token=REDACTED"},
		{name: "route", spanName: "GET", kind: ptrace.SpanKindServer,
			attrs: map[string]string{"http.route": "/users/{id}", "url.path": "/users/7"}, want: "GET /users/{id}"},
		{name: "route of a client span is not its name", spanName: "GET", kind: ptrace.SpanKindClient,
			attrs: map[string]string{"http.route": "/users/{id}"}, want: "GET"},
		{name: "url.template of a client span", spanName: "GET", kind: ptrace.SpanKindClient,
			attrs: map[string]string{"url.template": "/users/{id}", "url.full": "http://u/users/7"}, want: "GET /users/{id}"},
		{name: "url.template of a server span is not its name", spanName: "GET", kind: ptrace.SpanKindServer,
			attrs: map[string]string{"url.template": "/users/{id}"}, want: "GET"},
		{name: "client URL", spanName: "GET https://api.example.com/v1/charges/ch_3MmlLrLkdIwHu7ix0snN0B15",
			kind: ptrace.SpanKindClient, attrs: map[string]string{"url.full": "https://api.example.com/v1/charges/ch_3MmlLrLkdIwHu7ix0snN0B15"},
			want: "GET https://api.example.com/v1/charges/{id}"},
		{name: "statement", spanName: stmt, kind: ptrace.SpanKindClient,
			attrs: map[string]string{"db.system": "postgresql", "db.statement": stmt}, want: "SELECT * FROM users WHERE id = ?"},
		{name: "statement kept when SQL is not redacted", opts: func(o *otlpconv.Options) { o.Redaction.SQL = false },
			spanName: stmt, kind: ptrace.SpanKindClient, attrs: map[string]string{"db.system": "postgresql", "db.statement": stmt}, want: stmt},
		{name: "named otherwise", spanName: "GET /feed", kind: ptrace.SpanKindServer,
			attrs: map[string]string{"http.route": "/feed"}, want: "GET /feed"},
		{name: "off", opts: func(o *otlpconv.Options) { o.TemplateNames = false },
			spanName: "GET /users/12345", kind: ptrace.SpanKindServer, want: "GET /users/12345"},
		{name: "original denied", opts: func(o *otlpconv.Options) { o.Redaction.Keys = append(o.Redaction.Keys, "url.path") },
			spanName: "GET /users/12345", kind: ptrace.SpanKindServer, want: "GET /users/{id}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newConverter(t, tc.opts)
			td := oneSpan(func(_ pcommon.Map, sp ptrace.Span) {
				sp.SetName(tc.spanName)
				sp.SetKind(tc.kind)
				for k, v := range tc.attrs {
					sp.Attributes().PutStr(k, v)
				}
			})
			for _, got := range convertBoth(t, c, td) {
				s := got.span
				if s.Name != tc.want {
					t.Errorf("%s: name %q, want %q", got.decoder, s.Name, tc.want)
				}
				if renamed := tc.want != tc.spanName; (got.res.Renamed == 1) != renamed {
					t.Errorf("%s: Renamed %d, want it counted: %v", got.decoder, got.res.Renamed, renamed)
				}
				var a map[string]any
				if len(s.Attributes) > 0 {
					a = attrsOf(t, s.Attributes)
				}
				if orig := a[otlpconv.OriginalNameKey]; orig != tc.original {
					t.Errorf("%s: %s = %v, want %v (attributes %s)", got.decoder, otlpconv.OriginalNameKey, orig, tc.original, s.Attributes)
				}
				for k := range tc.attrs {
					if _, ok := a[k]; !ok {
						t.Errorf("%s: attribute %s lost: %s", got.decoder, k, s.Attributes)
					}
				}
			}
		})
	}
}

type converted struct {
	decoder string
	span    store.Span
	res     otlpconv.Result
}

// convertBoth converts the one-span request td with Convert (OTLP/JSON,
// gRPC) and ConvertProto (OTLP/HTTP protobuf).
func convertBoth(t *testing.T, c *otlpconv.Converter, td ptrace.Traces) []converted {
	t.Helper()
	spans, res := c.Convert(td)
	if len(spans) != 1 {
		t.Fatalf("Convert: %d spans, want 1", len(spans))
	}
	out := []converted{{"Convert", spans[0], res}}
	var pm ptrace.ProtoMarshaler
	body, err := pm.MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	spans, res, err = c.ConvertProto(body)
	if err != nil || len(spans) != 1 {
		t.Fatalf("ConvertProto: %d spans, %v", len(spans), err)
	}
	return append(out, converted{"ConvertProto", spans[0], res})
}

// TestTemplateSpanNameFromLongRoute: a route is an attribute value, up to
// MaxValueBytes of any bytes; the name made from it is cut and cleaned
// like any name.
func TestTemplateSpanNameFromLongRoute(t *testing.T) {
	c := newConverter(t, nil)
	route := "/a\x00/" + strings.Repeat("é", 2000)
	td := oneSpan(func(_ pcommon.Map, sp ptrace.Span) {
		sp.SetName("GET")
		sp.Attributes().PutStr("http.route", route)
	})
	for _, got := range convertBoth(t, c, td) {
		if n := got.span.Name; len(n) > otlpconv.DefaultOptions().MaxNameBytes || !utf8.ValidString(n) || strings.ContainsRune(n, 0) || !strings.HasPrefix(n, "GET /a\uFFFD/é") {
			t.Errorf("%s: name %q (%d bytes): want it cleaned and cut to the name limit", got.decoder, n, len(n))
		}
	}
}
