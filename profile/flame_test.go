package profile

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/tailscope/tailscope/store"
)

// stacksOf parses "a;b;c=5" lines into stacks.
func stacksOf(lines ...string) []store.StackValue {
	var out []store.StackValue
	for _, l := range lines {
		frames, v, _ := strings.Cut(l, "=")
		var n int64
		fmt.Sscan(v, &n)
		var fr []string
		if frames != "" {
			fr = strings.Split(frames, ";")
		}
		out = append(out, store.StackValue{Frames: fr, Value: n})
	}
	return out
}

// treeText renders a tree as indented "name self/total" lines.
func treeText(n *Node) string {
	var b strings.Builder
	var walk func(n *Node, depth int)
	walk = func(n *Node, depth int) {
		name := n.Name
		if depth == 0 {
			name = "(root)"
		}
		fmt.Fprintf(&b, "%s%s %d/%d\n", strings.Repeat("  ", depth), name, n.Self, n.Total)
		for _, c := range n.Children {
			walk(c, depth+1)
		}
	}
	walk(n, 0)
	return b.String()
}

func TestTree(t *testing.T) {
	tests := []struct {
		name   string
		stacks []store.StackValue
		want   string
	}{
		{"empty", nil, "(root) 0/0\n"},
		{
			name:   "merges shared prefixes, children by name",
			stacks: stacksOf("main;b=3", "main;a;x=2", "main;a=1", "main;b=4"),
			want: `(root) 0/10
  main 0/10
    a 1/3
      x 2/2
    b 7/7
`,
		},
		{
			name:   "same function on two paths is two nodes",
			stacks: stacksOf("main;json.Marshal=5", "main;handler;json.Marshal=2"),
			want: `(root) 0/7
  main 0/7
    handler 0/2
      json.Marshal 2/2
    json.Marshal 5/5
`,
		},
		{
			name:   "recursion",
			stacks: stacksOf("main;f;f;f=4", "main;f=1"),
			want: `(root) 0/5
  main 0/5
    f 1/5
      f 0/4
        f 4/4
`,
		},
		{
			name:   "non-positive values and empty stacks ignored",
			stacks: stacksOf("main=0", "main;x=-3", "=5", "main;y=1"),
			want: `(root) 0/1
  main 0/1
    y 1/1
`,
		},
		{
			name:   "saturates instead of overflowing",
			stacks: []store.StackValue{{Frames: []string{"a"}, Value: math.MaxInt64}, {Frames: []string{"a"}, Value: 5}},
			want: fmt.Sprintf(`(root) 0/%[1]d
  a %[1]d/%[1]d
`, int64(math.MaxInt64)),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := treeText(Tree(tc.stacks)); got != tc.want {
				t.Errorf("Tree:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestTopFunctions(t *testing.T) {
	root := Tree(stacksOf(
		"main;handler;json.Marshal;reflect.Value=6",
		"main;handler;json.Marshal=2",
		"main;json.Marshal=5",
		"main;handler=1",
		"main;f;f;f=4",
		"main;f=1",
	))
	tests := []struct {
		name  string
		n     int
		order TopOrder
		want  []FunctionStat
	}{
		{"by self, all", 0, BySelf, []FunctionStat{
			{"json.Marshal", 7, 13},
			{"reflect.Value", 6, 6},
			{"f", 5, 5}, // recursion counted once in total
			{"handler", 1, 9},
			{"main", 0, 19},
		}},
		{"by self, top 2", 2, BySelf, []FunctionStat{{"json.Marshal", 7, 13}, {"reflect.Value", 6, 6}}},
		{"by total", 3, ByTotal, []FunctionStat{{"main", 0, 19}, {"json.Marshal", 7, 13}, {"handler", 1, 9}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := TopFunctions(root, tc.n, tc.order); !slices.Equal(got, tc.want) {
				t.Errorf("TopFunctions = %+v\nwant %+v", got, tc.want)
			}
		})
	}
	if got := TopFunctions(Tree(nil), 5, BySelf); len(got) != 0 {
		t.Errorf("TopFunctions(empty) = %+v", got)
	}
}

func diffText(d *DiffNode) string {
	var b strings.Builder
	var walk func(d *DiffNode, depth int)
	walk = func(d *DiffNode, depth int) {
		name := d.Name
		if depth == 0 {
			name = "(root)"
		}
		fmt.Fprintf(&b, "%s%s self %.2f→%.2f total %.2f→%.2f\n", strings.Repeat("  ", depth), name,
			d.BaselineSelfShare, d.OutlierSelfShare, d.BaselineTotalShare, d.OutlierTotalShare)
		for _, c := range d.Children {
			walk(c, depth+1)
		}
	}
	walk(d, 0)
	return b.String()
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name              string
		baseline, outlier []store.StackValue
		want              string
	}{
		{
			// 1,000 baseline samples against 50 outlier ones: raw values
			// would say everything shrank; shares say rank.score grew from
			// 10% to 60%.
			name:     "normalised by totals",
			baseline: stacksOf("main;handler;rank.score=100", "main;handler;db.query=900"),
			outlier:  stacksOf("main;handler;rank.score=30", "main;handler;db.query=20"),
			want: `(root) self 0.00→0.00 total 1.00→1.00
  main self 0.00→0.00 total 1.00→1.00
    handler self 0.00→0.00 total 1.00→1.00
      db.query self 0.90→0.40 total 0.90→0.40
      rank.score self 0.10→0.60 total 0.10→0.60
`,
		},
		{
			name:     "paths on one side only",
			baseline: stacksOf("main;a=1", "main;b=1"),
			outlier:  stacksOf("main;b=1", "main;c=3"),
			want: `(root) self 0.00→0.00 total 1.00→1.00
  main self 0.00→0.00 total 1.00→1.00
    a self 0.50→0.00 total 0.50→0.00
    b self 0.50→0.25 total 0.50→0.25
    c self 0.00→0.75 total 0.00→0.75
`,
		},
		{
			name:    "empty baseline",
			outlier: stacksOf("main=2"),
			want: `(root) self 0.00→0.00 total 0.00→1.00
  main self 0.00→1.00 total 0.00→1.00
`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := diffText(Diff(Tree(tc.baseline), Tree(tc.outlier))); got != tc.want {
				t.Errorf("Diff:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestDiffFunctions(t *testing.T) {
	d := Diff(
		Tree(stacksOf("main;handler;rank.score=100", "main;handler;db.query=800", "main;log.Print=100")),
		Tree(stacksOf("main;handler;rank.score=30", "main;handler;db.query=19", "main;log.Print=1", "main;other;rank.score=50")),
	)
	got := DiffFunctions(d, 0)
	var names []string
	for _, f := range got {
		names = append(names, fmt.Sprintf("%s %+.2f", f.Name, f.Delta()))
	}
	// rank.score is summed over both of its paths: 10% → 80%.
	want := []string{"rank.score +0.70", "db.query -0.61", "log.Print -0.09", "handler +0.00", "main +0.00", "other +0.00"}
	if !slices.Equal(names, want) {
		t.Errorf("DiffFunctions = %v\nwant %v", names, want)
	}
	if top := DiffFunctions(d, 1); len(top) != 1 || top[0].Name != "rank.score" {
		t.Errorf("DiffFunctions(d, 1) = %+v", top)
	}
}

func rectText(rs []Rect) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		name := r.Name
		if name == "" {
			name = "(root)"
		}
		out[i] = fmt.Sprintf("%d %s x=%.3f w=%.3f %d/%d", r.Depth, name, r.X, r.Width, r.Self, r.Total)
	}
	return out
}

func TestLayout(t *testing.T) {
	root := Tree(stacksOf("main;a=5", "main;b;x=3", "main;b=1", "main=1", "tiny=0", "main;c=0"))
	tests := []struct {
		name string
		opt  LayoutOptions
		want []string
	}{
		{"everything", LayoutOptions{}, []string{
			"0 (root) x=0.000 w=1.000 0/10",
			"1 main x=0.000 w=1.000 1/10",
			"2 a x=0.000 w=0.500 5/5",
			"2 b x=0.500 w=0.400 1/4",
			"3 x x=0.500 w=0.300 3/3",
		}},
		{"min width drops thin frames and what is above them", LayoutOptions{MinWidth: 0.45}, []string{
			"0 (root) x=0.000 w=1.000 0/10",
			"1 main x=0.000 w=1.000 1/10",
			"2 a x=0.000 w=0.500 5/5",
		}},
		{"max depth", LayoutOptions{MaxDepth: 1}, []string{
			"0 (root) x=0.000 w=1.000 0/10",
			"1 main x=0.000 w=1.000 1/10",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := rectText(Layout(root, tc.opt)); !slices.Equal(got, tc.want) {
				t.Errorf("Layout =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
	if got := Layout(Tree(nil), LayoutOptions{}); len(got) != 0 {
		t.Errorf("Layout(empty) = %v", got)
	}
}

// TestLayoutNests checks the geometry invariants on a larger tree: every
// frame lies inside its parent, siblings do not overlap, widths are shares.
func TestLayoutNests(t *testing.T) {
	var lines []string
	for i := range 200 {
		lines = append(lines, fmt.Sprintf("main;pkg%d.f;pkg%d.g;leaf%d=%d", i%7, i%5, i, i%13+1))
	}
	rects := Layout(Tree(stacksOf(lines...)), LayoutOptions{})
	const eps = 1e-9
	type open struct {
		r        Rect
		childEnd float64 // where the last child placed so far ends
	}
	var path []open // the frames from the root to the current one
	for _, r := range rects {
		if r.X < -eps || r.X+r.Width > 1+eps {
			t.Fatalf("%+v outside [0, 1]", r)
		}
		if r.Depth > len(path) {
			t.Fatalf("%+v skips a level", r)
		}
		path = path[:r.Depth]
		if r.Depth > 0 {
			p := &path[r.Depth-1]
			if r.X < p.r.X-eps || r.X+r.Width > p.r.X+p.r.Width+eps {
				t.Fatalf("%+v outside its parent %+v", r, p.r)
			}
			if r.X < p.childEnd-eps {
				t.Fatalf("%+v overlaps its left sibling, which ends at %v", r, p.childEnd)
			}
			p.childEnd = r.X + r.Width
		}
		path = append(path, open{r: r, childEnd: r.X})
	}
	if len(rects) < 200 {
		t.Errorf("only %d frames laid out", len(rects))
	}
}

func TestLayoutDiff(t *testing.T) {
	d := Diff(Tree(stacksOf("main;a=3", "main;b=1")), Tree(stacksOf("main;b=1", "main;c=1")))
	var got []string
	for _, r := range LayoutDiff(d, LayoutOptions{}) {
		got = append(got, fmt.Sprintf("%d %s x=%.3f w=%.3f Δself=%+.3f", r.Depth, r.Name, r.X, r.Width, r.Node.SelfDelta()))
	}
	// Widths are the mean of both sides' shares: a = (0.75+0)/2, b =
	// (0.25+0.5)/2, c = (0+0.5)/2.
	want := []string{
		"0  x=0.000 w=1.000 Δself=+0.000",
		"1 main x=0.000 w=1.000 Δself=+0.000",
		"2 a x=0.000 w=0.375 Δself=-0.750",
		"2 b x=0.375 w=0.375 Δself=+0.250",
		"2 c x=0.750 w=0.250 Δself=+0.500",
	}
	if !slices.Equal(got, want) {
		t.Errorf("LayoutDiff =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := LayoutDiff(Diff(Tree(nil), Tree(nil)), LayoutOptions{}); len(got) != 0 {
		t.Errorf("LayoutDiff(empty) = %v", got)
	}
}

func TestTreeFoldsPreemptionIntoTheCaller(t *testing.T) {
	root := Tree([]store.StackValue{
		{Frames: []string{"main", "score", "runtime.asyncPreempt"}, Value: 5},
		{Frames: []string{"main", "score", "runtime.racereadrange", "racecall", "_ZN6__tsan18MemoryAccessRangeTILb0EEEvPNS_11ThreadStateEmmm"}, Value: 2},
		{Frames: []string{"main", "score"}, Value: 3},
		{Frames: []string{"runtime.asyncPreempt"}, Value: 1}, // alone, it stays
	})
	top := TopFunctions(root, 5, BySelf)
	if len(top) == 0 || top[0].Name != "score" || top[0].Self != 10 {
		t.Fatalf("top = %+v; want score with self 10 (the preempted samples count for it)", top)
	}
	for _, f := range top {
		if f.Name == "runtime.asyncPreempt" && f.Self != 1 {
			t.Errorf("a lone preemption frame has self %d, want 1", f.Self)
		}
	}
}
