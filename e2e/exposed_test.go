package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tailscope/tailscope/app"
	"github.com/tailscope/tailscope/internal/auth"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their paths and a pool trusting it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tailscope test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestExposed runs tailscope as it would be exposed — TLS on every
// listener, built-in accounts, API and ingest tokens — and checks each
// door: OTLP/HTTP and OTLP/gRPC refuse exports without a token, a
// tenant-bound token cannot write another tenant's spans, the UI sends an
// anonymous visitor to the login page and answers an API token.
func TestExposed(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	hash, err := auth.HashPassword("alice-password")
	if err != nil {
		t.Fatal(err)
	}
	file := auth.File{
		Accounts:     []auth.Account{{Name: "alice", PasswordHash: hash, Role: "editor"}},
		APITokens:    []auth.APIToken{{Name: "grafana", SHA256: auth.TokenHash("reader-token"), Role: "reader"}},
		IngestTokens: []auth.IngestToken{{Name: "acme-collector", SHA256: auth.TokenHash("acme-token"), Tenant: "acme"}, {Name: "collector", SHA256: auth.TokenHash("any-token")}},
	}
	b, _ := json.Marshal(file)
	authFile := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(authFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	a := startApp(t, "sqlite:"+filepath.Join(t.TempDir(), "ts.db"), func(cfg *app.Config) {
		cfg.Exposure = app.Exposure{Auth: auth.Config{Mode: auth.ModeAccounts, File: authFile}, TLSCert: certFile, TLSKey: keyFile}
	})
	if !strings.HasPrefix(a.URL(), "https://") {
		t.Fatalf("URL %s is not https", a.URL())
	}
	tlsc := &tls.Config{RootCAs: pool}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsc}, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ft := newFeedTemplate(t, feedShape{Service: "feed-api", Traces: 10, SpansPerTrace: 10, Start: time.Now().Add(-time.Minute)})

	// otherTenants counts the spans of request req naming a tenant other
	// than acme: what acme's token may not write.
	otherTenants := func(req uint32) int64 {
		td := ptraceotlp.NewExportRequest()
		if err := td.UnmarshalProto(ft.request(nil, req)); err != nil {
			t.Fatal(err)
		}
		var n int64
		rss := td.Traces().ResourceSpans()
		for i := range rss.Len() {
			sss := rss.At(i).ScopeSpans()
			for j := range sss.Len() {
				spans := sss.At(j).Spans()
				for k := range spans.Len() {
					if v, ok := spans.At(k).Attributes().Get("tenant.id"); ok && v.Str() != "acme" {
						n++
					}
				}
			}
		}
		if n == 0 || n == 100 {
			t.Fatalf("request %d has %d spans of other tenants; the test needs some of each", req, n)
		}
		return n
	}
	export := func(token string, req uint32) exportResult {
		t.Helper()
		r, _ := http.NewRequest(http.MethodPost, "https://"+a.OTLPHTTPAddr()+"/v1/traces", bytes.NewReader(ft.request(nil, req)))
		r.Header.Set("Content-Type", ctProtobuf)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := doOTLP(c, r)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	t.Run("otlp http", func(t *testing.T) {
		for _, tok := range []string{"", "wrong", "reader-token"} {
			if r := export(tok, 1); r.status != http.StatusUnauthorized {
				t.Errorf("token %q: %d, want 401", tok, r.status)
			}
		}
		if r := export("any-token", 2); r.status != http.StatusOK || r.rejected != 0 {
			t.Errorf("untenanted token: %d, %d rejected", r.status, r.rejected)
		}
		// The feed's ten traces cycle through five tenants.
		r := export("acme-token", 3)
		if want := otherTenants(3); r.status != http.StatusOK || r.rejected != want || !strings.Contains(r.message, "tenant not allowed") {
			t.Errorf("acme token: %d, %d rejected (%q), want 200 with the %d spans of other tenants rejected", r.status, r.rejected, r.message, want)
		}
	})
	t.Run("otlp grpc", func(t *testing.T) {
		conn, err := grpc.NewClient(a.OTLPGRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(tlsc)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		client := ptraceotlp.NewGRPCClient(conn)
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(ft.request(nil, 4)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := client.Export(ctx, req); status.Code(err) != codes.Unauthenticated {
			t.Errorf("no token: %v, want Unauthenticated", err)
		}
		resp, err := client.Export(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer acme-token"), req)
		if want := otherTenants(4); err != nil || resp.PartialSuccess().RejectedSpans() != want {
			t.Errorf("acme token: %v, %d rejected; want the %d spans of other tenants", err, resp.PartialSuccess().RejectedSpans(), want)
		}
	})
	t.Run("ui", func(t *testing.T) {
		resp, err := c.Get(a.URL() + "/budgets")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
			t.Errorf("anonymous /budgets: %d to %q, want the login page", resp.StatusCode, resp.Header.Get("Location"))
		}
		r, _ := http.NewRequest(http.MethodGet, a.URL()+"/api/v1/services", nil)
		r.Header.Set("Authorization", "Bearer reader-token")
		resp, err = c.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("reader token /api/v1/services: %d", resp.StatusCode)
		}
		r, _ = http.NewRequest(http.MethodPost, a.URL()+"/api/v1/deploys", strings.NewReader(`{"service":"a","version":"v2"}`))
		r.Header.Set("Authorization", "Bearer reader-token")
		resp, err = c.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("reader token posting a deploy: %d, want 403", resp.StatusCode)
		}
	})
}
