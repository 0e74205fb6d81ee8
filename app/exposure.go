package app

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/tailscope/tailscope/internal/auth"
)

// Exposure is how tailscope may be reached beyond this machine: who may
// use it, under which names, and over TLS.
type Exposure struct {
	// Auth configures the UI and API (mode none, accounts or proxy) and
	// names the accounts file, whose ingest tokens guard the OTLP
	// listeners.
	Auth auth.Config
	// PublicURL is the address people use (https://tailscope.example):
	// its host is allowed, and https makes the session cookie Secure.
	PublicURL string
	// AllowedHosts are more Host values the UI answers to.
	AllowedHosts []string
	// InsecureNoAuth allows binding a non-loopback address without
	// authentication (a trusted network, a demo on a private VM).
	InsecureNoAuth bool
	// TLSCert and TLSKey (PEM files) serve every listener over TLS.
	TLSCert, TLSKey string
}

// loopback reports whether a listen address reaches only this machine.
// ":8080" and "0.0.0.0:8080" bind every interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkExposure refuses a configuration that would serve the world
// without credentials, unless InsecureNoAuth says so on purpose.
func checkExposure(cfg Config, a *auth.Authenticator) error {
	if cfg.Exposure.InsecureNoAuth {
		return nil
	}
	if a.Open() && !loopback(cfg.HTTPAddr) {
		return fmt.Errorf("refusing to serve the UI on %s without authentication: use --auth accounts or --auth proxy, bind 127.0.0.1, or pass --insecure-no-auth", cfg.HTTPAddr)
	}
	if !a.IngestRequired() {
		for _, addr := range []string{cfg.Ingest.HTTPAddr, cfg.Ingest.GRPCAddr} {
			if !loopback(addr) {
				return fmt.Errorf("refusing to receive OTLP on %s without ingest tokens: add ingest_tokens to --auth-file, bind 127.0.0.1, or pass --insecure-no-auth", addr)
			}
		}
	}
	return nil
}

// newAuthenticator builds the Authenticator of the configuration.
func newAuthenticator(cfg Config) (*auth.Authenticator, error) {
	ac := cfg.Exposure.Auth
	if u, err := url.Parse(cfg.Exposure.PublicURL); err == nil && u.Scheme == "https" || cfg.Exposure.TLSCert != "" {
		ac.SecureCookies = true
	}
	return auth.New(ac)
}

// allowedHosts are the Host values the UI answers to: the bound address,
// the localhost names on its port, the public URL's host and the extra
// ones configured. Any other name is a DNS rebinding or a mistake.
func allowedHosts(cfg Config, bound net.Addr) ([]string, error) {
	_, port, err := net.SplitHostPort(bound.String())
	if err != nil {
		return nil, err
	}
	hosts := []string{bound.String(), cfg.HTTPAddr}
	for _, h := range []string{"localhost", "127.0.0.1", "[::1]"} {
		hosts = append(hosts, h+":"+port)
	}
	if cfg.Exposure.PublicURL != "" {
		u, err := url.Parse(cfg.Exposure.PublicURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("--public-url %q: want an absolute URL such as https://tailscope.example", cfg.Exposure.PublicURL)
		}
		hosts = append(hosts, u.Host)
	}
	return append(hosts, cfg.Exposure.AllowedHosts...), nil
}

// tlsListener wraps lis in TLS when a certificate is configured; protos
// are the ALPN protocols (gRPC needs h2).
func tlsListener(lis net.Listener, cert *tls.Certificate, protos ...string) net.Listener {
	if cert == nil {
		return lis
	}
	return tls.NewListener(lis, &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12, NextProtos: protos})
}

// requireIngestToken guards a handler of the OTLP/HTTP listener (profile
// uploads) with the ingest tokens, as the trace receiver does itself.
func requireIngestToken(a *auth.Authenticator, next http.Handler) http.Handler {
	if !a.IngestRequired() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := auth.BearerToken(r.Header.Get("Authorization"))
		if ok {
			_, _, ok = a.Ingest(tok)
		}
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tailscope ingest"`)
			http.Error(w, "an ingest token is required: send Authorization: Bearer <token>", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
