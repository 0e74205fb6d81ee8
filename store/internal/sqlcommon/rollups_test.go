package sqlcommon

import (
	"fmt"
	"math"
	"slices"
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
// INSERT: aggregating a batch of 5,000 realistic spans (500 traces of 8
// tenants) and encoding the rows; with tenant rollups (the registry's
// look-up included) for those 8 tenants, and for 200 (the batch's traces
// spread over 200 tenants, every one kept).
func BenchmarkRollupBuilder(b *testing.B) {
	gen := storetest.NewBatchGen(5000, time.Now(), 0)
	spans := gen.Next()
	many := slices.Clone(spans)
	for i := range many {
		many[i].Tenant = fmt.Sprintf("tenant-%03d", int(many[i].TraceID[7])%200)
	}
	for _, c := range []struct {
		name    string
		spans   []store.Span
		tenants bool
	}{{"without-tenants", spans, false}, {"tenants=8", spans, true}, {"tenants=200", many, true}} {
		b.Run(c.name, func(b *testing.B) {
			reg := NewTenantRegistry()
			if c.tenants {
				kept := map[string]bool{}
				for i := range c.spans {
					kept[c.spans[i].Tenant] = true
				}
				reg.Remember(TenantSet{kept: kept})
			}
			// Every name kept, as in a fleet within the bound: the
			// write looks each span's name up in the cached lists.
			names := NewNameRegistry()
			decided := map[string]*serviceNames{}
			for i := range c.spans {
				sp := &c.spans[i]
				if decided[sp.Service] == nil {
					decided[sp.Service] = &serviceNames{kept: map[string]bool{}}
				}
				decided[sp.Service].kept[sp.Name] = true
			}
			names.Remember(NameSet{decided: decided})
			rows := 0
			for b.Loop() {
				if c.tenants && len(reg.Undecided(c.spans, nil)) > 0 {
					b.Fatal("undecided tenants")
				}
				set := names.Current()
				if len(Undecided(set, c.spans, nil)) > 0 {
					b.Fatal("undecided names")
				}
				rb := NewRollupBuilder()
				rb.Tenants, rb.Names = reg.Current(), &set
				for i := range c.spans {
					rb.Add(&c.spans[i])
				}
				r := rb.rows()
				for _, a := range r {
					_ = EncodeBins(a.bins)
				}
				rows = len(r)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(c.spans)), "ns/span")
			b.ReportMetric(float64(rows), "rows/batch")
		})
	}
}

// TestNameRegistryCacheIsBounded: a registry that has seen more services
// than it caches starts over from the latest decision instead of growing
// with every service.name a fleet ever sent.
func TestNameRegistryCacheIsBounded(t *testing.T) {
	reg := NewNameRegistry()
	for i := range maxCachedNameServices + 10 {
		svc := fmt.Sprintf("pod-%d", i)
		n := &serviceNames{kept: map[string]bool{"GET /": true}}
		reg.Remember(NameSet{decided: map[string]*serviceNames{svc: n}})
		if got := len(reg.Current().services); got > maxCachedNameServices {
			t.Fatalf("after %d services the cache holds %d, want at most %d", i+1, got, maxCachedNameServices)
		}
		if !reg.Current().Has(svc, "GET /") {
			t.Fatalf("service %s just decided is not cached", svc)
		}
	}
}
