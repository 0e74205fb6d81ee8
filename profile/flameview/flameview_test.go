package flameview

import (
	"bytes"
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/profile"
	"github.com/tailscope/tailscope/store"
)

func render(t *testing.T, g components.FlameGraph) *html.Node {
	t.Helper()
	var buf bytes.Buffer
	if err := components.FlameGraphView(g).Render(context.Background(), &buf); err != nil {
		t.Fatalf("Render: %v", err)
	}
	doc, err := html.Parse(&buf)
	if err != nil {
		t.Fatalf("parse HTML: %v", err)
	}
	return doc
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, class string) bool {
	return slices.Contains(strings.Fields(attr(n, "class")), class)
}

// find returns the elements matching ok, in document order.
func find(n *html.Node, ok func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && ok(d) {
			out = append(out, d)
		}
	}
	return out
}

func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return strings.TrimSpace(b.String())
}

// frame is a rendered frame as the page's script and the user see it.
type frame struct {
	name, title, style, text string
}

func frames(doc *html.Node) []frame {
	var out []frame
	for _, n := range find(doc, func(n *html.Node) bool { return hasClass(n, "frame") }) {
		out = append(out, frame{attr(n, "data-name"), attr(n, "title"), attr(n, "style"), text(n)})
	}
	return out
}

var styleRe = regexp.MustCompile(`^left:([0-9.]+)%;width:([0-9.]+)%;top:([0-9.]+)rem;background:(hsl\([^)]*\));?$`)

func stacks(lines ...string) []store.StackValue {
	var out []store.StackValue
	for _, l := range lines {
		frames, v, _ := strings.Cut(l, "=")
		var n int64
		for _, c := range v {
			n = n*10 + int64(c-'0')
		}
		out = append(out, store.StackValue{Frames: strings.Split(frames, ";"), Value: n})
	}
	return out
}

func TestGraph(t *testing.T) {
	root := profile.Tree(stacks(
		"runtime.main;main.main;github.com/acme/feed/rank.(*Ranker).Score=600000000",
		"runtime.main;main.main;github.com/acme/feed/rank.normalise=200000000",
		"runtime.main;main.main;encoding/json.Marshal=200000000",
		`runtime.main;main.main;main.<script>alert("x")</script>=1000`,
	))
	g := Graph(root, Options{Label: "CPU of span GET /v1/feed", TestID: "span-flame", Unit: store.UnitNanoseconds})
	doc := render(t, g)

	fs := frames(doc)
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.name
	}
	// The 1 µs frame is narrower than the default minimum width: dropped.
	want := []string{"all", "runtime.main", "main.main", "encoding/json.Marshal",
		"github.com/acme/feed/rank.(*Ranker).Score", "github.com/acme/feed/rank.normalise"}
	if !slices.Equal(names, want) {
		t.Fatalf("frames %q\nwant %q", names, want)
	}
	byName := map[string]frame{}
	for _, f := range fs {
		byName[f.name] = f
		if !styleRe.MatchString(f.style) {
			t.Errorf("frame %s style %q: want left/width/top/background", f.name, f.style)
		}
	}
	score := byName["github.com/acme/feed/rank.(*Ranker).Score"]
	if m := styleRe.FindStringSubmatch(score.style); m == nil || m[2] != "59.9999" || m[3] != "3.75" {
		t.Errorf("Score frame style %q: want width 59.9999%% at depth 3 (3.75rem)", score.style)
	}
	if want := "github.com/acme/feed/rank.(*Ranker).Score — self 600 ms (60%), total 600 ms (60%)"; score.title != want {
		t.Errorf("title %q\nwant  %q", score.title, want)
	}
	if score.text != "rank.(*Ranker).Score" {
		t.Errorf("frame text %q, want the name without its import path", score.text)
	}
	// One package, one colour; another package, another.
	colour := func(f frame) string { return styleRe.FindStringSubmatch(f.style)[4] }
	if colour(score) != colour(byName["github.com/acme/feed/rank.normalise"]) {
		t.Errorf("two functions of package rank have different colours")
	}
	if colour(score) == colour(byName["encoding/json.Marshal"]) {
		t.Errorf("rank and encoding/json share a colour")
	}

	// The table, by self, with the hostile name escaped (it parsed as text,
	// not as a script element).
	rows := find(doc, func(n *html.Node) bool { return n.Data == "tr" })
	if len(rows) < 3 || !strings.HasPrefix(text(rows[1]), "rank.(*Ranker).Score") {
		t.Errorf("first table row %q, want Score", text(rows[1]))
	}
	if len(find(doc, func(n *html.Node) bool { return n.Data == "script" })) != 0 {
		t.Errorf("a function name was rendered as markup")
	}
	if fig := find(doc, func(n *html.Node) bool { return attr(n, "data-testid") == "span-flame" }); len(fig) != 1 {
		t.Errorf("no element with the test id")
	}
}

func TestDiffGraph(t *testing.T) {
	d := profile.Diff(
		profile.Tree(stacks("main;handler;rank.score=100", "main;handler;db.query=900")),
		profile.Tree(stacks("main;handler;rank.score=30", "main;handler;db.query=20")),
	)
	g := Diff(d, Options{Label: "outliers vs baseline", Unit: store.UnitNanoseconds})
	fs := frames(render(t, g))
	byName := map[string]frame{}
	for _, f := range fs {
		byName[f.name] = f
	}
	hue := func(name string) string {
		m := styleRe.FindStringSubmatch(byName[name].style)
		if m == nil {
			t.Fatalf("frame %s style %q", name, byName[name].style)
		}
		return strings.Fields(strings.TrimPrefix(m[4], "hsl("))[0]
	}
	if hue("rank.score") != "0" {
		t.Errorf("rank.score (10%% → 60%%) is not red: %s", byName["rank.score"].style)
	}
	if hue("db.query") != "215" {
		t.Errorf("db.query (90%% → 40%%) is not blue: %s", byName["db.query"].style)
	}
	if want := "rank.score — self: baseline 10%, outliers 60% (+50.0 pts); total: baseline 10%, outliers 60%"; byName["rank.score"].title != want {
		t.Errorf("title %q\nwant  %q", byName["rank.score"].title, want)
	}
	// Both changed by 50 points; ties go by name.
	if len(g.Top) < 2 || g.Top[0].Name != "db.query" || g.Top[1].Name != "rank.score" {
		t.Errorf("top of the diff table = %+v, want db.query and rank.score first", g.Top)
	}
}

func TestEmptyGraph(t *testing.T) {
	g := Graph(profile.Tree(nil), Options{Label: "CPU", Unit: store.UnitNanoseconds, Empty: "no CPU samples during this span"})
	doc := render(t, g)
	if len(frames(doc)) != 0 || len(find(doc, func(n *html.Node) bool { return hasClass(n, "flame") })) != 0 {
		t.Errorf("an empty graph drew frames")
	}
	if p := find(doc, func(n *html.Node) bool { return hasClass(n, "empty") }); len(p) != 1 || text(p[0]) != "no CPU samples during this span" {
		t.Errorf("empty message missing")
	}
	d := Diff(profile.Diff(profile.Tree(nil), profile.Tree(nil)), Options{})
	if len(frames(render(t, d))) != 0 {
		t.Errorf("an empty diff drew frames")
	}
}

func TestFlameSearch(t *testing.T) {
	var buf bytes.Buffer
	if err := components.FlameSearch("flame-search").Render(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "data-flame-search") {
		t.Errorf("search input lacks data-flame-search: %s", buf.String())
	}
}
