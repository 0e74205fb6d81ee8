package ranking

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

func candidates(n int, seed uint64) []Candidate {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]Candidate, n)
	for i := range out {
		f := make([]float32, FeatureDim)
		for j := range f {
			f[j] = float32(rng.NormFloat64())
		}
		out[i] = Candidate{ID: int64(i + 1), Category: i % 4, Popularity: rng.Float32(), AgeSeconds: float64(i * 600), Features: f}
	}
	return out
}

func user() []float32 { return []float32{0.5, -0.2, 0.1, 0.9, -0.4, 0.3, 0, 0.2} }

func TestRank(t *testing.T) {
	m := NewModel(7)
	items := candidates(50, 3)
	got, err := m.Rank(Request{User: user(), Interests: []int{1}, Items: items, K: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 {
		t.Fatalf("got %d items, want 10", len(got))
	}
	seen := map[int64]bool{}
	for _, s := range got {
		if seen[s.ID] {
			t.Fatalf("item %d ranked twice", s.ID)
		}
		seen[s.ID] = true
		if s.Score < 0 || s.Score > 1 {
			t.Fatalf("score %v outside [0,1]", s.Score)
		}
	}
	// The first pick has nothing to be diverse from: it is the best score.
	best := float32(-1)
	for _, c := range items {
		r, _ := m.Rank(Request{User: user(), Interests: []int{1}, Items: []Candidate{c}, K: 1})
		best = max(best, r[0].Score)
	}
	if got[0].Score != best {
		t.Fatalf("first item score %v, want the maximum %v", got[0].Score, best)
	}
	again, _ := NewModel(7).Rank(Request{User: user(), Interests: []int{1}, Items: items, K: 10})
	for i := range got {
		if got[i] != again[i] {
			t.Fatalf("same seed ranked differently at %d: %v vs %v", i, got[i], again[i])
		}
	}
}

func TestRankKLargerThanItems(t *testing.T) {
	got, err := NewModel(1).Rank(Request{User: user(), Items: candidates(3, 1), K: 10})
	if err != nil || len(got) != 3 {
		t.Fatalf("got %d, %v; want 3 items", len(got), err)
	}
}

func TestRankRejectsBadInput(t *testing.T) {
	bad := candidates(2, 1)
	bad[1].Features = bad[1].Features[:3]
	tests := []struct {
		name string
		req  Request
	}{
		{"short user vector", Request{User: []float32{1}, Items: candidates(2, 1), K: 1}},
		{"zero k", Request{User: user(), Items: candidates(2, 1), K: 0}},
		{"short item vector", Request{User: user(), Items: bad, K: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewModel(1).Rank(tt.req); !errors.Is(err, ErrBadRequest) {
				t.Fatalf("err = %v, want ErrBadRequest", err)
			}
		})
	}
}

func TestDerive(t *testing.T) {
	m := NewModel(3)
	a, err := m.Derive(user())
	if err != nil || len(a) != FeatureDim {
		t.Fatalf("Derive: %v, %d features", err, len(a))
	}
	b, _ := m.Derive(user())
	c, _ := m.Derive([]float32{1, 0, 0, 0, 0, 0, 0, 0})
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("Derive is not deterministic")
		}
	}
	if a[0] == c[0] && a[1] == c[1] {
		t.Fatal("different inputs derived the same features")
	}
	if _, err := m.Derive([]float32{1}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("short input: %v", err)
	}
}

func BenchmarkDerive(b *testing.B) {
	m := NewModel(1)
	for b.Loop() {
		if _, err := m.Derive(user()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRank shows the cost per candidate count: the light tenants rank
// ~60 candidates, the heavy tenant ~400.
func BenchmarkRank(b *testing.B) {
	m := NewModel(1)
	for _, n := range []int{60, 120, 400} {
		items := candidates(n, 2)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				if _, err := m.Rank(Request{User: user(), Items: items, K: 20}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
