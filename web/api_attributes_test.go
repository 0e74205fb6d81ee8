package web

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAPIAttributeSuggestions(t *testing.T) {
	f := sharedFixture(t)
	get := func(t *testing.T, target string) (int, attributeSuggestions, string) {
		t.Helper()
		w := serve(t, f.handler, "GET", target, "")
		var got attributeSuggestions
		if w.Code == http.StatusOK {
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("%s: %v", target, err)
			}
		}
		return w.Code, got, w.Body.String()
	}
	values := func(a attributeSuggestions) []string {
		var out []string
		for _, v := range a.Values {
			out = append(out, v.Value)
		}
		return out
	}

	t.Run("keys", func(t *testing.T) {
		code, got, body := get(t, "/api/v1/attributes/keys?from=now-24h")
		if code != 200 {
			t.Fatalf("status %d: %s", code, body)
		}
		if !slices.Contains(values(got), "tenant.id") {
			t.Errorf("keys %v lack tenant.id", values(got))
		}
		for i := 1; i < len(got.Values); i++ {
			if got.Values[i].Count > got.Values[i-1].Count {
				t.Errorf("keys not most frequent first: %v", got.Values)
			}
		}
		// a day asked, the last hour read
		if d := got.To.Sub(got.From); d != time.Hour || got.Scanned != suggestScan {
			t.Errorf("read %v and at most %d spans, want the last hour and %d", d, got.Scanned, suggestScan)
		}
	})
	t.Run("keys by prefix and limit", func(t *testing.T) {
		_, got, _ := get(t, "/api/v1/attributes/keys?from=now-24h&prefix=tenant&limit=1")
		if len(got.Values) != 1 || !strings.HasPrefix(got.Values[0].Value, "tenant") {
			t.Errorf("keys %v, want one starting with tenant", values(got))
		}
	})
	t.Run("values", func(t *testing.T) {
		code, got, body := get(t, "/api/v1/attributes/values?from=now-24h&service=feed-api&key=tenant.id")
		if code != 200 {
			t.Fatalf("status %d: %s", code, body)
		}
		if got.Key != "tenant.id" || !slices.Contains(values(got), "acme") {
			t.Errorf("values of tenant.id: %v", values(got))
		}
	})
	for _, tc := range []struct{ name, target, want string }{
		{"values need a key", "/api/v1/attributes/values?from=now-1h", "key is required"},
		{"limit", "/api/v1/attributes/keys?limit=5000", "limit"},
		{"range", "/api/v1/attributes/keys?from=yesterday", "from:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := get(t, tc.target)
			if code != http.StatusBadRequest || !strings.Contains(body, tc.want) {
				t.Errorf("status %d %s, want 400 saying %q", code, body, tc.want)
			}
		})
	}
}
