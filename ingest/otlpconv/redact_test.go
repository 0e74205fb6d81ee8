package otlpconv_test

import (
	"encoding/json"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailscope/tailscope/ingest/otlpconv"
)

// attrsOf decodes a stored attribute object.
func attrsOf(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("attributes %s: %v", raw, err)
	}
	return m
}

// TestRedactDefaults sends what real instrumentation records, secrets
// included, and checks what would be stored.
func TestRedactDefaults(t *testing.T) {
	const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
	tests := []struct {
		name       string
		key        string
		value      any // string or []string
		system     string
		want       any
		unredacted bool // the value is kept as sent
	}{
		{name: "authorization header", key: "http.request.header.authorization", value: []string{"Bearer abcdefgh12345678"}, want: otlpconv.RedactedValue},
		{name: "cookie header", key: "http.request.header.cookie", value: []string{"session=s3cr3t"}, want: otlpconv.RedactedValue},
		{name: "set-cookie header", key: "http.response.header.set-cookie", value: []string{"id=a3fWa; Max-Age=2592000"}, want: otlpconv.RedactedValue},
		{name: "x-api-key header", key: "http.request.header.x-api-key", value: []string{"k-123"}, want: otlpconv.RedactedValue},
		{name: "grpc metadata", key: "rpc.grpc.request.metadata.authorization", value: []string{"Basic dXNlcjpwYXNz"}, want: otlpconv.RedactedValue},
		{name: "key case and separators", key: "App.Proxy_Authorization", value: "Digest x", want: otlpconv.RedactedValue},
		{name: "password", key: "db.password", value: "hunter2", want: otlpconv.RedactedValue},
		{name: "token counts kept", key: "gen_ai.usage.input_tokens", value: "1200", unredacted: true},
		{name: "secret-looking prefix kept", key: "password.policy.min_length", value: "12", unredacted: true},
		{name: "email kept by default", key: "user.email", value: "ada@example.com", unredacted: true},
		{name: "bearer token in a message", key: "exception.message", value: "401 for Authorization: Bearer abcdefgh12345678 at /v1",
			want: "401 for Authorization: " + otlpconv.RedactedValue + " at /v1"},
		{name: "jwt anywhere", key: "app.session", value: "tok=" + jwt + ";", want: "tok=" + otlpconv.RedactedValue + ";"},
		{name: "sql literals", key: "db.query.text", system: "postgresql",
			value: "SELECT * FROM users WHERE email = 'ada@example.com' AND age > 41 AND name = E'O\\'Brien'",
			want:  "SELECT * FROM users WHERE email = ? AND age > ? AND name = E?"},
		{name: "sql placeholders kept", key: "db.query.text", system: "postgresql",
			value: "SELECT id FROM carts WHERE tenant_id = $1 AND created_at > $2", unredacted: true},
		{name: "legacy db.statement, mysql escapes", key: "db.statement", system: "mysql",
			value: `UPDATE t SET pw = 'a\'b' WHERE id = 7`, want: "UPDATE t SET pw = ? WHERE id = ?"},
		{name: "sql without a system", key: "db.statement",
			value: "INSERT INTO audit (who, what) VALUES ('ada', 'login')", want: "INSERT INTO audit (who, what) VALUES (?, ?)"},
		{name: "redis value", key: "db.query.text", system: "redis", value: "set session:42 s3cr3t-value EX 60", want: "set session:42 ? ? ?"},
		{name: "redis auth", key: "db.statement", system: "redis", value: "AUTH default hunter2", want: "AUTH ? ?"},
		{name: "redis pipeline", key: "db.statement", system: "redis", value: "get a\nmget b c", want: "get a\nmget b ?"},
		{name: "url query and user", key: "url.full", value: "https://ada:pw@api.example.com/v1/x?token=abc&page=2#frag",
			want: "https://REDACTED:REDACTED@api.example.com/v1/x?token=REDACTED&page=REDACTED#frag"},
		{name: "url fragment params", key: "http.url", value: "https://app.example.com/cb#access_token=xyz&state=1",
			want: "https://app.example.com/cb#access_token=REDACTED&state=REDACTED"},
		{name: "url without query", key: "url.full", value: "http://candidate-svc:8081/v1/candidates", unredacted: true},
		{name: "bare query", key: "url.query", value: "q=ada%40example.com&flag&empty=", want: "q=REDACTED&REDACTED&empty="},
		{name: "http.target", key: "http.target", value: "/v1/reset?key=123", want: "/v1/reset?key=REDACTED"},
	}
	c := newConverter(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td := oneSpan(func(_ pcommon.Map, sp ptrace.Span) {
				a := sp.Attributes()
				if tt.system != "" {
					a.PutStr("db.system", tt.system)
				}
				switch v := tt.value.(type) {
				case string:
					a.PutStr(tt.key, v)
				case []string:
					s := a.PutEmptySlice(tt.key)
					for _, e := range v {
						s.AppendEmpty().SetStr(e)
					}
				}
			})
			spans, res := c.Convert(td)
			if len(spans) != 1 {
				t.Fatalf("span rejected: %s", res.Message())
			}
			checkSpan(t, spans[0])
			got := attrsOf(t, spans[0].Attributes)[tt.key]
			want := tt.want
			if tt.unredacted {
				want = tt.value
			}
			if ws, ok := want.([]string); ok {
				var wa []any
				for _, e := range ws {
					wa = append(wa, e)
				}
				want = any(wa)
			}
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(want)
			if string(gj) != string(wj) {
				t.Errorf("%s = %s, want %s", tt.key, gj, wj)
			}
			if wantCount := map[bool]int{true: 0, false: 1}[tt.unredacted]; res.Redacted != wantCount {
				t.Errorf("Redacted = %d, want %d", res.Redacted, wantCount)
			}
		})
	}
}

// TestRedactEverywhere: rules apply to resource, event and link attributes,
// nested maps and arrays, and status messages; derived columns cannot
// carry a redacted value.
func TestRedactEverywhere(t *testing.T) {
	c := newConverter(t, func(o *otlpconv.Options) {
		o.TenantKeys = []string{"user.email", "tenant.id"}
		email, _ := otlpconv.BuiltinPattern("email")
		o.Redaction.Patterns = append(o.Redaction.Patterns, email)
		o.Redaction.Keys = append(o.Redaction.Keys, "enduser.id")
	})
	td := oneSpan(func(res pcommon.Map, sp ptrace.Span) {
		res.PutStr("cloud.account.password", "r")
		res.PutStr("tenant.id", "ops@example.com")
		a := sp.Attributes()
		a.PutStr("user.email", "ada@example.com")
		a.PutStr("enduser.id", "ada")
		m := a.PutEmptyMap("app.request")
		m.PutStr("Password", "x")
		m.PutEmptySlice("tags").AppendEmpty().SetStr("bearer abcdefgh12345678")
		sp.Status().SetMessage("token rejected: Bearer abcdefgh12345678")
		ev := sp.Events().AppendEmpty()
		ev.SetName("exception")
		ev.Attributes().PutStr("exception.message", "no user ada@example.com")
		l := sp.Links().AppendEmpty()
		l.SetTraceID(pcommon.TraceID{1})
		l.SetSpanID(pcommon.SpanID{1})
		l.Attributes().PutStr("http.request.header.cookie", "c")
	})
	spans, res := c.Convert(td)
	if len(spans) != 1 {
		t.Fatalf("span rejected: %s", res.Message())
	}
	s := spans[0]
	checkSpan(t, s)
	all := string(s.Attributes) + string(s.Resource) + string(s.Events[0].Attributes) + string(s.Links[0].Attributes) + s.StatusMessage + s.Tenant
	for _, secret := range []string{"ada@example.com", "ops@example.com", `"ada"`, `"x"`, `"r"`, `"c"`, "abcdefgh12345678"} {
		if strings.Contains(all, secret) {
			t.Errorf("%q stored: %s", secret, all)
		}
	}
	if s.Tenant != otlpconv.RedactedValue {
		t.Errorf("tenant = %q, want the redacted value of user.email", s.Tenant)
	}
	if s.StatusMessage != "token rejected: "+otlpconv.RedactedValue {
		t.Errorf("status message = %q", s.StatusMessage)
	}
	if res.Redacted != 9 {
		t.Errorf("Redacted = %d, want 9", res.Redacted)
	}
}

// TestRedactNearTheCut: a secret that straddles MaxValueBytes is still
// found, and the value is still cut and marked.
func TestRedactNearTheCut(t *testing.T) {
	c := newConverter(t, func(o *otlpconv.Options) { o.MaxValueBytes = 64 })
	long := strings.Repeat("x", 50) + " Bearer abcdefgh12345678 " + strings.Repeat("y", 5000)
	td := oneSpan(func(_ pcommon.Map, sp ptrace.Span) { sp.Attributes().PutStr("app.note", long) })
	s := convertOne(t, c, td)
	got := attrsOf(t, s.Attributes)
	note, _ := got["app.note"].(string)
	if strings.Contains(note, "abcdefgh") || !strings.HasPrefix(note, strings.Repeat("x", 50)+" RED") || len(note) != 64 {
		t.Errorf("app.note = %q (%d bytes)", note, len(note))
	}
	if _, ok := got[otlpconv.TruncatedKey]; !ok {
		t.Errorf("truncation not marked: %s", s.Attributes)
	}
}

func TestRedactOff(t *testing.T) {
	c := newConverter(t, func(o *otlpconv.Options) { o.Redaction = otlpconv.Redaction{} })
	td := oneSpan(func(_ pcommon.Map, sp ptrace.Span) {
		sp.Attributes().PutStr("http.request.header.authorization", "Bearer abcdefgh12345678")
		sp.Attributes().PutStr("db.statement", "SELECT 1")
		sp.Attributes().PutStr("url.full", "http://a/?q=1")
	})
	s := convertOne(t, c, td)
	if want := `{"http.request.header.authorization":"Bearer abcdefgh12345678","db.statement":"SELECT 1","url.full":"http://a/?q=1"}`; string(s.Attributes) != want {
		t.Errorf("attributes = %s, want %s", s.Attributes, want)
	}
}
