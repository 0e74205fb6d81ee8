package otlpconv_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailscope/tailscope/ingest/internal/otlptest"
	"github.com/tailscope/tailscope/ingest/otlpconv"
	"github.com/tailscope/tailscope/store"
)

var (
	testTraceID = pcommon.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	testSpanID  = pcommon.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	testParent  = pcommon.SpanID{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}
)

// oneSpan returns a request with one valid server span of service "svc";
// edit changes it before conversion.
func oneSpan(edit func(res pcommon.Map, sp ptrace.Span)) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(testTraceID)
	sp.SetSpanID(testSpanID)
	sp.SetName("GET /v1/feed")
	sp.SetKind(ptrace.SpanKindServer)
	sp.SetStartTimestamp(otlptest.Base)
	sp.SetEndTimestamp(otlptest.Base + 1_500_000)
	if edit != nil {
		edit(rs.Resource().Attributes(), sp)
	}
	return td
}

func newConverter(tb testing.TB, edit func(*otlpconv.Options)) *otlpconv.Converter {
	tb.Helper()
	opts := otlpconv.DefaultOptions()
	if edit != nil {
		edit(&opts)
	}
	c, err := otlpconv.NewConverter(opts)
	if err != nil {
		tb.Fatalf("NewConverter: %v", err)
	}
	return c
}

// convertOne converts td and requires exactly one accepted span.
func convertOne(tb testing.TB, c *otlpconv.Converter, td ptrace.Traces) store.Span {
	tb.Helper()
	spans, res := c.Convert(td)
	if len(spans) != 1 {
		tb.Fatalf("got %d spans (%s), want 1", len(spans), res.Message())
	}
	checkSpan(tb, spans[0])
	return spans[0]
}

// checkSpan asserts the invariants every converted span must hold whatever
// the input: the store contract's text rules and valid JSON attributes.
func checkSpan(tb testing.TB, s store.Span) {
	tb.Helper()
	if s.TraceID.IsZero() || s.SpanID.IsZero() {
		tb.Errorf("span with zero id: %v %v", s.TraceID, s.SpanID)
	}
	if s.DurationNano < 0 || s.StartUnixNano <= 0 {
		tb.Errorf("bad times: start %d duration %d", s.StartUnixNano, s.DurationNano)
	}
	if s.Service == "" {
		tb.Errorf("empty service")
	}
	if !(s.Weight >= 1 && s.Weight <= 1<<56) {
		tb.Errorf("weight %v outside [1, 2^56]", s.Weight)
	}
	for name, v := range map[string]string{
		"service": s.Service, "name": s.Name, "status message": s.StatusMessage,
		"tenant": s.Tenant, "version": s.Version, "dependency": s.Dependency, "host": s.Host,
	} {
		checkText(tb, name, v)
	}
	checkAttrs(tb, "attributes", s.Attributes)
	checkAttrs(tb, "resource", s.Resource)
	for _, e := range s.Events {
		checkText(tb, "event name", e.Name)
		checkAttrs(tb, "event attributes", e.Attributes)
	}
	for _, l := range s.Links {
		if l.TraceID.IsZero() || l.SpanID.IsZero() {
			tb.Errorf("link with zero id")
		}
		checkAttrs(tb, "link attributes", l.Attributes)
	}
}

func checkText(tb testing.TB, what, s string) {
	tb.Helper()
	if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		tb.Errorf("%s %q: not valid UTF-8 without NUL", what, s)
	}
}

func checkAttrs(tb testing.TB, what string, a store.Attributes) {
	tb.Helper()
	if a == nil {
		return
	}
	if !json.Valid(a) || a[0] != '{' {
		tb.Errorf("%s: not a JSON object: %q", what, a)
		return
	}
	if !utf8.Valid(a) || strings.Contains(string(a), `\u0000`) {
		tb.Errorf("%s: invalid UTF-8 or escaped NUL: %q", what, a)
	}
	if _, err := a.Decode(); err != nil {
		tb.Errorf("%s: %v", what, err)
	}
}

func TestConvertFields(t *testing.T) {
	c := newConverter(t, nil)
	td := oneSpan(func(res pcommon.Map, sp ptrace.Span) {
		res.PutStr("service.version", "v2")
		res.PutStr("host.name", "ip-10-0-3-17")
		res.PutInt("process.pid", 42)
		sp.SetParentSpanID(testParent)
		sp.SetKind(ptrace.SpanKindClient)
		sp.Status().SetCode(ptrace.StatusCodeError)
		sp.Status().SetMessage("timeout")
		sp.Attributes().PutStr("http.request.method", "GET")
		sp.Attributes().PutInt("http.response.status_code", 504)
		ev := sp.Events().AppendEmpty()
		ev.SetName("exception")
		ev.SetTimestamp(otlptest.Base + 10)
		ev.Attributes().PutStr("exception.type", "timeout")
		l := sp.Links().AppendEmpty()
		l.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
		l.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
		l.Attributes().PutStr("link.kind", "retry-of")
		zero := sp.Links().AppendEmpty() // dropped: zero ids
		zero.Attributes().PutStr("k", "v")
	})
	spans, res := c.Convert(td)
	if len(spans) != 1 {
		t.Fatalf("got %d spans, want 1", len(spans))
	}
	s := spans[0]
	checkSpan(t, s)
	want := store.Span{
		TraceID:       store.TraceID(testTraceID),
		SpanID:        store.SpanID(testSpanID),
		ParentSpanID:  store.SpanID(testParent),
		Service:       "svc",
		Name:          "GET /v1/feed",
		Kind:          store.KindClient,
		StartUnixNano: otlptest.Base,
		DurationNano:  1_500_000,
		StatusCode:    store.StatusError,
		StatusMessage: "timeout",
		Version:       "v2",
		Host:          "ip-10-0-3-17",
	}
	gotScalars := s
	gotScalars.Attributes, gotScalars.Resource, gotScalars.Events, gotScalars.Links = nil, nil, nil, nil
	if gotScalars.TraceID != want.TraceID || gotScalars.SpanID != want.SpanID || gotScalars.ParentSpanID != want.ParentSpanID ||
		gotScalars.Service != want.Service || gotScalars.Name != want.Name || gotScalars.Kind != want.Kind ||
		gotScalars.StartUnixNano != want.StartUnixNano || gotScalars.DurationNano != want.DurationNano ||
		gotScalars.StatusCode != want.StatusCode || gotScalars.StatusMessage != want.StatusMessage ||
		gotScalars.Version != want.Version || gotScalars.Host != want.Host || gotScalars.Tenant != "" {
		t.Errorf("span = %+v\nwant %+v", gotScalars, want)
	}
	wantAttrs := store.AttributesOf(map[string]any{"http.request.method": "GET", "http.response.status_code": 504})
	if !s.Attributes.Equal(wantAttrs) {
		t.Errorf("attributes = %s, want %s", s.Attributes, wantAttrs)
	}
	wantRes := store.AttributesOf(map[string]any{"service.name": "svc", "service.version": "v2", "host.name": "ip-10-0-3-17", "process.pid": 42})
	if !s.Resource.Equal(wantRes) {
		t.Errorf("resource = %s, want %s", s.Resource, wantRes)
	}
	if len(s.Events) != 1 || s.Events[0].Name != "exception" || s.Events[0].TimeUnixNano != otlptest.Base+10 ||
		!s.Events[0].Attributes.Equal(store.AttributesOf(map[string]any{"exception.type": "timeout"})) {
		t.Errorf("events = %+v", s.Events)
	}
	if len(s.Links) != 1 || s.Links[0].SpanID != (store.SpanID{1, 2, 3, 4, 5, 6, 7, 8}) ||
		!s.Links[0].Attributes.Equal(store.AttributesOf(map[string]any{"link.kind": "retry-of"})) {
		t.Errorf("links = %+v", s.Links)
	}
	if res.DroppedLinks != 1 || res.Rejected() != 0 || res.Spans != 1 {
		t.Errorf("result = %+v", res)
	}
}

func TestConvertValidation(t *testing.T) {
	c := newConverter(t, nil)
	tests := []struct {
		name   string
		edit   func(res pcommon.Map, sp ptrace.Span)
		reason otlpconv.Reason // meaningful when !ok
		ok     bool
	}{
		{name: "valid", ok: true},
		{name: "zero duration", ok: true, edit: func(_ pcommon.Map, sp ptrace.Span) { sp.SetEndTimestamp(sp.StartTimestamp()) }},
		{name: "all-zero trace id", reason: otlpconv.ReasonInvalidTraceID,
			edit: func(_ pcommon.Map, sp ptrace.Span) { sp.SetTraceID(pcommon.NewTraceIDEmpty()) }},
		{name: "all-zero span id", reason: otlpconv.ReasonInvalidSpanID,
			edit: func(_ pcommon.Map, sp ptrace.Span) { sp.SetSpanID(pcommon.NewSpanIDEmpty()) }},
		{name: "end before start", reason: otlpconv.ReasonEndBeforeStart,
			edit: func(_ pcommon.Map, sp ptrace.Span) { sp.SetEndTimestamp(sp.StartTimestamp() - 1) }},
		{name: "missing start", reason: otlpconv.ReasonInvalidTime,
			edit: func(_ pcommon.Map, sp ptrace.Span) { sp.SetStartTimestamp(0) }},
		{name: "missing end", reason: otlpconv.ReasonEndBeforeStart,
			edit: func(_ pcommon.Map, sp ptrace.Span) { sp.SetEndTimestamp(0) }},
		{name: "start beyond int64", reason: otlpconv.ReasonInvalidTime,
			edit: func(_ pcommon.Map, sp ptrace.Span) {
				sp.SetStartTimestamp(math.MaxInt64 + 1)
				sp.SetEndTimestamp(math.MaxUint64)
			}},
		{name: "end beyond int64", reason: otlpconv.ReasonInvalidTime,
			edit: func(_ pcommon.Map, sp ptrace.Span) { sp.SetEndTimestamp(math.MaxUint64) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td := oneSpan(tt.edit)
			// A valid sibling proves one bad span does not fail the rest.
			sib := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().AppendEmpty()
			oneSpan(nil).ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).CopyTo(sib)
			sib.SetSpanID(pcommon.SpanID{9, 9, 9, 9, 9, 9, 9, 9})

			spans, res := c.Convert(td)
			wantAccepted := 1
			if tt.ok {
				wantAccepted = 2
			}
			if len(spans) != wantAccepted {
				t.Fatalf("accepted %d spans, want %d (%s)", len(spans), wantAccepted, res.Message())
			}
			for _, s := range spans {
				checkSpan(t, s)
			}
			if res.Spans != 2 {
				t.Errorf("res.Spans = %d, want 2", res.Spans)
			}
			if tt.ok {
				if res.Rejected() != 0 || res.Message() != "" {
					t.Errorf("rejected %d (%q), want 0", res.Rejected(), res.Message())
				}
				return
			}
			if res.Rejected() != 1 || res.RejectedFor(tt.reason) != 1 {
				t.Errorf("rejected %d, for %v %d; want 1", res.Rejected(), tt.reason, res.RejectedFor(tt.reason))
			}
			if msg := res.Message(); !strings.HasPrefix(msg, "rejected 1 of 2 spans: 1 ") {
				t.Errorf("message = %q", msg)
			}
		})
	}
}

func TestConvertService(t *testing.T) {
	c := newConverter(t, nil)
	tests := []struct {
		name string
		edit func(res pcommon.Map)
		want string
	}{
		{"present", nil, "svc"},
		{"missing", func(res pcommon.Map) { res.Remove("service.name") }, otlpconv.UnknownService},
		{"empty", func(res pcommon.Map) { res.PutStr("service.name", "") }, otlpconv.UnknownService},
		{"not a string", func(res pcommon.Map) { res.PutInt("service.name", 7) }, "7"},
		{"invalid utf-8", func(res pcommon.Map) { res.PutStr("service.name", "feed\xffapi") }, "feed\uFFFDapi"},
		{"NUL", func(res pcommon.Map) { res.PutStr("service.name", "feed\x00api") }, "feed\uFFFDapi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := convertOne(t, c, oneSpan(func(res pcommon.Map, _ ptrace.Span) {
				if tt.edit != nil {
					tt.edit(res)
				}
			}))
			if s.Service != tt.want {
				t.Errorf("service = %q, want %q", s.Service, tt.want)
			}
		})
	}
}

func TestConvertAttributeValues(t *testing.T) {
	c := newConverter(t, nil)
	tests := []struct {
		name string
		put  func(m pcommon.Map)
		want string // the encoded object
	}{
		{"string", func(m pcommon.Map) { m.PutStr("k", "v") }, `{"k":"v"}`},
		{"escapes", func(m pcommon.Map) { m.PutStr("k", "a\"b\\c\nd\te\x01") }, `{"k":"a\"b\\c\nd\te\u0001"}`},
		{"unicode kept", func(m pcommon.Map) { m.PutStr("k", "héllo – 世界 🎉") }, `{"k":"héllo – 世界 🎉"}`},
		{"int", func(m pcommon.Map) { m.PutInt("k", math.MinInt64) }, `{"k":-9223372036854775808}`},
		{"double", func(m pcommon.Map) { m.PutDouble("k", 0.25) }, `{"k":0.25}`},
		{"double integral", func(m pcommon.Map) { m.PutDouble("k", 3) }, `{"k":3}`},
		{"double tiny", func(m pcommon.Map) { m.PutDouble("k", 1e-7) }, `{"k":1e-7}`},
		{"double huge", func(m pcommon.Map) { m.PutDouble("k", 1e21) }, `{"k":1e+21}`},
		{"NaN", func(m pcommon.Map) { m.PutDouble("k", math.NaN()) }, `{"k":"NaN"}`},
		{"+Inf", func(m pcommon.Map) { m.PutDouble("k", math.Inf(1)) }, `{"k":"Infinity"}`},
		{"-Inf", func(m pcommon.Map) { m.PutDouble("k", math.Inf(-1)) }, `{"k":"-Infinity"}`},
		{"bool", func(m pcommon.Map) { m.PutBool("k", true); m.PutBool("j", false) }, `{"k":true,"j":false}`},
		{"bytes", func(m pcommon.Map) { m.PutEmptyBytes("k").FromRaw([]byte{0, 1, 0xfe, 0xff}) }, `{"k":"AAH+/w=="}`},
		{"empty value", func(m pcommon.Map) { m.PutEmpty("k") }, `{"k":null}`},
		{"array", func(m pcommon.Map) {
			s := m.PutEmptySlice("k")
			s.AppendEmpty().SetStr("a")
			s.AppendEmpty().SetInt(1)
			s.AppendEmpty().SetDouble(math.NaN())
			s.AppendEmpty().SetEmptySlice()
		}, `{"k":["a",1,"NaN",[]]}`},
		{"map", func(m pcommon.Map) {
			n := m.PutEmptyMap("k")
			n.PutStr("x", "y")
			n.PutEmptyMap("z").PutBool("deep", true)
		}, `{"k":{"x":"y","z":{"deep":true}}}`},
		{"order kept", func(m pcommon.Map) { m.PutInt("b", 1); m.PutInt("a", 2) }, `{"b":1,"a":2}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := convertOne(t, c, oneSpan(func(_ pcommon.Map, sp ptrace.Span) { tt.put(sp.Attributes()) }))
			if string(s.Attributes) != tt.want {
				t.Errorf("attributes = %s, want %s", s.Attributes, tt.want)
			}
		})
	}
	t.Run("no attributes", func(t *testing.T) {
		s := convertOne(t, c, oneSpan(nil))
		if s.Attributes != nil {
			t.Errorf("attributes = %s, want nil", s.Attributes)
		}
	})
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*otlpconv.Options)
		ok   bool
	}{
		{"defaults", func(*otlpconv.Options) {}, true},
		{"tiny values", func(o *otlpconv.Options) { o.MaxValueBytes = 1 }, false},
		{"tiny names", func(o *otlpconv.Options) { o.MaxNameBytes = 0 }, false},
		{"names past the index limit", func(o *otlpconv.Options) { o.MaxNameBytes = 4096 }, false},
		{"empty tenant key", func(o *otlpconv.Options) { o.TenantKeys = []string{""} }, false},
		{"empty payload key", func(o *otlpconv.Options) { o.PayloadKeys = []string{"a", ""} }, false},
		{"negative max age", func(o *otlpconv.Options) { o.MaxAge = -time.Second }, false},
		{"no clock skew", func(o *otlpconv.Options) { o.MaxClockSkew = 0 }, false},
		{"bad pattern", func(o *otlpconv.Options) { o.Redaction.Patterns = []string{"(unclosed"} }, false},
		{"pattern matching nothing", func(o *otlpconv.Options) { o.Redaction.Patterns = []string{"x*"} }, false},
		{"no redaction", func(o *otlpconv.Options) { o.Redaction = otlpconv.Redaction{} }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := otlpconv.DefaultOptions()
			tt.edit(&o)
			_, err := otlpconv.NewConverter(o)
			if (err == nil) != tt.ok {
				t.Errorf("NewConverter error = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestConvertFeedRequest(t *testing.T) {
	c := newConverter(t, nil)
	spans, res := c.Convert(otlptest.FeedTraces(100, 3))
	if len(spans) != 100 || res.Rejected() != 0 {
		t.Fatalf("got %d spans, %d rejected", len(spans), res.Rejected())
	}
	deps := map[string]int{}
	for _, s := range spans {
		checkSpan(t, s)
		deps[s.Dependency]++
		if s.Service != "feed-api" || s.Version != "v2" || s.Host != "ip-10-0-3-17" {
			t.Fatalf("resource columns = %q %q %q", s.Service, s.Version, s.Host)
		}
	}
	want := map[string]int{"": 10, "candidate-svc": 10, "feature-svc": 10, "profile-svc": 10, "postgresql/feed": 30, "redis": 30}
	for k, v := range want {
		if deps[k] != v {
			t.Errorf("dependency %q: %d spans, want %d (all: %v)", k, deps[k], v, deps)
		}
	}
}

// TestConvertAcceptedRange: spans are accepted from MaxAge before now to
// MaxClockSkew after it, bounds included; the rest are rejected with a
// message naming the reason and the range.
func TestConvertAcceptedRange(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC)
	c := newConverter(t, func(o *otlpconv.Options) {
		o.Now = func() time.Time { return now }
		o.MaxAge = 7 * 24 * time.Hour
		o.MaxClockSkew = time.Hour
	})
	oldest, newest := now.Add(-7*24*time.Hour), now.Add(time.Hour)
	tests := []struct {
		name  string
		start time.Time
		want  otlpconv.Reason // meaningful when !ok
		ok    bool
	}{
		{name: "now", start: now, ok: true},
		{name: "oldest accepted", start: oldest, ok: true},
		{name: "newest accepted", start: newest, ok: true},
		{name: "one ns too old", start: oldest.Add(-1), want: otlpconv.ReasonTooOld},
		{name: "one ns too new", start: newest.Add(1), want: otlpconv.ReasonTooNew},
		{name: "2018 (the OTLP example trace)", start: time.Date(2018, 12, 13, 14, 51, 0, 0, time.UTC), want: otlpconv.ReasonTooOld},
		{name: "2030", start: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), want: otlpconv.ReasonTooNew},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td := oneSpan(func(_ pcommon.Map, sp ptrace.Span) {
				sp.SetStartTimestamp(pcommon.NewTimestampFromTime(tt.start))
				sp.SetEndTimestamp(pcommon.NewTimestampFromTime(tt.start.Add(time.Millisecond)))
			})
			spans, res := c.Convert(td)
			if tt.ok {
				if len(spans) != 1 {
					t.Fatalf("rejected: %s", res.Message())
				}
				return
			}
			if len(spans) != 0 || res.RejectedFor(tt.want) != 1 {
				t.Fatalf("accepted %d, rejected for %v %d; want the span rejected", len(spans), tt.want, res.RejectedFor(tt.want))
			}
			msg := res.Message()
			for _, want := range []string{"rejected 1 of 1 spans", "accepted range", "2026-11-26T09:30:00Z", "2026-12-03T10:30:00Z", "168h0m0s old", "1h0m0s ahead"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q lacks %q", msg, want)
				}
			}
		})
	}
	t.Run("any age without MaxAge", func(t *testing.T) {
		c := newConverter(t, func(o *otlpconv.Options) { o.Now = func() time.Time { return now } })
		td := oneSpan(func(_ pcommon.Map, sp ptrace.Span) {
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC)))
			sp.SetEndTimestamp(sp.StartTimestamp() + 1)
		})
		convertOne(t, c, td)
		td = oneSpan(func(_ pcommon.Map, sp ptrace.Span) {
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(2 * time.Hour)))
			sp.SetEndTimestamp(sp.StartTimestamp() + 1)
		})
		if _, res := c.Convert(td); res.RejectedFor(otlpconv.ReasonTooNew) != 1 || !strings.Contains(res.Message(), "from any time") {
			t.Errorf("a span 2 h ahead: %q, want rejected as too new", res.Message())
		}
	})
}
