package web

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/store"
)

// incidentForm is a valid incident form.
func incidentFormValues() url.Values {
	return url.Values{
		"title": {"Checkout slow for acme"}, "from": {"2026-11-23T14:10:00Z"}, "to": {"2026-11-23T14:25:00Z"},
		"services": {"feed-api", "candidate-svc"}, "notes": {"Started with a page at 14:12.\r\n\r\n- rolled back at 14:20"},
	}
}

func TestIncidentFormCreateEditDelete(t *testing.T) {
	f := newRVFixtureSmall(t)
	ctx := context.Background()
	w := rvPost(t, f.handler, "/incidents", incidentFormValues())
	if w.Code != http.StatusSeeOther {
		t.Fatalf("create: status %d: %s", w.Code, rvHead(w.Body.String(), 20))
	}
	loc := w.Header().Get("Location")
	var id int64
	if _, err := fmt.Sscanf(loc, "/incidents/%d", &id); err != nil {
		t.Fatalf("Location %q", loc)
	}
	in, err := f.db.IncidentByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if in.Title != "Checkout slow for acme" || len(in.Services) != 2 || in.From.Format("15:04") != "14:10" || strings.Contains(in.Notes, "\r") {
		t.Errorf("stored %+v", in)
	}
	if body := rvGet(t, f.handler, "/incidents").Body.String(); !strings.Contains(body, "Checkout slow for acme") {
		t.Error("the new incident is not listed")
	}
	page := rvGet(t, f.handler, loc)
	if page.Code != http.StatusOK || !strings.Contains(page.Body.String(), `data-service="candidate-svc"`) {
		t.Errorf("incident page %d lacks the candidate-svc endpoint", page.Code)
	}

	// Editing keeps the pins the form does not show.
	pinned := firstTrace(t, f)
	if w := rvPost(t, f.handler, loc+"/pins", url.Values{"trace_id": {pinned}, "action": {"pin"}}); w.Code != http.StatusSeeOther {
		t.Fatalf("pin: %d", w.Code)
	}
	edit := incidentFormValues()
	edit.Set("title", "Checkout slow for acme (candidate-svc)")
	if w := rvPost(t, f.handler, loc, edit); w.Code != http.StatusSeeOther || w.Header().Get("Location") != loc {
		t.Fatalf("update: %d %q", w.Code, w.Header().Get("Location"))
	}
	in, _ = f.db.IncidentByID(ctx, id)
	if in.Title != "Checkout slow for acme (candidate-svc)" || len(in.PinnedTraces) != 1 {
		t.Errorf("after edit: title %q, %d pins", in.Title, len(in.PinnedTraces))
	}

	if w := rvGet(t, f.handler, loc+"/delete"); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `data-testid="confirm-delete"`) {
		t.Fatalf("confirmation: %d", w.Code)
	}
	if _, err := f.db.IncidentByID(ctx, id); err != nil {
		t.Fatalf("the confirmation page deleted the incident: %v", err)
	}
	if w := rvPost(t, f.handler, loc+"/delete", url.Values{}); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/incidents" {
		t.Fatalf("delete: %d", w.Code)
	}
	if w := rvGet(t, f.handler, loc); w.Code != http.StatusNotFound {
		t.Errorf("deleted incident: %d, want 404", w.Code)
	}
}

func TestIncidentFormBadInput(t *testing.T) {
	f := newRVFixtureSmall(t)
	long := strings.Repeat("x", 70_000)
	tests := []struct {
		name        string
		change      func(url.Values)
		field, want string
		keep        string
	}{
		{"to before from", func(v url.Values) { v.Set("from", "2026-11-23T15:10:00Z") }, "range", "must be before", `value="2026-11-23T15:10:00Z"`},
		{"unreadable time", func(v url.Values) { v.Set("to", "yesterday") }, "range", "neither RFC 3339", `value="yesterday"`},
		{"too long", func(v url.Values) { v.Set("from", "2026-09-01T00:00:00Z") }, "range", "at most 31 days", `value="2026-09-01T00:00:00Z"`},
		{"unknown service", func(v url.Values) { v["services"] = []string{"feed-api", "ghost-svc"} }, "services", `unknown service "ghost-svc"`, `value="ghost-svc" checked`},
		{"notes over the limit", func(v url.Values) { v.Set("notes", long) }, "notes", "the limit is 64 KiB", long[:1000]},
		{"no title", func(v url.Values) { v.Set("title", "  ") }, "title", "title is required", "Started with a page"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := incidentFormValues()
			tt.change(form)
			w := rvPost(t, f.handler, "/incidents", form)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", w.Code)
			}
			body := html.UnescapeString(w.Body.String())
			if msg := fieldError(body, tt.field); !containsFold(msg, tt.want) {
				t.Errorf("message next to %s: %q, want %q", tt.field, msg, tt.want)
			}
			if !strings.Contains(body, tt.keep) {
				t.Errorf("the form lost the user's input %.60s", tt.keep)
			}
		})
	}
	// Every problem is reported at once, each next to its field.
	form := incidentFormValues()
	form.Set("title", "")
	form.Set("to", "yesterday")
	form.Set("notes", long)
	body := html.UnescapeString(rvPost(t, f.handler, "/incidents", form).Body.String())
	for field, want := range map[string]string{"title": "title is required", "range": "neither RFC 3339", "notes": "the limit is 64 KiB"} {
		if msg := fieldError(body, field); !containsFold(msg, want) {
			t.Errorf("several problems: message next to %s is %q, want %q", field, msg, want)
		}
	}
	list, _ := f.db.Incidents(context.Background())
	if len(list) != 1 {
		t.Errorf("%d incidents after only bad forms, want the fixture's 1", len(list))
	}
	// A form over the body limit is refused outright.
	form = incidentFormValues()
	form.Set("notes", strings.Repeat("y", maxFormBody+1))
	if w := rvPost(t, f.handler, "/incidents", form); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized form: %d, want 413", w.Code)
	}
}

func TestIncidentNewPrefillsFromTheWindow(t *testing.T) {
	f := newRVFixtureSmall(t)
	w := rvGet(t, f.handler, IncidentFromWindowLink("now-45m", "now-15m", "feed-api"))
	body := w.Body.String()
	for _, want := range []string{`value="2026-11-23T14:15:00Z"`, `value="2026-11-23T14:45:00Z"`, `value="feed-api" checked`, `value="candidate-svc">`} {
		if !strings.Contains(body, want) {
			t.Errorf("prefilled form lacks %s", want)
		}
	}
	if strings.Contains(body, `value="candidate-svc" checked`) {
		t.Error("a service the link did not name is checked")
	}
	w = rvGet(t, f.handler, "/incidents/new?from=now&to=now-1h")
	if !strings.Contains(fieldError(w.Body.String(), "range"), "must be before") {
		t.Error("an inverted window in the link gets no message")
	}
}

func firstTrace(t *testing.T, f *rvFixture) string {
	t.Helper()
	sum, err := f.db.SearchTraces(context.Background(), store.TraceQuery{Service: analysistest.FeedAPI, Order: store.OrderSlowest, Limit: 1})
	if err != nil || len(sum) == 0 {
		t.Fatalf("no trace: %v", err)
	}
	return sum[0].TraceID.String()
}

func TestIncidentPins(t *testing.T) {
	f := newRVFixtureSmall(t)
	ctx := context.Background()
	p := fmt.Sprintf("/incidents/%d", f.incident.ID)
	id := firstTrace(t, f)
	w := rvPost(t, f.handler, p+"/pins", url.Values{"trace_id": {strings.ToUpper(id)}, "action": {"pin"}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != p+"#exemplars" {
		t.Fatalf("pin: %d %q", w.Code, w.Header().Get("Location"))
	}
	in, _ := f.db.IncidentByID(ctx, f.incident.ID)
	if len(in.PinnedTraces) != 1 || in.PinnedTraces[0].String() != id || in.Notes != f.incident.Notes {
		t.Fatalf("after pinning: %v (notes kept: %v)", in.PinnedTraces, in.Notes == f.incident.Notes)
	}
	body := rvGet(t, f.handler, p).Body.String()
	if !strings.Contains(body, `data-trace="`+id+`" data-pinned="true"`) {
		t.Error("the pinned trace is not an exemplar on the page")
	}
	// Pinning twice changes nothing.
	rvPost(t, f.handler, p+"/pins", url.Values{"trace_id": {id}, "action": {"pin"}})
	if in, _ = f.db.IncidentByID(ctx, f.incident.ID); len(in.PinnedTraces) != 1 {
		t.Errorf("%d pins after pinning the same trace twice", len(in.PinnedTraces))
	}
	for _, bad := range []struct{ id, want string }{
		{"not-a-trace", "want 32 hex digits"},
		{"0123456789abcdef0123456789abcdef", "No trace"},
	} {
		w := rvPost(t, f.handler, p+"/pins", url.Values{"trace_id": {bad.id}, "action": {"pin"}})
		if w.Code != http.StatusBadRequest {
			t.Errorf("pin %s: %d, want 400", bad.id, w.Code)
		}
		if msg := fieldError(w.Body.String(), "trace_id"); !strings.Contains(msg, bad.want) {
			t.Errorf("pin %s: message %q, want %q", bad.id, msg, bad.want)
		}
		if !strings.Contains(w.Body.String(), `value="`+bad.id+`"`) {
			t.Errorf("pin %s: the field lost the input", bad.id)
		}
	}
	if w := rvPost(t, f.handler, p+"/pins", url.Values{"trace_id": {id}, "action": {"unpin"}}); w.Code != http.StatusSeeOther {
		t.Fatalf("unpin: %d", w.Code)
	}
	if in, _ = f.db.IncidentByID(ctx, f.incident.ID); len(in.PinnedTraces) != 0 {
		t.Errorf("%d pins after unpinning", len(in.PinnedTraces))
	}
	if w := rvPost(t, f.handler, p+"/pins", url.Values{"trace_id": {id}, "action": {"explode"}}); w.Code != http.StatusBadRequest {
		t.Errorf("unknown action: %d", w.Code)
	}
}
