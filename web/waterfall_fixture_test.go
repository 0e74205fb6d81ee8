package web

import (
	"fmt"
	"time"

	"github.com/tailscope/tailscope/store"
)

// needleName names the one span the waterfall tests look for: deep in a
// subtree that starts collapsed.
const needleName = "needle-lookup"

// wideTrace is a fan-out of n spans (n ≥ 102): a root calling shards
// db-shard-0… in parallel, each running 99 queries one after another (the
// shape of issue 19: 60 shards × 100 queries), and a needle span under one
// query of the last shard.
func wideTrace(n int) []store.Span {
	tid := store.TraceID{7, 7, 7}
	start := fixtureStart.UnixNano()
	id := func(i int) store.SpanID {
		var s store.SpanID
		s[0], s[1], s[2], s[3] = byte(i+1), byte((i+1)>>8), byte((i+1)>>16), 5
		return s
	}
	const perShard = 99
	shards := (n - 2) / (perShard + 1)
	spans := make([]store.Span, 0, n)
	spans = append(spans, store.Span{TraceID: tid, SpanID: id(0), Service: "gateway", Name: "GET /v1/report", Kind: store.KindServer,
		StartUnixNano: start, DurationNano: int64(3 * time.Second)})
	queryNs := int64(2*time.Second) / perShard
	var lastQuery store.Span
	for s := 0; s < shards; s++ {
		shard := store.Span{TraceID: tid, SpanID: id(len(spans)), ParentSpanID: spans[0].SpanID, Service: "report-svc",
			Name: "load shard", Kind: store.KindInternal, StartUnixNano: start + int64(s)*1000, DurationNano: int64(2*time.Second) + 1000}
		spans = append(spans, shard)
		for q := 0; q < perShard && len(spans) < n-1; q++ {
			lastQuery = store.Span{TraceID: tid, SpanID: id(len(spans)), ParentSpanID: shard.SpanID, Service: "report-svc",
				Name: "SELECT rows", Kind: store.KindClient, Dependency: fmt.Sprintf("db-shard-%d", s),
				StartUnixNano: shard.StartUnixNano + int64(q)*queryNs, DurationNano: queryNs - 1000}
			spans = append(spans, lastQuery)
		}
	}
	for len(spans) < n-1 { // pad to n with queries of the last shard's last query
		spans = append(spans, store.Span{TraceID: tid, SpanID: id(len(spans)), ParentSpanID: lastQuery.SpanID, Service: "db",
			Name: "scan", StartUnixNano: lastQuery.StartUnixNano, DurationNano: 1000})
	}
	spans = append(spans, store.Span{TraceID: tid, SpanID: id(len(spans)), ParentSpanID: lastQuery.SpanID, Service: "db",
		Name: needleName, StartUnixNano: lastQuery.StartUnixNano + 10, DurationNano: queryNs / 2})
	return spans
}

// deepTrace is waterfallTrace's random tree (up to 12 levels) of n-1 spans
// with a needle span under its deepest span.
func deepTrace(n int) []store.Span {
	spans := waterfallTrace(n - 1)
	tree := map[store.SpanID]store.SpanID{}
	for _, sp := range spans {
		tree[sp.SpanID] = sp.ParentSpanID
	}
	deepest, most := 0, -1
	for i, sp := range spans {
		d := 0
		for p := sp.ParentSpanID; !p.IsZero(); p = tree[p] {
			d++
		}
		if d > most {
			deepest, most = i, d
		}
	}
	parent := spans[deepest]
	nid := parent.SpanID
	nid[3] = 1 // waterfallTrace's ids have byte 3 zero
	return append(spans, store.Span{TraceID: parent.TraceID, SpanID: nid, ParentSpanID: parent.SpanID, Service: "svc-deep",
		Name: needleName, StartUnixNano: parent.StartUnixNano, DurationNano: max(parent.DurationNano/2, 1)})
}
