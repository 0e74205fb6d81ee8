package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tailscope/tailscope/app"
	"github.com/tailscope/tailscope/internal/testenv"
)

// otlpExampleTrace is the example request of opentelemetry-proto
// (examples/trace.json), dated 2018-12-13: older than any retention.
const otlpExampleTrace = `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"my.service"}}]},
"scopeSpans":[{"scope":{"name":"my.library","version":"1.0.0"},"spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C",
"spanId":"EEE19B7EC3C1B174","parentSpanId":"EEE19B7EC3C1B173","name":"I'm a server span","startTimeUnixNano":"1544712660000000000",
"endTimeUnixNano":"1544712661000000000","kind":2,"attributes":[{"key":"my.span.attr","value":{"stringValue":"some value"}}]}]}]}]}`

// partitionCount counts the day partitions of spans in PostgreSQL.
func partitionCount(t *testing.T, dbURL string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'spans'::regclass").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPoisonRequests sends issue 17's poison requests to a tailscope
// keeping 7 days: 500 spans on 500 different days from 2030 on (with 10
// spans of now beside them) over OTLP/HTTP and gRPC, and the 2018 OTLP
// example trace. Each gets partial_success naming the rejected spans and
// the accepted range; the valid spans beside them are committed; the
// partition count and what the API returns for a trace stored before do
// not change, and the 2018 trace was never stored (so it cannot be
// acknowledged and then deleted).
func TestPoisonRequests(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			dbURL := be.url(t)
			a := startApp(t, dbURL, func(cfg *app.Config) { cfg.Retention = 7 * 24 * time.Hour })
			c := newClient(t, 2)
			ctx := context.Background()
			ft := newFeedTemplate(t, feedShape{Service: "e2e-poison", Traces: 1, SpansPerTrace: 10, Start: time.Now()})
			if r, err := postOTLP(ctx, c, a.OTLPHTTPAddr(), ft.request(nil, 1), ctProtobuf, ""); err != nil || r.status != 200 || r.rejected != 0 {
				t.Fatalf("valid export: %+v %v", r, err)
			}
			tid := ft.traceIDs(1)[0].String()
			before, _ := json.Marshal(waitTrace(t, c, a.URL(), tid, 10))
			parts := -1
			if be.name == "postgres" {
				parts = partitionCount(t, dbURL)
			}

			// A bomb is 51 traces of 10 spans: the spans of the first 50
			// each on a day of its own from 2030 on, the last trace now.
			bomb := func(seed uint64) ptrace.Traces {
				td := buildFeed(feedShape{Service: "e2e-poison", Traces: 51, SpansPerTrace: 10, Start: time.Now()}, seed, 1)
				good := pcommon.TraceID(feedTraceID(seed, 1, 50))
				day := 0
				for _, s := range allSpans(td) {
					if s.TraceID() == good {
						continue
					}
					at := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC).AddDate(0, 0, day)
					s.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
					s.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Millisecond)))
					day++
				}
				return td
			}
			var pm ptrace.ProtoMarshaler
			body, err := pm.MarshalTraces(bomb(101))
			if err != nil {
				t.Fatal(err)
			}
			r, err := postOTLP(ctx, c, a.OTLPHTTPAddr(), body, ctProtobuf, "")
			if err != nil || r.status != 200 {
				t.Fatalf("partition bomb over HTTP: status %d %q, %v", r.status, r.body, err)
			}
			checkRejected(t, "partition bomb over HTTP", r.rejected, r.message, 500, "start time after the accepted range")

			conn, err := grpc.NewClient(a.OTLPGRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			resp, err := ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(bomb(102)))
			if err != nil {
				t.Fatalf("partition bomb over gRPC: %v", err)
			}
			checkRejected(t, "partition bomb over gRPC", resp.PartialSuccess().RejectedSpans(), resp.PartialSuccess().ErrorMessage(),
				500, "start time after the accepted range")

			r, err = postOTLP(ctx, c, a.OTLPHTTPAddr(), []byte(otlpExampleTrace), ctJSON, "")
			if err != nil || r.status != 200 {
				t.Fatalf("2018 trace: status %d %q, %v", r.status, r.body, err)
			}
			checkRejected(t, "2018 trace", r.rejected, r.message, 1, "start time before the accepted range")

			// Text as long as an attribute value may be (4 KiB) where the
			// store keys on it — a span name, the service, the tenant —
			// random so it cannot compress: PostgreSQL refuses an index
			// entry over 2,704 bytes, so it is cut to fit, and the request
			// is stored whole.
			letters := func(n int) string {
				b := make([]byte, n)
				for i := range b {
					b[i] = byte('a' + mix64(uint64(i*n))%26)
				}
				return string(b)
			}
			long := buildFeed(feedShape{Service: "e2e-poison", Traces: 1, SpansPerTrace: 10, Start: time.Now()}, 103, 1)
			longSpans := allSpans(long)
			longSpans[0].SetName("SELECT " + letters(4000))
			longSpans[0].Attributes().PutStr("tenant.id", letters(4000))
			long.ResourceSpans().At(0).Resource().Attributes().PutStr("service.version", letters(4000))
			if body, err = pm.MarshalTraces(long); err != nil {
				t.Fatal(err)
			}
			r, err = postOTLP(ctx, c, a.OTLPHTTPAddr(), body, ctProtobuf, "")
			if err != nil || r.status != 200 || r.rejected != 0 {
				t.Fatalf("index-sized text: status %d, %d rejected %q, %v", r.status, r.rejected, r.body, err)
			}
			tr := waitTrace(t, c, a.URL(), feedTraceID(103, 1, 0).String(), 10)
			cut := false
			for _, sp := range tr.Spans {
				if strings.HasPrefix(sp.Name, "SELECT ") && len(sp.Name) == 1024 {
					cut = true
				}
			}
			if len(tr.Spans) != 10 || !cut {
				t.Errorf("index-sized text: %d spans stored, the long name cut to 1,024 bytes: %v", len(tr.Spans), cut)
			}

			// The 10 valid spans of each bomb request were committed.
			for _, seed := range []uint64{101, 102} {
				if tr := waitTrace(t, c, a.URL(), feedTraceID(seed, 1, 50).String(), 10); len(tr.Spans) != 10 {
					t.Errorf("bomb %d: %d valid spans readable, want 10", seed, len(tr.Spans))
				}
			}
			if tr := fetchTrace(t, c, a.URL(), "5b8efff798038103d269b633813fc60c"); tr != nil {
				t.Errorf("the 2018 trace was stored: %d spans", len(tr.Spans))
			}
			after, _ := json.Marshal(fetchTrace(t, c, a.URL(), tid))
			if string(after) != string(before) {
				t.Errorf("trace read changed:\nbefore %s\nafter  %s", before, after)
			}
			if be.name == "postgres" {
				if got := partitionCount(t, dbURL); got != parts {
					t.Errorf("%d partitions after the poison requests, want %d as before", got, parts)
				}
			}
		})
	}
}

func checkRejected(t *testing.T, what string, rejected int64, msg string, want int64, reason string) {
	t.Helper()
	if rejected != want || !strings.Contains(msg, reason) || !strings.Contains(msg, "spans are accepted when they start from") {
		t.Errorf("%s: partial_success rejected %d %q; want %d naming %q and the range", what, rejected, msg, want, reason)
	}
}

func allSpans(td ptrace.Traces) []ptrace.Span {
	var out []ptrace.Span
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			sp := sss.At(j).Spans()
			for k := 0; k < sp.Len(); k++ {
				out = append(out, sp.At(k))
			}
		}
	}
	return out
}

// secrets are what TestRedactionThroughSDK sends and must not find stored.
var secrets = []string{"sk-live-SECRET1", "SECRET2", "SECRET3", "SECRET4abcdefgh", "SECRET5",
	"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJTRUNSRVQ2In0.c2lnbmF0dXJl"}

// TestRedactionThroughSDK sends secrets the way instrumentation records
// them, through the OTel SDK's exporters, and reads the store itself (not
// only the API) to check that none was stored, on both stores.
func TestRedactionThroughSDK(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			dbURL := be.url(t)
			a := startApp(t, dbURL, nil)
			c := newClient(t, 2)
			for _, proto := range []string{"http", "grpc"} {
				t.Run(proto, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					var (
						exp sdktrace.SpanExporter
						err error
					)
					if proto == "grpc" {
						exp, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(a.OTLPGRPCAddr()), otlptracegrpc.WithInsecure(),
							otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
					} else {
						exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(a.OTLPHTTPAddr()), otlptracehttp.WithInsecure(),
							otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
					}
					if err != nil {
						t.Fatal(err)
					}
					tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(resource.NewSchemaless(
						attribute.String("service.name", "e2e-redact-"+proto), attribute.String("cloud.password", "SECRET5"))))
					_, sp := tp.Tracer("e2e").Start(ctx, "POST /v1/login", trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
						attribute.StringSlice("http.request.header.authorization", []string{"Bearer sk-live-SECRET1"}),
						attribute.String("db.system.name", "postgresql"),
						attribute.String("db.query.text", "SELECT id FROM users WHERE api_key = 'SECRET2' AND tier = 3"),
						attribute.String("url.full", "https://api.example.com/v1/login?token=SECRET3&next=%2Fhome"),
					))
					sp.RecordError(fmt.Errorf("upstream said 401 to Bearer SECRET4abcdefgh"))
					sp.SetStatus(codes.Error, "rejected eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJTRUNSRVQ2In0.c2lnbmF0dXJl")
					sp.End()
					tid := sp.SpanContext().TraceID().String()
					if err := tp.Shutdown(ctx); err != nil {
						t.Fatalf("export: %v", err)
					}
					waitTrace(t, c, a.URL(), tid, 1)
					resp, err := c.Get(a.URL() + "/api/v1/traces/" + tid)
					if err != nil {
						t.Fatal(err)
					}
					api, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					for _, want := range []string{`REDACTED`, `api_key = ? AND tier = ?`, `token=REDACTED\u0026next=REDACTED`} {
						if !strings.Contains(string(api), want) {
							t.Errorf("API answer lacks %q: %s", want, api)
						}
					}
					stored := storedText(t, be.name, dbURL)
					for _, s := range secrets {
						if strings.Contains(string(api), s) {
							t.Errorf("API answer holds %q", s)
						}
						if strings.Contains(stored, s) {
							t.Errorf("the %s store holds %q", be.name, s)
						}
					}
				})
			}
		})
	}
}

// storedText is every text a span row holds, read from the database.
func storedText(t *testing.T, backend, dbURL string) string {
	t.Helper()
	const cols = `coalesce(name, '') || coalesce(status_message, '') || coalesce(attributes::text, '') || coalesce(events::text, '') || coalesce(links::text, '') || coalesce(tenant, '')`
	var (
		db  *sql.DB
		err error
	)
	if backend == "postgres" {
		conn, err := pgx.Connect(context.Background(), dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var b strings.Builder
		for _, q := range []string{"SELECT " + cols + " FROM spans", "SELECT body::text FROM resources"} {
			rows, err := conn.Query(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString(strings.Join(texts, "\n"))
		}
		return b.String()
	}
	db, err = sql.Open("sqlite", "file:"+strings.TrimPrefix(dbURL, "sqlite:")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b strings.Builder
	for _, q := range []string{"SELECT " + strings.ReplaceAll(cols, "::text", "") + " FROM spans", "SELECT body FROM resources"} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			b.WriteString(s + "\n")
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// logTap is a slog handler that reports each message on a channel.
type logTap struct {
	msgs chan string
}

func (l *logTap) Enabled(context.Context, slog.Level) bool { return true }
func (l *logTap) Handle(_ context.Context, r slog.Record) error {
	select {
	case l.msgs <- r.Message:
	default:
	}
	return nil
}
func (l *logTap) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logTap) WithGroup(string) slog.Handler      { return l }

// freePort returns a loopback address nothing listens on.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestStartWaitsForPostgres: PostgreSQL unreachable at start-up is retried
// with a log line per attempt until it comes up (here: a proxy to it starts
// listening after the first failure); an unreachable one is given up on
// after DatabaseWait; a missing database fails at once.
func TestStartWaitsForPostgres(t *testing.T) {
	real, err := url.Parse(testenv.FreshPostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	start := func(dbURL string, wait time.Duration) (*app.App, *logTap, chan error) {
		cfg := app.DefaultConfig()
		cfg.HTTPAddr, cfg.Ingest.HTTPAddr, cfg.Ingest.GRPCAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		cfg.DatabaseURL, cfg.DatabaseWait = dbURL, wait
		tap := &logTap{msgs: make(chan string, 1000)}
		cfg.Log = slog.New(tap)
		a := app.New(cfg)
		done := make(chan error, 1)
		go func() { done <- a.Start(context.Background()) }()
		t.Cleanup(func() { a.Close() })
		return a, tap, done
	}
	waitLog := func(tap *logTap, msg string) {
		t.Helper()
		for m := range tap.msgs {
			if m == msg {
				return
			}
		}
	}

	t.Run("comes up", func(t *testing.T) {
		addr := freePort(t)
		u := *real
		u.Host = addr
		a, tap, done := start(u.String(), 10*time.Minute)
		waitLog(tap, "store unreachable; retrying")
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listen on the port the app retries: %v", err)
		}
		defer l.Close()
		go proxy(l, real.Host)
		if err := <-done; err != nil {
			t.Fatalf("Start once PostgreSQL is up: %v", err)
		}
		var ready map[string]string
		if status, err := getJSON(context.Background(), newClient(t, 1), a.URL()+"/readyz", &ready); err != nil || status != http.StatusOK {
			t.Errorf("readyz: %d %v", status, err)
		}
	})
	t.Run("gives up", func(t *testing.T) {
		u := *real
		u.Host = freePort(t)
		_, tap, done := start(u.String(), 300*time.Millisecond)
		err := <-done
		if err == nil || !strings.Contains(err.Error(), "gave up after") {
			t.Errorf("Start = %v, want it to give up", err)
		}
		waitLog(tap, "store unreachable; retrying")
	})
	t.Run("missing database fails at once", func(t *testing.T) {
		u := *real
		u.Path = "/ts_no_such_database"
		_, tap, done := start(u.String(), 10*time.Minute)
		if err := <-done; err == nil || strings.Contains(err.Error(), "gave up") {
			t.Errorf("Start = %v, want an error at the first attempt", err)
		}
		for {
			select {
			case m := <-tap.msgs:
				if m == "store unreachable; retrying" {
					t.Errorf("retried a missing database")
				}
				continue
			default:
			}
			break
		}
	})
}

// proxy forwards every connection accepted on l to target.
func proxy(l net.Listener, target string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			up, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			defer up.Close()
			go io.Copy(up, c)
			io.Copy(c, up)
		}()
	}
}
