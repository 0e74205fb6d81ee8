package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// testRollupNamesBound: a service's spans are rolled up under their own
// name for its first store.MaxRollupNames names only, decided alike by
// concurrent writers; the rest are its Other rows, so its rows still sum
// to all its spans.
func testRollupNamesBound(t *testing.T, s store.Store) { RollupNamesBound(t, s, s) }

// RollupNamesBound is testRollupNamesBound with each writer on its own
// store handle: two handles on one database are two processes, each with
// its own cache of the names kept (store/postgres runs it so).
func RollupNamesBound(t *testing.T, a, b store.Store) {
	const perBatch = 50
	n := store.MaxRollupNames + 2*perBatch
	name := func(i int) string { return fmt.Sprintf("GET /items/%04d", i) }
	// Trace i: an entry span named name(i) of tenant acme and a client
	// span of the same service named after it too, so the name bound
	// covers entry, tenant and operation rows at once; copy 1 is sent
	// once the list is full.
	spans := func(i, copy int) []store.Span {
		id := i*2 + copy
		start := at(time.Duration(i) * time.Millisecond)
		entry := mkSpan(id, 1, store.SpanID{}, "api", name(i), store.KindServer, start, time.Millisecond)
		entry.Tenant = "acme"
		if i%10 == 0 {
			entry.StatusCode = store.StatusError
		}
		call := mkSpan(id, 2, spanID(1), "api", "q "+name(i), store.KindClient, start, time.Millisecond/2)
		return []store.Span{entry, call}
	}
	writeHalves(t, a, b, n, perBatch, func(i int) []store.Span { return spans(i, 0) })
	for i := 0; i < n; i += perBatch {
		var batch []store.Span
		for j := i; j < min(n, i+perBatch); j++ {
			batch = append(batch, spans(j, 1)...)
		}
		write(t, []store.Store{a, b}[(i/perBatch)%2], batch...)
	}

	s := a
	check := func(when string) {
		t.Helper()
		hour := store.RollupQuery{Step: store.RollupHour, From: base, To: base.Add(time.Hour), Service: "api"}
		named, other := map[string]int64{}, store.Rollup{}
		var total int64
		for _, r := range rollups(t, s, hour) {
			total += r.Count
			if r.Other {
				if r.Endpoint != "" || other.Count != 0 {
					t.Errorf("%s: a second or named Other row %+v", when, r)
				}
				other = r
				continue
			}
			named[r.Endpoint] += r.Count
		}
		kept := 0
		for i := range n {
			for _, nm := range []string{name(i), "q " + name(i)} {
				ok, err := s.RolledUpName(ctxT(t), "api", nm)
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					kept++
				}
				if nm != name(i) {
					continue
				}
				switch c := named[nm]; {
				case ok && c != 2:
					t.Errorf("%s: %s is rolled up with %d requests, want 2: its rollups miss spans", when, nm, c)
				case !ok && c != 0:
					t.Errorf("%s: %s is not rolled up but has rollups of %d requests", when, nm, c)
				}
				if !ok {
					if got := rollups(t, s, store.RollupQuery{Step: store.RollupHour, From: base, To: base.Add(time.Hour), Service: "api", Endpoint: nm}); len(got) != 0 {
						t.Errorf("%s: Rollups(endpoint %s) = %+v, want none: its spans are the Other rows'", when, nm, got)
					}
				}
			}
		}
		if kept != store.MaxRollupNames {
			t.Errorf("%s: RolledUpName true for %d names, want %d", when, kept, store.MaxRollupNames)
		}
		if total != int64(2*n) || other.Count != int64(2*n)-sumOf(named) || other.Count == 0 {
			t.Errorf("%s: rows sum to %d (Other %d), want %d with Other holding the %d not named", when, total, other.Count, 2*n, int64(2*n)-sumOf(named))
		}
		// Tenant rows: the same split, summing to all of acme's.
		var tenant, tenantOther int64
		for _, r := range rollups(t, s, store.RollupQuery{Step: store.RollupHour, From: base, To: base.Add(time.Hour), Service: "api", Tenant: "acme"}) {
			tenant += r.Count
			if r.Other {
				tenantOther += r.Count
			}
		}
		if tenant != int64(2*n) || tenantOther != other.Count {
			t.Errorf("%s: acme's rows sum to %d (Other %d), want %d (Other %d)", when, tenant, tenantOther, 2*n, other.Count)
		}
		// Operation rows: per kind, named and Other, summing to the spans.
		ops, err := s.OperationRollups(ctxT(t), store.OperationQuery{From: base, To: base.Add(time.Hour), Service: "api",
			BinScale: store.RollupBinScale(), Limit: store.MaxOperationLimit})
		if err != nil {
			t.Fatal(err)
		}
		perKind, others := map[store.SpanKind]int64{}, 0
		for _, o := range ops {
			perKind[o.Kind] += o.Count
			if o.Other {
				others++
				if o.Name != "" {
					t.Errorf("%s: Other operation row named %q", when, o.Name)
				}
			}
		}
		if perKind[store.KindServer] != int64(2*n) || perKind[store.KindClient] != int64(2*n) || others == 0 || len(ops) != store.MaxRollupNames+others {
			t.Errorf("%s: operations = %d rows (%d Other), server %d client %d; want %d named and Other rows, %d spans of each kind",
				when, len(ops), others, perKind[store.KindServer], perKind[store.KindClient], store.MaxRollupNames, 2*n)
		}
	}
	check("appended")
	if err := s.CompactRollups(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	check("compacted")
}

func sumOf(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
