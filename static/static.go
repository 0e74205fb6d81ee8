// Package static embeds tailscope's CSS and JavaScript and serves them at
// content-hashed URLs with immutable caching, so a new release never meets
// a stale browser cache and the binary never depends on its working
// directory.
package static

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed *.css *.js
var files embed.FS

// Prefix is where assets are served.
const Prefix = "/static/"

// Assets maps asset names to their hashed URLs and serves them.
type Assets struct {
	byName map[string]string // "app.css" → "/static/app.1a2b3c4d.css"
	byHash map[string]asset  // "app.1a2b3c4d.css" → content
}

type asset struct {
	name string
	body []byte
}

// Load hashes every embedded asset.
func Load() (*Assets, error) {
	a := &Assets{byName: map[string]string{}, byHash: map[string]asset{}}
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, fmt.Errorf("static: list: %w", err)
	}
	for _, e := range entries {
		b, err := files.ReadFile(e.Name())
		if err != nil {
			return nil, fmt.Errorf("static: read %s: %w", e.Name(), err)
		}
		sum := sha256.Sum256(b)
		ext := path.Ext(e.Name())
		hashed := strings.TrimSuffix(e.Name(), ext) + "." + hex.EncodeToString(sum[:5]) + ext
		a.byName[e.Name()] = Prefix + hashed
		a.byHash[hashed] = asset{name: e.Name(), body: b}
	}
	return a, nil
}

// Path returns the hashed URL of an asset, or "" when there is none.
func (a *Assets) Path(name string) string { return a.byName[name] }

// Content returns an asset's bytes by plain name (for self-contained report
// exports that inline the stylesheet).
func (a *Assets) Content(name string) []byte {
	u, ok := a.byName[name]
	if !ok {
		return nil
	}
	return a.byHash[strings.TrimPrefix(u, Prefix)].body
}

// Handler serves assets under Prefix. Hashed names never change content, so
// they are cached for a year.
func (a *Assets) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		as, ok := a.byHash[strings.TrimPrefix(r.URL.Path, Prefix)]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		http.ServeContent(w, r, as.name, time.Time{}, bytes.NewReader(as.body))
	})
}
