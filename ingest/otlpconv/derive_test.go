package otlpconv_test

import (
	"math"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailscope/tailscope/ingest/otlpconv"
)

// attrs is a compact attribute list for table tests: values are strings,
// int64s, float64s or bools.
type attrs []kv

type kv struct {
	k string
	v any
}

func (a attrs) putTo(m pcommon.Map) {
	for _, x := range a {
		switch v := x.v.(type) {
		case string:
			m.PutStr(x.k, v)
		case int:
			m.PutInt(x.k, int64(v))
		case int64:
			m.PutInt(x.k, v)
		case float64:
			m.PutDouble(x.k, v)
		case bool:
			m.PutBool(x.k, v)
		default:
			panic("attrs: unsupported value type")
		}
	}
}

func TestDeriveDependency(t *testing.T) {
	c := newConverter(t, nil)
	client, server, internal, producer, consumer :=
		ptrace.SpanKindClient, ptrace.SpanKindServer, ptrace.SpanKindInternal, ptrace.SpanKindProducer, ptrace.SpanKindConsumer
	tests := []struct {
		name  string
		kind  ptrace.SpanKind
		attrs attrs
		want  string
	}{
		{"peer.service wins", client, attrs{{"server.address", "10.0.0.1"}, {"db.system", "postgresql"}, {"peer.service", "profile-svc"}}, "profile-svc"},
		{"db.system.name with db.namespace", client, attrs{{"db.system.name", "postgresql"}, {"db.namespace", "feed"}, {"server.address", "10.0.0.1"}}, "postgresql/feed"},
		{"legacy db.system with legacy db.name", client, attrs{{"db.system", "mysql"}, {"db.name", "shop"}}, "mysql/shop"},
		{"db.namespace beats db.name", client, attrs{{"db.system", "postgresql"}, {"db.name", "old"}, {"db.namespace", "new"}}, "postgresql/new"},
		{"db.system.name beats db.system", client, attrs{{"db.system", "postgresql"}, {"db.system.name", "cockroachdb"}}, "cockroachdb"},
		{"db system alone", client, attrs{{"db.system", "redis"}}, "redis"},
		{"db system on an internal span", internal, attrs{{"db.system.name", "sqlite"}}, "sqlite"},
		{"db system on a server span", server, attrs{{"db.system", "redis"}, {"db.namespace", "0"}}, "redis/0"},
		{"rpc.service", client, attrs{{"rpc.system", "grpc"}, {"rpc.service", "ranker.v1.Ranker"}, {"server.address", "ranker"}}, "ranker.v1.Ranker"},
		{"server.address", client, attrs{{"http.request.method", "GET"}, {"server.address", "profile-svc"}, {"server.port", 8080}}, "profile-svc"},
		{"legacy net.peer.name", client, attrs{{"net.peer.name", "profile-svc"}, {"http.host", "other"}}, "profile-svc"},
		{"legacy http.host", client, attrs{{"http.host", "profile-svc:8080"}}, "profile-svc:8080"},
		{"server.address beats legacy", client, attrs{{"net.peer.name", "old"}, {"server.address", "new"}}, "new"},
		{"messaging.system on a producer", producer, attrs{{"messaging.system", "kafka"}, {"messaging.destination.name", "events"}}, "kafka"},
		{"server.address beats messaging.system", producer, attrs{{"messaging.system", "kafka"}, {"server.address", "broker-1"}}, "broker-1"},
		{"server span has none", server, attrs{{"server.address", "feed-api"}, {"peer.service", "x"}}, ""},
		{"internal span has none", internal, attrs{{"peer.service", "x"}}, ""},
		{"consumer span has none", consumer, attrs{{"messaging.system", "kafka"}}, ""},
		{"client without keys", client, attrs{{"http.request.method", "GET"}}, ""},
		{"empty value is absent", client, attrs{{"peer.service", ""}, {"server.address", "b"}}, "b"},
		{"non-string value", client, attrs{{"server.address", 10}}, "10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := convertOne(t, c, oneSpan(func(_ pcommon.Map, sp ptrace.Span) {
				sp.SetKind(tt.kind)
				tt.attrs.putTo(sp.Attributes())
			}))
			if s.Dependency != tt.want {
				t.Errorf("dependency = %q, want %q", s.Dependency, tt.want)
			}
		})
	}
}

func TestDerivePayload(t *testing.T) {
	tests := []struct {
		name        string
		payloadKeys []string
		attrs       attrs
		want        int64
	}{
		{"none", nil, attrs{{"http.request.method", "GET"}}, 0},
		{"http request and response", nil, attrs{{"http.request.body.size", 100}, {"http.response.body.size", 2000}}, 2100},
		{"http response only", nil, attrs{{"http.response.body.size", 2000}}, 2000},
		{"legacy http", nil, attrs{{"http.request_content_length", 10}, {"http.response_content_length", 20}}, 30},
		{"new beats legacy per side", nil, attrs{{"http.request_content_length", 999}, {"http.request.body.size", 10}, {"http.response_content_length", 20}}, 30},
		{"rpc", nil, attrs{{"rpc.request.body.size", 7}, {"rpc.response.body.size", 8}}, 15},
		{"rpc uncompressed size fallback", nil, attrs{{"rpc.message.uncompressed_size", 64}}, 64},
		{"messaging body", nil, attrs{{"messaging.message.body.size", 512}}, 512},
		{"legacy messaging payload", nil, attrs{{"messaging.message_payload_size_bytes", 256}}, 256},
		{"string value", nil, attrs{{"http.response.body.size", " 4096 "}}, 4096},
		{"double value", nil, attrs{{"http.response.body.size", 1024.9}}, 1024},
		{"negative ignored", nil, attrs{{"http.request.body.size", -5}, {"http.response.body.size", 5}}, 5},
		{"garbage ignored", nil, attrs{{"http.response.body.size", "lots"}}, 0},
		{"bool ignored", nil, attrs{{"http.response.body.size", true}}, 0},
		{"configured key wins", []string{"app.payload.bytes"}, attrs{{"http.response.body.size", 5}, {"app.payload.bytes", 123}}, 123},
		{"configured keys sum", []string{"app.req", "app.resp"}, attrs{{"app.req", 1}, {"app.resp", 2}}, 3},
		{"configured key absent falls back", []string{"app.payload.bytes"}, attrs{{"http.response.body.size", 5}}, 5},
		{"saturates", nil, attrs{{"http.request.body.size", int64(1) << 62}, {"http.response.body.size", int64(math.MaxInt64)}}, math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newConverter(t, func(o *otlpconv.Options) { o.PayloadKeys = tt.payloadKeys })
			s := convertOne(t, c, oneSpan(func(_ pcommon.Map, sp ptrace.Span) { tt.attrs.putTo(sp.Attributes()) }))
			if s.PayloadBytes != tt.want {
				t.Errorf("payload = %d, want %d", s.PayloadBytes, tt.want)
			}
		})
	}
}

func TestDeriveTenant(t *testing.T) {
	tests := []struct {
		name       string
		tenantKeys []string // nil: defaults
		span, res  attrs
		want       string
	}{
		{"tenant.id on span", nil, attrs{{"tenant.id", "acme"}}, nil, "acme"},
		{"tenant on span", nil, attrs{{"tenant", "acme"}}, nil, "acme"},
		{"customer.id on span", nil, attrs{{"customer.id", 42}}, nil, "42"},
		{"key order wins over attribute order", nil, attrs{{"customer.id", "c"}, {"tenant", "t"}, {"tenant.id", "id"}}, nil, "id"},
		{"resource fallback", nil, nil, attrs{{"tenant.id", "globex"}}, "globex"},
		{"span beats resource", nil, attrs{{"customer.id", "span"}}, attrs{{"tenant.id", "res"}}, "span"},
		{"empty span value falls back", nil, attrs{{"tenant.id", ""}}, attrs{{"tenant", "res"}}, "res"},
		{"none", nil, attrs{{"user.id", "u"}}, nil, ""},
		{"configured keys", []string{"org"}, attrs{{"tenant.id", "ignored"}, {"org", "initech"}}, nil, "initech"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newConverter(t, func(o *otlpconv.Options) {
				if tt.tenantKeys != nil {
					o.TenantKeys = tt.tenantKeys
				}
			})
			s := convertOne(t, c, oneSpan(func(res pcommon.Map, sp ptrace.Span) {
				tt.span.putTo(sp.Attributes())
				tt.res.putTo(res)
			}))
			if s.Tenant != tt.want {
				t.Errorf("tenant = %q, want %q", s.Tenant, tt.want)
			}
		})
	}
}

func TestDeriveResourceColumns(t *testing.T) {
	c := newConverter(t, nil)
	tests := []struct {
		name                  string
		res                   attrs
		wantVersion, wantHost string
	}{
		{"version and host.name", attrs{{"service.version", "v1.4.2"}, {"host.name", "web-1"}, {"service.instance.id", "i-1"}}, "v1.4.2", "web-1"},
		{"instance id fallback", attrs{{"service.instance.id", "627cc493-f310-47de-96bd-71410b7dec09"}}, "", "627cc493-f310-47de-96bd-71410b7dec09"},
		{"nothing", nil, "", ""},
		{"span attributes do not count", nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := convertOne(t, c, oneSpan(func(res pcommon.Map, sp ptrace.Span) {
				tt.res.putTo(res)
				sp.Attributes().PutStr("service.version", "span-level")
				sp.Attributes().PutStr("host.name", "span-level")
			}))
			if s.Version != tt.wantVersion || s.Host != tt.wantHost {
				t.Errorf("version, host = %q, %q; want %q, %q", s.Version, s.Host, tt.wantVersion, tt.wantHost)
			}
		})
	}
}
