package postgres_test

import (
	"testing"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/storetest"
)

// BenchmarkProfiles: see storetest.BenchProfiles.
//
//	go test ./store/postgres -run '^$' -bench Profiles -benchtime 20x
func BenchmarkProfiles(b *testing.B) {
	storetest.BenchProfiles(b, func(b *testing.B) store.ProfileStore {
		db, _ := openFresh(b)
		return db
	})
}
