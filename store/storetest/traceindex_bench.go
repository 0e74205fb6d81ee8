package storetest

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// LoadMillion writes 1,000,000 spans (200,000 BatchGen traces, one per
// millisecond of start time) from start in batches of 5,000 and returns
// the time range written.
func LoadMillion(b testing.TB, w store.Writer, start time.Time) (from, to time.Time) {
	b.Helper()
	gen := NewBatchGen(5000, start, 0)
	to = start
	for range 200 {
		batch := gen.Next()
		if err := w.WriteSpans(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
		if end := time.Unix(0, batch[len(batch)-1].StartUnixNano+1); end.After(to) {
			to = end
		}
	}
	return start, to
}

// SearchBenchCase is one search of BenchmarkSearchPage over LoadMillion's
// data, with the number of results it must return.
type SearchBenchCase struct {
	Name string
	Q    store.TraceQuery
	Want int
}

// SearchBenchCases are the searches the search page runs, over [from, to):
// the "service + min duration, 20 results" on the entry service
// (a fifth of the traces qualify) and on a downstream one (only the 1% of
// slow traces), the page's default (newest traces, no condition), and the
// slowest requests of an endpoint.
func SearchBenchCases(from, to time.Time) []SearchBenchCase {
	return []SearchBenchCase{
		{"service+minduration", store.TraceQuery{Service: "feed-api", MinDuration: 60 * time.Millisecond, From: from, To: to, Limit: 20}, 20},
		{"downstream+minduration", store.TraceQuery{Service: "candidate-svc", MinDuration: 100 * time.Millisecond, From: from, To: to, Limit: 20}, 20},
		{"newest", store.TraceQuery{From: from, To: to, Limit: 20}, 20},
		{"endpoint-slowest", store.TraceQuery{Service: "feed-api", Endpoint: "GET /v1/feed", Order: store.OrderSlowest, From: from, To: to, Limit: 200}, 200},
	}
}

// BenchSearch runs each of SearchBenchCases as a sub-benchmark of b.
func BenchSearch(b *testing.B, s store.Reader, from, to time.Time) {
	for _, c := range SearchBenchCases(from, to) {
		b.Run(c.Name, func(b *testing.B) {
			for b.Loop() {
				got, err := s.SearchTraces(context.Background(), c.Q)
				if err != nil {
					b.Fatal(err)
				}
				if len(got) != c.Want {
					b.Fatalf("%d traces, want %d", len(got), c.Want)
				}
			}
		})
	}
}

// ProcessCPU returns the CPU time (user and system) this process has used.
// On a shared machine, CPU per span is a steadier measure of a write path
// than spans per second.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
