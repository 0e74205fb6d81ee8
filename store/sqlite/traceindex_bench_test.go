package sqlite_test

import (
	"testing"
	"time"

	"github.com/tailscope/tailscope/store/storetest"
)

// BenchmarkSearchPage runs the search page's queries over 1,000,000 spans
// (storetest.SearchBenchCases).
//
//	go test ./store/sqlite -run '^$' -bench SearchPage -benchtime 20x
func BenchmarkSearchPage(b *testing.B) {
	db := openTemp(b)
	from, to := storetest.LoadMillion(b, db, time.Now().Add(-time.Hour))
	storetest.BenchSearch(b, db, from, to)
}
