package sqlcommon

import (
	"math"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/storetest"
)

func TestEncodeBinsRoundTrip(t *testing.T) {
	tests := []map[int32]int64{
		{},
		{0: 1},
		{-300: 2, -1: 1, 0: 5, 1: 7, 400: 1 << 40},
		{math.MinInt32: 1, math.MaxInt32: 3},
	}
	for _, want := range tests {
		got := map[int32]int64{}
		if err := decodeBinsInto(EncodeBins(want), got); err != nil {
			t.Fatalf("decode %v: %v", want, err)
		}
		if len(got) != len(want) {
			t.Fatalf("round trip of %v = %v", want, got)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("round trip of %v = %v", want, got)
			}
		}
	}
	for _, bad := range [][]byte{{0x80}, {0x02}, {0x02, 0x80}} {
		if err := decodeBinsInto(bad, map[int32]int64{}); err == nil {
			t.Errorf("decode %x: no error", bad)
		}
	}
}

// TestRollupBuilderHours: minute rows roll up into their hour; entry
// rollups count only entry spans, operation rollups every span under its
// kind.
func TestRollupBuilderHours(t *testing.T) {
	at := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	span := func(id byte, start time.Duration, kind store.SpanKind, parent bool) store.Span {
		s := store.Span{TraceID: store.TraceID{id}, SpanID: store.SpanID{id}, Service: "svc", Name: "op", Kind: kind,
			StartUnixNano: at.Add(start).UnixNano(), DurationNano: int64(time.Millisecond)}
		if parent {
			s.ParentSpanID = store.SpanID{99}
		}
		return s
	}
	b := NewRollupBuilder()
	for _, s := range []store.Span{
		span(1, 0, store.KindServer, false),
		span(2, 30*time.Minute, store.KindServer, true),
		span(3, 59*time.Minute, store.KindClient, true), // not an entry
		span(4, 61*time.Minute, store.KindConsumer, true),
	} {
		b.Add(&s)
	}
	rows := b.rows()
	count := map[[3]int64]int64{}
	for k, a := range rows {
		count[[3]int64{int64(k.kind), int64(k.stepS), k.bucket}] += a.count
	}
	h := at.UnixNano()
	e, server, client, consumer := int64(entryKind), int64(store.KindServer), int64(store.KindClient), int64(store.KindConsumer)
	want := map[[3]int64]int64{
		{e, 60, h}: 1, {e, 60, h + int64(30*time.Minute)}: 1, {e, 60, h + int64(61*time.Minute)}: 1,
		{e, 3600, h}: 2, {e, 3600, h + int64(time.Hour)}: 1,
		{server, 60, h}: 1, {server, 60, h + int64(30*time.Minute)}: 1, {client, 60, h + int64(59*time.Minute)}: 1,
		{consumer, 60, h + int64(61*time.Minute)}: 1,
		{server, 3600, h}:                         2, {client, 3600, h}: 1, {consumer, 3600, h + int64(time.Hour)}: 1,
	}
	if len(count) != len(want) {
		t.Fatalf("rows %v, want %v", count, want)
	}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("rows %v, want %v", count, want)
		}
	}
}

// BenchmarkRollupBuilder is the write hook's CPU per batch before its
// INSERT: aggregating a batch of 5,000 realistic spans and encoding the
// rows.
func BenchmarkRollupBuilder(b *testing.B) {
	gen := storetest.NewBatchGen(5000, time.Now(), 0)
	spans := gen.Next()
	for b.Loop() {
		rb := NewRollupBuilder()
		for i := range spans {
			rb.Add(&spans[i])
		}
		for _, a := range rb.rows() {
			_ = EncodeBins(a.bins)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(spans)), "ns/span")
}
