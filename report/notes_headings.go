package report

import (
	"regexp"
	"strings"

	"github.com/microcosm-cc/bluemonday"
)

// notesHeading is an ATX heading line; notesFence opens or closes a
// fenced code block, inside which nothing is a heading.
var (
	notesHeading = regexp.MustCompile(`^ {0,3}(#{1,6})([ \t]+|$)(.*)$`)
	notesFence   = regexp.MustCompile("^ {0,3}(```|~~~)")
)

// notesLevel is the level the notes' top headings take: under the
// report's "Notes" section (level 2), so a reviewer's "## Timeline" never
// reads as a second generated Timeline.
const notesLevel = 3

// NotesMarkdown is the reviewer's notes as the report places them under
// its own Notes heading: every heading moved down so the shallowest is
// level 3 (at most 6), and a leading "Notes" heading dropped as a
// duplicate. Everything else (task lists, tables, code) is kept as
// written.
func NotesMarkdown(md string) string {
	lines := strings.Split(md, "\n")
	shallowest, fenced := 7, false
	for _, l := range lines {
		if notesFence.MatchString(l) {
			fenced = !fenced
			continue
		}
		if m := notesHeading.FindStringSubmatch(l); m != nil && !fenced {
			shallowest = min(shallowest, len(m[1]))
		}
	}
	if shallowest == 7 {
		return md
	}
	shift := max(0, notesLevel-shallowest)
	fenced = false
	first := true
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		if notesFence.MatchString(l) {
			fenced = !fenced
		}
		m := notesHeading.FindStringSubmatch(l)
		if m == nil || fenced {
			if strings.TrimSpace(l) != "" {
				first = false
			}
			out = append(out, l)
			continue
		}
		if first && strings.EqualFold(strings.Trim(strings.TrimSpace(m[3]), "#: "), "notes") {
			first = false
			continue
		}
		first = false
		out = append(out, strings.Repeat("#", min(6, len(m[1])+shift))+" "+strings.TrimSpace(m[3]))
	}
	return strings.TrimLeft(strings.Join(out, "\n"), "\n")
}

// notesPolicy is bluemonday's UGC policy plus GFM task-list checkboxes
// (disabled, as goldmark writes them), so "- [ ] roll back" survives.
func notesPolicy() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	p.AllowAttrs("type").Matching(regexp.MustCompile(`^checkbox$`)).OnElements("input")
	p.AllowAttrs("checked", "disabled").OnElements("input")
	return p
}
