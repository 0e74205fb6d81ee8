package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// testTenantRollups: entry spans are rolled up per tenant (the empty
// tenant too), each stored span once, and read by tenant or for all.
func testTenantRollups(t *testing.T, s store.Store) {
	mk := func(trace int, tenant string, start time.Duration, dur time.Duration, status store.StatusCode) store.Span {
		sp := mkSpan(trace, trace, store.SpanID{}, "api", "GET /a", store.KindServer, at(start), dur)
		sp.Tenant, sp.StatusCode, sp.Version = tenant, status, "v1"
		return sp
	}
	acme1 := mk(1, "acme", 0, 10*time.Millisecond, 0)
	acme2 := mk(2, "acme", time.Second, 30*time.Millisecond, store.StatusError)
	hooli := mk(3, "hooli", 2*time.Second, 20*time.Millisecond, 0)
	none := mk(4, "", 3*time.Second, 5*time.Millisecond, 0)
	later := mk(5, "acme", 61*time.Second, 40*time.Millisecond, 0)
	// A child span carries the tenant too, but only entry spans count.
	child := mkSpan(1, 11, spanID(1), "db", "SELECT", store.KindClient, at(time.Millisecond), time.Millisecond)
	child.Tenant = "acme"
	write(t, s, acme1, acme2, hooli, child)
	write(t, s, none, later, acme1) // acme1 resent: counted once
	minute := base.UnixNano()
	got := rollups(t, s, store.RollupQuery{Step: store.RollupMinute, From: base, To: base.Add(2 * time.Minute), Service: "api", ByTenant: true})
	equalRollups(t, "Rollups(by tenant)", got, []store.Rollup{
		{Service: "api", Endpoint: "GET /a", BucketUnixNano: minute, Count: 1, Roots: 1, FirstUnixNano: at(3 * time.Second),
			MinNs: int64(5 * time.Millisecond), MaxNs: int64(5 * time.Millisecond), SumNs: int64(5 * time.Millisecond), Bins: bins(5 * time.Millisecond)},
		{Service: "api", Endpoint: "GET /a", Tenant: "acme", BucketUnixNano: minute, Count: 2, Errors: 1, Roots: 2, FirstUnixNano: at(0),
			MinNs: int64(10 * time.Millisecond), MaxNs: int64(30 * time.Millisecond), SumNs: int64(40 * time.Millisecond),
			Bins: bins(10*time.Millisecond, 30*time.Millisecond)},
		{Service: "api", Endpoint: "GET /a", Tenant: "acme", BucketUnixNano: minute + int64(time.Minute), Count: 1, Roots: 1,
			FirstUnixNano: at(61 * time.Second), MinNs: int64(40 * time.Millisecond), MaxNs: int64(40 * time.Millisecond),
			SumNs: int64(40 * time.Millisecond), Bins: bins(40 * time.Millisecond)},
		{Service: "api", Endpoint: "GET /a", Tenant: "hooli", BucketUnixNano: minute, Count: 1, Roots: 1, FirstUnixNano: at(2 * time.Second),
			MinNs: int64(20 * time.Millisecond), MaxNs: int64(20 * time.Millisecond), SumNs: int64(20 * time.Millisecond), Bins: bins(20 * time.Millisecond)},
	})
	hour := rollups(t, s, store.RollupQuery{Step: store.RollupHour, From: base, To: base.Add(time.Hour), Tenant: "acme"})
	if len(hour) != 1 || hour[0].Tenant != "acme" || hour[0].Count != 3 || hour[0].Errors != 1 || hour[0].Endpoint != "GET /a" {
		t.Errorf("Rollups(tenant acme, hour) = %+v, want one row of 3 requests, 1 error", hour)
	}
	if got := rollups(t, s, store.RollupQuery{Step: store.RollupHour, From: base, To: base.Add(time.Hour), Tenant: "initech"}); len(got) != 0 {
		t.Errorf("Rollups(tenant initech) = %+v, want none", got)
	}
	// The entry rollups are unchanged by the tenant rows beside them.
	if all := rollups(t, s, store.RollupQuery{Step: store.RollupHour, From: base, To: base.Add(time.Hour), Service: "api"}); len(all) != 1 || all[0].Count != 5 {
		t.Errorf("Rollups(api) = %+v, want one row of 5 requests", all)
	}
	for tenant, want := range map[string]bool{"acme": true, "hooli": true, "": true, "initech": false} {
		ok, err := s.RolledUpTenant(ctxT(t), tenant)
		if err != nil || ok != want {
			t.Errorf("RolledUpTenant(%q) = %v, %v; want %v", tenant, ok, err, want)
		}
	}
	for _, q := range []store.RollupQuery{
		{Step: store.RollupHour, From: base, To: base.Add(time.Hour), Tenant: "acme", Version: "v1"},
		{Step: store.RollupHour, From: base, To: base.Add(time.Hour), ByTenant: true, ByVersion: true},
	} {
		_, err := s.Rollups(ctxT(t), q)
		wantErrIs(t, "Rollups(tenant and version)", err, store.ErrInvalid)
	}
	samples, err := s.Samples(ctxT(t), store.SampleQuery{Service: "api", Tenant: "acme"})
	if err != nil || len(samples) != 3 {
		t.Errorf("Samples(tenant acme) = %d samples, %v; want 3", len(samples), err)
	}
}

// testTenantRollupsBound: only the first store.MaxRollupTenants tenants
// are rolled up, decided alike by concurrent writers: every kept tenant's
// rollups count all its spans, written before or after the list filled,
// and the others have none.
func testTenantRollupsBound(t *testing.T, s store.Store) { TenantRollupsBound(t, s, s) }

// TenantRollupsBound is testTenantRollupsBound with each writer on its
// own store handle: two handles on one database are two processes, each
// with its own cache of the tenants kept (store/postgres runs it so).
func TenantRollupsBound(t *testing.T, a, b store.Store) {
	const perBatch = 50
	n := store.MaxRollupTenants + 2*perBatch
	span := func(i, copy int) store.Span {
		id := i*2 + copy
		sp := mkSpan(id, id, store.SpanID{}, "api", "GET /a", store.KindServer, at(time.Duration(i)*time.Millisecond), time.Millisecond)
		sp.Tenant = fmt.Sprintf("t%04d", i)
		return sp
	}
	// Two writers, each its own half of the tenants, 50 to a batch: the
	// list fills while both are writing.
	writeHalves(t, a, b, n, perBatch, func(i int) []store.Span { return []store.Span{span(i, 0)} })
	// A second span of every tenant, after the list is full, through
	// each handle in turn.
	for i := 0; i < n; i += perBatch {
		s := []store.Store{a, b}[(i/perBatch)%2]
		var batch []store.Span
		for j := i; j < min(n, i+perBatch); j++ {
			batch = append(batch, span(j, 1))
		}
		write(t, s, batch...)
	}
	s := a
	rows := rollups(t, s, store.RollupQuery{Step: store.RollupHour, From: base, To: base.Add(time.Hour), ByTenant: true})
	counts := map[string]int64{}
	for _, r := range rows {
		counts[r.Tenant] += r.Count
	}
	if len(counts) != store.MaxRollupTenants {
		t.Errorf("%d tenants rolled up, want %d", len(counts), store.MaxRollupTenants)
	}
	kept := 0
	for i := range n {
		tenant := fmt.Sprintf("t%04d", i)
		ok, err := s.RolledUpTenant(ctxT(t), tenant)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			kept++
		}
		switch c := counts[tenant]; {
		case ok && c != 2:
			t.Errorf("tenant %s is rolled up with %d requests, want 2: its rollups miss spans", tenant, c)
		case !ok && c != 0:
			t.Errorf("tenant %s is not rolled up but has rollups of %d requests", tenant, c)
		}
	}
	if kept != store.MaxRollupTenants {
		t.Errorf("RolledUpTenant true for %d tenants, want %d", kept, store.MaxRollupTenants)
	}
	if all := rollups(t, s, store.RollupQuery{Step: store.RollupHour, From: base, To: base.Add(time.Hour)}); len(all) != 1 || all[0].Count != int64(2*n) {
		t.Errorf("Rollups = %+v, want one row of %d requests", all, 2*n)
	}
}

// writeHalves writes the spans of items 0..n-1 from two writers at once,
// a through the even items and b the odd ones, perBatch items to a batch:
// a list the items fill fills while both are writing.
func writeHalves(t *testing.T, a, b store.Store, n, perBatch int, spans func(i int) []store.Span) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w, s := range []store.Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var batch []store.Span
			items := 0
			for i := w; i < n; i += 2 {
				batch, items = append(batch, spans(i)...), items+1
				if items == perBatch || i+2 >= n {
					if err := s.WriteSpans(ctxT(t), batch); err != nil {
						errs <- err
						return
					}
					batch, items = nil, 0
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
