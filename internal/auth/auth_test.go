package auth

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestPassword(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Errorf("hash %q is not a PHC argon2id string", h)
	}
	if !checkPassword(h, "correct horse") || checkPassword(h, "correct horsE") || checkPassword("garbage", "x") {
		t.Error("checkPassword accepts the wrong password or refuses the right one")
	}
}

func TestParseFile(t *testing.T) {
	hash, _ := HashPassword("pw")
	good := `{"accounts":[{"name":"a","password_hash":"` + hash + `","role":"reader"}],"api_tokens":[{"name":"ci","sha256":"` + TokenHash("t") + `","role":"deploy"}]}`
	if _, err := ParseFile([]byte(good)); err != nil {
		t.Fatalf("good file: %v", err)
	}
	for name, bad := range map[string]string{
		"unknown field":      `{"acounts":[]}`,
		"plain password":     `{"accounts":[{"name":"a","password_hash":"hunter2","role":"reader"}]}`,
		"deploy account":     `{"accounts":[{"name":"a","password_hash":"` + hash + `","role":"deploy"}]}`,
		"duplicate account":  `{"accounts":[{"name":"a","password_hash":"` + hash + `","role":"reader"},{"name":"a","password_hash":"` + hash + `","role":"reader"}]}`,
		"short token hash":   `{"api_tokens":[{"name":"ci","sha256":"abc","role":"reader"}]}`,
		"unknown token role": `{"api_tokens":[{"name":"ci","sha256":"` + TokenHash("t") + `","role":"admin"}]}`,
	} {
		if _, err := ParseFile([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestProxyTrust: the proxy's header is believed only from its address;
// anyone else sending it is anonymous.
func TestProxyTrust(t *testing.T) {
	a, err := New(Config{Mode: ModeProxy, ProxyUserHeader: "X-Forwarded-Email",
		ProxyTrusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, ProxyEditors: []string{"Ops@Example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		remote, email string
		ok            bool
		role          Role
	}{
		{"10.1.2.3:5000", "ops@example.com", true, RoleEditor},
		{"10.1.2.3:5000", "dev@example.com", true, RoleReader},
		{"192.168.1.9:5000", "ops@example.com", false, RoleNone},
		{"10.1.2.3:5000", "", false, RoleNone},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		r.Header.Set("X-Forwarded-Email", tt.email)
		p, ok, err := a.Identify(r)
		if err != nil || ok != tt.ok || p.Role != tt.role {
			t.Errorf("%s %q: %v %v %v, want ok=%v role %s", tt.remote, tt.email, p, ok, err, tt.ok, tt.role)
		}
	}
}

func TestRoleAllows(t *testing.T) {
	want := map[Role][]Access{
		RoleNone:   {AccessPublic},
		RoleDeploy: {AccessPublic, AccessDeploy},
		RoleReader: {AccessPublic, AccessReader},
		RoleEditor: {AccessPublic, AccessReader, AccessDeploy, AccessEditor},
	}
	for role, allowed := range want {
		for _, a := range []Access{AccessUnset, AccessPublic, AccessReader, AccessDeploy, AccessEditor} {
			in := false
			for _, x := range allowed {
				in = in || x == a
			}
			if role.Allows(a) != in {
				t.Errorf("%s allows %s = %v, want %v", role, a, role.Allows(a), in)
			}
		}
	}
}

// TestOpenModeIgnoresBearer: with authentication off and no API tokens, a
// client that sends a token (configured for another server) is not refused.
func TestOpenModeIgnoresBearer(t *testing.T) {
	a, err := New(Config{Mode: ModeNone})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer something")
	if p, ok, err := a.Identify(r); err != nil || !ok || p.Role != RoleEditor {
		t.Fatalf("%v %v %v, want the open editor", p, ok, err)
	}
}
