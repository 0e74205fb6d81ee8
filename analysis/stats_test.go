package analysis

import (
	"cmp"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestFisherExactKnown(t *testing.T) {
	tests := []struct {
		name       string
		a, b, c, d int
		want       float64
	}{
		// Fisher's lady tasting tea: R fisher.test gives 0.4857.
		{"tea", 3, 1, 1, 3, 0.4857142857},
		// The dieting example of Wikipedia's article: 0.002759.
		{"dieting", 1, 9, 11, 3, 0.0027594},
		{"identical rows", 5, 5, 5, 5, 1},
		{"empty", 0, 0, 0, 0, 1},
		{"one row empty", 0, 0, 3, 4, 1},
		{"negative is not a table", -1, 2, 3, 4, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fisherExact(tt.a, tt.b, tt.c, tt.d)
			if math.Abs(got-tt.want) > 1e-6 {
				t.Errorf("fisherExact = %.7f, want %.7f", got, tt.want)
			}
		})
	}
}

// fisherRat is Fisher's two-sided test in exact rational arithmetic.
func fisherRat(a, b, c, d int) float64 {
	n1, k, n := a+b, a+c, a+b+c+d
	pmf := func(x int) *big.Rat {
		num := new(big.Int).Mul(new(big.Int).Binomial(int64(k), int64(x)), new(big.Int).Binomial(int64(n-k), int64(n1-x)))
		return new(big.Rat).SetFrac(num, new(big.Int).Binomial(int64(n), int64(n1)))
	}
	obs := pmf(a)
	tol := new(big.Rat).Mul(obs, big.NewRat(10000001, 10000000))
	sum := new(big.Rat)
	for x := max(0, n1-(n-k)); x <= min(k, n1); x++ {
		if p := pmf(x); p.Cmp(tol) <= 0 {
			sum.Add(sum, p)
		}
	}
	f, _ := sum.Float64()
	return math.Min(f, 1)
}

func TestFisherExactMatchesRational(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		a, b, c, d := r.IntN(40), r.IntN(40), r.IntN(200), r.IntN(200)
		got, want := fisherExact(a, b, c, d), fisherRat(a, b, c, d)
		if math.Abs(got-want) > 1e-9*math.Max(1, want) && math.Abs(got-want)/want > 1e-6 {
			t.Fatalf("fisherExact(%d,%d,%d,%d) = %g, exact %g", a, b, c, d, got, want)
		}
	}
	// Tiny p-values do not underflow to zero.
	if p := fisherExact(200, 0, 0, 2000); p <= 0 || p > 1e-100 {
		t.Errorf("extreme table p = %g", p)
	}
}

func TestBenjaminiHochberg(t *testing.T) {
	tests := []struct {
		p, want []float64
	}{
		{[]float64{0.01, 0.04, 0.03, 0.005}, []float64{0.02, 0.04, 0.04, 0.02}},
		{[]float64{0.5}, []float64{0.5}},
		{[]float64{0.9, 0.95}, []float64{0.95, 0.95}},
		{[]float64{}, []float64{}},
	}
	for _, tt := range tests {
		got := benjaminiHochberg(tt.p)
		for i := range got {
			if math.Abs(got[i]-tt.want[i]) > 1e-12 {
				t.Errorf("BH(%v) = %v, want %v", tt.p, got, tt.want)
				break
			}
		}
	}
}

func TestMannWhitney(t *testing.T) {
	tests := []struct {
		name      string
		a, b      []int64
		u, z, p   float64
		probGreat float64
	}{
		{
			name: "separated", a: []int64{1, 2, 3, 4, 5}, b: []int64{6, 7, 8, 9, 10},
			// U = 25 of 25 pairs; var = 25·11/12; continuity 0.5.
			u: 25, z: 12 / math.Sqrt(25.0*11/12), probGreat: 1,
		},
		{
			name: "ties", a: []int64{1, 2, 2, 3}, b: []int64{2, 3, 3, 4},
			// Ranks 1, 3,3,3, 6,6,6, 8: R_B = 23, U = 13; tie term 24+24.
			u: 13, z: 4.5 / math.Sqrt(16.0/12*(9-48.0/56)), probGreat: 0.8125,
		},
		{
			name: "identical", a: []int64{5, 5, 5}, b: []int64{5, 5},
			u: 3, z: 0, p: 1, probGreat: 0.5,
		},
		{name: "empty side", a: nil, b: []int64{1}, u: 0, z: 0, p: 1, probGreat: 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mannWhitney(tt.a, tt.b)
			want := tt.p
			if tt.z != 0 {
				want = math.Erfc(tt.z / math.Sqrt2)
			}
			if got.U != tt.u || math.Abs(got.Z-tt.z) > 1e-9 || math.Abs(got.PValue-want) > 1e-9 || got.ProbBGreater != tt.probGreat {
				t.Errorf("got %+v, want U=%v z=%v p=%v prob=%v", got, tt.u, tt.z, want, tt.probGreat)
			}
		})
	}
	// U agrees with counting pairs on random data with many ties.
	r := rand.New(rand.NewPCG(5, 6))
	for range 50 {
		a, b := make([]int64, 1+r.IntN(60)), make([]int64, 1+r.IntN(60))
		for i := range a {
			a[i] = r.Int64N(20)
		}
		for i := range b {
			b[i] = r.Int64N(20)
		}
		slices.Sort(a)
		slices.Sort(b)
		var pairs float64
		for _, x := range a {
			for _, y := range b {
				switch {
				case y > x:
					pairs++
				case y == x:
					pairs += 0.5
				}
			}
		}
		if got := mannWhitney(a, b).U; got != pairs {
			t.Fatalf("U = %v, pair count %v", got, pairs)
		}
	}
}

func TestTwoProportion(t *testing.T) {
	got := twoProportion(10, 1000, 30, 1000)
	z := 0.02 / math.Sqrt(0.02*0.98*0.002)
	if math.Abs(got.Z-z) > 1e-9 || math.Abs(got.PValue-math.Erfc(z/math.Sqrt2)) > 1e-12 || got.RateA != 0.01 || got.RateB != 0.03 {
		t.Errorf("twoProportion = %+v, want z %v", got, z)
	}
	for _, tt := range [][4]int{{0, 100, 0, 100}, {0, 0, 1, 10}, {5, 10, 5, 0}} {
		if p := twoProportion(tt[0], tt[1], tt[2], tt[3]).PValue; p != 1 {
			t.Errorf("twoProportion(%v) p = %v, want 1", tt, p)
		}
	}
}

// TestQuantileBootstrapMatchesResampling checks the Beta shortcut against
// a bootstrap that really resamples: the replicate distributions agree.
func TestQuantileBootstrapMatchesResampling(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	sample := make([]int64, 400)
	for i := range sample {
		sample[i] = int64(1e6 * math.Exp(r.NormFloat64()))
	}
	slices.Sort(sample)
	const reps = 4000
	for _, q := range []float64{0.5, 0.9, 0.99} {
		full := make([]float64, reps)
		buf := make([]int64, len(sample))
		for i := range full {
			for j := range buf {
				buf[j] = sample[r.IntN(len(sample))]
			}
			slices.Sort(buf)
			full[i] = float64(Quantile(buf, q))
		}
		bs := newQuantileBootstrap(sample, nil, float64(len(sample)), q, rand.NewPCG(9, 10))
		fast := make([]float64, reps)
		for i := range fast {
			fast[i] = float64(bs.draw())
		}
		slices.Sort(full)
		slices.Sort(fast)
		rank := func(v float64) int {
			i, _ := slices.BinarySearch(sample, int64(v))
			return i
		}
		for _, p := range []float64{0.05, 0.5, 0.95} {
			a, b := rank(empiricalQuantile(full, p)), rank(empiricalQuantile(fast, p))
			if d := a - b; d < -3 || d > 3 {
				t.Errorf("q=%v: replicate %v-quantile at rank %d by resampling, %d by Beta draws", q, p, a, b)
			}
		}
	}
}

// TestBootstrapCoverage: a 90% percentile-bootstrap interval for the p90
// of an exponential sample covers the true p90 (ln 10) about 90% of the
// time.
func TestBootstrapCoverage(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	const trials, n = 300, 500
	truth := math.Log(10) * 1e6
	covered := 0
	for range trials {
		s := make([]int64, n)
		for i := range s {
			s[i] = int64(r.ExpFloat64() * 1e6)
		}
		slices.Sort(s)
		if covers90(newQuantileBootstrap(s, nil, n, 0.9, r), truth) {
			covered++
		}
	}
	if rate := float64(covered) / trials; rate < 0.84 || rate > 0.96 {
		t.Errorf("coverage %.3f, want about 0.90", rate)
	}
}

func TestEmpiricalQuantile(t *testing.T) {
	xs := []float64{1, 2, 3, 4}
	for _, tt := range []struct{ p, want float64 }{{0, 1}, {1, 4}, {0.5, 2.5}, {1.0 / 3, 2}} {
		if got := empiricalQuantile(xs, tt.p); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("empiricalQuantile(%v) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if empiricalQuantile(nil, 0.5) != 0 {
		t.Error("empty input")
	}
}

func TestRadixSortMatchesStableSort(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 5, 255, 256, 1000, 70000} {
		xs := make([]durIdx, n)
		for i := range xs {
			switch r.IntN(3) {
			case 0:
				xs[i].d = r.Int64N(1000) // many ties
			case 1:
				xs[i].d = r.Int64() // every byte differs
			default:
				xs[i].d = 1<<40 + r.Int64N(1<<20)
			}
			xs[i].i = int32(i)
		}
		want := slices.Clone(xs)
		slices.SortStableFunc(want, func(a, b durIdx) int { return cmp.Compare(a.d, b.d) })
		radixSort(xs)
		if !slices.Equal(xs, want) {
			t.Fatalf("n=%d: radix sort differs from a stable sort", n)
		}
	}
}

// TestWeightedBootstrapCoverage: a sampled stream's 90% interval for a
// percentile of the population covers the truth at least about 90% of the
// time, whether sampling kept one in four of every request (head) or the
// slowest fifth whole and one in five of the rest (tail): the effective
// sample size at the percentile (cumWeights.effectiveSizeAt) sets the
// interval's width. Kish's single size made the tail p90's interval
// cover 99.7% of the time: far too wide.
func TestWeightedBootstrapCoverage(t *testing.T) {
	const trials, n = 300, 2000
	for _, tc := range []struct {
		name       string
		weight     func(x float64, r *rand.Rand) float64 // 0: dropped
		q          float64
		minC, maxC float64
	}{
		{"head 1 in 4, p90", func(_ float64, r *rand.Rand) float64 { return map[bool]float64{true: 4}[r.IntN(4) == 0] }, 0.9, 0.84, 0.96},
		{"tail, p50", tailWeight, 0.5, 0.84, 0.96},
		{"tail, p90", tailWeight, 0.9, 0.84, 0.96},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(13, 14))
			truth := -math.Log(1-tc.q) * 1e6
			covered := 0
			for range trials {
				var xs []weightedValue
				for range n {
					x := r.ExpFloat64()
					if w := tc.weight(x, r); w > 0 {
						xs = append(xs, weightedValue{v: int64(x * 1e6), w: w})
					}
				}
				slices.SortFunc(xs, func(a, b weightedValue) int { return cmp.Compare(a.v, b.v) })
				s := make([]int64, len(xs))
				for i := range xs {
					s[i] = xs[i].v
				}
				cw := newCumWeights(len(xs), func(i int) float64 { return xs[i].w })
				bs := newQuantileBootstrap(s, cw, cw.effectiveSizeAt(len(xs), cw.rankPos(len(xs), tc.q), tc.q), tc.q, r)
				if covers90(bs, truth) {
					covered++
				}
			}
			rate := float64(covered) / trials
			t.Logf("coverage %.3f", rate)
			if rate < tc.minC || rate > tc.maxC {
				t.Errorf("coverage %.3f, want within [%v, %v]", rate, tc.minC, tc.maxC)
			}
		})
	}
}

// covers90 reports whether the 90% percentile interval of 1,000 replicates
// of bs covers truth.
func covers90(bs quantileBootstrap, truth float64) bool {
	reps := make([]float64, 1000)
	for i := range reps {
		reps[i] = float64(bs.draw())
	}
	slices.Sort(reps)
	return empiricalQuantile(reps, 0.05) <= truth && truth <= empiricalQuantile(reps, 0.95)
}

// tailWeight keeps an exponential duration above its p80 with weight 1
// and one in five of the others with weight 5.
func tailWeight(x float64, r *rand.Rand) float64 {
	switch {
	case x >= math.Log(5):
		return 1
	case r.IntN(5) == 0:
		return 5
	}
	return 0
}
