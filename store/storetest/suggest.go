package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// testAttributeSuggestions: keys and values of span attributes, most
// frequent first with ties by text, in search's text form, filtered by
// service, window and prefix, and bounded by Limit and Scan.
func testAttributeSuggestions(t *testing.T, s store.Store) {
	attrs := []struct {
		service string
		json    string
	}{
		{"sugg", `{"http.method":"GET","tenant.id":"acme","n":3}`},
		{"sugg", `{"http.method":"POST","tenant.id":"acme"}`},
		{"sugg", `{"http.method":"GET","flag":true,"obj":{"a":1},"big":12345678901234567890}`},
		{"other", `{"other.key":"x"}`},
	}
	var spans []store.Span
	for i, a := range attrs {
		sp := mkSpan(i+1, i+1, store.SpanID{}, a.service, "op", store.KindServer, at(time.Duration(i)*time.Second), time.Millisecond)
		sp.Attributes = store.Attributes(a.json)
		spans = append(spans, sp)
	}
	write(t, s, spans...)
	window := func(q store.AttributeQuery) store.AttributeQuery {
		q.From, q.To = base.Add(-time.Minute), base.Add(time.Minute)
		if q.Limit == 0 {
			q.Limit = 10
		}
		if q.Scan == 0 {
			q.Scan = 1000
		}
		return q
	}
	for _, tc := range []struct {
		name   string
		values bool
		q      store.AttributeQuery
		want   string
	}{
		{"keys of a service", false, window(store.AttributeQuery{Service: "sugg"}), "[{http.method 3} {tenant.id 2} {big 1} {flag 1} {n 1} {obj 1}]"},
		{"keys limited", false, window(store.AttributeQuery{Service: "sugg", Limit: 2}), "[{http.method 3} {tenant.id 2}]"},
		{"keys by prefix", false, window(store.AttributeQuery{Service: "sugg", Prefix: "te"}), "[{tenant.id 2}]"},
		{"keys of every service", false, window(store.AttributeQuery{Prefix: "o"}), "[{obj 1} {other.key 1}]"},
		{"keys outside the window", false, store.AttributeQuery{From: base.Add(time.Hour), To: base.Add(2 * time.Hour), Limit: 10, Scan: 10}, "[]"},
		{"values", true, window(store.AttributeQuery{Service: "sugg", Key: "http.method"}), "[{GET 2} {POST 1}]"},
		{"values by prefix", true, window(store.AttributeQuery{Service: "sugg", Key: "http.method", Prefix: "P"}), "[{POST 1}]"},
		{"a number as written", true, window(store.AttributeQuery{Key: "big"}), "[{12345678901234567890 1}]"},
		{"a small number", true, window(store.AttributeQuery{Key: "n"}), "[{3 1}]"},
		{"a boolean", true, window(store.AttributeQuery{Key: "flag"}), "[{true 1}]"},
		{"no objects", true, window(store.AttributeQuery{Key: "obj"}), "[]"},
		{"values of another service", true, window(store.AttributeQuery{Service: "other", Key: "http.method"}), "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []store.AttributeCount
			var err error
			if tc.values {
				got, err = s.AttributeValues(ctxT(t), tc.q)
			} else {
				got, err = s.AttributeKeys(ctxT(t), tc.q)
			}
			if err != nil {
				t.Fatal(err)
			}
			if got == nil || fmt.Sprint(got) != tc.want {
				t.Errorf("got %v, want %s", got, tc.want)
			}
		})
	}
	t.Run("scan bounds the spans read", func(t *testing.T) {
		got, err := s.AttributeKeys(ctxT(t), window(store.AttributeQuery{Service: "sugg", Scan: 1}))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 || len(got) > 4 {
			t.Errorf("one span's keys: %v", got)
		}
		for _, c := range got {
			if c.Count != 1 {
				t.Errorf("key %s counted %d times in a sample of one span", c.Value, c.Count)
			}
		}
	})
	for name, q := range map[string]store.AttributeQuery{
		"no limit":     window(store.AttributeQuery{Limit: -1}),
		"scan too far": window(store.AttributeQuery{Scan: 1 << 30}),
		"inverted":     {From: base, To: base.Add(-time.Hour), Limit: 1, Scan: 1},
	} {
		_, err := s.AttributeKeys(ctxT(t), q)
		wantErrIs(t, "AttributeKeys("+name+")", err, store.ErrInvalid)
	}
	_, err := s.AttributeValues(ctxT(t), window(store.AttributeQuery{}))
	wantErrIs(t, "AttributeValues(no key)", err, store.ErrInvalid)
}
