package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
)

// File is the accounts file (JSON, documented in README "Running it
// exposed"):
//
//	{
//	  "accounts":      [{"name": "alice", "password_hash": "$argon2id$v=19$m=65536,t=3,p=2$…", "role": "editor"}],
//	  "api_tokens":    [{"name": "ci-deploys", "sha256": "<hex sha256 of the token>", "role": "deploy"}],
//	  "ingest_tokens": [{"name": "prod-collector", "sha256": "<hex>", "tenant": "acme"}]
//	}
//
// Secrets are stored hashed only: `tailscope hash-password` and
// `tailscope new-token` print the values to paste.
type File struct {
	Accounts     []Account     `json:"accounts"`
	APITokens    []APIToken    `json:"api_tokens"`
	IngestTokens []IngestToken `json:"ingest_tokens"`
}

// Account is a person who logs in to the UI.
type Account struct {
	Name         string `json:"name"`
	PasswordHash string `json:"password_hash"`
	Role         string `json:"role"`
	role         Role
}

// APIToken is a bearer token for the JSON API (CI deploy markers, scrapers).
type APIToken struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Role   string `json:"role"`
	role   Role
}

// IngestToken is a bearer token for the OTLP listeners; Tenant, when set,
// is the only tenant its spans may name.
type IngestToken struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Tenant string `json:"tenant,omitempty"`
}

// LoadFile reads and checks an accounts file.
func LoadFile(path string) (File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return File{}, fmt.Errorf("auth: read %s: %w", path, err)
	}
	f, err := ParseFile(b)
	if err != nil {
		return File{}, fmt.Errorf("auth: %s: %w", path, err)
	}
	return f, nil
}

// ParseFile decodes and checks the accounts file's content.
func ParseFile(b []byte) (File, error) {
	var f File
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		return File{}, err
	}
	names := map[string]bool{}
	for i := range f.Accounts {
		a := &f.Accounts[i]
		if a.Name == "" || names["account "+a.Name] {
			return File{}, fmt.Errorf("accounts[%d]: a unique name is required", i)
		}
		names["account "+a.Name] = true
		if _, err := parsePHC(a.PasswordHash); err != nil {
			return File{}, fmt.Errorf("account %s: password_hash: %w", a.Name, err)
		}
		r, err := ParseRole(a.Role)
		if err != nil || r == RoleDeploy {
			return File{}, fmt.Errorf("account %s: role %q: want reader or editor", a.Name, a.Role)
		}
		a.role = r
	}
	for i := range f.APITokens {
		t := &f.APITokens[i]
		if err := checkToken("api_tokens", i, t.Name, t.SHA256); err != nil {
			return File{}, err
		}
		r, err := ParseRole(t.Role)
		if err != nil {
			return File{}, fmt.Errorf("api token %s: %w", t.Name, err)
		}
		t.role = r
	}
	for i, t := range f.IngestTokens {
		if err := checkToken("ingest_tokens", i, t.Name, t.SHA256); err != nil {
			return File{}, err
		}
	}
	return f, nil
}

func checkToken(list string, i int, name, hash string) error {
	if name == "" {
		return fmt.Errorf("%s[%d]: a name is required", list, i)
	}
	if len(hash) != 64 {
		return fmt.Errorf("%s %s: sha256 must be 64 hex digits (tailscope new-token prints it)", list, name)
	}
	return nil
}

func (f File) apiToken(token string) (APIToken, bool) {
	h := TokenHash(token)
	for _, t := range f.APITokens {
		if equalHash(h, t.SHA256) {
			return t, true
		}
	}
	return APIToken{}, false
}

func (f File) ingestToken(token string) (IngestToken, bool) {
	h := TokenHash(token)
	for _, t := range f.IngestTokens {
		if equalHash(h, t.SHA256) {
			return t, true
		}
	}
	return IngestToken{}, false
}

func (f File) account(name string) (Account, bool) {
	for _, a := range f.Accounts {
		if a.Name == name {
			return a, true
		}
	}
	return Account{}, false
}
