package web

import (
	"fmt"
	"html"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tailscope/tailscope/internal/validate"
	"github.com/tailscope/tailscope/store"
)

// A window that does not parse is shown on the page's own range form, as
// typed, with the problem next to its input: never a page of its own.
func TestRangeErrorsStayOnTheForm(t *testing.T) {
	f := sharedFixture(t)
	tests := []struct {
		name, target, field, want, keep string
	}{
		{"services typo in from", "/?from=2026-11-3T14:00&to=now", "from", "from: &#34;2026-11-3T14:00&#34; is neither RFC 3339", ""},
		{"search inverted", "/search?service=feed-api&tenant=acme&from=now&to=now-1h", "from", "must be before", `name="tenant" value="acme"`},
		{"latency bad relative", "/latency?service=feed-api&from=now-1x", "from", "want a duration like 15m", `name="service" value="feed-api"`},
		{"outliers bad to", "/outliers?service=feed-api&from=now-1h&to=tomorrow", "to", "to: &#34;tomorrow&#34;", `name="service" value="feed-api"`},
		{"operations too long", "/operations?from=now-400d", "from", "longer than the maximum of 90 days", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(t, f.handler, "GET", tt.target, "")
			body := w.Body.String()
			if w.Code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", w.Code)
			}
			if strings.Contains(body, `data-testid="error-message"`) {
				t.Error("a dead-end error page, want the range form")
			}
			if !strings.Contains(body, `data-testid="range-error"`) || !strings.Contains(body, tt.want) {
				t.Errorf("range form does not say %q:\n%s", tt.want, firstLines(body, 80))
			}
			if !strings.Contains(body, `aria-invalid="true" aria-describedby="range-error" data-testid="range-`+tt.field+`"`) {
				t.Errorf("input %s is not marked invalid", tt.field)
			}
			typed := html.EscapeString(strings.SplitN(strings.SplitN(tt.target, tt.field+"=", 2)[1], "&", 2)[0])
			if !strings.Contains(body, `name="`+tt.field+`" value="`+typed+`"`) {
				t.Errorf("input %s lost what was typed (%s)", tt.field, typed)
			}
			if tt.keep != "" && !strings.Contains(body, tt.keep) {
				t.Errorf("form lost %s", tt.keep)
			}
			if !strings.Contains(body, `data-testid="range-error-body"`) {
				t.Error("no explanation in place of the page's content")
			}
		})
	}
}

// A search filter that does not parse is shown on the search form, which
// keeps every value typed.
func TestSearchFilterErrorInline(t *testing.T) {
	f := sharedFixture(t)
	w := serve(t, f.handler, "GET", "/search?service=feed-api&tenant=acme&min_ms=fast&from=now-1h", "")
	body := w.Body.String()
	if w.Code != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", w.Code)
	}
	for _, want := range []string{`data-testid="search-error"`, `min_ms &#34;fast&#34;: want milliseconds`, `name="tenant" value="acme"`,
		`value="fast"`, `<option value="feed-api" selected>`, `data-testid="no-search"`} {
		if !strings.Contains(body, want) {
			t.Errorf("search page lacks %s", want)
		}
	}
}

func TestZooms(t *testing.T) {
	now := time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		from, to string
		want     []zoom
	}{
		{"live hour", "now-1h", "now", []zoom{
			{"out", "now-2h", "now"}, {"in", "now-30m", "now"},
			{"earlier", "2026-11-23T13:30:00Z", "2026-11-23T14:30:00Z"}}},
		{"absolute past hour", "2026-11-23T10:00:00Z", "2026-11-23T11:00:00Z", []zoom{
			{"out", "2026-11-23T09:30:00Z", "2026-11-23T11:30:00Z"}, {"in", "2026-11-23T10:15:00Z", "2026-11-23T10:45:00Z"},
			{"earlier", "2026-11-23T09:30:00Z", "2026-11-23T10:30:00Z"}, {"later", "2026-11-23T10:30:00Z", "2026-11-23T11:30:00Z"}}},
		{"out and later stop at now", "2026-11-23T14:00:00Z", "2026-11-23T14:50:00Z", []zoom{
			{"out", "2026-11-23T13:20:00Z", "2026-11-23T15:00:00Z"}, {"in", "2026-11-23T14:12:30Z", "2026-11-23T14:37:30Z"},
			{"earlier", "2026-11-23T13:35:00Z", "2026-11-23T14:25:00Z"}, {"later", "2026-11-23T14:10:00Z", "2026-11-23T15:00:00Z"}}},
		{"no zoom in below a minute, no zoom out past 90 days", "now-80d", "now", []zoom{
			{"in", "now-40d", "now"}, {"earlier", "2026-07-26T15:00:00Z", "2026-10-14T15:00:00Z"}}},
		{"a minute", "2026-11-23T10:00:00Z", "2026-11-23T10:01:00Z", []zoom{
			{"out", "2026-11-23T09:59:30Z", "2026-11-23T10:01:30Z"},
			{"earlier", "2026-11-23T09:59:30Z", "2026-11-23T10:00:30Z"}, {"later", "2026-11-23T10:00:30Z", "2026-11-23T10:01:30Z"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := parseTimeRange(tt.from, tt.to, now)
			if err != nil {
				t.Fatal(err)
			}
			got := zooms(tr, now)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("zooms\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestScatterWindowFitsResults(t *testing.T) {
	tr := TimeRange{From: time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC)}
	at := func(min, sec int) store.TraceSummary {
		return store.TraceSummary{StartUnixNano: tr.From.Add(time.Duration(min)*time.Minute + time.Duration(sec)*time.Second).UnixNano()}
	}
	tests := []struct {
		name     string
		found    []store.TraceSummary
		from, to string
	}{
		{"none: the window", nil, "14:00:00", "15:00:00"},
		{"seconds near the end: a margin of 5%, at least 1 s", []store.TraceSummary{at(59, 40), at(59, 50), at(59, 45)}, "14:59:39", "14:59:51"},
		{"one trace", []store.TraceSummary{at(30, 0)}, "14:29:59", "14:30:01"},
		{"within the window", []store.TraceSummary{at(0, 0), at(0, 10), at(59, 59)}, "14:00:00", "15:00:00"},
		{"the whole window", []store.TraceSummary{at(0, 0), at(59, 59)}, "14:00:00", "15:00:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, to := scatterWindow(tt.found, tr)
			if got := from.Format("15:04:05") + "–" + to.Format("15:04:05"); got != tt.from+"–"+tt.to {
				t.Errorf("window %s, want %s–%s", got, tt.from, tt.to)
			}
		})
	}
}

// What a user reads never names the backend that failed.
func TestErrorMessagesNameNoBackend(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		want   string
	}{
		{"trace not found", fmt.Errorf("trace: %w", fmt.Errorf("sqlite: %w", store.NotFound("trace", "0123"))), 404, "trace 0123 not found"},
		{"validation", fmt.Errorf("postgres: save budget: %w", validate.ValidationError{validate.Field("threshold", "threshold must be positive")}), 400, "threshold must be positive"},
		{"invalid of no known type", fmt.Errorf("postgres: parse url: %w: bad port", store.ErrInvalid), 400, "the request is not valid"},
		{"range", fmt.Errorf("page: %w", &RangeError{Field: "to", Msg: "bad"}), 400, "to: bad"},
		{"invalid argument", fmt.Errorf("sqlite: search: %w", store.Invalid("limit must be positive")), 400, "limit must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, msg := errorStatus(tt.err)
			if status != tt.status || msg != tt.want {
				t.Errorf("errorStatus = %d %q, want %d %q", status, msg, tt.status, tt.want)
			}
			for _, backend := range []string{"sqlite", "postgres"} {
				if strings.Contains(msg, backend) {
					t.Errorf("message %q names %s", msg, backend)
				}
			}
		})
	}
}
