package storetest

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// profileGen makes uploads shaped like a busy service's 10 s CPU profiles:
// 2,000 samples over 600 distinct stacks 20–40 frames deep (the same code
// paths upload after upload, as in a real service), 80% of them inside one
// of 300 spans that are new in every upload.
type profileGen struct {
	stacks []store.Stack
	n      int
}

func newProfileGen() *profileGen {
	g := &profileGen{}
	pkgs := []string{"net/http", "encoding/json", "github.com/acme/feed/rank", "github.com/acme/feed/store", "github.com/jackc/pgx/v5"}
	for i := range 600 {
		frames := []string{"runtime.goexit", "net/http.(*conn).serve", "net/http.serverHandler.ServeHTTP"}
		for d := range 17 + i%20 {
			frames = append(frames, fmt.Sprintf("%s.(*T%d).F%d", pkgs[(i+d)%len(pkgs)], d%5, (i*7+d)%11))
		}
		frames = append(frames, fmt.Sprintf("github.com/acme/feed/rank.leaf%d", i))
		g.stacks = append(g.stacks, store.Stack{ID: store.StackID(frames), Frames: frames})
	}
	return g
}

// spanOf returns span s of upload u: unique across uploads.
func spanOf(u, s int) store.SpanID {
	var id store.SpanID
	binary.BigEndian.PutUint64(id[:], uint64(u)<<20|uint64(s)+1)
	return id
}

// next returns the next upload, starting at start + 10 s per upload.
func (g *profileGen) next(start time.Time) store.ProfileBatch {
	u := g.n
	g.n++
	from := start.Add(time.Duration(u) * 10 * time.Second)
	p := store.Profile{Service: "feedsvc", Type: store.ProfileCPU, Unit: store.UnitNanoseconds,
		Start: from, End: from.Add(10 * time.Second), Labels: map[string]string{"host": "node-1"}}
	for i := range 2000 {
		s := store.ProfileSample{StackID: g.stacks[(i*31+u)%len(g.stacks)].ID, Value: 10_000_000}
		if i%5 != 0 {
			s.SpanID, s.SpanName = spanOf(u, i%300), "GET /v1/feed"
		}
		p.Samples = append(p.Samples, s)
	}
	return store.ProfileBatch{Stacks: g.stacks, Profiles: []store.Profile{p}}
}

// BenchProfiles measures a store's profile writes and the reads the pages
// make. newStore must return an empty store. Use a short -benchtime:
//
//	go test ./store/sqlite -run '^$' -bench Profiles -benchtime 20x
func BenchProfiles(b *testing.B, newStore func(b *testing.B) store.ProfileStore) {
	start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	b.Run("Write", func(b *testing.B) {
		ps, gen := newStore(b), newProfileGen()
		if err := ps.WriteProfiles(b.Context(), gen.next(start)); err != nil { // the stacks, once
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := ps.WriteProfiles(b.Context(), gen.next(start)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*2000)/b.Elapsed().Seconds(), "samples/s")
	})

	// Reads over half an hour of one service: 180 uploads, 360,000
	// samples.
	ps, gen := newStore(b), newProfileGen()
	const uploads = 180
	for range uploads {
		if err := ps.WriteProfiles(b.Context(), gen.next(start)); err != nil {
			b.Fatal(err)
		}
	}
	end := start.Add(uploads * 10 * time.Second)
	var spans []store.SpanID
	for u := range 100 {
		spans = append(spans, spanOf(u, u%300))
	}
	reads := []struct {
		name string
		read func() (int, error)
	}{
		{"StacksHalfHour", func() (int, error) {
			got, err := ps.Stacks(b.Context(), store.StackQuery{Service: "feedsvc", Type: store.ProfileCPU, From: start, To: end})
			return len(got), err
		}},
		{"StacksLastMinute", func() (int, error) {
			got, err := ps.Stacks(b.Context(), store.StackQuery{Service: "feedsvc", Type: store.ProfileCPU, From: end.Add(-time.Minute), To: end})
			return len(got), err
		}},
		{"Stacks100Spans", func() (int, error) {
			got, err := ps.Stacks(b.Context(), store.StackQuery{Type: store.ProfileCPU, SpanIDs: spans})
			return len(got), err
		}},
		{"ProfiledSpans100", func() (int, error) {
			got, err := ps.ProfiledSpans(b.Context(), spans)
			return len(got), err
		}},
		{"ProfileSeries", func() (int, error) {
			got, err := ps.ProfileSeries(b.Context(), start, end)
			return len(got), err
		}},
	}
	for _, r := range reads {
		b.Run(r.name, func(b *testing.B) {
			for b.Loop() {
				n, err := r.read()
				if err != nil {
					b.Fatal(err)
				}
				if n == 0 {
					b.Fatalf("%s read nothing", r.name)
				}
			}
		})
	}
}
