package feedsvc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tailscope/tailscope/internal/testenv"
)

// realConfig is a real-mode config on a fresh database with a small
// catalogue (seeding a million items is for the demo and the benchmark).
func realConfig(t *testing.T) Config {
	t.Helper()
	redisURL := testenv.RedisURL(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "feedsvc_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		// Leave the shared Redis as we found it.
		rc, err := openRedis(context.Background(), redisURL, noop.NewTracerProvider())
		if err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		defer rc.close()
		if _, err := rc.flush(context.Background(), prefix+":"); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
	return Config{
		PostgresURL: testenv.FreshPostgres(t),
		RedisURL:    redisURL,
		CachePrefix: prefix, // a fresh cache: the first requests miss, as in the simulated run
		Seed:        1,
	}
}

// shapes is the set of (service, span name, kind) of a run.
func shapes(spans []span) []string {
	var out []string
	for _, s := range spans {
		k := fmt.Sprintf("%s|%s|%s|%s", s.version(), s.Service, s.Name, s.Kind)
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// attrKeys is the set of attribute keys per (service, span name).
func attrKeys(spans []span) map[string][]string {
	out := map[string][]string{}
	for _, s := range spans {
		k := s.Service + "|" + s.Name
		for a := range s.Attrs {
			if !slices.Contains(out[k], a) {
				out[k] = append(out[k], a)
			}
		}
	}
	return out
}

// succeeded is spans without an error status.
func succeeded(spans []span) []span {
	return slices.DeleteFunc(slices.Clone(spans), func(s span) bool { return s.Status == ptrace.StatusCodeError })
}

// TestRealClusterTraces runs the feed on PostgreSQL and Redis and checks the
// traces as TestSimulatedClusterTraces does, then that the simulated mode
// produced the same span shapes and attribute keys.
func TestRealClusterTraces(t *testing.T) {
	cfg := realConfig(t)
	c, rcv := startCluster(t, cfg)
	if c.Mode() != ModeReal {
		t.Fatalf("mode %s", c.Mode())
	}
	exercise(t, c)
	closeCluster(t, c)
	real := rcv.all()
	checkTraces(t, real, ModeReal)

	sc, srcv := startCluster(t, Config{Seed: 1})
	exercise(t, sc)
	closeCluster(t, sc)
	sim := srcv.all()
	if r, s := shapes(real), shapes(sim); !slices.Equal(r, s) {
		t.Errorf("span shapes differ\nreal: %v\nsim:  %v", r, s)
	}
	// Whether a call fails is chance: profile-svc refuses a few calls in a
	// thousand at random (profileBaselineErrorRate), and under -race on a
	// busy machine a v2 per-call deadline can expire, in one run and not
	// the other. A failed call carries attributes (error.type) a successful
	// one does not, so the keys of the real run come from its successful
	// spans.
	rk, sk := attrKeys(succeeded(real)), attrKeys(sim)
	for k, keys := range rk {
		for _, a := range keys {
			// Connection details the simulation cannot know are fine to miss;
			// the analysis reads none of them.
			if !slices.Contains(sk[k], a) && !strings.HasPrefix(a, "network.") && a != "pgx.sql_state" {
				t.Errorf("%s: attribute %s set in real mode, missing in simulated mode", k, a)
			}
		}
	}
}

// TestRealSeedIsReused: a second start on the same schema does not reseed.
func TestRealSeedIsReused(t *testing.T) {
	cfg := realConfig(t)
	c, _ := startCluster(t, cfg)
	closeCluster(t, c)
	var seededAt1 string
	pg, err := openPostgres(t.Context(), mustDefaults(t, cfg), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.close()
	if err := pg.admin.QueryRow(t.Context(), "SELECT seeded_at::text FROM feedsvc.seed_marker").Scan(&seededAt1); err != nil {
		t.Fatal(err)
	}
	c2, _ := startCluster(t, cfg)
	getFeed(t, c2, "acme", 1)
	closeCluster(t, c2)
	var seededAt2 string
	var n int64
	if err := pg.admin.QueryRow(t.Context(), "SELECT seeded_at::text, (SELECT count(*) FROM feedsvc.items) FROM feedsvc.seed_marker").Scan(&seededAt2, &n); err != nil {
		t.Fatal(err)
	}
	if seededAt1 != seededAt2 || n != 20000 {
		t.Fatalf("seeded at %s then %s, %d items; want one seed of 20000", seededAt1, seededAt2, n)
	}
}

func mustDefaults(t *testing.T, cfg Config) Config {
	t.Helper()
	cfg.OTLPEndpoint = "http://127.0.0.1:4318"
	cfg.CatalogItems = 20000
	out, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
