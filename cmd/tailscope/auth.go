package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/tailscope/tailscope/app"
	"github.com/tailscope/tailscope/internal/auth"
)

// exposureFlags are the flags of app.Exposure that need parsing after
// flag.Parse.
type exposureFlags struct {
	mode, proxyTrusted, proxyEditors, allowedHosts *string
}

// registerExposureFlags adds authentication, host and TLS flags.
func registerExposureFlags(fs *flag.FlagSet, cfg *app.Config) *exposureFlags {
	e := &cfg.Exposure
	f := &exposureFlags{}
	f.mode = fs.String("auth", "none", "who may use the UI and API: none (loopback only), accounts (built-in accounts, --auth-file) or proxy (a trusted reverse proxy's user header)")
	fs.StringVar(&e.Auth.File, "auth-file", "", "JSON file of accounts, API tokens and ingest tokens (README: Running it exposed); its ingest tokens guard the OTLP listeners")
	fs.DurationVar(&e.Auth.SessionTTL, "session-ttl", 0, "how long a login lasts (default 12h)")
	fs.StringVar(&e.Auth.ProxyUserHeader, "auth-proxy-header", "X-Forwarded-User", "proxy mode: the header naming the user (oauth2-proxy: X-Forwarded-User or X-Forwarded-Email)")
	f.proxyTrusted = fs.String("auth-proxy-trusted", "127.0.0.1/32,::1/128", "proxy mode: addresses (CIDR) the proxy connects from; the header is believed from them only")
	f.proxyEditors = fs.String("auth-proxy-editors", "", "proxy mode: users or emails who may edit (\"*\": everyone); others read")
	f.allowedHosts = fs.String("allowed-hosts", "", "more Host names the UI answers to (comma-separated host or host:port); others get 421")
	fs.BoolVar(&e.InsecureNoAuth, "insecure-no-auth", false, "allow a non-loopback address without authentication or ingest tokens")
	fs.StringVar(&e.TLSCert, "tls-cert", "", "PEM certificate: serve the UI and both OTLP listeners over TLS")
	fs.StringVar(&e.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	return f
}

// finish moves the parsed list flags into cfg.
func (f *exposureFlags) finish(cfg *app.Config) error {
	e := &cfg.Exposure
	// One --public-url (app.Config.PublicURL) for all: the base of
	// export and alert links, and a name the UI answers to.
	e.PublicURL = cfg.PublicURL
	e.Auth.Mode = auth.Mode(*f.mode)
	e.Auth.ProxyTrusted = nil
	for _, s := range splitList(*f.proxyTrusted) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("--auth-proxy-trusted %q: want CIDR prefixes such as 10.0.0.0/8: %w", s, err)
		}
		e.Auth.ProxyTrusted = append(e.Auth.ProxyTrusted, p)
	}
	e.Auth.ProxyEditors = splitList(*f.proxyEditors)
	e.AllowedHosts = splitList(*f.allowedHosts)
	return nil
}

// hashPassword reads a password (a line of stdin) and prints its argon2id
// hash for the accounts file.
func hashPassword(stdin io.Reader, stdout, stderr io.Writer) error {
	fmt.Fprintln(stderr, "password (one line on stdin):")
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	pw := strings.TrimRight(line, "\r\n")
	if len(pw) < 8 {
		return errors.New("a password of at least 8 characters is required")
	}
	h, err := auth.HashPassword(pw)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, h)
	return nil
}

// newToken prints a random token (to give the client) and its SHA-256 (for
// the accounts file).
func newToken(stdout io.Writer) error {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	tok := "ts_" + base64.RawURLEncoding.EncodeToString(b)
	fmt.Fprintf(stdout, "token:  %s\nsha256: %s\n", tok, auth.TokenHash(tok))
	return nil
}
