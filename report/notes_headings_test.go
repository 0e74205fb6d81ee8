package report

import (
	"strings"
	"testing"
)

func TestNotesMarkdown(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"no headings", "- [ ] roll back\n- [x] page\n", "- [ ] roll back\n- [x] page\n"},
		{"level 2 moves under Notes", "## Timeline\n\ntext\n### Detail\n", "### Timeline\n\ntext\n#### Detail\n"},
		{"level 1 too", "# What happened\n## Why\n", "### What happened\n#### Why\n"},
		{"deep stays within 6", "## A\n###### F\n", "### A\n###### F\n"},
		{"already deep", "#### Aside\n", "#### Aside\n"},
		{"leading Notes heading dropped", "## Notes\n\n- [ ] follow up\n", "- [ ] follow up\n"},
		{"later Notes heading kept", "text\n## Notes:\n", "text\n### Notes:\n"},
		{"code is not a heading", "## A\n```\n# comment\n```\n", "### A\n```\n# comment\n```\n"},
		{"hashtag is not a heading", "#hashtag\n", "#hashtag\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NotesMarkdown(tc.in); got != tc.want {
				t.Errorf("NotesMarkdown(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestRenderNotesKeepsTaskLists(t *testing.T) {
	html, err := RenderNotes("## Follow-up\n\n- [ ] add an index\n- [x] roll back\n<input type=\"text\" onfocus=\"alert(1)\">\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<h3>Follow-up</h3>`, `<input disabled="" type="checkbox"`, `<input checked="" disabled="" type="checkbox"`} {
		if !strings.Contains(html, want) {
			t.Errorf("rendered notes lack %s:\n%s", want, html)
		}
	}
	if strings.Contains(html, "onfocus") || strings.Contains(html, `type="text"`) {
		t.Errorf("rendered notes let a raw input through:\n%s", html)
	}
}
