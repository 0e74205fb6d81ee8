// Package analysistest generates feed-service-shaped traces with known,
// injectable causes of tail latency, and serves them from memory through
// the interfaces package analysis reads. It is for tests and benchmarks:
// seeded and deterministic, so a test can state the ground truth it
// injected and check the analysis finds it.
//
// The traces have the shape of the feedsvc demo: feed-api (root server span
// "GET /v1/feed") calls candidate-svc (→ postgresql), feature-svc (→ redis,
// postgresql on a cache miss), profile-svc (external: client span only,
// long tail) and ranker (CPU, cost grows with the candidate payload). As
// in feedsvc, v1 calls the first three one after another, has no feature
// cache (every request reads postgres), lacks the candidates index (a
// slower, more variable query) and retries a failed profile call up to
// three times at once; v2 runs them in parallel, reads features from redis
// (10% misses fall back to postgres), has the index, and retries once
// after a short backoff.
package analysistest

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/tailscope/tailscope/store"
)

// Service, endpoint and dependency names of the generated traces.
const (
	FeedAPI      = "feed-api"
	CandidateSvc = "candidate-svc"
	FeatureSvc   = "feature-svc"
	ProfileSvc   = "profile-svc"
	Ranker       = "ranker"
	Postgres     = "postgresql"
	Redis        = "redis"
	Endpoint     = "GET /v1/feed"
)

// DefaultTenants returns the tenants requests are spread over, most
// frequent first (Zipf weights 1/rank): "acme" is third, about 11% of
// traffic.
func DefaultTenants() []string {
	return []string{"globex", "initech", "acme", "umbrella", "hooli", "stark", "wayne", "wonka", "tyrell", "cyberdyne"}
}

// Cause slows one dependency for the requests it matches.
type Cause struct {
	// Name labels affected traces in Dataset.Truth.
	Name string
	// Dependency is the call that gets slower: ProfileSvc, CandidateSvc,
	// FeatureSvc, Ranker (their time inside the call), Postgres (the
	// candidate query and the feature fallback) or Redis.
	Dependency string
	// Tenant restricts the cause to one tenant ("" = every tenant).
	Tenant string
	// Probability is the chance a matching request is affected (0 = 1).
	Probability float64
	// Extra is the added latency; each affected call gets Extra×U(0.8, 1.2).
	Extra time.Duration
	// Every and Burst make the cause episodic, as a saturated pool or a
	// collection storm is: only requests starting in the first Burst of
	// each Every are affected, and the delay builds up through the burst
	// (a queue growing) from a fifth of Extra to all of it.
	Every, Burst time.Duration
}

// LargePayload gives some requests a large candidate payload, which makes
// the ranker slower in proportion (its cost grows with the payload).
type LargePayload struct {
	Name        string // label in Dataset.Truth (default "large-payload")
	Tenant      string // "" = every tenant
	Probability float64
	// TenantProbability overrides Probability per tenant, so one tenant
	// can send most large payloads (a value correlated with the cause)
	// while its other requests are as fast as anyone's.
	TenantProbability map[string]float64
	// Bytes is the payload of affected requests, jittered ×U(0.8, 1.2)
	// (default 3 MiB).
	Bytes int64
}

// AsyncShape is how asynchronous work hangs off a request.
type AsyncShape int

// Async shapes: the request does not wait for any of them.
const (
	// FireAndForget: a client span of feed-api started during the request
	// (`go analytics.Track(ctx)`) that ends after the request.
	FireAndForget AsyncShape = iota
	// FollowsFrom: an internal span of feed-api inside the request whose
	// parent reference is follows-from (a link to the root with
	// opentracing.ref_type=follows_from), as the OpenTracing shim writes
	// it; it runs almost as long as the request, never waited for.
	FollowsFrom
	// Messaging: feed-api publishes an event (a PRODUCER span the request
	// waits for) and a consumer service processes it (a CONSUMER child of
	// the producer) while and after the request runs.
	Messaging
	// Linked: a consumer span with no parent, tied to the producer span
	// only by a link.
	Linked
)

// Async is asynchronous work every request starts.
type Async struct {
	Shape AsyncShape
	// Duration is the async work's typical duration, lognormal with
	// log-sd 0.5 (default 1.5 s).
	Duration time.Duration
}

// Scenario describes a dataset. The zero value of every field has a
// sensible default.
type Scenario struct {
	Seed   uint64
	Start  time.Time     // default 2026-01-01T00:00:00Z
	Window time.Duration // requests start uniformly in [Start, Start+Window); default 1h
	Traces int           // number of requests; default 10,000
	// Version is feed-api's service.version (default "v1" when Parallel
	// is false, "v2" when true).
	Version string
	// Parallel selects the v2 shape: parallel fan-out, the feature cache,
	// the candidates index and one retry with backoff.
	Parallel bool
	Tenants  []string // default DefaultTenants()
	// ErrorRate is the chance a profile-svc call attempt fails.
	ErrorRate    float64
	Causes       []Cause
	LargePayload *LargePayload
	// Hosts is the number of feed-api hosts (default 4).
	Hosts int
	// LatencyScale multiplies every natural latency (default 1), to make a
	// dataset uniformly slower.
	LatencyScale float64
	// PureNoise removes the natural mixture tails (profile-svc's own rare
	// long calls, the odd slow query plan): every latency is lognormal
	// and nothing but chance makes the tail.
	PureNoise bool
	// Async is asynchronous work started by every request.
	Async []Async
}

// Dataset is generated spans and the ground truth about them.
type Dataset struct {
	Spans []store.Span
	// Truth maps each affected trace to the names of the causes that hit it.
	Truth map[store.TraceID][]string
	// Injected maps a cause name to the delay it added to each affected
	// trace's calls. In the sequential (v1) shape that is exactly how much
	// longer the trace became; in the parallel shape an upper bound.
	// LargePayload is not here: its effect goes through the payload.
	Injected map[string]map[store.TraceID]time.Duration
	// Roots are the root spans' trace ids in generation order.
	Roots []store.TraceID
}

// Generate builds the dataset of s. The same scenario always gives the
// same spans.
func Generate(s Scenario) Dataset {
	g := newGen(s)
	ds := Dataset{Truth: map[store.TraceID][]string{}, Injected: map[string]map[store.TraceID]time.Duration{}}
	ds.Spans = make([]store.Span, 0, g.sc.Traces*11)
	for range g.sc.Traces {
		id, causes, injected := g.trace(&ds.Spans)
		ds.Roots = append(ds.Roots, id)
		if len(causes) > 0 {
			ds.Truth[id] = causes
		}
		for name, d := range injected {
			if ds.Injected[name] == nil {
				ds.Injected[name] = map[store.TraceID]time.Duration{}
			}
			ds.Injected[name][id] += time.Duration(d)
		}
	}
	return ds
}

type gen struct {
	sc      Scenario
	rng     *rand.Rand
	tenantW []float64
	res     map[attrKey]store.Attributes // resource attributes by service/version/host
	attrs   map[attrKey]store.Attributes // shared span attributes by shape
}

func newGen(s Scenario) *gen {
	if s.Start.IsZero() {
		s.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if s.Window <= 0 {
		s.Window = time.Hour
	}
	if s.Traces <= 0 {
		s.Traces = 10_000
	}
	if s.Version == "" {
		s.Version = "v1"
		if s.Parallel {
			s.Version = "v2"
		}
	}
	if len(s.Tenants) == 0 {
		s.Tenants = DefaultTenants()
	}
	if s.Hosts <= 0 {
		s.Hosts = 4
	}
	if s.LatencyScale <= 0 {
		s.LatencyScale = 1
	}
	g := &gen{
		sc:    s,
		rng:   rand.New(rand.NewPCG(s.Seed, s.Seed^0x9e3779b97f4a7c15)),
		res:   map[attrKey]store.Attributes{},
		attrs: map[attrKey]store.Attributes{},
	}
	var sum float64
	for i := range s.Tenants {
		w := 1 / float64(i+1)
		sum += w
		g.tenantW = append(g.tenantW, sum)
	}
	for i := range g.tenantW {
		g.tenantW[i] /= sum
	}
	return g
}

// lognormal draws a latency with the given median and log-sd.
func (g *gen) lognormal(median time.Duration, sigma float64) int64 {
	return int64(float64(median) * g.sc.LatencyScale * math.Exp(sigma*g.rng.NormFloat64()))
}

func (g *gen) jitter(d time.Duration) int64 {
	return int64(float64(d) * (0.8 + 0.4*g.rng.Float64()))
}

func (g *gen) tenant() string {
	u := g.rng.Float64()
	for i, w := range g.tenantW {
		if u < w {
			return g.sc.Tenants[i]
		}
	}
	return g.sc.Tenants[len(g.sc.Tenants)-1]
}

func (g *gen) spanID() store.SpanID {
	var id store.SpanID
	for id.IsZero() {
		binary.BigEndian.PutUint64(id[:], g.rng.Uint64())
	}
	return id
}

func (g *gen) traceID() store.TraceID {
	var id store.TraceID
	for id.IsZero() {
		binary.BigEndian.PutUint64(id[:8], g.rng.Uint64())
		binary.BigEndian.PutUint64(id[8:], g.rng.Uint64())
	}
	return id
}

// attrKey identifies a shared attribute object.
type attrKey struct{ a, b, c string }

// resource returns shared resource attributes, so a million spans do not
// carry a million copies.
func (g *gen) resource(service, version, host string) store.Attributes {
	k := attrKey{service, version, host}
	if a, ok := g.res[k]; ok {
		return a
	}
	a := store.AttributesOf(map[string]any{"service.name": service, "service.version": version, "host.name": host})
	g.res[k] = a
	return a
}

// shared returns attributes built once per distinct key.
func (g *gen) shared(key attrKey, build func() map[string]any) store.Attributes {
	if a, ok := g.attrs[key]; ok {
		return a
	}
	a := store.AttributesOf(build())
	g.attrs[key] = a
	return a
}

// trace appends one request's spans and returns its id, its causes and
// the delay each injected.
func (g *gen) trace(out *[]store.Span) (store.TraceID, []string, map[string]int64) {
	sc := &g.sc
	tid := g.traceID()
	tenant := g.tenant()
	start := sc.Start.UnixNano() + g.rng.Int64N(int64(sc.Window))
	host := fmt.Sprintf("feed-api-%d", 1+g.rng.IntN(sc.Hosts))
	platform := [...]string{"ios", "android", "web"}[g.rng.IntN(3)]

	var causes []string
	type delay struct {
		cause string
		d     int64
	}
	var extra map[string][]delay // by dependency; nil while no cause applies
	var injected map[string]int64
	// ex returns the injected delay for one call to dep and counts it.
	ex := func(dep string) int64 {
		var sum int64
		for _, x := range extra[dep] {
			if injected == nil {
				injected = map[string]int64{}
			}
			injected[x.cause] += x.d
			sum += x.d
		}
		return sum
	}
	for _, c := range sc.Causes {
		if c.Tenant != "" && c.Tenant != tenant {
			continue
		}
		p := c.Probability
		if p == 0 {
			p = 1
		}
		at := 1.0
		if c.Every > 0 {
			pos := (start - sc.Start.UnixNano()) % int64(c.Every)
			if pos >= int64(c.Burst) {
				continue
			}
			at = 0.2 + 0.8*float64(pos)/float64(c.Burst)
		}
		if g.rng.Float64() >= p {
			continue
		}
		if extra == nil {
			extra = map[string][]delay{}
		}
		extra[c.Dependency] = append(extra[c.Dependency], delay{c.Name, int64(at * float64(g.jitter(c.Extra)))})
		causes = append(causes, c.Name)
	}
	payload := int64(float64(40<<10) * math.Exp(0.5*g.rng.NormFloat64()))
	if lp := sc.LargePayload; lp != nil && (lp.Tenant == "" || lp.Tenant == tenant) && g.rng.Float64() < lp.probability(tenant) {
		b := lp.Bytes
		if b <= 0 {
			b = 3 << 20
		}
		payload = int64(float64(b) * (0.8 + 0.4*g.rng.Float64()))
		name := lp.Name
		if name == "" {
			name = "large-payload"
		}
		causes = append(causes, name)
	}

	rootID := g.spanID()
	rootIdx := len(*out)
	*out = append(*out, store.Span{}) // filled in when its end is known
	net := func() int64 { return g.lognormal(300*time.Microsecond, 0.3) }

	t := start + g.lognormal(time.Millisecond, 0.3) // request parsing
	// clientSpan appends a client span of feed-api.
	clientSpan := func(name, peer string, s, d int64, status store.StatusCode, payloadBytes int64) store.SpanID {
		id := g.spanID()
		attrs := g.shared(attrKey{"client", name, peer}, func() map[string]any {
			return map[string]any{"peer.service": peer, "http.request.method": "GET", "url.path": name}
		})
		sp := store.Span{
			TraceID: tid, SpanID: id, ParentSpanID: rootID, Service: FeedAPI, Name: name, Kind: store.KindClient,
			StartUnixNano: s, DurationNano: d, StatusCode: status, Attributes: attrs,
			Resource: g.resource(FeedAPI, sc.Version, host),
			Tenant:   tenant, Version: sc.Version, Dependency: peer, PayloadBytes: payloadBytes, Host: host,
		}
		if status == store.StatusError {
			sp.StatusMessage = "503 Service Unavailable"
		}
		*out = append(*out, sp)
		return id
	}
	serverSpan := func(parent store.SpanID, service, name string, s, d int64) store.SpanID {
		id := g.spanID()
		h := service + "-1"
		*out = append(*out, store.Span{
			TraceID: tid, SpanID: id, ParentSpanID: parent, Service: service, Name: name, Kind: store.KindServer,
			StartUnixNano: s, DurationNano: d, StatusCode: store.StatusUnset,
			Attributes: g.shared(attrKey{"server", name, ""}, func() map[string]any { return map[string]any{"http.route": name} }),
			Resource:   g.resource(service, "v1", h),
			Tenant:     tenant, Version: "v1", Host: h,
		})
		return id
	}
	dbSpan := func(parent store.SpanID, service, system, stmt string, s, d int64) {
		h := service + "-1"
		*out = append(*out, store.Span{
			TraceID: tid, SpanID: g.spanID(), ParentSpanID: parent, Service: service, Name: stmt, Kind: store.KindClient,
			StartUnixNano: s, DurationNano: d,
			Attributes: g.shared(attrKey{"db", system, stmt}, func() map[string]any {
				return map[string]any{"db.system": system, "db.query.text": stmt}
			}),
			Resource: g.resource(service, "v1", h),
			Tenant:   tenant, Version: "v1", Dependency: system, Host: h,
		})
	}
	// remote models a call to an instrumented service whose server span
	// does `inner` (returning its own duration): network in, server, out.
	remote := func(name, peer string, s int64, payloadBytes int64, inner func(server store.SpanID, at int64) int64) int64 {
		n1 := net()
		// The server span is appended after the client span, but the
		// client's duration depends on it: reserve the client slot first.
		ci := len(*out)
		cid := clientSpan(name, peer, s, 0, store.StatusUnset, payloadBytes)
		si := len(*out)
		sid := serverSpan(cid, peer, name, s+n1, 0)
		d := inner(sid, s+n1)
		(*out)[si].DurationNano = d
		end := s + n1 + d + net()
		(*out)[ci].DurationNano = end - s
		return end
	}

	candidates := func(s int64) int64 {
		return remote("GET /candidates", CandidateSvc, s, payload, func(sid store.SpanID, at int64) int64 {
			self1 := g.lognormal(500*time.Microsecond, 0.3) + ex(CandidateSvc)
			// v1 lacks the composite index: slower and more variable.
			q := g.lognormal(20*time.Millisecond, 0.6) + ex(Postgres)
			if sc.Parallel {
				q = g.lognormal(8*time.Millisecond, 0.4) + ex(Postgres)
			}
			if !sc.PureNoise && g.rng.Float64() < 0.003 { // a natural slow plan now and then
				q += g.lognormal(60*time.Millisecond, 0.3)
			}
			dbSpan(sid, CandidateSvc, Postgres, "SELECT candidates", at+self1, q)
			return self1 + q + g.lognormal(500*time.Microsecond, 0.3)
		})
	}
	features := func(s int64) int64 {
		return remote("GET /features", FeatureSvc, s, 0, func(sid store.SpanID, at int64) int64 {
			self1 := g.lognormal(300*time.Microsecond, 0.3) + ex(FeatureSvc)
			d := self1
			// v1 has no cache and always reads postgres.
			miss := true
			if sc.Parallel {
				r := g.lognormal(800*time.Microsecond, 0.3) + ex(Redis)
				dbSpan(sid, FeatureSvc, Redis, "GET features", at+self1, r)
				d += r
				miss = g.rng.Float64() < 0.10
			}
			if miss { // no cache, or a cache miss: read postgres
				q := g.lognormal(12*time.Millisecond, 0.4) + ex(Postgres)
				dbSpan(sid, FeatureSvc, Postgres, "SELECT features", at+d, q)
				d += q
			}
			return d + g.lognormal(300*time.Microsecond, 0.3)
		})
	}
	failed := false
	profile := func(s int64) int64 {
		attempts := 4 // v1: unbounded in spirit; three immediate retries
		backoff := int64(0)
		if sc.Parallel {
			attempts, backoff = 2, int64(10*time.Millisecond)
		}
		at := s
		for a := 0; a < attempts; a++ {
			d := g.lognormal(25*time.Millisecond, 0.35) + ex(ProfileSvc)
			if !sc.PureNoise && g.rng.Float64() < 0.004 { // the external service's own long tail
				d += g.lognormal(150*time.Millisecond, 0.3)
			}
			if g.rng.Float64() < sc.ErrorRate {
				clientSpan("GET /profile", ProfileSvc, at, d, store.StatusError, 0)
				at += d + backoff
				failed = a == attempts-1
				continue
			}
			clientSpan("GET /profile", ProfileSvc, at, d, store.StatusUnset, 2<<10)
			return at + d
		}
		return at - backoff
	}
	rank := func(s int64) int64 {
		return remote("POST /rank", Ranker, s, payload, func(_ store.SpanID, _ int64) int64 {
			perKB := float64(50*time.Microsecond) * float64(payload) / 1024
			return g.lognormal(8*time.Millisecond, 0.3) + int64(perKB) + ex(Ranker)
		})
	}

	var fanEnd int64
	if sc.Parallel {
		fanEnd = max(candidates(t), features(t), profile(t))
	} else {
		fanEnd = profile(features(candidates(t)))
	}
	end := rank(fanEnd) + g.lognormal(2*time.Millisecond, 0.3) // render
	for _, a := range sc.Async {
		g.async(out, a, tid, rootID, tenant, host, start, end)
	}
	status := store.StatusUnset
	if failed {
		status = store.StatusError
	}
	(*out)[rootIdx] = store.Span{
		TraceID: tid, SpanID: rootID, Service: FeedAPI, Name: Endpoint, Kind: store.KindServer,
		StartUnixNano: start, DurationNano: end - start, StatusCode: status,
		Attributes: g.shared(attrKey{"root", tenant, platform}, func() map[string]any {
			return map[string]any{"http.route": "/v1/feed", "http.request.method": "GET", "tenant.id": tenant, "client.platform": platform}
		}),
		Resource: g.resource(FeedAPI, sc.Version, host),
		Tenant:   tenant, Version: sc.Version, Host: host, PayloadBytes: payload,
	}
	return tid, causes, injected
}

func (lp *LargePayload) probability(tenant string) float64 {
	if p, ok := lp.TenantProbability[tenant]; ok {
		return p
	}
	return lp.Probability
}

// Async service and dependency names.
const (
	Analytics = "analytics"
	Events    = "events-worker"
	Kafka     = "kafka"
)

// async appends one request's asynchronous work.
func (g *gen) async(out *[]store.Span, a Async, tid store.TraceID, rootID store.SpanID, tenant, host string, start, end int64) {
	d := a.Duration
	if d <= 0 {
		d = 1500 * time.Millisecond
	}
	dur := g.lognormal(d, 0.5)
	res := g.resource(FeedAPI, g.sc.Version, host)
	span := func(id, parent store.SpanID, service, name string, kind store.SpanKind, s, dur int64, dep string) *store.Span {
		r := res
		h := host
		if service != FeedAPI {
			h = service + "-1"
			r = g.resource(service, "v1", h)
		}
		*out = append(*out, store.Span{
			TraceID: tid, SpanID: id, ParentSpanID: parent, Service: service, Name: name, Kind: kind,
			StartUnixNano: s, DurationNano: dur, Resource: r, Tenant: tenant, Version: "v1", Dependency: dep, Host: h,
		})
		return &(*out)[len(*out)-1]
	}
	switch a.Shape {
	case FireAndForget:
		// Started early in the request, answered long after it. (One that
		// happens to end before the request cannot be told from a
		// parallel call the request waited for; that is not this shape.)
		s := start + g.lognormal(2*time.Millisecond, 0.3)
		dur += end - s
		cid := g.spanID()
		span(cid, rootID, FeedAPI, "POST /track", store.KindClient, s, dur, Analytics)
		span(g.spanID(), cid, Analytics, "POST /track", store.KindServer, s+int64(time.Millisecond), dur-2*int64(time.Millisecond), "")
	case FollowsFrom:
		s := start + int64(time.Millisecond)
		sp := span(g.spanID(), rootID, FeedAPI, "prefetch next page", store.KindInternal, s, max(end-s-int64(time.Millisecond), 0), "")
		sp.Links = []store.Link{{TraceID: tid, SpanID: rootID, Attributes: g.shared(attrKey{"link", "follows_from", ""}, func() map[string]any {
			return map[string]any{"opentracing.ref_type": "follows_from"}
		})}}
	case Messaging, Linked:
		// Publishing waits for the broker's ack; the consumer starts while
		// the request is still running and ends after it.
		s := start + g.lognormal(2*time.Millisecond, 0.3)
		pd := g.lognormal(3*time.Millisecond, 0.3)
		pid := g.spanID()
		span(pid, rootID, FeedAPI, "feed.viewed publish", store.KindProducer, s, pd, Kafka)
		cs := s + pd/2
		if a.Shape == Messaging {
			span(g.spanID(), pid, Events, "feed.viewed process", store.KindConsumer, cs, dur, "")
			return
		}
		c := span(g.spanID(), store.SpanID{}, Events, "feed.viewed process", store.KindConsumer, cs, dur, "")
		c.Links = []store.Link{{TraceID: tid, SpanID: pid}}
	}
}
