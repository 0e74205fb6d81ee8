package spanname

import (
	"strings"
	"testing"
)

func TestAppend(t *testing.T) {
	for _, tc := range []struct {
		name, route string
		want        string // "" when kept as sent
	}{
		// A route wins.
		{"GET /users/12345", "/users/{userId}", "GET /users/{userId}"},
		{"GET", "/users/:id", "GET /users/:id"},
		{"HTTP POST", "/orders", "POST /orders"},
		{"/users/42", "/users/{id}", "/users/{id}"},
		{"GET /users/{userId}", "/users/{userId}", ""},
		{"GET", "", ""},
		{"GET", "users", ""}, // not a route
		{"checkout", "/checkout", ""},
		// Paths without a route: values become {id}, the query goes.
		{"GET /users/12345", "", "GET /users/{id}"},
		{"GET /users/12345/orders/98765", "", "GET /users/{id}/orders/{id}"},
		{"GET /search?q=shoes&page=2", "", "GET /search"},
		{"GET /docs#install", "", "GET /docs"},
		{"DELETE /carts/3f2a9c1e-7b4d-4e1a-9c3f-0a1b2c3d4e5f/items/7", "", "DELETE /carts/{id}/items/{id}"},
		{"GET /objects/507f1f77bcf86cd799439011", "", "GET /objects/{id}"},
		{"GET /invoices/INV-2024-0001", "", "GET /invoices/{id}"},
		{"GET /users/alice@example.com", "", "GET /users/{id}"},
		{"GET /users/alice%40example.com/avatar", "", "GET /users/{id}/avatar"},
		{"GET /reports/2024-01-15", "", "GET /reports/{id}"},
		{"GET /charges/ch_3MmlLrLkdIwHu7ix0snN0B15", "", "GET /charges/{id}"},
		{"/api/v1/users/7", "", "/api/v1/users/{id}"},
		{"GET https://user:pw@api.example.com/v1/charges/12345?expand=x", "", "GET https://api.example.com/v1/charges/{id}"},
		{"GET https://api.example.com?q=1", "", "GET https://api.example.com"},
		// Words with a digit or two stay; names that are not paths stay.
		{"GET /api/v2/oauth2/token", "", ""},
		{"GET /certs/x509/s3/ipv6", "", ""},
		{"GET /", "", ""},
		{"GET /feed", "", ""},
		{"SELECT feed", "", ""},
		{"feed.Service/GetFeed", "", ""},
		{"redis GET user:12345", "", ""},
		{"HTTP GET /x/12345", "", ""}, // not a form instrumentations send
		{"GETX /x/12345", "", ""},
		{"", "", ""},
	} {
		got, changed := Append(nil, tc.name, tc.route)
		if changed != (tc.want != "") || changed && string(got) != tc.want {
			t.Errorf("Append(%q, route %q) = %q, changed %v; want %q", tc.name, tc.route, got, changed, tc.want)
		}
	}
}

func TestIDSegment(t *testing.T) {
	for _, tc := range []struct {
		seg  string
		want bool
	}{
		{"12345", true}, {"0", true}, {"10.0.0.1", true}, {"2024-01-15", true},
		{"3f2a9c1e", true}, {"3F2A9C1E-7B4D-4E1A-9C3F-0A1B2C3D4E5F", true}, {"507f1f77bcf86cd799439011", true},
		{"user-12345", true}, {"order_98765", true}, {"ch_3MmlLrLkdIwHu7ix0snN0B15", true},
		{"bob@example.com", true}, {"bob%40example.com", true},
		{"", false}, {"users", false}, {"v2", false}, {"oauth2", false}, {"x509", false}, {"ipv6", false},
		{"deadbeef", false}, {"cafe", false}, {"getUserPreferences2", false}, {"{id}", false}, {"v1.2.3", false},
		{"über", false},
	} {
		if got := IDSegment(tc.seg); got != tc.want {
			t.Errorf("IDSegment(%q) = %v, want %v", tc.seg, got, tc.want)
		}
	}
}

// FuzzAppend: any name and route give a template without a query
// or fragment, and a template is its own template.
func FuzzAppend(f *testing.F) {
	for _, s := range []string{"GET /users/12345?x=1", "GET", "HTTP GET", "/a/b@c/2024-01-01#f", "GET https://u:p@h:8080/x/9999?q",
		"https://h?q", "POST /", "_OTHER //x//12345/", "SELECT 1"} {
		f.Add(s, "/users/{id}")
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, name, route string) {
		out, changed := Append(nil, name, route)
		if !changed {
			return
		}
		tmpl := string(out)
		if tmpl == name {
			t.Fatalf("Append(%q, %q) reports a change but returns the name", name, route)
		}
		if !strings.HasPrefix(route, "/") {
			if _, path, _ := strings.Cut(tmpl, "/"); strings.ContainsAny(path, "?#") {
				t.Fatalf("Append(%q) = %q keeps a query or fragment", name, tmpl)
			}
		}
		if again, changed := Append(nil, tmpl, route); changed {
			t.Fatalf("Append(%q) = %q, then %q: a template must be its own", name, tmpl, again)
		}
	})
}
