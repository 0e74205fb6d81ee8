package web

import (
	"strings"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/components"
)

// The latency page draws the bucket that ends after the window (still
// filling) apart from the line, so half a bucket of requests does not
// read as traffic dropping.
func TestLatencyLastBucketIsPartial(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)
	v := func(x float64) *float64 { return &x }
	var rep analysis.LatencyReport
	rep.Series.StepSeconds = 60
	for i := range 5 {
		covered := 60.0
		if i == 4 {
			covered = 30
		}
		rep.Series.Points = append(rep.Series.Points, analysis.SeriesPoint{Start: t0.Add(time.Duration(i) * time.Minute), Count: 600,
			CoveredS: covered, RatePerS: 10, P50Ms: v(5), P95Ms: v(9), P99Ms: v(12)})
	}
	tests := []struct {
		name    string
		to      time.Time
		partial bool
	}{
		{"window ends inside the last bucket", t0.Add(4*time.Minute + 30*time.Second), true},
		{"window ends on a bucket boundary", t0.Add(5 * time.Minute), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			view := latencyView(rep, components.EndpointPicker{Service: "s", Endpoint: "e"}, TimeRange{From: t0, To: tt.to, FromText: "a", ToText: "b"}, nil)
			for _, c := range []struct {
				name string
				hp   bool
			}{{"latency", view.Series.HasPartial()}, {"traffic", view.Traffic.HasPartial()}} {
				if c.hp != tt.partial {
					t.Errorf("%s chart has a partial bucket: %v, want %v", c.name, c.hp, tt.partial)
				}
			}
		})
	}
}

func TestSpanSamplesCaution(t *testing.T) {
	ms := int64(time.Millisecond)
	for _, tt := range []struct {
		total int64
		want  string
	}{
		{0, ""},
		{10 * ms, "One CPU sample (10 ms)"},
		{40 * ms, "Only 4 CPU samples (one every 10 ms): each moves a frame's share by about 25 points"},
		{190 * ms, "Only 19 CPU samples"},
		{200 * ms, ""},
	} {
		got := spanSamplesCaution(tt.total)
		if (tt.want == "") != (got == "") || !strings.HasPrefix(got, tt.want) {
			t.Errorf("spanSamplesCaution(%d ms) = %q, want %q…", tt.total/ms, got, tt.want)
		}
	}
}
