package components

import (
	"context"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"

	"github.com/tailscope/tailscope/components/chart"
)

// IncidentsView is the incident list.
type IncidentsView struct {
	Rows    []IncidentRow
	NewHref string
}

// IncidentRow is one incident in the list.
type IncidentRow struct {
	ID                         int64
	Title, Duration            string
	From, To                   time.Time
	Services                   []string
	Pinned                     int
	Href, EditHref, DeleteHref string
	ReportHref                 string
}

// IncidentFormView is the create/edit form of an incident, holding the
// values as the user sent them.
type IncidentFormView struct {
	Heading, Action, Submit, CancelHref string
	Title, From, To, Notes              string
	Services                            []ServiceChoice
	// MoreServices counts the services not offered as a choice (only the
	// busiest are); a text field takes any of them.
	MoreServices          int
	Errors                FormErrors
	General               []string
	MaxTitle, MaxNotesKiB int
}

// ServiceChoice is one service checkbox.
type ServiceChoice struct {
	Name    string
	Checked bool
}

// IncidentView is an incident's review page; the HTML report renders the
// same view with Export set, so both show the same numbers and markup.
type IncidentView struct {
	ID       int64
	Title    string
	From, To time.Time
	Duration string
	Services []string
	// Export hides the page's forms and editing links (report.html).
	Export      bool
	GeneratedAt time.Time
	Summary     string
	Warnings    []string
	Timeline    []TimelineRow
	Endpoints   []IncidentEndpointView
	Deploys     []IncidentDeployView
	Budgets     []IncidentBudgetView
	Exemplars   []ExemplarView
	// NotesHTML is the reviewer's Markdown rendered to HTML with raw
	// HTML disabled and then sanitised (see web/report_notes.go); it is
	// the only markup a template writes unescaped.
	NotesHTML string
	HasNotes  bool
	// PinValue and PinError echo a rejected pin request.
	PinValue, PinError string
	PinAction          string
	Links              IncidentLinks
	// Revision is the snapshot shown (0: computed now), FinalizedAt its
	// time and ReportVersion the tailscope that computed it; Stale says
	// the incident was edited after it. Revisions lists every snapshot.
	Revision      int
	TracesKept    bool
	FinalizedAt   time.Time
	ReportVersion string
	Stale         bool
	Revisions     []RevisionRow
}

// RevisionRow is one finalized revision of an incident's report.
type RevisionRow struct {
	Revision int
	At       time.Time
	Version  string
	Href     string
	Current  bool
}

// IncidentLinks are the incident's own pages and exports.
type IncidentLinks struct {
	Page, Edit, Delete, ReportMD, ReportHTML, ReportJSON, API string
	// Finalize and Recompute are the forms storing a snapshot revision.
	Finalize, Recompute string
}

// TimelineRow is one event of the incident timeline.
type TimelineRow struct {
	Time time.Time
	// Fmt is the time's format: a clock when the whole timeline falls on
	// one day, else date and clock.
	Fmt              string
	Kind, Text, Href string
}

// IncidentEndpointView is one endpoint examined by the review: timeline
// charts, the impact against the window before, and its outlier groups.
type IncidentEndpointView struct {
	Service, Endpoint string
	Latency           chart.TimeChart
	Throughput        chart.TimeChart
	ErrorRate         chart.TimeChart
	Facts             []Fact
	Impact            *ComparisonView
	ImpactNote        string
	Groups            []GroupView
	OutliersNote      string
	OutlierFacts      string
	LatencyHref       string
	OutliersHref      string
	TracesHref        string
}

// IncidentDeployView is a deploy in or just before the incident with its
// before/after verdict.
type IncidentDeployView struct {
	Label, Source, Note   string
	At                    time.Time
	Href                  string
	InRange               bool
	Verdict, VerdictClass string
	Summary               string
	Unavailable           string
	// Ranges states the compared before/after ranges; CompareHref is the
	// comparison's API link.
	Ranges, CompareHref string
	// FirstSeen: the service's first sighting, shown without a
	// comparison (nothing ran before it).
	FirstSeen bool
}

// IncidentBudgetView is a budget's burn during the incident.
type IncidentBudgetView struct {
	Name, Objective, Href string
	Status, StatusText    string
	Facts                 []Fact
	BurnRates             []BurnRow
	WorstHop              string
}

// ExemplarView is a compact waterfall summary of one exemplar trace: its
// root, duration and where its critical path went.
type ExemplarView struct {
	TraceID, Short, Href string
	Reason               string
	Pinned               bool
	Stored               bool
	Root, Start          string
	DurationMs           float64
	Spans, Errors        int
	Hops                 []HopView
	Findings             []string
	// PinAction is where the pin and unpin form posts.
	PinAction string
}

// ReportDocument is the self-contained HTML report.
type ReportDocument struct {
	Title string
	// CSS is tailscope's stylesheet, inlined so the file needs nothing
	// else; it is an embedded asset, never user input.
	CSS      string
	Incident IncidentView
	Version  string
}

func itoa64(i int64) string { return strconv.FormatInt(i, 10) }

// pinAttrs marks the pin field invalid when its request was rejected.
func pinAttrs(msg string) templ.Attributes {
	if msg == "" {
		return nil
	}
	return templ.Attributes{"aria-invalid": "true", "aria-describedby": "pin-trace-error"}
}

// inlineStyle writes the report's stylesheet into a <style> element. The
// CSS is tailscope's own embedded asset, not user input; "</" is escaped
// anyway so no stylesheet content could ever close the element early.
func inlineStyle(css string) templ.Component {
	return templ.ComponentFunc(func(ctx context.Context, w io.Writer) error {
		if _, err := io.WriteString(w, "<style>"); err != nil {
			return err
		}
		if _, err := io.WriteString(w, strings.ReplaceAll(css, "</", `<\/`)); err != nil {
			return err
		}
		_, err := io.WriteString(w, "</style>")
		return err
	})
}
