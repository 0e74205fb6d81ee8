package storetest

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// BatchGen produces batches of realistic spans for benchmarks: traces of
// five spans (server root, client call, downstream server, database call,
// internal work) with about ten attributes each and roughly 600 bytes of
// attribute and resource JSON per span. Every batch has new, random-looking
// trace ids (as real ones are: an index on them takes inserts all over) and
// starts where the previous one ended, so a store really inserts it.
type BatchGen struct {
	spans    []store.Span
	next     uint64
	stream   byte
	perTrace int
	width    int64 // nanoseconds of start times one batch covers
}

// SpansPerTrace is how many spans each trace of NewBatchGen has.
const SpansPerTrace = 5

// NewBatchGen returns a generator of batches of size spans (rounded down to
// whole traces) starting at start, one trace per millisecond. Generators
// with different streams never produce the same trace id, so concurrent
// writers can each have one.
func NewBatchGen(size int, start time.Time, stream byte) *BatchGen {
	return NewBatchGenPerTrace(size, start, stream, SpansPerTrace)
}

// NewBatchGenPerTrace is NewBatchGen with perTrace (≥ SpansPerTrace)
// spans in each trace: the five of NewBatchGen's and, past them, the
// cache and database calls of the candidate service — a feed request's
// trace has about ten (analysistest.Generate, telemetrygen's --child-spans
// 9). What is written per trace (the trace index row) costs per span in
// inverse proportion.
func NewBatchGenPerTrace(size int, start time.Time, stream byte, perTrace int) *BatchGen {
	perTrace = max(perTrace, SpansPerTrace)
	traces := max(1, size/perTrace)
	g := &BatchGen{stream: stream, perTrace: perTrace, width: int64(traces) * int64(time.Millisecond)}
	for tr := range traces {
		g.spans = append(g.spans, benchTrace(tr, start.Add(time.Duration(tr)*time.Millisecond), perTrace)...)
	}
	return g
}

// SpreadTenants spreads the traces of every batch over n tenants (trace i
// has tenant i mod n) instead of the eight of benchTenants: the tenant
// rollups a batch writes grow with the distinct tenants in it.
func (g *BatchGen) SpreadTenants(n int) {
	for i := range g.spans {
		g.spans[i].Tenant = fmt.Sprintf("tenant-%03d", (i/g.perTrace)%n)
	}
}

// Next returns the next batch. The slice is reused: it is valid until the
// following call.
func (g *BatchGen) Next() []store.Span {
	g.next++
	for i := range g.spans {
		// splitmix64 is a bijection, so distinct (batch, trace) pairs get
		// distinct high halves; the low half holds the stream and trace.
		binary.BigEndian.PutUint64(g.spans[i].TraceID[:8], splitmix64(g.next<<20|uint64(i/g.perTrace)))
		g.spans[i].TraceID[8] = g.stream
		if g.next > 1 {
			g.spans[i].StartUnixNano += g.width
		}
	}
	return g.spans
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// AttributeBytes returns the mean attribute plus resource JSON size of a
// span, to check the generator stays realistic.
func (g *BatchGen) AttributeBytes() int {
	n := 0
	for _, s := range g.spans {
		n += len(s.Attributes) + len(s.Resource)
	}
	return n / len(g.spans)
}

var benchTenants = []string{"acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka"}

func benchTrace(tr int, start time.Time, perTrace int) []store.Span {
	tenant := benchTenants[tr%len(benchTenants)]
	var id store.TraceID
	binary.BigEndian.PutUint64(id[8:], uint64(tr)+1)
	sid := func(n int) store.SpanID {
		var s store.SpanID
		binary.BigEndian.PutUint64(s[:], uint64(tr*perTrace+n)+1)
		return s
	}
	res := func(svc, ver string) store.Attributes {
		return store.Attributes(fmt.Sprintf(`{"service.name":%q,"service.version":%q,"service.instance.id":"%s-7f9c6d5b8-x%02d",`+
			`"host.name":"ip-10-0-%d-%d.eu-west-1.compute.internal","deployment.environment":"production",`+
			`"telemetry.sdk.language":"go","telemetry.sdk.name":"opentelemetry","telemetry.sdk.version":"1.38.0"}`,
			svc, ver, svc, tr%32, tr%4, tr%250))
	}
	ns := start.UnixNano()
	ms := int64(time.Millisecond)
	dur := int64(20+tr%50) * ms
	if tr%100 == 0 {
		dur *= 20 // a tail
	}
	spans := []store.Span{
		{SpanID: sid(0), Service: "feed-api", Name: "GET /v1/feed", Kind: store.KindServer, StartUnixNano: ns, DurationNano: dur,
			Attributes: store.Attributes(fmt.Sprintf(`{"http.request.method":"GET","http.route":"/v1/feed","url.path":"/v1/feed",`+
				`"url.query":"limit=50&cursor=c%d","http.response.status_code":200,"server.address":"feed.example.com",`+
				`"user_agent.original":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",`+
				`"tenant.id":%q,"http.request.body.size":0,"http.response.body.size":%d}`, tr, tenant, 2000+tr%5000)),
			Resource: res("feed-api", "v2"), Tenant: tenant, Version: "v2", Host: "feed-api-1", PayloadBytes: int64(2000 + tr%5000)},
		{SpanID: sid(1), ParentSpanID: sid(0), Service: "feed-api", Name: "POST", Kind: store.KindClient, StartUnixNano: ns + ms, DurationNano: dur / 2,
			Attributes: store.Attributes(`{"http.request.method":"POST","server.address":"candidate-svc","server.port":8081,` +
				`"url.full":"http://candidate-svc:8081/v1/candidates","http.response.status_code":200,"peer.service":"candidate-svc",` +
				`"network.protocol.version":"1.1","http.request.body.size":512,"http.response.body.size":18000,"retry.count":0}`),
			Resource: res("feed-api", "v2"), Tenant: tenant, Version: "v2", Dependency: "candidate-svc", Host: "feed-api-1", PayloadBytes: 18512},
		{SpanID: sid(2), ParentSpanID: sid(1), Service: "candidate-svc", Name: "POST /v1/candidates", Kind: store.KindServer, StartUnixNano: ns + 2*ms, DurationNano: dur/2 - ms,
			Attributes: store.Attributes(fmt.Sprintf(`{"http.request.method":"POST","http.route":"/v1/candidates","url.path":"/v1/candidates",`+
				`"http.response.status_code":200,"server.address":"candidate-svc","server.port":8081,"tenant.id":%q,`+
				`"candidates.count":%d,"http.request.body.size":512,"http.response.body.size":18000}`, tenant, 100+tr%400)),
			Resource: res("candidate-svc", "v1"), Tenant: tenant, Version: "v1", Host: "candidate-1", PayloadBytes: 18512},
		{SpanID: sid(3), ParentSpanID: sid(2), Service: "candidate-svc", Name: "SELECT candidates", Kind: store.KindClient, StartUnixNano: ns + 3*ms, DurationNano: dur / 3,
			Attributes: store.Attributes(`{"db.system":"postgresql","db.namespace":"feed","db.operation.name":"SELECT",` +
				`"db.collection.name":"candidates","db.query.text":"SELECT id, score FROM candidates WHERE tenant_id = $1 AND created_at > $2 ORDER BY score DESC LIMIT 500",` +
				`"server.address":"10.0.3.17","server.port":5432,"db.response.returned_rows":412,"pool.wait_ms":0.4}`),
			Resource: res("candidate-svc", "v1"), Tenant: tenant, Version: "v1", Dependency: "postgresql/feed", Host: "candidate-1"},
		{SpanID: sid(4), ParentSpanID: sid(0), Service: "feed-api", Name: "rank", Kind: store.KindInternal, StartUnixNano: ns + dur/2 + 2*ms, DurationNano: dur/3 + ms,
			Attributes: store.Attributes(fmt.Sprintf(`{"rank.model":"gbdt-2024-11","rank.candidates":%d,"rank.features":64,`+
				`"rank.cache.hit":%t,"rank.batch":1,"code.function":"ranker.Score","code.namespace":"github.com/example/feed/ranker",`+
				`"code.filepath":"ranker/score.go","code.lineno":118,"thread.id":%d}`, 100+tr%400, tr%3 == 0, tr%64)),
			Resource: res("feed-api", "v2"), Tenant: tenant, Version: "v2", Host: "feed-api-1"},
	}
	for n := SpansPerTrace; n < perTrace; n++ {
		// The candidate service's further calls, one after another.
		at := ns + 3*ms + int64(n-SpansPerTrace)*dur/int64(4*perTrace)
		call := store.Span{SpanID: sid(n), ParentSpanID: sid(2), Service: "candidate-svc", Kind: store.KindClient, StartUnixNano: at,
			DurationNano: dur / int64(8*perTrace), Resource: res("candidate-svc", "v1"), Tenant: tenant, Version: "v1", Host: "candidate-1"}
		if n%2 == 0 {
			call.Name, call.Dependency = "GET", "redis"
			call.Attributes = store.Attributes(fmt.Sprintf(`{"db.system":"redis","db.operation.name":"GET","db.query.text":"GET seen:%s:%d",`+
				`"server.address":"10.0.5.4","server.port":6379,"network.peer.address":"10.0.5.4"}`, tenant, tr%1000))
		} else {
			call.Name, call.Dependency = "SELECT features", "postgresql/feed"
			call.Attributes = store.Attributes(`{"db.system":"postgresql","db.namespace":"feed","db.operation.name":"SELECT",` +
				`"db.collection.name":"features","db.query.text":"SELECT id, f FROM features WHERE id = ANY($1)",` +
				`"server.address":"10.0.3.17","server.port":5432,"db.response.returned_rows":64}`)
		}
		spans = append(spans, call)
	}
	for i := range spans {
		spans[i].TraceID = id
	}
	return spans
}

// LoadSamples writes roots root spans of api "GET /v1/feed", each with two
// children, spread over an hour from start.
func LoadSamples(b testing.TB, w store.Writer, start time.Time, roots int) {
	b.Helper()
	batch := make([]store.Span, 0, 3000)
	flush := func() {
		if err := w.WriteSpans(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	step := time.Hour / time.Duration(roots)
	for i := range roots {
		var tid store.TraceID
		tid[0], tid[1], tid[2], tid[3] = 0x5a, byte(i>>16), byte(i>>8), byte(i)
		sid := func(n int) store.SpanID { return store.SpanID{byte(i >> 16), byte(i >> 8), byte(i), byte(n), 1} }
		at := start.Add(time.Duration(i) * step).UnixNano()
		batch = append(batch,
			store.Span{TraceID: tid, SpanID: sid(0), Service: "api", Name: "GET /v1/feed", Kind: store.KindServer,
				StartUnixNano: at, DurationNano: int64(20+i%80) * int64(time.Millisecond), Tenant: "t", Version: "v1", Host: "h"},
			store.Span{TraceID: tid, SpanID: sid(1), ParentSpanID: sid(0), Service: "api", Name: "SELECT", Kind: store.KindClient,
				StartUnixNano: at + 1000, DurationNano: int64(time.Millisecond), Dependency: "postgresql"},
			store.Span{TraceID: tid, SpanID: sid(2), ParentSpanID: sid(0), Service: "api", Name: "GET /v1/feed", Kind: store.KindInternal,
				StartUnixNano: at + 2000, DurationNano: int64(time.Millisecond)})
		if len(batch) >= 3000 {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
}

// IndexCost is the body of the stores' BenchmarkTraceIndexCost: the same
// 5,000-span batches written to w with the trace index and without it
// (skip sets the store's switch), in traces of five spans and of ten, and
// in traces of ten that arrive in three requests (SplitGen: each service
// of a trace exports its own spans, so the trace's index row is merged
// three times). cpu returns the CPU seconds used so far, by metric name
// ("client-us/span", "server-us/span", …); each case reports their growth
// per span written, and their sum as cpu-us/span when there are several.
//
// A store that can hold index rows (IndexHolder) is also measured as the
// ingest journal writes to it ("held"): rows of new traces held, and every
// heldFlushBatches batches — 50,000 spans, a second of traffic at 50,000
// spans/s, the journal's default flush interval — the rows first held
// before the previous flush stored (FlushAgedTraceIndex), with the
// flushes' cost counted, the last one storing every row.
func IndexCost(b *testing.B, w store.Writer, skip func(bool), cpu func() map[string]float64) {
	const size = 5000
	for _, shape := range []struct {
		perTrace, requests int
		rootLast           bool
	}{{SpansPerTrace, 1, false}, {10, 1, false}, {10, 3, false}, {10, 3, true}} {
		// Each shape its own trace ids: a shape that wrote the ids of the
		// one before merged every part into a stored row.
		seed := byte(shape.perTrace * shape.requests)
		if shape.rootLast {
			seed++
		}
		gen := NewSplitGen(NewBatchGenPerTrace(size, time.Now(), seed, shape.perTrace), shape.requests)
		gen.rootLast = shape.rootLast
		cases := []struct {
			name       string
			skip, hold bool
		}{{"index", false, false}, {"none", true, false}}
		h, holds := w.(IndexHolder)
		if holds {
			cases = append(cases, struct {
				name       string
				skip, hold bool
			}{"held", false, true})
		}
		for _, c := range cases {
			name := fmt.Sprintf("spans-per-trace=%d/%s", shape.perTrace, c.name)
			if shape.requests > 1 {
				name = fmt.Sprintf("spans-per-trace=%d/requests-per-trace=%d/%s", shape.perTrace, shape.requests, c.name)
			}
			if shape.rootLast {
				name = fmt.Sprintf("spans-per-trace=%d/requests-per-trace=%d/root-last/%s", shape.perTrace, shape.requests, c.name)
			}
			b.Run(name, func(b *testing.B) {
				skip(c.skip)
				defer skip(false)
				ctx, batches := context.Background(), 0
				write := func(batch []store.Span) {
					var err error
					if c.hold {
						err = h.WriteSpansHoldIndex(ctx, batch)
						if batches++; err == nil && batches%heldFlushBatches == 0 {
							_, err = h.FlushAgedTraceIndex(ctx)
						}
					} else {
						err = w.WriteSpans(ctx, batch)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				// The first requests of a split generator are short
				// (no earlier trace parts yet): warm up past them.
				for range shape.requests - 1 {
					write(gen.Next())
				}
				before, spans := cpu(), 0
				for b.Loop() {
					batch := gen.Next()
					spans += len(batch)
					write(batch)
				}
				if c.hold {
					if err := h.FlushTraceIndex(ctx); err != nil {
						b.Fatal(err)
					}
				}
				total := 0.0
				for name, now := range cpu() {
					us := (now - before[name]) * 1e6 / float64(spans)
					total += us
					b.ReportMetric(us, name)
				}
				if len(before) > 1 {
					b.ReportMetric(total, "cpu-us/span")
				}
			})
		}
	}
}

// heldFlushBatches is how many 5,000-span batches IndexCost's held case
// writes between flushes.
const heldFlushBatches = 10

// SplitGen spreads every trace of a BatchGen over parts consecutive
// batches, as a trace's spans reach a collector: each service exports its
// own, in its own request. Batch n holds the first part of batch n's
// traces, the second of batch n−1's, and so on, so once warm every batch
// has the generator's size. With parts 1 it is the BatchGen itself.
//
// The first part holds the root, which then arrives first; with rootLast
// it arrives last, as it does from SDKs that export a span when it ends
// (the root ends last): each later part then lowers the trace's first
// start, lengthens its longest span and renames it.
type SplitGen struct {
	gen      *BatchGen
	parts    int
	rootLast bool
	prev     [][]store.Span // the generator's latest batches, newest first
	out      []store.Span
}

// NewSplitGen returns gen's traces split over parts batches.
func NewSplitGen(gen *BatchGen, parts int) *SplitGen {
	return &SplitGen{gen: gen, parts: max(parts, 1)}
}

// Next returns the next batch; it is valid until the following call.
func (g *SplitGen) Next() []store.Span {
	if g.parts == 1 {
		return g.gen.Next()
	}
	cur := slices.Clone(g.gen.Next())
	g.prev = append([][]store.Span{cur}, g.prev...)
	g.prev = g.prev[:min(len(g.prev), g.parts)]
	g.out = g.out[:0]
	for part, batch := range g.prev {
		for i := range batch {
			p := (i % g.gen.perTrace) * g.parts / g.gen.perTrace
			if g.rootLast {
				p = g.parts - 1 - p
			}
			if p == part {
				g.out = append(g.out, batch[i])
			}
		}
	}
	return g.out
}
