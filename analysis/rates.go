package analysis

import (
	"context"
	"fmt"
	"time"

	"github.com/tailscope/tailscope/store"
)

// A rate is a series' requests over the time that has data for it, not
// over the window asked for (docs/DESIGN.md, "Rates"). The time with data
// runs
//
//   - from the window's start, or from the series' first request when it
//     had none before the window (it did not exist yet: the minutes before
//     its first request are not quiet minutes of it), and
//   - to the window's end, or to now when the window reaches past now
//     (there is no data from the future yet).
//
// The end is never the last request: a series that went quiet ten minutes
// ago was quiet for those ten minutes, and averaging them away would make
// it look busier than it was.
//
// A series is one endpoint (a service's entry spans of one name),
// optionally of one version; a service's time with data starts with its
// earliest endpoint's.

// minRateSpan floors the time a rate is averaged over, so a series whose
// first request came a moment ago shows its count per second rather than
// thousands per second.
const minRateSpan = time.Second

// lateStart is how far after the window start a series' first request
// must be before its history is looked up: closer than this, counting from
// the window start or from the first request changes a rate by at most
// lateStart over the window (0.5%), and a sparse endpoint (one request a
// minute) saves its look-up three times in four.
func lateStart(window time.Duration) time.Duration {
	return max(minRateSpan, window/200)
}

// dataEnd is where the data of a window ends: its end, or now when the
// window reaches past it (a zero now means no cut).
func dataEnd(to, now time.Time) time.Time {
	if !now.IsZero() && now.Before(to) {
		return now
	}
	return to
}

// ratePerS is count over [from, to) in Unix nanoseconds, with the span
// floored at minRateSpan.
func ratePerS(count int, from, to int64) float64 {
	if count == 0 {
		return 0
	}
	return round4(float64(count) / (float64(max(to-from, int64(minRateSpan))) / 1e9))
}

// seriesKey names a series: an endpoint of a service, optionally one
// version of it.
type seriesKey struct {
	service, endpoint, version string
}

// seriesStart returns where the data of a series begins in a window that
// starts at from (Unix ns), given its first request in the window: from
// when the series had a request before the window, else the first request.
//
// The look-up is one index seek per endpoint: the newest request of
// (service, endpoint) before from, however old. For one version it then
// looks back one window length only, since finding that no request of the
// version exists means scanning the endpoint's history: a version that
// had no request in the window-length before is counted from its first.
func seriesStart(ctx context.Context, src SampleSource, k seriesKey, from, first int64, window time.Duration) (int64, error) {
	if first-from <= int64(lateStart(window)) {
		return from, nil
	}
	f := time.Unix(0, from)
	before, err := src.Samples(ctx, store.SampleQuery{Service: k.service, Endpoint: k.endpoint, To: f, Limit: 1})
	if err != nil {
		return 0, fmt.Errorf("analysis: requests of %s %s before %s: %w", k.service, k.endpoint, f.UTC().Format(time.RFC3339), err)
	}
	if len(before) == 0 {
		return first, nil
	}
	if k.version == "" || before[0].Version == k.version {
		return from, nil
	}
	before, err = src.Samples(ctx, store.SampleQuery{Service: k.service, Endpoint: k.endpoint, Version: k.version, From: f.Add(-window), To: f, Limit: 1})
	if err != nil {
		return 0, fmt.Errorf("analysis: requests of %s %s %s before %s: %w", k.service, k.endpoint, k.version, f.UTC().Format(time.RFC3339), err)
	}
	if len(before) == 0 {
		return first, nil
	}
	return from, nil
}

// seriesStartRollups is seriesStart over rollups (rollups.go): whether the
// series had a request before the window is one rollup look-up, kept
// longer than spans, instead of a sample read.
func seriesStartRollups(ctx context.Context, src RollupSource, k seriesKey, from, first int64, window time.Duration) (int64, error) {
	if first-from <= int64(lateStart(window)) {
		return from, nil
	}
	f := time.Unix(0, from)
	had, err := src.RequestBefore(ctx, k.service, k.endpoint, "", time.Time{}, f)
	if err != nil {
		return 0, fmt.Errorf("analysis: requests of %s %s before %s: %w", k.service, k.endpoint, f.UTC().Format(time.RFC3339), err)
	}
	if had && k.version != "" {
		had, err = src.RequestBefore(ctx, k.service, k.endpoint, k.version, f.Add(-window), f)
		if err != nil {
			return 0, fmt.Errorf("analysis: requests of %s %s %s before %s: %w", k.service, k.endpoint, k.version, f.UTC().Format(time.RFC3339), err)
		}
	}
	if !had {
		return first, nil
	}
	return from, nil
}

// endpointStartsRollups is seriesStartRollups for the endpoints names of
// service (no version), whose first requests in the window are firsts:
// one EndpointsBefore read for all that start late instead of a look-up
// each — an instrumentation that names spans after the raw path gives a
// service thousands of endpoints, each starting late.
func endpointStartsRollups(ctx context.Context, src RollupSource, service string, names []string, firsts []int64, from int64, window time.Duration) ([]int64, error) {
	starts := make([]int64, len(names))
	var late []string
	for i, first := range firsts {
		starts[i] = from
		if first-from > int64(lateStart(window)) {
			late = append(late, names[i])
		}
	}
	if len(late) == 0 {
		return starts, nil
	}
	f := time.Unix(0, from)
	had, err := src.EndpointsBefore(ctx, service, late, f)
	if err != nil {
		return nil, fmt.Errorf("analysis: requests of %s's endpoints before %s: %w", service, f.UTC().Format(time.RFC3339), err)
	}
	for i, first := range firsts {
		if first-from > int64(lateStart(window)) && !had[names[i]] {
			starts[i] = first
		}
	}
	return starts, nil
}

// endpointStarts returns the data start of each endpoint with samples in
// [from, to) (samples ordered by start, as stores return them).
func endpointStarts(ctx context.Context, src SampleSource, service, version string, samples []store.Sample, from, to time.Time) (map[string]int64, error) {
	f, t := from.UnixNano(), to.UnixNano()
	first := map[string]int64{}
	for i := range samples {
		s := &samples[i]
		if s.StartUnixNano < f || s.StartUnixNano >= t {
			continue
		}
		if _, ok := first[s.Name]; !ok {
			first[s.Name] = s.StartUnixNano
		}
	}
	starts := make(map[string]int64, len(first))
	for name, at := range first {
		st, err := seriesStart(ctx, src, seriesKey{service, name, version}, f, at, to.Sub(from))
		if err != nil {
			return nil, err
		}
		starts[name] = st
	}
	return starts, nil
}

// earliest is the smallest start in starts, or def when there is none.
func earliest(starts map[string]int64, def int64) int64 {
	out, ok := int64(0), false
	for _, s := range starts {
		if !ok || s < out {
			out, ok = s, true
		}
	}
	if !ok {
		return def
	}
	return out
}

// DataSpan is the part of a window that has data for a series: what its
// rate is averaged over. It is absent (zero) when the series has no
// request in the window.
type DataSpan struct {
	DataFrom time.Time `json:"data_from,omitzero"`
	DataTo   time.Time `json:"data_to,omitzero"`
}

// dataSpan builds a DataSpan of [from, to) in Unix ns; count 0 leaves it
// empty.
func dataSpan(count int, from, to int64) DataSpan {
	if count == 0 {
		return DataSpan{}
	}
	return DataSpan{DataFrom: time.Unix(0, from).UTC(), DataTo: time.Unix(0, max(to, from)).UTC()}
}

// coveredSeconds is how much of the bucket [start, start+step) lies in
// [from, end): a chart bucket's rate is averaged over this, so the bucket
// cut by the window's start, and the one still filling at now, are not
// shown as drops.
func coveredSeconds(start, step, from, end int64) float64 {
	lo, hi := max(start, from), min(start+step, end)
	if hi <= lo {
		return 0
	}
	return float64(hi-lo) / 1e9
}
