package otlpconv_test

import (
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailscope/tailscope/ingest/otlpconv"
	"github.com/tailscope/tailscope/store"
)

func TestConvertSanitises(t *testing.T) {
	c := newConverter(t, nil)
	tests := []struct {
		name  string
		edit  func(res pcommon.Map, sp ptrace.Span)
		check func(t *testing.T, s store.Span)
	}{
		{"invalid utf-8 in name", func(_ pcommon.Map, sp ptrace.Span) { sp.SetName("GET /\xc3\x28x") },
			func(t *testing.T, s store.Span) { wantEq(t, "name", s.Name, "GET /\uFFFD(x") }},
		{"NUL in name", func(_ pcommon.Map, sp ptrace.Span) { sp.SetName("a\x00b") },
			func(t *testing.T, s store.Span) { wantEq(t, "name", s.Name, "a\uFFFDb") }},
		{"status message", func(_ pcommon.Map, sp ptrace.Span) { sp.Status().SetMessage("bad \xff\x00 news") },
			func(t *testing.T, s store.Span) { wantEq(t, "status", s.StatusMessage, "bad \uFFFD\uFFFD news") }},
		{"attribute value", func(_ pcommon.Map, sp ptrace.Span) { sp.Attributes().PutStr("k", "x\x00y\xe2\x82z") },
			func(t *testing.T, s store.Span) {
				wantEq(t, "attributes", string(s.Attributes), `{"k":"x`+"\uFFFD"+`y`+"\uFFFD\uFFFD"+`z"}`)
			}},
		{"attribute key", func(_ pcommon.Map, sp ptrace.Span) { sp.Attributes().PutStr("k\xff\x00", "v") },
			func(t *testing.T, s store.Span) {
				wantEq(t, "attributes", string(s.Attributes), `{"k`+"\uFFFD\uFFFD"+`":"v"}`)
			}},
		{"nested value", func(_ pcommon.Map, sp ptrace.Span) {
			sp.Attributes().PutEmptySlice("k").AppendEmpty().SetEmptyMap().PutStr("\x00", "\x80")
		}, func(t *testing.T, s store.Span) {
			wantEq(t, "attributes", string(s.Attributes), `{"k":[{"`+"\uFFFD"+`":"`+"\uFFFD"+`"}]}`)
		}},
		{"event name and attributes", func(_ pcommon.Map, sp ptrace.Span) {
			ev := sp.Events().AppendEmpty()
			ev.SetName("ex\x00")
			ev.Attributes().PutStr("m", "\xfe")
		}, func(t *testing.T, s store.Span) {
			wantEq(t, "event name", s.Events[0].Name, "ex\uFFFD")
			wantEq(t, "event attributes", string(s.Events[0].Attributes), `{"m":"`+"\uFFFD"+`"}`)
		}},
		{"resource and derived columns", func(res pcommon.Map, sp ptrace.Span) {
			res.PutStr("service.version", "v\x001")
			res.PutStr("host.name", "h\xff")
			sp.Attributes().PutStr("tenant.id", "ac\x00me")
			sp.SetKind(ptrace.SpanKindClient)
			sp.Attributes().PutStr("peer.service", "pro\xfffile")
		}, func(t *testing.T, s store.Span) {
			wantEq(t, "version", s.Version, "v\uFFFD1")
			wantEq(t, "host", s.Host, "h\uFFFD")
			wantEq(t, "tenant", s.Tenant, "ac\uFFFDme")
			wantEq(t, "dependency", s.Dependency, "pro\uFFFDfile")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spans, res := c.Convert(oneSpan(tt.edit))
			if len(spans) != 1 {
				t.Fatalf("got %d spans, want 1", len(spans))
			}
			checkSpan(t, spans[0])
			tt.check(t, spans[0])
			if res.Repaired == 0 {
				t.Errorf("res.Repaired = 0, want > 0")
			}
		})
	}
}

func wantEq(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func TestConvertTruncates(t *testing.T) {
	c := newConverter(t, func(o *otlpconv.Options) {
		o.MaxValueBytes = 16
		o.MaxNameBytes = 20
	})
	long := strings.Repeat("x", 40)
	tests := []struct {
		name      string
		edit      func(res pcommon.Map, sp ptrace.Span)
		wantAttrs string
		check     func(t *testing.T, s store.Span)
	}{
		{name: "short value kept",
			edit:      func(_ pcommon.Map, sp ptrace.Span) { sp.Attributes().PutStr("k", strings.Repeat("y", 16)) },
			wantAttrs: `{"k":"yyyyyyyyyyyyyyyy"}`},
		{name: "long value cut and marked",
			edit: func(_ pcommon.Map, sp ptrace.Span) {
				sp.Attributes().PutStr("db.query.text", long)
				sp.Attributes().PutStr("ok", "short")
			},
			wantAttrs: `{"db.query.text":"xxxxxxxxxxxxxxxx","ok":"short","tailscope.truncated":["db.query.text"]}`},
		{name: "cut on a rune boundary",
			// 15 ASCII bytes, then a 3-byte rune straddling the limit.
			edit:      func(_ pcommon.Map, sp ptrace.Span) { sp.Attributes().PutStr("k", strings.Repeat("a", 15)+"世界") },
			wantAttrs: `{"k":"aaaaaaaaaaaaaaa","tailscope.truncated":["k"]}`},
		{name: "bytes cut",
			edit:      func(_ pcommon.Map, sp ptrace.Span) { sp.Attributes().PutEmptyBytes("b").FromRaw(make([]byte, 20)) },
			wantAttrs: `{"b":"AAAAAAAAAAAAAAAAAAAAAA==","tailscope.truncated":["b"]}`},
		{name: "nested value marks the top key",
			edit: func(_ pcommon.Map, sp ptrace.Span) {
				sp.Attributes().PutEmptySlice("list").AppendEmpty().SetStr(long)
			},
			wantAttrs: `{"list":["xxxxxxxxxxxxxxxx"],"tailscope.truncated":["list"]}`},
		{name: "long key cut",
			edit:      func(_ pcommon.Map, sp ptrace.Span) { sp.Attributes().PutStr(long, "v") },
			wantAttrs: `{"xxxxxxxxxxxxxxxxxxxx":"v","tailscope.truncated":["xxxxxxxxxxxxxxxxxxxx"]}`},
		{name: "name and status message cut",
			edit: func(_ pcommon.Map, sp ptrace.Span) {
				sp.SetName(long)
				sp.Status().SetMessage(long)
			},
			check: func(t *testing.T, s store.Span) {
				wantEq(t, "name", s.Name, long[:20])
				wantEq(t, "status message", s.StatusMessage, long[:20])
			}},
		{name: "repair growth cut again",
			// 20 invalid bytes become 60 bytes of U+FFFD; the cap is 20.
			edit: func(_ pcommon.Map, sp ptrace.Span) { sp.SetName(strings.Repeat("\xff", 30)) },
			check: func(t *testing.T, s store.Span) {
				wantEq(t, "name", s.Name, strings.Repeat("\uFFFD", 6))
			}},
		{name: "resource value marked in resource",
			edit: func(res pcommon.Map, _ ptrace.Span) { res.PutStr("process.command_line", long) },
			check: func(t *testing.T, s store.Span) {
				want := `{"service.name":"svc","process.command_line":"xxxxxxxxxxxxxxxx","tailscope.truncated":["process.command_line"]}`
				wantEq(t, "resource", string(s.Resource), want)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spans, res := c.Convert(oneSpan(tt.edit))
			if len(spans) != 1 {
				t.Fatalf("got %d spans, want 1", len(spans))
			}
			s := spans[0]
			checkSpan(t, s)
			if tt.wantAttrs != "" {
				wantEq(t, "attributes", string(s.Attributes), tt.wantAttrs)
			}
			if tt.check != nil {
				tt.check(t, s)
			}
			if strings.Contains(tt.name, "kept") != (res.Truncated == 0) {
				t.Errorf("res.Truncated = %d", res.Truncated)
			}
		})
	}
}
