package analysis_test

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// seededOutcome is what a seeded check of a statistical mark counted over
// 200 repetitions: how often the mark fired with nothing changed (per
// mark, by name), how often the rule it replaced would have (naive), and
// how often it found an injected change (caught).
type seededOutcome struct {
	falseAlarms map[string]int
	naive       int
	caught      int
}

// seededReps is the number of repetitions a seededOutcome counts.
const seededReps = 200

// check holds the marks to their level and power: at a 1% level 2 false
// alarms of 200 are expected, and 8 or more have probability 0.1% for a
// test that holds its level (Poisson(2)); the naive rule must fire often
// enough (20) for the case to show why a test is needed; the injected
// change must be caught in 95% of the repetitions.
func (o seededOutcome) check(t *testing.T) {
	t.Helper()
	for mark, n := range o.falseAlarms {
		if n > 7 {
			t.Errorf("%s fired in %d of %d repetitions with nothing changed", mark, n, seededReps)
		}
	}
	if o.naive < 20 {
		t.Errorf("the rule without a test fired in only %d of %d repetitions: the case does not show why a test is needed", o.naive, seededReps)
	}
	if o.caught < seededReps*95/100 {
		t.Errorf("the injected change was caught in %d of %d repetitions", o.caught, seededReps)
	}
}

// checkoutSpan is one request of a seeded check: an entry span of
// checkout's POST /pay lasting d, in the i-th of requests equal slots of
// the hour from t0, with random ids.
func checkoutSpan(rng *rand.Rand, t0 time.Time, i, requests int, d time.Duration, weight float64) store.Span {
	var s store.Span
	binary.BigEndian.PutUint64(s.TraceID[:8], rng.Uint64())
	binary.BigEndian.PutUint64(s.TraceID[8:], rng.Uint64())
	binary.BigEndian.PutUint64(s.SpanID[:], rng.Uint64()|1)
	s.Service, s.Name, s.Kind, s.Weight = "checkout", "POST /pay", store.KindServer, weight
	step := int64(time.Hour) / int64(requests)
	s.StartUnixNano = t0.UnixNano() + int64(i)*step + rng.Int64N(step)
	s.DurationNano = int64(d)
	return s
}
