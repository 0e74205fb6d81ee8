package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	east "github.com/yuin/goldmark/extension/ast"
	"github.com/yuin/goldmark/text"

	"github.com/tailscope/tailscope/components/chart"
	"github.com/tailscope/tailscope/internal/browsertest"
	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/internal/units"
	"github.com/tailscope/tailscope/internal/wire"
	"github.com/tailscope/tailscope/report"
)

// rvBase is where httptest requests say they come from.
const rvBase = "http://example.com"

// rvExports fetches the incident page and its three exports.
type rvExports struct {
	page, md, html, json *httptest.ResponseRecorder
	rep                  report.Report
}

// fetchExports reads through the cached handler: the page and the three
// exports then share one analysis, as they do in a running tailscope.
func fetchExports(t *testing.T, f *rvFixture) rvExports {
	t.Helper()
	p := fmt.Sprintf("/incidents/%d", f.incident.ID)
	e := rvExports{
		page: rvGet(t, f.cached, p), md: rvGet(t, f.cached, p+"/report.md"),
		html: rvGet(t, f.cached, p+"/report.html"), json: rvGet(t, f.cached, p+"/report.json"),
	}
	for name, w := range map[string]*httptest.ResponseRecorder{"page": e.page, "report.md": e.md, "report.html": e.html, "report.json": e.json} {
		if w.Code != http.StatusOK {
			t.Fatalf("%s: status %d: %s", name, w.Code, rvHead(w.Body.String(), 20))
		}
	}
	if err := json.Unmarshal(e.json.Body.Bytes(), &e.rep); err != nil {
		t.Fatalf("report.json: %v", err)
	}
	return e
}

// TestIncidentReportExports checks report.json, report.md and report.html
// of the fixture's incident: shape, structure, self-containment, that they
// show the page's numbers, and their golden files.
func TestIncidentReportExports(t *testing.T) {
	f := newRVFixture(t)
	e := fetchExports(t, f)
	t.Run("json", func(t *testing.T) { checkReportJSON(t, f, e) })
	t.Run("markdown", func(t *testing.T) { checkReportMarkdown(t, f, e) })
	t.Run("html", func(t *testing.T) { checkReportHTML(t, e) })
	t.Run("same numbers as the page", func(t *testing.T) { checkReportNumbers(t, e) })
	t.Run("golden", func(t *testing.T) { checkReportGolden(t, e) })
}

func checkReportJSON(t *testing.T, f *rvFixture, e rvExports) {
	body := e.json.Body.Bytes()
	if ct := e.json.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	t.Run("no undocumented fields", func(t *testing.T) {
		d := json.NewDecoder(bytes.NewReader(body))
		d.DisallowUnknownFields()
		var rep report.Report
		if err := d.Decode(&rep); err != nil {
			t.Fatalf("report.json does not match report.Report: %v", err)
		}
	})
	t.Run("every field present", func(t *testing.T) {
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		for _, missing := range missingFields(reflect.TypeFor[report.Report](), m, "") {
			t.Errorf("report.json lacks %s", missing)
		}
	})
	t.Run("the cache changes nothing", func(t *testing.T) {
		direct := rvGet(t, f.handler, fmt.Sprintf("/incidents/%d/report.json", f.incident.ID)).Body.Bytes()
		if !bytes.Equal(direct, body) {
			t.Errorf("report.json computed without the cache differs near %q", firstDiffText(direct, body))
		}
	})
	t.Run("round trip", func(t *testing.T) {
		again, err := json.MarshalIndent(e.rep, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(append(again, '\n'), body) {
			t.Errorf("decoding and encoding report.json changes it near %q", firstDiffText(append(again, '\n'), body))
		}
	})
	t.Run("documented", func(t *testing.T) {
		doc, err := os.ReadFile(filepath.Join("..", "docs", "REPORTS.md"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range reportFieldNames(reflect.TypeFor[report.Report]()) {
			if !strings.Contains(string(doc), "`"+name+"`") {
				t.Errorf("docs/REPORTS.md does not document field %q", name)
			}
		}
	})
	t.Run("content", func(t *testing.T) {
		rep := e.rep
		if rep.ReportVersion != report.Version || rep.Incident.ID != f.incident.ID || rep.Incident.Title != f.incident.Title || rep.Incident.Notes != rvNotes {
			t.Errorf("incident %+v", rep.Incident)
		}
		if len(rep.Endpoints) != 1 || rep.Endpoints[0].Impact == nil || rep.Endpoints[0].Impact.Verdict != "regressed" || rep.Endpoints[0].Outliers == nil {
			t.Fatalf("endpoints %+v", rep.Endpoints)
		}
		if len(rep.Deploys) != 1 || rep.Deploys[0].Comparison == nil || rep.Deploys[0].Comparison.Verdict != "regressed" || !rep.Deploys[0].InRange {
			t.Errorf("deploys %+v", rep.Deploys)
		}
		if !strings.Contains(rep.Deploys[0].Comparison.Summary, "candidate-svc → postgresql") {
			t.Errorf("deploy summary %q does not name the slow hop", rep.Deploys[0].Comparison.Summary)
		}
		if len(rep.Budgets) != 1 || rep.Budgets[0].During.Total != rep.Endpoints[0].During.Requests || rep.Budgets[0].During.Bad == 0 {
			t.Errorf("budget during %d requests (endpoint %d), %d slow", rep.Budgets[0].During.Total, rep.Endpoints[0].During.Requests, rep.Budgets[0].During.Bad)
		}
		if len(rep.Exemplars) == 0 || !rep.Exemplars[0].Stored || len(rep.Exemplars[0].CriticalPath) == 0 {
			t.Errorf("exemplars %+v", rep.Exemplars)
		}
		for _, l := range []string{rep.Links.Incident, rep.Links.ReportJSON, rep.Exemplars[0].Link, rep.Endpoints[0].Links.Outliers} {
			if !strings.HasPrefix(l, rvBase+"/") {
				t.Errorf("link %q is not absolute", l)
			}
		}
	})
}

// reportTypes are the report's own types, whose fields report.json must
// always carry (analysis types nested inside keep the API's shapes).
func isReportType(t reflect.Type) bool {
	// A budget's compliance is the JSON API's body (docs/API.md), nested
	// as it is and not repeated in docs/REPORTS.md.
	return t.PkgPath() == reflect.TypeFor[report.Report]().PkgPath() && t.Kind() == reflect.Struct && t != reflect.TypeFor[wire.Compliance]()
}

// missingFields lists the JSON fields of t absent from m, recursing into
// the report's own struct types (the first element of slices).
func missingFields(t reflect.Type, m map[string]any, path string) []string {
	var out []string
	for i := range t.NumField() {
		sf := t.Field(i)
		name := strings.Split(sf.Tag.Get("json"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		v, ok := m[name]
		if !ok {
			out = append(out, path+name)
			continue
		}
		ft := sf.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case isReportType(ft):
			if sub, ok := v.(map[string]any); ok {
				out = append(out, missingFields(ft, sub, path+name+".")...)
			}
		case ft.Kind() == reflect.Slice && isReportType(ft.Elem()):
			list, _ := v.([]any)
			if len(list) == 0 {
				out = append(out, path+name+"[0] (the fixture should fill it)")
				continue
			}
			if sub, ok := list[0].(map[string]any); ok {
				out = append(out, missingFields(ft.Elem(), sub, path+name+"[0].")...)
			}
		}
	}
	return out
}

// reportFieldNames lists the JSON names of the report's own fields.
func reportFieldNames(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		sf := t.Field(i)
		name := strings.Split(sf.Tag.Get("json"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		out = append(out, name)
		ft := sf.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if isReportType(ft) {
			out = append(out, reportFieldNames(ft)...)
		}
	}
	return out
}

func firstDiffText(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return string(a[max(0, i-60):min(len(a), i+60)])
}

// mdDoc is what the structural checks read from report.md.
type mdDoc struct {
	h1     []string
	h2     []string
	tables int
	links  []string
}

func parseMarkdown(t *testing.T, src []byte) mdDoc {
	t.Helper()
	root := goldmark.New(goldmark.WithExtensions(extension.GFM)).Parser().Parse(text.NewReader(src))
	var d mdDoc
	err := ast.Walk(root, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n := n.(type) {
		case *ast.Heading:
			var b strings.Builder
			for c := n.FirstChild(); c != nil; c = c.NextSibling() {
				if tx, ok := c.(*ast.Text); ok {
					b.Write(tx.Segment.Value(src))
				}
			}
			switch n.Level {
			case 1:
				d.h1 = append(d.h1, b.String())
			case 2:
				d.h2 = append(d.h2, b.String())
			}
		case *east.Table:
			d.tables++
		case *ast.Link:
			d.links = append(d.links, string(n.Destination))
		}
		return ast.WalkContinue, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// unescapedPipes counts the column separators of a table line.
var unescapedPipes = regexp.MustCompile(`(^|[^\\])\|`)

func checkReportMarkdown(t *testing.T, f *rvFixture, e rvExports) {
	md := e.md.Body.Bytes()
	if ct := e.md.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/markdown") {
		t.Errorf("Content-Type %q", ct)
	}
	d := parseMarkdown(t, md)
	if len(d.h1) != 1 || d.h1[0] != "Postmortem: "+f.incident.Title {
		t.Errorf("top headings %q, want one: the incident's title", d.h1)
	}
	// Contributing factors first, then the timeline, the evidence and
	// the exemplars; the notes' own headings sit under Notes (level 3),
	// never beside the generated sections.
	sections := []string{"Summary", "Contributing factors", "Timeline", "Evidence", "Exemplar traces", "Notes", "Links"}
	if !slices.Equal(d.h2, sections) {
		t.Errorf("sections %q; want %q", d.h2, sections)
	}
	// Impact, its comparison and hop tables, timeline, the deploy's two,
	// budget, exemplars, and the notes' own table.
	if d.tables < 9 {
		t.Errorf("%d tables parse as tables, want at least 9", d.tables)
	}
	var table []string
	check := func() {
		for i, l := range table {
			if n, want := len(unescapedPipes.FindAllString(l, -1)), len(unescapedPipes.FindAllString(table[0], -1)); n != want {
				t.Errorf("table row %d has %d cell separators, the header %d: %s", i, n, want, l)
			}
		}
		table = nil
	}
	for _, l := range strings.Split(string(md), "\n") {
		if strings.HasPrefix(l, "|") {
			table = append(table, l)
		} else if table != nil {
			check()
		}
	}
	// The notes are pasted as the reviewer wrote them, but for raw HTML,
	// which comes out as text (report.TestNotesMarkdownSanitised): the
	// notes' only HTML is one <script> block, each "<" of it escaped.
	if !strings.Contains(string(md), strings.TrimRight(strings.ReplaceAll(rvNotes, "<", "&lt;"), "\n")) || strings.Contains(string(md), "<script") {
		t.Error("the notes are not pasted as written, with raw HTML as text")
	}
	// Every link to tailscope leads to a page that exists; the only other
	// links are the reviewer's own, in the notes.
	seen := map[string]bool{}
	for _, l := range d.links {
		if seen[l] {
			continue
		}
		seen[l] = true
		path, ok := strings.CutPrefix(l, rvBase)
		if !ok {
			if l != "https://runbooks.example/feed" {
				t.Errorf("link %q points outside tailscope", l)
			}
			continue
		}
		if w := rvGet(t, f.cached, path); w.Code != http.StatusOK {
			t.Errorf("link %s: status %d", l, w.Code)
		}
	}
	if len(seen) < 15 {
		t.Errorf("%d distinct links; the report should link its evidence", len(seen))
	}
}

func checkReportHTML(t *testing.T, e rvExports) {
	body := e.html.Body.String()
	if csp := e.html.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	for _, bad := range []string{"<link", "<script", " src=", "<img", "@import", "url("} {
		if strings.Contains(body, bad) {
			t.Errorf("report.html contains %q: it must need nothing but itself", bad)
		}
	}
	for _, want := range []string{"<style>", "--bg", "@page", `<svg class="chart"`, `class="band"`, `data-testid="incident-summary"`, "<table>", "What we saw"} {
		if !strings.Contains(body, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	for _, m := range regexp.MustCompile(`href="([^"]*)"`).FindAllStringSubmatch(body, -1) {
		if !strings.HasPrefix(m[1], rvBase+"/") && m[1] != "https://runbooks.example/feed" {
			t.Errorf("link %q in report.html does not work outside tailscope", m[1])
		}
	}
	if strings.Contains(body, `data-testid="pin-form"`) || strings.Contains(body, `method="post"`) {
		t.Error("report.html carries the page's forms")
	}
}

func checkReportNumbers(t *testing.T, e rvExports) {
	rep := e.rep
	page := html.UnescapeString(e.page.Body.String())
	doc := html.UnescapeString(e.html.Body.String())
	md := strings.ReplaceAll(e.md.Body.String(), `\`, "")
	ep := rep.Endpoints[0]
	numbers := []string{
		rep.Summary,
		ep.Impact.Summary,
		rep.Deploys[0].Comparison.Summary,
		units.Ms(ep.During.Percentiles.P99Ms),
		units.Ms(ep.Impact.Before.Percentiles.P99Ms),
		units.SLOPercent(rep.Budgets[0].During.Attainment),
		chart.FormatPercent(rep.Budgets[0].PeriodBudgetSpent),
		ep.Outliers.Groups[0].Label,
		units.Ms(ep.Outliers.Groups[0].CounterfactualP99Ms),
		rep.Exemplars[0].TraceID[:12],
	}
	for _, n := range numbers {
		for name, body := range map[string]string{"page": page, "report.html": doc, "report.md": md} {
			if !strings.Contains(body, n) {
				t.Errorf("%s does not show %q", name, n)
			}
		}
	}
	// The page and report.html render the same review.
	section := func(s string) string {
		m := regexp.MustCompile(`(?s)<section data-testid="incident-timeline">.*?</section>`).FindString(s)
		return regexp.MustCompile(`href="[^"]*"`).ReplaceAllString(m, "")
	}
	if section(page) == "" || section(page) != section(doc) {
		t.Error("the page's timeline and report.html's differ")
	}
}

// checkReportGolden pins the three exports of the fixture; run
// `go test ./web -run IncidentReportExports -update` after a reviewed change.
func checkReportGolden(t *testing.T, e rvExports) {
	style := regexp.MustCompile(`(?s)<style>.*?</style>`)
	for name, got := range map[string][]byte{
		"report.md":   e.md.Body.Bytes(),
		"report.json": e.json.Body.Bytes(),
		// The stylesheet is app.css, pinned by its own tests.
		"report.html": style.ReplaceAll(e.html.Body.Bytes(), []byte("<style>/* app.css */</style>")),
	} {
		t.Run(name, func(t *testing.T) { rvGolden(t, name, got) })
	}
}

// rvGolden compares got with testdata/review/NAME, rewriting it with -update.
func rvGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "review", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from testdata/review/%s near %q; review and rerun with -update", name, name, firstDiffText(got, want))
	}
}

// TestIncidentReportPrintsToPDF opens report.html in headless Chromium,
// checks it loads nothing but itself, and prints it to PDF.
func TestIncidentReportPrintsToPDF(t *testing.T) {
	testenv.Chromium(t)
	f := newRVFixture(t)
	srv := httptest.NewServer(f.handler)
	defer srv.Close()
	b := browsertest.New(t)
	b.Do(browsertest.ColorScheme("light"), chromedp.Navigate(fmt.Sprintf("%s/incidents/%d/report.html", srv.URL, f.incident.ID)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="incident-summary"]`)))
	if n := browsertest.Get(b, chromedp.Evaluate[int](`performance.getEntriesByType("resource").length`)); n != 0 {
		t.Errorf("report.html made %d requests; it must be self-contained", n)
	}
	if n := browsertest.Get(b, chromedp.Evaluate[int](`document.querySelectorAll("svg.chart").length`)); n < 3 {
		t.Errorf("%d charts drawn, want the timeline's three", n)
	}
	// The stylesheet applied: the inline CSS variables resolve.
	if bg := browsertest.Get(b, chromedp.Evaluate[string](`getComputedStyle(document.body).backgroundColor`)); bg != "rgb(255, 255, 255)" {
		t.Errorf("report background %s, want the light theme's white", bg)
	}
	pdf := browsertest.Get(b, chromedp.PrintToPDF(chromedp.PDFPaper(chromedp.PaperA4), chromedp.PDFPreferCSSPageSize(), chromedp.PDFPrintBackground()))
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) || !bytes.Contains(pdf[max(0, len(pdf)-64):], []byte("%%EOF")) {
		t.Fatalf("printToPDF returned %d bytes that are not a PDF", len(pdf))
	}
	if len(pdf) < 20_000 {
		t.Errorf("PDF of %d bytes: too small for the report's pages", len(pdf))
	}
}
