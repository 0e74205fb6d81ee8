package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tailscope/tailscope/report"
	"github.com/tailscope/tailscope/store"
)

// TestExemplarsOutliveRetention: finalizing an incident keeps its
// exemplar traces, so after retention has removed every span the report's
// exemplar links still open, from the kept copy, which says so.
func TestExemplarsOutliveRetention(t *testing.T) {
	f := newRVFixtureSmall(t)
	h, _ := newTestHandlers(t, f.db, rvNow)
	api := fmt.Sprintf("/api/v1/incidents/%d", f.incident.ID)
	if w := rvDo(t, h, http.MethodPost, api+"/finalize", ""); w.Code != http.StatusCreated {
		t.Fatalf("finalize: %d %s", w.Code, rvHead(w.Body.String(), 5))
	}
	w := rvGet(t, h, fmt.Sprintf("/incidents/%d/report.json", f.incident.ID))
	var rep report.Report
	if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil {
		t.Fatalf("report.json: %v", err)
	}
	var cited []report.Exemplar
	for _, e := range rep.Exemplars {
		if e.Stored {
			cited = append(cited, e)
		}
	}
	if len(cited) == 0 {
		t.Fatal("the report cites no stored exemplar trace")
	}
	if !rep.TracesKept {
		t.Error("the finalized report does not say its traces are kept")
	}
	if md := rvGet(t, h, fmt.Sprintf("/incidents/%d/report.md", f.incident.ID)).Body.String(); !strings.Contains(md, "open after retention too") {
		t.Errorf("report.md does not say the traces outlive retention")
	}
	if err := f.db.DeleteBefore(context.Background(), time.Now().Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, e := range cited {
		if _, err := f.db.Trace(context.Background(), mustTraceID(t, e.TraceID)); err == nil {
			t.Fatalf("trace %s survived retention: the test proves nothing", e.TraceID)
		}
		w := rvGet(t, h, "/api/v1/traces/"+e.TraceID)
		if w.Code != http.StatusOK {
			t.Errorf("exemplar %s after retention: status %d", e.TraceID, w.Code)
			continue
		}
		var d struct {
			Spans []json.RawMessage `json:"spans"`
			Kept  *keptInfo         `json:"kept"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
			t.Fatal(err)
		}
		if len(d.Spans) != e.SpanCount || d.Kept == nil || d.Kept.IncidentID != f.incident.ID {
			t.Errorf("exemplar %s: %d spans (report says %d), kept %+v", e.TraceID, len(d.Spans), e.SpanCount, d.Kept)
		}
		if page := rvGet(t, h, "/traces/"+e.TraceID); page.Code != http.StatusOK || !strings.Contains(page.Body.String(), "data-testid=\"kept-trace\"") {
			t.Errorf("trace page of kept exemplar %s: status %d, no kept-copy notice", e.TraceID, page.Code)
		}
	}
	// A trace nobody kept is still not found.
	if w := rvGet(t, h, "/api/v1/traces/0102030405060708090a0b0c0d0e0f10"); w.Code != http.StatusNotFound {
		t.Errorf("unknown trace: status %d", w.Code)
	}
}

func mustTraceID(t *testing.T, s string) store.TraceID {
	t.Helper()
	id, err := store.ParseTraceID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
