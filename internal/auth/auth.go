// Package auth decides who a request comes from and what it may do:
// built-in accounts (argon2id password hashes, server-side sessions), API
// tokens (bearer, for CI and scrapers), a trusted reverse proxy's user
// header (oauth2-proxy), and ingest tokens for the OTLP listeners. It holds
// no HTTP routes: web and ingest ask it.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// Role is what a principal may do.
type Role int

// Roles, each allowed what the one before it is (but Deploy, which is
// only for CI pipelines recording deploy markers).
const (
	RoleNone   Role = iota // anonymous when authentication is on
	RoleDeploy             // CI: record deploy markers, nothing else
	RoleReader             // read every page and the API
	RoleEditor             // also create, edit and delete budgets, incidents, deploys
)

func (r Role) String() string {
	switch r {
	case RoleDeploy:
		return "deploy"
	case RoleReader:
		return "reader"
	case RoleEditor:
		return "editor"
	}
	return "none"
}

// ParseRole reads a role name of the accounts file.
func ParseRole(s string) (Role, error) {
	switch s {
	case "reader":
		return RoleReader, nil
	case "editor":
		return RoleEditor, nil
	case "deploy":
		return RoleDeploy, nil
	}
	return RoleNone, fmt.Errorf("role %q: want reader, editor or deploy", s)
}

// Access is what a route requires; every route names one.
type Access int

// Access levels. The zero value is no level at all: a route without one is
// refused (fail closed), and the route table test catches it.
const (
	AccessUnset  Access = iota
	AccessPublic        // health probes, assets, the login page
	AccessReader        // pages and API reads, /metrics
	AccessDeploy        // recording a deploy marker (editors and deploy tokens)
	AccessEditor        // every other change
)

func (a Access) String() string {
	switch a {
	case AccessPublic:
		return "public"
	case AccessReader:
		return "reader"
	case AccessDeploy:
		return "deploy"
	case AccessEditor:
		return "editor"
	}
	return "unset"
}

// Allows reports whether r may use a route requiring a.
func (r Role) Allows(a Access) bool {
	switch a {
	case AccessPublic:
		return true
	case AccessReader:
		return r >= RoleReader
	case AccessDeploy:
		return r == RoleDeploy || r == RoleEditor
	case AccessEditor:
		return r == RoleEditor
	}
	return false
}

// Principal is who a request comes from.
type Principal struct {
	Name string
	Role Role
	// Via says how it was identified: "session", "token", "proxy", or
	// "open" when authentication is off.
	Via string
}

// Mode is how the UI and API authenticate people.
type Mode string

// Modes.
const (
	ModeNone     Mode = "none"     // everyone is an editor (loopback use)
	ModeAccounts Mode = "accounts" // built-in accounts and sessions
	ModeProxy    Mode = "proxy"    // a trusted reverse proxy names the user
)

// Config configures an Authenticator.
type Config struct {
	Mode Mode
	// File holds accounts, API tokens and ingest tokens (see LoadFile).
	File string
	// SessionTTL bounds a login session.
	SessionTTL time.Duration
	// SecureCookies marks the session cookie Secure (HTTPS); set when
	// the UI is served over TLS or behind an https public URL.
	SecureCookies bool
	// Proxy mode: the header naming the user (oauth2-proxy:
	// X-Forwarded-User, or X-Forwarded-Email), the addresses the proxy
	// connects from (only their header is believed), and who is an editor.
	ProxyUserHeader string
	ProxyTrusted    []netip.Prefix
	ProxyEditors    []string // user names or emails; "*" makes everyone an editor
}

// Authenticator identifies requests. Its methods are safe for concurrent use.
type Authenticator struct {
	cfg      Config
	file     File
	sessions *sessions
	editors  map[string]bool
	// hashing bounds concurrent password checks: each takes argon2id's
	// 64 MiB, so a flood of login posts must queue, not multiply memory.
	hashing chan struct{}
}

// New returns an Authenticator; the file is read when cfg.File is set.
func New(cfg Config) (*Authenticator, error) {
	if cfg.Mode == "" {
		cfg.Mode = ModeNone
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	a := &Authenticator{cfg: cfg, sessions: newSessions(cfg.SessionTTL), editors: map[string]bool{}, hashing: make(chan struct{}, 2)}
	if cfg.File != "" {
		f, err := LoadFile(cfg.File)
		if err != nil {
			return nil, err
		}
		a.file = f
	}
	switch cfg.Mode {
	case ModeNone:
	case ModeAccounts:
		if len(a.file.Accounts) == 0 {
			return nil, errors.New("auth: --auth accounts needs an --auth-file with at least one account")
		}
	case ModeProxy:
		if cfg.ProxyUserHeader == "" {
			return nil, errors.New("auth: --auth proxy needs --auth-proxy-header (oauth2-proxy: X-Forwarded-User or X-Forwarded-Email)")
		}
		if len(cfg.ProxyTrusted) == 0 {
			return nil, errors.New("auth: --auth proxy needs --auth-proxy-trusted, the addresses the proxy connects from")
		}
		for _, e := range cfg.ProxyEditors {
			a.editors[strings.ToLower(strings.TrimSpace(e))] = true
		}
	default:
		return nil, fmt.Errorf("auth: mode %q: want none, accounts or proxy", cfg.Mode)
	}
	return a, nil
}

// Mode returns the configured mode.
func (a *Authenticator) Mode() Mode { return a.cfg.Mode }

// Open reports whether people need no credentials (mode none).
func (a *Authenticator) Open() bool { return a.cfg.Mode == ModeNone }

// LoginEnabled reports whether the login page is in use.
func (a *Authenticator) LoginEnabled() bool { return a.cfg.Mode == ModeAccounts }

// Identify returns the principal of a UI or API request: an API token in
// Authorization: Bearer (any mode), then by mode a session cookie or the
// proxy's header. ok is false for an anonymous request; a bearer token
// that matches nothing is an error, so a CI job with a wrong token hears
// so rather than "log in".
func (a *Authenticator) Identify(r *http.Request) (p Principal, ok bool, err error) {
	// With authentication off and no API tokens, an Authorization header
	// means nothing here (a client configured for another server).
	tokens := a.cfg.Mode != ModeNone || len(a.file.APITokens) > 0
	if tok, found := BearerToken(r.Header.Get("Authorization")); found && tokens {
		t, match := a.file.apiToken(tok)
		if !match {
			return Principal{}, false, errors.New("the bearer token matches no API token")
		}
		return Principal{Name: t.Name, Role: t.role, Via: "token"}, true, nil
	}
	switch a.cfg.Mode {
	case ModeNone:
		return Principal{Name: "anonymous", Role: RoleEditor, Via: "open"}, true, nil
	case ModeAccounts:
		if c, err := r.Cookie(SessionCookie); err == nil {
			if s, ok := a.sessions.get(c.Value); ok {
				return s, true, nil
			}
		}
	case ModeProxy:
		user := strings.TrimSpace(r.Header.Get(a.cfg.ProxyUserHeader))
		if user == "" || !a.fromProxy(r.RemoteAddr) {
			return Principal{}, false, nil
		}
		role := RoleReader
		if a.editors["*"] || a.editors[strings.ToLower(user)] {
			role = RoleEditor
		}
		return Principal{Name: user, Role: role, Via: "proxy"}, true, nil
	}
	return Principal{}, false, nil
}

// fromProxy reports whether the connection comes from a trusted proxy:
// anyone else could send the header themselves.
func (a *Authenticator) fromProxy(remote string) bool {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	for _, p := range a.cfg.ProxyTrusted {
		if p.Contains(ap.Addr().Unmap()) {
			return true
		}
	}
	return false
}

// IngestRequired reports whether the OTLP listeners need a token.
func (a *Authenticator) IngestRequired() bool { return len(a.file.IngestTokens) > 0 }

// Ingest checks an ingest token: its name, and the tenant it may write
// ("" for any).
func (a *Authenticator) Ingest(token string) (name, tenant string, ok bool) {
	t, ok := a.file.ingestToken(token)
	return t.Name, t.Tenant, ok
}

// BearerToken returns the token of an Authorization header value.
func BearerToken(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// TokenHash is how tokens are stored in the file: hex SHA-256. Tokens are
// random and long, so a fast hash is enough (unlike passwords).
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// equalHash compares two hex hashes in constant time.
func equalHash(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
