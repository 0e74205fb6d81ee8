package web

import (
	"context"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/static"
	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/sqlite"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// fixtureStart is the start of the generated data; the test clock sits
// one hour later, so "now-1h" covers all of it.
var fixtureStart = time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)

func fixtureNow() time.Time { return fixtureStart.Add(time.Hour) }

// fixture is a SQLite store holding two datasets: v1 traffic in the first
// half hour and v2 in the second, with profile-svc slow for acme in both,
// and a deploy marker between them.
type fixture struct {
	db      *sqlite.DB
	v1, v2  analysistest.Dataset
	deploy  store.Deploy
	handler http.Handler
}

var (
	fixtureOnce sync.Once
	shared      *fixture
	fixtureErr  error
	fixtureDir  string
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if shared != nil {
		shared.db.Close()
	}
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

// sharedFixture builds the fixture once per test binary: the pages and
// API only read it. Tests that write (budgets, incidents, deploys) use
// newWritableServer instead.
func sharedFixture(t testing.TB) *fixture {
	t.Helper()
	fixtureOnce.Do(func() {
		fixtureDir, fixtureErr = os.MkdirTemp("", "tailscope-web-")
		if fixtureErr != nil {
			return
		}
		shared, fixtureErr = buildFixture(filepath.Join(fixtureDir, "fixture.db"))
	})
	if fixtureErr != nil {
		t.Fatalf("fixture: %v", fixtureErr)
	}
	return shared
}

func buildFixture(path string) (*fixture, error) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	slow := analysistest.Cause{Name: "slow-profile", Dependency: analysistest.ProfileSvc, Tenant: "acme", Probability: 0.1, Extra: 800 * time.Millisecond}
	f := &fixture{db: db}
	f.v1 = analysistest.Generate(analysistest.Scenario{Seed: 7, Start: fixtureStart, Window: 30 * time.Minute, Traces: 1500, Causes: []analysistest.Cause{slow}})
	f.v2 = analysistest.Generate(analysistest.Scenario{Seed: 8, Start: fixtureStart.Add(30 * time.Minute), Window: 30 * time.Minute, Traces: 1500, Parallel: true, Causes: []analysistest.Cause{slow}})
	for _, ds := range []analysistest.Dataset{f.v1, f.v2} {
		for i := 0; i < len(ds.Spans); i += 5000 {
			if err := db.WriteSpans(ctx, ds.Spans[i:min(i+5000, len(ds.Spans))]); err != nil {
				return nil, err
			}
		}
	}
	f.deploy, err = db.RecordDeploy(ctx, store.Deploy{Service: analysistest.FeedAPI, Version: "v2", At: fixtureStart.Add(30 * time.Minute), Source: store.DeploySourceAuto})
	if err != nil {
		return nil, err
	}
	assets, err := static.Load()
	if err != nil {
		return nil, err
	}
	f.handler = New(Config{Store: db, Now: fixtureNow, Assets: assets, Version: "test"}).Handler()
	return f, nil
}

// newWritableServer returns a handler over a fresh, empty SQLite store.
func newWritableServer(t *testing.T) (http.Handler, *sqlite.DB) {
	t.Helper()
	s, db := newEmptyServer(t, Config{})
	return s.Handler(), db
}

// newEmptyServer returns a Server over a fresh, empty SQLite store with
// the embedded assets; cfg sets anything else (Metrics, ...).
func newEmptyServer(t *testing.T, cfg Config) (*Server, *sqlite.DB) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	assets, err := static.Load()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store, cfg.Now, cfg.Assets, cfg.Version = db, fixtureNow, assets, "test"
	return New(cfg), db
}

// get serves one request and returns the recorder.
func serve(t testing.TB, h http.Handler, method, target string, body string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	var r *http.Request
	if body != "" {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}
