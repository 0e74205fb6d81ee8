package storetest

import (
	"math"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// testWeights: a span's weight (its adjusted count) round-trips through
// Trace and Samples, unset and meaningless weights read as 1, and the
// rollups and the operations read from spans count each span as its
// weight rounded half up (store.CountWeight).
func testWeights(t *testing.T, s store.Store) {
	weights := []float64{0, 1, 2.5, 4, 19.6, 1.0 / (1 - 0.9), 1e6}
	// The largest weight, of a service of its own: its sums saturate.
	huge := mkSpan(99, 990, store.SpanID{}, "huge", "GET /h", store.KindServer, at(0), time.Millisecond)
	huge.Weight = store.MaxWeight
	write(t, s, huge)
	if got := mustTrace(t, s, huge.TraceID); len(got) != 1 || got[0].Weight != store.MaxWeight {
		t.Errorf("Trace: span of weight 2^56 read back as %+v", got)
	}
	var spans []store.Span
	for i, w := range weights {
		sp := mkSpan(i+1, 10*(i+1), store.SpanID{}, "sampled", "GET /w", store.KindServer,
			at(time.Duration(i)*time.Second), time.Duration(i+1)*time.Millisecond)
		sp.Weight = w
		if i == 2 {
			sp.StatusCode = store.StatusError
		}
		spans = append(spans, sp)
	}
	// In two writes: a bucket's rows are appended per write and merged by
	// readers and by compaction.
	write(t, s, spans[:3]...)
	write(t, s, spans[3:]...)

	var count, errs, sum, wsq int64
	for i, sp := range spans {
		got := mustTrace(t, s, sp.TraceID)
		if len(got) != 1 {
			t.Fatalf("trace %d: %d spans", i, len(got))
		}
		if want := store.NormWeight(sp.Weight); got[0].Weight != want {
			t.Errorf("Trace: span of weight %v read back as %v, want %v", sp.Weight, got[0].Weight, want)
		}
		w := store.CountWeight(sp.Weight)
		count += w
		wsq += w * w
		sum += w * sp.DurationNano
		if sp.StatusCode == store.StatusError {
			errs += w
		}
	}
	samples, err := s.Samples(ctxT(t), store.SampleQuery{Service: "sampled", From: base, To: base.Add(time.Minute)})
	if err != nil || len(samples) != len(spans) {
		t.Fatalf("Samples = %d rows, %v; want %d", len(samples), err, len(spans))
	}
	for _, sm := range samples {
		i := int(sm.StartUnixNano-base.UnixNano()) / int(time.Second)
		if want := store.NormWeight(weights[i]); sm.Weight != want {
			t.Errorf("Samples: span of weight %v read back as %v, want %v", weights[i], sm.Weight, want)
		}
	}
	if store.CountWeight(2.5) != 3 || store.CountWeight(0) != 1 || store.CountWeight(19.6) != 20 {
		t.Fatalf("CountWeight rounds 2.5, 0, 19.6 to %d, %d, %d; want 3, 1, 20",
			store.CountWeight(2.5), store.CountWeight(0), store.CountWeight(19.6))
	}

	// Both families of rollups, and the operations read from spans.
	rs := rollups(t, s, store.RollupQuery{Step: store.RollupMinute, From: base, To: base.Add(time.Minute), Service: "sampled"})
	if len(rs) != 1 || rs[0].Count != count || rs[0].Errors != errs || rs[0].Roots != count || rs[0].SumNs != sum {
		t.Fatalf("entry rollups = %+v; want count %d, errors %d, roots %d, sum %d", rs, count, errs, count, sum)
	}
	var binned int64
	for _, b := range rs[0].Bins {
		binned += b.Count
	}
	if binned+rs[0].ZeroCount != count {
		t.Errorf("entry rollup bins hold %d, want %d", binned+rs[0].ZeroCount, count)
	}
	// WeightSq: the sum of the squared count weights, from which tests
	// take the effective sample size — in the minute and hour rows, before
	// and after compaction folds the two writes' rows; saturated for the
	// span of weight 2^56.
	for _, compacted := range []bool{false, true} {
		if compacted {
			if err := s.CompactRollups(ctxT(t)); err != nil {
				t.Fatalf("CompactRollups: %v", err)
			}
		}
		for _, step := range []time.Duration{store.RollupMinute, store.RollupHour} {
			q := store.RollupQuery{Step: step, From: base.Truncate(step), To: base.Truncate(step).Add(step), Service: "sampled"}
			if rs := rollups(t, s, q); len(rs) != 1 || rs[0].WeightSq != wsq || rs[0].Count != count {
				t.Errorf("rollups by %s (compacted %v) = %+v; want count %d, weight_sq %d", step, compacted, rs, count, wsq)
			}
			q.Service = "huge"
			if rs := rollups(t, s, q); len(rs) != 1 || rs[0].WeightSq != math.MaxInt64 {
				t.Errorf("rollups of the span of weight 2^56 by %s = %+v; want weight_sq saturated", step, rs)
			}
		}
	}
	q := store.OperationQuery{From: base, To: base.Add(time.Minute), Service: "sampled", BinScale: store.RollupBinScale()}
	for name, read := range map[string]func(store.OperationQuery) ([]store.OperationStats, error){
		"OperationRollups": func(q store.OperationQuery) ([]store.OperationStats, error) { return s.OperationRollups(ctxT(t), q) },
		"Operations":       func(q store.OperationQuery) ([]store.OperationStats, error) { return s.Operations(ctxT(t), q) },
	} {
		ops, err := read(q)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(ops) != 1 || ops[0].Count != count || ops[0].Errors != errs || ops[0].SumNs != sum {
			t.Fatalf("%s = %+v; want count %d, errors %d, sum %d", name, ops, count, errs, sum)
		}
		// Only a read of spans can tell a weighted count from a plain one.
		if want := name == "Operations"; ops[0].Weighted != want {
			t.Errorf("%s: weighted %v, want %v", name, ops[0].Weighted, want)
		}
	}
}
