package sqlcommon

import (
	"context"
	"strconv"
	"strings"

	"github.com/tailscope/tailscope/store"
)

// operationKinds selects the operation rollups by the span kinds a span can
// have (ingest clamps to these)
// have), named or not (otherKind).
var operationKinds = func() string {
	var b strings.Builder
	b.WriteString("kind IN (")
	for k := store.KindUnspecified; k <= store.KindConsumer; k++ {
		if k > store.KindUnspecified {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(int(k)) + ", " + strconv.Itoa(int(otherKind(int32(k)))))
	}
	return b.String() + ")"
}()

// OperationRollups answers an operations query from the operation rollups
// (kind ≥ 0): the rows of the window's buckets at store.RollupStep, merged
// per (service, span name, kind) in Go — bins are an encoded blob — so a
// read costs the operations × buckets of the window (≤ 360 buckets an
// operation at minutes, ≤ 2,160 at hours over 90 days), whatever the
// spans in it.
func (r RollupDB) OperationRollups(ctx context.Context, q store.OperationQuery) ([]store.OperationStats, error) {
	limit, err := checkOperationQuery(q, store.MaxOperationRollupRange)
	if err != nil {
		return nil, r.errorf("operation rollups", err)
	}
	if q.GroupBy != "" {
		return nil, r.errorf("operation rollups", invalid("operation rollups: group by %q: attributes are not a rollup dimension", q.GroupBy))
	}
	if q.BinScale != store.RollupBinScale() {
		return nil, r.errorf("operation rollups", invalid("operation rollups: bin scale %v: the rollups' is %v", q.BinScale, store.RollupBinScale()))
	}
	step := store.RollupStep(q.To.Sub(q.From))
	stepS, _ := stepSeconds(step)
	a := NewArgs(r.Conn.Dialect())
	conds := []string{"step_s = " + a.Add(stepS), operationKinds,
		"bucket_ns >= " + a.Add(floorTo(NS(q.From), int64(step))), "bucket_ns < " + a.Add(ceilTo(NS(q.To), int64(step)))}
	if q.Service != "" {
		conds = append(conds, "service = "+a.Add(q.Service))
	}
	merged, err := readRollups(ctx, r.Conn, conds, a.Vals, func(k *rollupKey) { k.bucket, k.stepS = 0, 0 })
	if err != nil {
		return nil, r.errorf("operation rollups", err)
	}
	out := make([]store.OperationStats, 0, len(merged))
	for k, agg := range merged {
		kind, other := isOther(k.kind)
		out = append(out, store.OperationStats{Service: k.service, Name: k.endpoint, Kind: store.SpanKind(kind), Other: other,
			Count: agg.count, Errors: agg.errors, MinNs: agg.min, MaxNs: agg.max, SumNs: agg.sum, ZeroCount: agg.zero,
			Bins: sortedBins(agg.bins)})
	}
	sortOperations(out)
	return out[:min(len(out), limit)], nil
}
