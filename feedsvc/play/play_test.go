package play

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailscope/tailscope/feedsvc"
	"github.com/tailscope/tailscope/feedsvc/scenario"
)

// otlpSink accepts every OTLP export and counts them.
func otlpSink(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

func TestRunPlaysStepsAndLoadThenFlushes(t *testing.T) {
	url, exports := otlpSink(t)
	sc := scenario.Scenario{
		Name: "t", Version: feedsvc.V1, Rate: 20, Duration: time.Second,
		Steps: []scenario.Step{{After: 100 * time.Millisecond, Version: feedsvc.V2, Note: "deploy"}},
	}
	run, err := Start(context.Background(), Config{Feed: feedsvc.Config{OTLPEndpoint: url, Seed: 3}, Scenario: &sc})
	if err != nil {
		t.Fatal(err)
	}
	if run.Load.Rate != 20 || run.Load.Duration != time.Second || run.Load.Seed != 3 || len(run.Load.Tenants) == 0 {
		t.Errorf("load config = %+v; want the scenario's rate and duration, the seed and the tenants", run.Load)
	}
	<-run.Done() // the load's duration ends the run
	if err := run.Err(); err != nil {
		t.Fatal(err)
	}
	if v := run.Cluster.Version(); v != feedsvc.V2 {
		t.Errorf("version after the run = %s; the step to v2 was not played", v)
	}
	res, err := run.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if res == nil || res.OK == 0 {
		t.Fatalf("load result %+v; want answered requests", res)
	}
	if exports.Load() == 0 {
		t.Error("no OTLP export reached the endpoint after Stop flushed")
	}
	if again, err := run.Stop(); again != res || err != nil {
		t.Errorf("second Stop = %p, %v; want the same result", again, err)
	}
}

func TestRunWithoutLoadStopsOnStop(t *testing.T) {
	url, _ := otlpSink(t)
	run, err := Start(context.Background(), Config{Feed: feedsvc.Config{OTLPEndpoint: url}, Duration: UntilStopped})
	if err != nil {
		t.Fatal(err)
	}
	<-run.Done() // no scenario, no rate: nothing to play
	res, err := run.Stop()
	if res != nil || err != nil {
		t.Errorf("Stop = %+v, %v; want no load result and no error", res, err)
	}
}

func TestStartRejectsBadFeedConfig(t *testing.T) {
	if _, err := Start(context.Background(), Config{Feed: feedsvc.Config{OTLPEndpoint: "localhost:4318"}}); err == nil {
		t.Error("a bad OTLP endpoint was accepted")
	}
}
