package report

import (
	"bytes"
	"html"
	"strings"
	"testing"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
)

// TestMarkdownEscaping renders escaped text with a Markdown renderer and
// checks it comes out as the same text, not as syntax.
func TestMarkdownEscaping(t *testing.T) {
	render := func(t *testing.T, md string) string {
		t.Helper()
		var buf bytes.Buffer
		if err := goldmark.New(goldmark.WithExtensions(extension.GFM)).Convert([]byte(md), &buf); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	tests := []struct {
		name, text string
		place      func(string) string
		notWant    []string
		want       string
	}{
		{"emphasis", "*very* slow", mdText, []string{"<em>"}, "*very* slow"},
		{"html", "<script>alert(1)</script>", mdText, []string{"<script>"}, "&lt;script&gt;alert(1)&lt;/script&gt;"},
		{"link", "[x](javascript:alert(1))", mdText, []string{"<a "}, "[x](javascript:alert(1))"},
		{"list at line start", "1. Outage", mdText, []string{"<ol>"}, "1. Outage"},
		{"bullet at line start", "- oops", mdText, []string{"<ul>"}, "- oops"},
		{"heading at line start", "# not a heading", mdText, []string{"<h1>"}, "# not a heading"},
		{"intraword underscore stays plain", "feed_api_v2", mdText, nil, "feed_api_v2"},
		{"table cell keeps its pipe", "a|b", func(s string) string { return "| x |\n| --- |\n| " + mdCell(s) + " |" }, []string{"<td>a</td>"}, "<td>a|b</td>"},
		{"link text with brackets", "p99 [CI] ] [", func(s string) string { return mdLink(s, "http://example.com/x") }, nil, `<a href="http://example.com/x">p99 [CI] ] [</a>`},
		{"newlines stay in one line", "a\nb\r\n# c", mdText, []string{"<h1>"}, "a b  # c"},
	}
	// Where nothing would become syntax, the text stays as it was, so it
	// reads well where Markdown is not rendered.
	for _, plain := range []string{"feed_api_v2", "p99 420 ms → 1.8 s, +330% [CI +250% … +410%], regression"} {
		if got := mdText(plain); got != plain {
			t.Errorf("mdText(%q) = %q, want it unchanged", plain, got)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md := tt.place(tt.text)
			got := render(t, md)
			for _, bad := range tt.notWant {
				if strings.Contains(got, bad) {
					t.Errorf("%q rendered as %q: contains %q", md, got, bad)
				}
			}
			if !strings.Contains(html.UnescapeString(got), html.UnescapeString(tt.want)) {
				t.Errorf("%q rendered as %q, want the text %q", md, got, tt.want)
			}
		})
	}
}
