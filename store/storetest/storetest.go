// Package storetest is the storage contract as a test suite, run unchanged
// against every store.Store implementation (as Jaeger's StorageIntegration
// runs against every backend). A backend's test calls RunAll with a function
// that returns a fresh, empty store:
//
//	func TestStore(t *testing.T) {
//		storetest.RunAll(t, func(t *testing.T) store.Store { ... })
//	}
//
// Semantics the suite pins down beyond the store package's doc comments:
//   - SearchTraces orders "newest" by the latest start of a matching span,
//     "oldest" by the earliest, and "slowest"/"fastest" by the longest
//     matching span's duration; ties by trace id.
//   - Attribute values match by text form: a string's content, a number as
//     written in the encoded JSON, true or false.
//   - Text holding NUL or invalid UTF-8 is stored with U+FFFD in its place.
//   - Invalid queries (negative limit, inverted range, unknown order) fail
//     with an error wrapping store.ErrInvalid.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// RunAll runs every contract test. newStore must return an empty store; it
// is called once per subtest, from parallel subtests, and RunAll closes what
// it returns. Close must therefore tolerate a second call if newStore also
// registers one.
func RunAll(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Ping", testPing},
		{"WriteAndReadBack", testWriteAndReadBack},
		{"EmptyBatch", testEmptyBatch},
		{"TraceNotFound", testTraceNotFound},
		{"TraceOrdering", testTraceOrdering},
		{"Traces", testTraces},
		{"TraceShapes", testTraceShapes},
		{"RequestShapes", testRequestShapes},
		{"Search", testSearch},
		{"SearchSummaries", testSearchSummaries},
		{"SearchOrderAndLimit", testSearchOrderAndLimit},
		{"SearchLimits", testSearchLimits},
		{"SearchInvalid", testSearchInvalid},
		{"SearchAttributeForms", testSearchAttributeForms},
		{"SearchHas", testSearchHas},
		{"AttributeSuggestions", testAttributeSuggestions},
		{"LargeTrace", testLargeTrace},
		{"Duplicates", testDuplicates},
		{"OutOfOrderBatches", testOutOfOrderBatches},
		{"ConcurrentWriters", testConcurrentWriters},
		{"SanitisesText", testSanitisesText},
		{"Samples", testSamples},
		{"SampleRanges", testSampleRanges},
		{"Endpoints", testEndpoints},
		{"Operations", testOperations},
		{"Retention", testRetention},
		{"Deploys", testDeploys},
		{"Budgets", testBudgets},
		{"Incidents", testIncidents},
		{"IncidentSnapshots", testIncidentSnapshots},
		{"KeptTraces", testKeptTraces},
		{"Alerts", testAlerts},
		{"ContextCancelled", testContextCancelled},
	}
	tests = append(tests, profileTests()...)
	tests = append(tests, rollupTests()...)
	tests = append(tests, traceIndexTests()...)
	tests = append(tests, heldIndexTests()...)
	run(t, newStore, tests)
}

// RunHeldIndex runs only RunAll's trace index tests through held writes
// (IndexHolder), for a store opened in another mode of holding.
func RunHeldIndex(t *testing.T, newStore func(t *testing.T) store.Store) {
	run(t, newStore, heldIndexTests())
}

// run runs tests in parallel, each on its own store from newStore, closed
// when it ends.
func run(t *testing.T, newStore func(t *testing.T) store.Store, tests []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}) {
	open := func(t *testing.T) store.Store {
		t.Helper()
		s := newStore(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return s
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Every subtest has its own store, so they run in parallel
			// (bounded by -parallel): a backend's per-store setup, such
			// as creating a database, overlaps instead of adding up.
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// base is the suite's reference time: a fixed day in the past, so stores
// that create storage per day (PostgreSQL partitions) do so on demand.
var base = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func ctxT(t *testing.T) context.Context {
	t.Helper()
	return t.Context()
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(ctxT(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}
