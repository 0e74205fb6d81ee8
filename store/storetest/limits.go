package storetest

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tailscope/tailscope/store"
)

// testLongKeyText: a span whose service, name, tenant, version or host is
// longer than an index entry may be (PostgreSQL: 2,704 bytes) — random
// text that does not compress, or NUL bytes that cleaning triples —
// is stored cut to the limits instead of failing its batch, and the
// batch's other spans are stored with it.
func testLongKeyText(t *testing.T, s store.Store) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + rng.IntN(26))
		}
		return string(b)
	}
	long := random(4000)
	invalid := strings.Repeat("\x00", 3000) // each NUL becomes U+FFFD (3 bytes)
	mk := func(n int) store.Span {
		sp := mkSpan(n, n, store.SpanID{}, "api", "GET /a", store.KindServer, at(time.Duration(n)*time.Millisecond), time.Millisecond)
		sp.Tenant, sp.Version, sp.Host = "acme", "v1", "h"
		return sp
	}
	name, tenant, labels, plain := mk(1), mk(2), mk(3), mk(4)
	name.Name = "SELECT " + long
	tenant.Tenant = invalid
	labels.Service, labels.Version, labels.Host = random(3000), random(3000), "é"+random(2999) // a rune across the limit
	write(t, s, name, tenant, labels, plain)
	for _, c := range []struct {
		id   store.TraceID
		want func(store.Span) bool
	}{
		{name.TraceID, func(sp store.Span) bool {
			return len(sp.Name) == store.MaxNameBytes && strings.HasPrefix(name.Name, sp.Name)
		}},
		{tenant.TraceID, func(sp store.Span) bool {
			return len(sp.Tenant) <= store.MaxLabelBytes && len(sp.Tenant) > store.MaxLabelBytes-3 && strings.Trim(sp.Tenant, "\uFFFD") == ""
		}},
		{labels.TraceID, func(sp store.Span) bool {
			return len(sp.Service) == store.MaxLabelBytes && len(sp.Version) == store.MaxLabelBytes &&
				len(sp.Host) <= store.MaxLabelBytes && strings.HasPrefix(labels.Host, sp.Host)
		}},
		{plain.TraceID, func(sp store.Span) bool { return sp.Name == "GET /a" && sp.Tenant == "acme" }},
	} {
		spans := mustTrace(t, s, c.id)
		if len(spans) != 1 {
			t.Fatalf("trace %s: %d spans, want 1", c.id, len(spans))
		}
		sp := spans[0]
		for _, f := range []string{sp.Service, sp.Name, sp.Tenant, sp.Version, sp.Host} {
			if !utf8.ValidString(f) {
				t.Errorf("trace %s: stored invalid UTF-8", c.id)
			}
		}
		if !c.want(sp) {
			t.Errorf("trace %s: stored service %d bytes, name %d, tenant %d, version %d, host %d: not cut as expected",
				c.id, len(sp.Service), len(sp.Name), len(sp.Tenant), len(sp.Version), len(sp.Host))
		}
	}
	// The cut tenant is the one rolled up.
	spans := mustTrace(t, s, tenant.TraceID)
	if ok, err := s.RolledUpTenant(ctxT(t), spans[0].Tenant); err != nil || !ok {
		t.Errorf("RolledUpTenant(the stored tenant) = %v, %v", ok, err)
	}
}
