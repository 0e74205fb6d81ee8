package report

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/microcosm-cc/bluemonday"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
)

// RenderNotes turns the reviewer's Markdown notes into HTML for the
// incident page and report.html. goldmark is used without its unsafe
// option, so raw HTML in the notes is dropped rather than passed through;
// bluemonday's UGC policy then sanitises the result as a second line of
// defence (links get rel="nofollow", scripts, styles and event handlers
// never survive). The page writes this output unescaped, and nothing else.
func RenderNotes(md string) (string, error) {
	if strings.TrimSpace(md) == "" {
		return "", nil
	}
	var buf bytes.Buffer
	if err := goldmark.New(goldmark.WithExtensions(extension.GFM)).Convert([]byte(md), &buf); err != nil {
		return "", fmt.Errorf("render notes: %w", err)
	}
	return bluemonday.UGCPolicy().Sanitize(buf.String()), nil
}
