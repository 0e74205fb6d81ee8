package report

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"
)

// RenderNotes turns the reviewer's Markdown notes into HTML for the
// incident page and report.html, headings placed as in report.md
// (NotesMarkdown). goldmark is used without its unsafe option, so raw
// HTML in the notes is dropped rather than passed through; bluemonday's
// UGC policy then sanitises the result as a second line of defence (links
// get rel="nofollow", scripts, styles and event handlers never survive;
// task-list checkboxes do). The page writes this output unescaped, and
// nothing else.
func RenderNotes(md string) (string, error) {
	if strings.TrimSpace(md) == "" {
		return "", nil
	}
	var buf bytes.Buffer
	if err := goldmark.New(goldmark.WithExtensions(extension.GFM)).Convert([]byte(NotesMarkdown(md)), &buf); err != nil {
		return "", fmt.Errorf("render notes: %w", err)
	}
	return notesPolicy().Sanitize(buf.String()), nil
}

// sanitizeNotesMarkdown returns the notes as Markdown that renders nothing
// report.html would not: raw HTML (`<img onerror=…>`, `<script>`) becomes
// text, and a link, image or autolink whose destination is not http(s),
// mailto or relative loses it. report.md is pasted into other tools whose
// renderers may pass raw HTML through, so the export cannot rely on them.
// The source is edited only where goldmark found such a construct, so the
// rest reads as the reviewer wrote it; the result is parsed again, and if
// anything unsafe is left (a destination spelled with entities such as
// "java&#115;cript:" cannot be located in the source) the notes are
// written as escaped text instead.
func sanitizeNotesMarkdown(md string) string {
	src := []byte(md)
	edits, located := unsafeNotes(src)
	if len(edits) == 0 && located {
		return md
	}
	if located {
		out := applyEdits(src, edits)
		if again, ok := unsafeNotes(out); ok && len(again) == 0 {
			return string(out)
		}
	}
	lines := strings.Split(strings.TrimRight(md, "\n"), "\n")
	for i, l := range lines {
		lines[i] = mdText(l)
	}
	return strings.Join(lines, "\n")
}

// notesEdit replaces src[from:to] with text.
type notesEdit struct {
	from, to int
	text     string
}

// unsafeNotes finds the unsafe constructs of the notes and the edit that
// defuses each; located is false when one could not be placed in src.
func unsafeNotes(src []byte) (edits []notesEdit, located bool) {
	doc := goldmark.New(goldmark.WithExtensions(extension.GFM)).Parser().Parse(text.NewReader(src))
	located = true
	escapeSegment := func(s text.Segment) {
		for i := s.Start; i < s.Stop; i++ {
			if src[i] == '<' {
				edits = append(edits, notesEdit{i, i + 1, "&lt;"})
			}
		}
	}
	// locate finds needle at or after from and replaces it.
	locate := func(needle []byte, from int, with func([]byte) string) {
		if i := bytes.Index(src[from:], needle); len(needle) > 0 && i >= 0 {
			edits = append(edits, notesEdit{from + i, from + i + len(needle), with(needle)})
			return
		}
		located = false
	}
	toHash := func([]byte) string { return "#" }
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n := n.(type) {
		case *ast.HTMLBlock:
			for i := 0; i < n.Lines().Len(); i++ {
				escapeSegment(n.Lines().At(i))
			}
			if n.HasClosure() {
				escapeSegment(n.ClosureLine)
			}
		case *ast.RawHTML:
			for i := 0; i < n.Segments.Len(); i++ {
				escapeSegment(n.Segments.At(i))
			}
		case *ast.Link:
			if !safeNoteURL(n.Destination) {
				locate(n.Destination, textStart(n), toHash)
			}
		case *ast.Image:
			if !safeNoteURL(n.Destination) {
				locate(n.Destination, textStart(n), toHash)
			}
		case *ast.AutoLink:
			if !safeNoteURL(n.URL(src)) {
				locate(append(append([]byte("<"), n.Label(src)...), '>'), 0, func(b []byte) string {
					return strings.ReplaceAll(string(b), ":", "&#58;") // no longer an autolink: text
				})
			}
		}
		return ast.WalkContinue, nil
	})
	return edits, located
}

// textStart is where the first text inside n begins in the source (0 when
// it has none), so a destination is searched for after its link text.
func textStart(n ast.Node) int {
	start := 0
	_ = ast.Walk(n, func(c ast.Node, entering bool) (ast.WalkStatus, error) {
		if t, ok := c.(*ast.Text); ok && entering {
			start = t.Segment.Start
			return ast.WalkStop, nil
		}
		return ast.WalkContinue, nil
	})
	return start
}

// applyEdits applies non-overlapping edits in source order; an edit that
// overlaps an earlier one is dropped (the second parse then finds what it
// was for, and the caller falls back to text).
func applyEdits(src []byte, edits []notesEdit) []byte {
	slices.SortFunc(edits, func(a, b notesEdit) int { return a.from - b.from })
	var out []byte
	at := 0
	for _, e := range edits {
		if e.from < at {
			continue
		}
		out = append(append(out, src[at:e.from]...), e.text...)
		at = e.to
	}
	return append(out, src[at:]...)
}

// safeNoteURL allows what bluemonday's UGC policy allows in report.html:
// relative references and the http, https and mailto schemes. It judges
// the URL a browser would follow: entities and backslash escapes resolved
// ("java&#115;cript:"), and the tabs and line breaks browsers skip in a
// scheme removed.
func safeNoteURL(u []byte) bool {
	u = util.UnescapePunctuations(util.ResolveNumericReferences(util.ResolveEntityNames(u)))
	s := strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f {
			return -1
		}
		return r
	}, string(u))
	i := strings.IndexAny(s, ":/?#")
	if i < 0 || s[i] != ':' {
		return true // relative: no scheme
	}
	switch strings.ToLower(s[:i]) {
	case "http", "https", "mailto":
		return true
	}
	return false
}
