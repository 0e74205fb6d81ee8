package alert

import (
	"context"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// fixedSamples serves the same samples to every read, filtered by time.
type fixedSamples []store.Sample

func (f fixedSamples) Samples(_ context.Context, q store.SampleQuery) ([]store.Sample, error) {
	var out []store.Sample
	for _, s := range f {
		if s.StartUnixNano >= q.From.UnixNano() && s.StartUnixNano < q.To.UnixNano() {
			out = append(out, s)
		}
	}
	return out, nil
}

// TestCounterWeights: a sampled request counts as the requests it stands
// for (its weight, rounded as the rollups round it), as the budget pages
// count, so an alert and the page agree over a sampled stream.
func TestCounterWeights(t *testing.T) {
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	b := store.Budget{Service: "s", Endpoint: "e", Threshold: 100 * time.Millisecond, Target: 0.9}
	at := func(ago time.Duration) int64 { return now.Add(-ago).UnixNano() }
	src := fixedSamples{
		{StartUnixNano: at(time.Minute), DurationNano: int64(50 * time.Millisecond), Weight: 1},
		{StartUnixNano: at(2 * time.Minute), DurationNano: int64(200 * time.Millisecond), Weight: 4},
		{StartUnixNano: at(3 * time.Minute), DurationNano: int64(20 * time.Millisecond), Weight: 2.6},
		{StartUnixNano: at(4 * time.Minute), DurationNano: int64(20 * time.Millisecond)}, // unset: 1
	}
	c := newCounter(b)
	if err := c.update(context.Background(), src, now, time.Hour, time.Minute); err != nil {
		t.Fatal(err)
	}
	r := c.burn(now, time.Hour)
	if r.total != 1+4+3+1 || r.bad != 4 {
		t.Errorf("total %d, bad %d; want 9 and 4 (weights 1, 4, 2.6→3, unset→1)", r.total, r.bad)
	}
	if want := 4.0 / 9 / 0.1; r.rate < want-1e-9 || r.rate > want+1e-9 {
		t.Errorf("burn rate %v, want %v", r.rate, want)
	}
}
