package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/renderer/html"
	xhtml "golang.org/x/net/html"
)

// unsafeHTML returns what, in HTML a lenient renderer made of report.md
// (raw HTML passed through, as some paste targets do), could run script or
// load something: an element other than plain formatting, an event
// handler, a URL with a scheme other than http(s) or mailto.
func unsafeHTML(doc string) string {
	allowed := map[string]bool{"p": true, "a": true, "img": true, "strong": true, "em": true, "code": true, "pre": true,
		"ul": true, "ol": true, "li": true, "blockquote": true, "h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true,
		"table": true, "thead": true, "tbody": true, "tr": true, "th": true, "td": true, "del": true, "br": true, "hr": true, "input": true}
	z := xhtml.NewTokenizer(strings.NewReader(doc))
	for {
		switch z.Next() {
		case xhtml.ErrorToken:
			return ""
		case xhtml.StartTagToken, xhtml.SelfClosingTagToken:
			tok := z.Token()
			if !allowed[tok.Data] {
				return "element " + tok.Data
			}
			for _, a := range tok.Attr {
				switch {
				case strings.HasPrefix(strings.ToLower(a.Key), "on"):
					return "handler " + a.Key
				case (a.Key == "href" || a.Key == "src") && !safeNoteURL([]byte(a.Val)):
					return a.Key + "=" + a.Val
				}
			}
		}
	}
}

// TestNotesMarkdownSanitised renders report.md's notes the most lenient
// way (raw HTML on) and checks nothing in them could run, while ordinary
// Markdown comes through as written.
func TestNotesMarkdownSanitised(t *testing.T) {
	tests := []struct {
		name, md string
		keep     []string // substrings of the source that must survive as written
	}{
		{"plain markdown unchanged", "**bold** [docs](https://example.com/x) and `code`\n\n- one\n- two", []string{"**bold** [docs](https://example.com/x) and `code`", "- two"}},
		{"img onerror", "see <img src=x onerror=alert(1)> here", []string{"see "}},
		{"html block", "<script>alert(1)</script>\n\nafter", []string{"after"}},
		{"div with handler", "<div onclick=\"x()\">hi</div>\n", nil},
		{"javascript link", "[click](javascript:alert(1)) and [ok](https://example.com)", []string{"[ok](https://example.com)"}},
		{"mixed case scheme", "[click](JaVaScRiPt:alert(1))", nil},
		{"entity-spelled scheme", "[click](java&#115;cript:alert(1))", nil},
		{"image data url", "![i](data:text/html;base64,PHNjcmlwdD4=)", nil},
		{"autolink", "<javascript:alert(1)>", nil},
		{"reference link", "[x][r]\n\n[r]: javascript:alert(1)", nil},
		{"relative link kept", "[trace](/traces/abc)", []string{"[trace](/traces/abc)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sanitizeNotesMarkdown(tt.md)
			var buf bytes.Buffer
			md := goldmark.New(goldmark.WithExtensions(extension.GFM), goldmark.WithRendererOptions(html.WithUnsafe()))
			if err := md.Convert([]byte(got), &buf); err != nil {
				t.Fatal(err)
			}
			if m := unsafeHTML(buf.String()); m != "" {
				t.Errorf("notes %q → %q render %q with %q", tt.md, got, buf.String(), m)
			}
			for _, k := range tt.keep {
				if !strings.Contains(got, k) {
					t.Errorf("notes %q → %q lost %q", tt.md, got, k)
				}
			}
		})
	}
}

// FuzzSanitizeNotesMarkdown checks no notes, however written, come out
// of the sanitiser able to run script under a lenient renderer.
func FuzzSanitizeNotesMarkdown(f *testing.F) {
	for _, s := range []string{"<img src=x onerror=alert(1)>", "[x](javascript:alert(1))", "<javascript:x>", "**b**\n\n<div>\n</div>", "[a]: javascript:x\n[a]"} {
		f.Add(s)
	}
	md := goldmark.New(goldmark.WithExtensions(extension.GFM), goldmark.WithRendererOptions(html.WithUnsafe()))
	f.Fuzz(func(t *testing.T, notes string) {
		got := sanitizeNotesMarkdown(notes)
		var buf bytes.Buffer
		if err := md.Convert([]byte(got), &buf); err != nil {
			t.Fatal(err)
		}
		if m := unsafeHTML(buf.String()); m != "" {
			t.Fatalf("notes %q → %q render %q", notes, got, m)
		}
	})
}
