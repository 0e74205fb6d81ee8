package acceptance

import (
	"github.com/tailscope/tailscope/internal/demodata"

	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/tailscope/tailscope/feedsvc"
	"github.com/tailscope/tailscope/internal/testenv"
)

// realSchema is the PostgreSQL schema (and Redis key prefix) feedsvc owns
// in the shared test database. It is kept between runs: feedsvc seeds its
// million-item catalogue once per schema and reuses it, which a fresh
// database per test would repeat every time.
const realSchema = "acceptance_feedsvc"

// realMode returns where feedsvc's real mode keeps its data when
// PostgreSQL and Redis are configured — always in CI, where testenv fails
// the test if they are unreachable — and nil (simulated mode) otherwise.
// It holds the schema for the rest of t and cleans the cache keys after.
func realMode(t *testing.T) *realData {
	t.Helper()
	if !testenv.Required() && (os.Getenv(testenv.EnvPostgres) == "" || os.Getenv(testenv.EnvRedis) == "") {
		t.Logf("feedsvc: simulated mode (%s and %s are not both set)", testenv.EnvPostgres, testenv.EnvRedis)
		return nil
	}
	data := &realData{PostgresURL: testenv.PostgresURL(t), RedisURL: testenv.RedisURL(t), Schema: realSchema}
	lockSchema(t, data.PostgresURL)
	t.Cleanup(func() { flushRedis(t, data.RedisURL, realSchema+":") })
	return data
}

// lockSchema holds a PostgreSQL advisory lock on the feedsvc schema until
// t ends: a deploy drops or builds an index in it, so two test processes
// sharing the database take turns.
func lockSchema(t *testing.T, pgURL string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatalf("lock feedsvc schema: %v", err)
	}
	const key = "tailscope/acceptance/" + realSchema
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtext($1))", key); err != nil {
		conn.Close(context.Background())
		t.Fatalf("lock feedsvc schema: %v", err)
	}
	t.Cleanup(func() {
		// Closing the session releases the lock.
		if err := conn.Close(context.Background()); err != nil {
			t.Logf("unlock feedsvc schema: %v", err)
		}
	})
}

// flushRedis removes the keys the run cached, leaving the shared Redis as
// it was.
func flushRedis(t *testing.T, redisURL, prefix string) {
	t.Helper()
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Errorf("flush redis: %v", err)
		return
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	flush := func() bool {
		if len(keys) == 0 {
			return true
		}
		if err := rdb.Unlink(ctx, keys...).Err(); err != nil {
			t.Errorf("flush redis: %v", err)
			return false
		}
		keys = keys[:0]
		return true
	}
	for iter.Next(ctx) {
		if keys = append(keys, iter.Val()); len(keys) == 500 && !flush() {
			return
		}
	}
	if err := iter.Err(); err != nil {
		t.Errorf("flush redis: %v", err)
		return
	}
	flush()
}

// shapeTraces is how many traces of a run the shape test reads.
const shapeTraces = 25

// checkTraceShapes reads traces of a real-mode run through the API and
// checks each (checkTraceShape), then that over the run feature-svc read
// both Redis and PostgreSQL: v2 and v3 read the cache first and the
// database on the misses of a cache that starts cold.
func checkTraceShapes(t *testing.T, ts *tailscope, p demodata.Played) {
	t.Helper()
	ids := ts.traceIDs(t, p.From, p.To, shapeTraces)
	if len(ids) < shapeTraces {
		t.Fatalf("%d traces listed, want %d", len(ids), shapeTraces)
	}
	featureDeps := map[string]bool{}
	for _, id := range ids {
		var tr apiTrace
		ts.get(t, "/api/v1/traces/"+id, nil, &tr)
		for _, d := range checkTraceShape(t, tr) {
			featureDeps[d] = true
		}
	}
	for _, w := range []string{"postgresql", "redis"} {
		if !featureDeps[w] {
			t.Errorf("no feature-svc span talks to %s in %d traces (seen: %v)", w, len(ids), featureDeps)
		}
	}
}

// checkTraceShape checks one real-mode trace: spans of all five services
// from one version, every parent present, each service's server span the
// child of feed-api's client span naming it (which carries the payload
// size of an answered call), the request's tenant on every span,
// PostgreSQL spans in candidate-svc. It returns the kinds of storage
// feature-svc talked to ("postgresql", "redis").
func checkTraceShape(t *testing.T, tr apiTrace) []string {
	t.Helper()
	byID := map[string]*apiSpan{}
	var roots []*apiSpan
	for i := range tr.Spans {
		s := &tr.Spans[i]
		byID[s.SpanID] = s
		if s.ParentSpanID == "" {
			roots = append(roots, s)
		}
	}
	if len(roots) != 1 || roots[0].Service != feedsvc.FeedAPI {
		t.Errorf("trace %s: %d roots (%+v), want one feed-api span", tr.TraceID, len(roots), roots)
		return nil
	}
	root := roots[0]
	if root.Tenant == "" {
		t.Errorf("trace %s: the request has no tenant", tr.TraceID)
	}
	services := map[string]bool{}
	called := map[string]bool{}
	var featureDeps []string
	candidateDB := false
	for i := range tr.Spans {
		s := &tr.Spans[i]
		services[s.Service] = true
		where := tr.TraceID + ": " + s.Service + " span " + s.Name
		if s.Tenant != root.Tenant {
			t.Errorf("trace %s has tenant %q, the request's is %q", where, s.Tenant, root.Tenant)
		}
		if s.Version != root.Version {
			t.Errorf("trace %s has version %q, the request's is %q", where, s.Version, root.Version)
		}
		var res map[string]any
		if err := json.Unmarshal(s.Resource, &res); err != nil || res[feedsvc.AttrMode] != string(feedsvc.ModeReal) {
			t.Errorf("trace %s: resource %s = %v, want %s (%v)", where, feedsvc.AttrMode, res[feedsvc.AttrMode], feedsvc.ModeReal, err)
		}
		for _, kind := range []string{"postgresql", "redis"} {
			if !strings.HasPrefix(s.Dependency, kind) {
				continue
			}
			candidateDB = candidateDB || (s.Service == feedsvc.CandidateSvc && kind == "postgresql")
			if s.Service == feedsvc.FeatureSvc && !slices.Contains(featureDeps, kind) {
				featureDeps = append(featureDeps, kind)
			}
		}
		if s.ParentSpanID == "" {
			continue
		}
		parent := byID[s.ParentSpanID]
		if parent == nil {
			t.Errorf("trace %s has parent %s, which is not in the trace", where, s.ParentSpanID)
			continue
		}
		if s.Service == feedsvc.FeedAPI || s.Kind != "server" {
			continue
		}
		// An HTTP hop: feed-api's client span names the callee
		// (peer.service), is the parent of the callee's server span and,
		// when an answer came back, carries its size; a call v2 gave up
		// on at its deadline has none. A retried call has one per attempt.
		if parent.Service != feedsvc.FeedAPI || parent.Kind != "client" || parent.Dependency != s.Service {
			t.Errorf("trace %s has parent %s %s span %q (dependency %q), want feed-api's client span to %s",
				where, parent.Service, parent.Kind, parent.Name, parent.Dependency, s.Service)
		}
		if parent.PayloadBytes <= 0 && parent.StatusCode != "error" {
			t.Errorf("trace %s: feed-api's call to %s has no payload size", tr.TraceID, s.Service)
		}
		called[s.Service] = true
	}
	for _, svc := range feedsvc.Services() {
		if !services[svc] {
			t.Errorf("trace %s: no span of %s (services: %v)", tr.TraceID, svc, services)
		}
		if svc != feedsvc.FeedAPI && !called[svc] {
			t.Errorf("trace %s: no server span of %s under a feed-api client span", tr.TraceID, svc)
		}
	}
	if !candidateDB {
		t.Errorf("trace %s: candidate-svc made no PostgreSQL span", tr.TraceID)
	}
	if len(featureDeps) == 0 {
		t.Errorf("trace %s: feature-svc talked to neither PostgreSQL nor Redis", tr.TraceID)
	}
	return featureDeps
}
