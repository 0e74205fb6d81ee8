package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"sync"
	"time"
)

// SessionCookie names the login session cookie.
const SessionCookie = "tailscope_session"

// ErrBadLogin is a wrong name or password; which of the two is not said.
var ErrBadLogin = errors.New("wrong account name or password")

// sessions are kept in memory: a restart logs everyone out, which a
// single-process server can afford, and no signing key needs managing.
type sessions struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]session
}

type session struct {
	p       Principal
	expires time.Time
}

func newSessions(ttl time.Duration) *sessions {
	return &sessions{ttl: ttl, m: map[string]session{}}
}

func (s *sessions) add(p Principal) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	id := base64.RawURLEncoding.EncodeToString(b)
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.m { // sweep: the map stays the size of live sessions
		if now.After(v.expires) {
			delete(s.m, k)
		}
	}
	s.m[id] = session{p: p, expires: now.Add(s.ttl)}
	return id, nil
}

func (s *sessions) get(id string) (Principal, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[id]
	if !ok || time.Now().After(v.expires) {
		delete(s.m, id)
		return Principal{}, false
	}
	return v.p, true
}

func (s *sessions) remove(id string) {
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

// ErrLoginBusy: password checks are all in use for longer than loginWait.
var ErrLoginBusy = errors.New("too many logins at once; try again in a moment")

// loginWait bounds how long a login waits for a password check.
const loginWait = 5 * time.Second

// Login checks an account's password and returns the session cookie to set.
func (a *Authenticator) Login(ctx context.Context, name, password string) (*http.Cookie, error) {
	wait := time.NewTimer(loginWait)
	defer wait.Stop()
	select {
	case a.hashing <- struct{}{}:
		defer func() { <-a.hashing }()
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-wait.C:
		return nil, ErrLoginBusy
	}
	acc, ok := a.file.account(name)
	if !ok {
		// Hash anyway, so timing does not tell which names exist.
		checkPassword(dummyHash, password)
		return nil, ErrBadLogin
	}
	if !checkPassword(acc.PasswordHash, password) {
		return nil, ErrBadLogin
	}
	id, err := a.sessions.add(Principal{Name: acc.Name, Role: acc.role, Via: "session"})
	if err != nil {
		return nil, err
	}
	return &http.Cookie{
		Name: SessionCookie, Value: id, Path: "/", MaxAge: int(a.cfg.SessionTTL.Seconds()),
		HttpOnly: true, Secure: a.cfg.SecureCookies, SameSite: http.SameSiteLaxMode,
	}, nil
}

// Logout ends the request's session and returns the cookie that clears it.
func (a *Authenticator) Logout(r *http.Request) *http.Cookie {
	if c, err := r.Cookie(SessionCookie); err == nil {
		a.sessions.remove(c.Value)
	}
	return &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: a.cfg.SecureCookies, SameSite: http.SameSiteLaxMode}
}

// dummyHash is checked for unknown names (its password is unknown).
const dummyHash = "$argon2id$v=19$m=65536,t=3,p=2$c29tZXNhbHRzb21lc2FsdA$2d2/7wHqkkvyyOH8lUiQXbHBc3GjvxmGx9/wS1DXWJc"
