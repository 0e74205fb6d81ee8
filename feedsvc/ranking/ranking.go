// Package ranking is the CPU work of feedsvc's ranker: a small multilayer
// perceptron scores every candidate, then a greedy maximal-marginal-relevance
// pass picks the top K while penalising near-duplicates. It is real
// arithmetic, not a sleep, so a heavy tenant's long candidate list costs
// real CPU (linear in candidates for scoring, K×candidates for diversity),
// which is the "large payload makes ranker CPU-heavy" cause the demo injects.
package ranking

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// FeatureDim is the length of every item and user feature vector.
const FeatureDim = 8

// Layer sizes of the scoring network. Sized so that scoring costs roughly
// 20-30 µs per candidate on one core: a light tenant's 60 candidates rank
// in about a millisecond, the heavy tenant's 400 in about ten.
const (
	inputDim  = 4*FeatureDim + 4
	hidden1   = 256
	hidden2   = 64
	diversity = 0.3 // weight of the similarity penalty in the MMR pass
)

// Candidate is one item to rank.
type Candidate struct {
	ID         int64     `json:"id"`
	Category   int       `json:"category"`
	Popularity float32   `json:"popularity"`  // catalogue score in [0,1]
	AgeSeconds float64   `json:"age_seconds"` // since publication
	Features   []float32 `json:"features"`    // FeatureDim values
}

// Request is one ranking call.
type Request struct {
	User      []float32   `json:"user"`      // FeatureDim values
	Interests []int       `json:"interests"` // categories the user's profile prefers
	Category  [3]float32  `json:"category"`  // stats of the user's main category: log count, mean score, freshness
	Items     []Candidate `json:"items"`
	K         int         `json:"k"` // how many to return
}

// Scored is a ranked item.
type Scored struct {
	ID    int64   `json:"id"`
	Score float32 `json:"score"`
}

// ErrBadRequest wraps every validation failure of Rank.
var ErrBadRequest = errors.New("ranking: bad request")

// Model holds the network's weights. It is read-only after NewModel and
// safe for concurrent use.
type Model struct {
	w1 []float32 // hidden1 × inputDim
	b1 []float32
	w2 []float32 // hidden2 × hidden1
	b2 []float32
	w3 []float32 // hidden2
}

// NewModel returns a model with weights drawn from seed, so every run of the
// demo ranks identically.
func NewModel(seed uint64) *Model {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	init := func(n, fanIn int) []float32 {
		s := float32(1 / math.Sqrt(float64(fanIn)))
		w := make([]float32, n)
		for i := range w {
			w[i] = float32(rng.NormFloat64()) * s
		}
		return w
	}
	return &Model{
		w1: init(hidden1*inputDim, inputDim),
		b1: init(hidden1, hidden1),
		w2: init(hidden2*hidden1, hidden1),
		b2: init(hidden2, hidden2),
		w3: init(hidden2, hidden2),
	}
}

// Rank scores req.Items and returns the best min(K, len(Items)) of them in
// order, diversified.
func (m *Model) Rank(req Request) ([]Scored, error) {
	if len(req.User) != FeatureDim {
		return nil, fmt.Errorf("%w: user has %d features, want %d", ErrBadRequest, len(req.User), FeatureDim)
	}
	if req.K <= 0 {
		return nil, fmt.Errorf("%w: k must be positive, got %d", ErrBadRequest, req.K)
	}
	for _, c := range req.Items {
		if len(c.Features) != FeatureDim {
			return nil, fmt.Errorf("%w: item %d has %d features, want %d", ErrBadRequest, c.ID, len(c.Features), FeatureDim)
		}
	}
	scores := make([]float32, len(req.Items))
	var in [inputDim]float32
	var h1 [hidden1]float32
	var h2 [hidden2]float32
	for i, c := range req.Items {
		m.input(&in, req, c)
		scores[i] = m.forward(&in, &h1, &h2)
	}
	return mmr(req.Items, scores, min(req.K, len(req.Items))), nil
}

func (m *Model) input(in *[inputDim]float32, req Request, c Candidate) {
	for j := range FeatureDim {
		in[j] = c.Features[j]
		in[FeatureDim+j] = req.User[j]
		in[2*FeatureDim+j] = c.Features[j] * req.User[j]
		in[3*FeatureDim+j] = c.Features[j] - req.User[j]
	}
	match := float32(0)
	if slices.Contains(req.Interests, c.Category) {
		match = 1
	}
	in[4*FeatureDim] = match
	in[4*FeatureDim+1] = c.Popularity
	in[4*FeatureDim+2] = float32(math.Exp(-c.AgeSeconds / (7 * 24 * 3600)))
	in[4*FeatureDim+3] = req.Category[0]*0.1 + req.Category[1] + req.Category[2]
}

func (m *Model) forward(in *[inputDim]float32, h1 *[hidden1]float32, h2 *[hidden2]float32) float32 {
	for o := range hidden1 {
		w := m.w1[o*inputDim : (o+1)*inputDim]
		s := m.b1[o]
		for i, x := range in {
			s += w[i] * x
		}
		h1[o] = max(s, 0)
	}
	for o := range hidden2 {
		w := m.w2[o*hidden1 : (o+1)*hidden1]
		s := m.b2[o]
		for i, x := range h1 {
			s += w[i] * x
		}
		h2[o] = max(s, 0)
	}
	var out float32
	for i, x := range h2 {
		out += m.w3[i] * x
	}
	return float32(1 / (1 + math.Exp(-float64(out))))
}

// Derive turns an item's raw catalogue features into the normalised
// features the ranker reads, as a feature service would on a cache miss:
// several rounds of a random projection through a wide hidden layer. It
// costs tens of microseconds per item, which is why feature-svc caches its
// output (and what a cold cache pays again for every item).
func (m *Model) Derive(raw []float32) ([]float32, error) {
	if len(raw) != FeatureDim {
		return nil, fmt.Errorf("%w: %d raw features, want %d", ErrBadRequest, len(raw), FeatureDim)
	}
	x := make([]float32, FeatureDim)
	copy(x, raw)
	var h [hidden1]float32
	for range deriveRounds {
		for o := range hidden1 {
			w := m.w1[o*inputDim : o*inputDim+FeatureDim]
			var s float32
			for i, v := range x {
				s += w[i] * v
			}
			h[o] = float32(math.Tanh(float64(s)))
		}
		for i := range x {
			var s float32
			for o := range hidden1 {
				s += m.w1[o*inputDim+FeatureDim+i] * h[o]
			}
			x[i] = s / float32(math.Sqrt(hidden1))
		}
	}
	return x, nil
}

// deriveRounds sets Derive's cost (≈50 µs per item on one core).
const deriveRounds = 6

// mmr greedily picks k items maximising score − diversity·(max cosine
// similarity to an already picked item).
func mmr(items []Candidate, scores []float32, k int) []Scored {
	norms := make([]float32, len(items))
	for i, c := range items {
		var s float32
		for _, x := range c.Features {
			s += x * x
		}
		norms[i] = float32(math.Sqrt(float64(s))) + 1e-6
	}
	picked := make([]bool, len(items))
	maxSim := make([]float32, len(items)) // max similarity to any picked item so far
	out := make([]Scored, 0, k)
	for len(out) < k {
		best, bestVal := -1, float32(math.Inf(-1))
		for i := range items {
			if picked[i] {
				continue
			}
			if v := scores[i] - diversity*maxSim[i]; v > bestVal {
				best, bestVal = i, v
			}
		}
		picked[best] = true
		out = append(out, Scored{ID: items[best].ID, Score: scores[best]})
		fb := items[best].Features
		for i := range items {
			if picked[i] {
				continue
			}
			var dot float32
			for j, x := range items[i].Features {
				dot += x * fb[j]
			}
			if s := dot / (norms[i] * norms[best]); s > maxSim[i] {
				maxSim[i] = s
			}
		}
	}
	return out
}
