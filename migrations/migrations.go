// Package migrations embeds tailscope's SQL schema, one folder per dialect.
// The files are goose migrations (-- +goose Up / -- +goose Down); the store
// packages apply them with goose's Provider at open time and from the
// `tailscope migrate` command. The Go file lives here because go:embed cannot
// reach files outside its own directory.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// Postgres holds the PostgreSQL migrations at its root.
var Postgres = mustSub("postgres")

// SQLite holds the SQLite migrations at its root.
var SQLite = mustSub("sqlite")

func mustSub(dir string) fs.FS {
	sub, err := fs.Sub(files, dir)
	if err != nil {
		// fs.Sub fails only on an invalid path, which is a constant here.
		panic("migrations: " + err.Error())
	}
	return sub
}
