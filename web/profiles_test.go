package web

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// writeProfiles stores one CPU profile over the fixture's window in which
// the spans of the acme outliers burned CPU in hotScoring and the other
// spans in coolScoring — the ground truth the diff must show.
func writeProfiles(t *testing.T, db store.Store, outliers, baseline []store.SpanID) {
	t.Helper()
	hot := []string{"runtime.main", "feedsvc/ranking.Score", "feedsvc/ranking.hotScoring"}
	cool := []string{"runtime.main", "feedsvc/ranking.Score", "feedsvc/ranking.coolScoring"}
	enc := []string{"runtime.main", "encoding/json.Marshal"}
	b := store.ProfileBatch{
		Stacks: []store.Stack{{ID: store.StackID(hot), Frames: hot}, {ID: store.StackID(cool), Frames: cool}, {ID: store.StackID(enc), Frames: enc}},
	}
	sample := func(stack []string, id store.SpanID, ms int) store.ProfileSample {
		return store.ProfileSample{StackID: store.StackID(stack), SpanID: id, SpanName: "POST /v1/rank", Value: int64(ms) * int64(time.Millisecond)}
	}
	p := store.Profile{Service: "feedsvc", Type: store.ProfileCPU, Unit: store.UnitNanoseconds,
		Start: fixtureStart, End: fixtureStart.Add(time.Hour)}
	// The profile window limit is an hour; one profile covers the fixture.
	// Outliers: 60% hot, 10% cool, 30% json; baseline: 5%, 30%, 65%. The
	// hot function's share grows most.
	for _, id := range outliers {
		p.Samples = append(p.Samples, sample(hot, id, 60), sample(cool, id, 10), sample(enc, id, 30))
	}
	for _, id := range baseline {
		p.Samples = append(p.Samples, sample(hot, id, 5), sample(cool, id, 30), sample(enc, id, 65))
	}
	b.Profiles = []store.Profile{p}
	if err := db.WriteProfiles(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

func TestProfilePages(t *testing.T) {
	h, db := newWritableServer(t)
	f := sharedFixture(t)
	ctx := context.Background()
	// Copy the fixture's v1 traffic into a writable store.
	if err := db.WriteSpans(ctx, f.v1.Spans); err != nil {
		t.Fatal(err)
	}
	slow, err := db.SearchTraces(ctx, store.TraceQuery{Service: "feed-api", Tenant: "acme", Order: store.OrderSlowest, Limit: 30})
	if err != nil {
		t.Fatal(err)
	}
	fast, err := db.SearchTraces(ctx, store.TraceQuery{Service: "feed-api", Order: store.OrderFastest, Limit: 300})
	if err != nil {
		t.Fatal(err)
	}
	spansOf := func(sums []store.TraceSummary) []store.SpanID {
		var ids []store.SpanID
		for _, s := range sums {
			sp, err := db.Trace(ctx, s.TraceID)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range sp {
				ids = append(ids, x.SpanID)
			}
		}
		return ids
	}
	writeProfiles(t, db, spansOf(slow), spansOf(fast))

	t.Run("waterfall links the span profile", func(t *testing.T) {
		w := serve(t, h, "GET", "/traces/"+slow[0].TraceID.String(), "")
		if !strings.Contains(w.Body.String(), `data-testid="trace-profile"`) || !strings.Contains(w.Body.String(), "data-profile=") {
			t.Fatal("a trace with CPU samples has no profile links")
		}
		w = serve(t, h, "GET", "/traces/"+slow[0].TraceID.String()+"/profile", "")
		if w.Code != 200 || !strings.Contains(w.Body.String(), "hotScoring") || !strings.Contains(w.Body.String(), `data-testid="span-flame"`) {
			t.Errorf("span profile: status %d; want the span's flame graph with hotScoring", w.Code)
		}
		// The waterfall's profile tab fetches the graph alone, no layout.
		w = serve(t, h, "GET", "/traces/"+slow[0].TraceID.String()+"/profile?fragment=1", "")
		body := w.Body.String()
		if w.Code != 200 || !strings.Contains(body, `data-testid="span-flame"`) || !strings.Contains(body, "hotScoring") || strings.Contains(body, "<html") {
			t.Errorf("profile fragment: status %d, want the bare flame graph: %.200s", w.Code, body)
		}
		if !strings.Contains(body, `href="/traces/`+slow[0].TraceID.String()+`/profile"`) {
			t.Errorf("profile fragment does not link its full page: %.300s", body)
		}
	})
	t.Run("outlier group diff shows the hot function", func(t *testing.T) {
		q := url.Values{"service": {"feed-api"}, "from": {fixtureStart.Format(time.RFC3339)}, "to": {fixtureStart.Add(30 * time.Minute).Format(time.RFC3339)}}
		w := serve(t, h, "GET", "/outliers?"+q.Encode(), "")
		if !strings.Contains(w.Body.String(), `data-testid="group-profile"`) {
			t.Fatal("outlier groups do not link their CPU diff")
		}
		q.Set("group", "1")
		w = serve(t, h, "GET", "/outliers/profile?"+q.Encode(), "")
		if w.Code != 200 {
			t.Fatalf("status %d: %s", w.Code, firstLines(w.Body.String(), 20))
		}
		body := w.Body.String()
		top := body[strings.Index(body, `data-testid="diff-flame-top"`):]
		first := strings.Index(top, "<code")
		if first < 0 || !strings.Contains(top[first:first+200], "hotScoring") {
			t.Errorf("the diff's functions table does not lead with hotScoring: %.300s", top[max(first, 0):])
		}
		q.Set("group", "99")
		if w := serve(t, h, "GET", "/outliers/profile?"+q.Encode(), ""); w.Code != 400 {
			t.Errorf("unknown group: %d, want 400", w.Code)
		}
	})
	t.Run("explorer", func(t *testing.T) {
		q := url.Values{"from": {fixtureStart.Format(time.RFC3339)}, "to": {fixtureStart.Add(time.Hour).Format(time.RFC3339)}}
		w := serve(t, h, "GET", "/profiles?"+q.Encode(), "")
		if w.Code != 200 || !strings.Contains(w.Body.String(), `data-testid="service-flame"`) || !strings.Contains(w.Body.String(), "ranking.Score") {
			t.Errorf("profile explorer: %d", w.Code)
		}
		q.Set("type", "bogus")
		if w := serve(t, h, "GET", "/profiles?"+q.Encode(), ""); w.Code != 400 {
			t.Errorf("bad profile type: %d, want 400", w.Code)
		}
	})
}

func TestFewSamplesCaution(t *testing.T) {
	ms := int64(time.Millisecond)
	tests := []struct {
		name          string
		outNs, baseNs int64
		want          string // substring; "" means no caution
	}{
		{"both sides ample", 5000 * ms, 900 * ms, ""},
		{"outliers have 4 samples", 40 * ms, 360 * ms, "about 4 samples on the smaller side, so one sample moves a share by 25 points"},
		{"baseline has 49 samples", 900 * ms, 490 * ms, "about 49 samples"},
		{"a side without samples is the empty graph's case", 0, 900 * ms, ""},
		{"less than one sample still counts one", 3 * ms, 900 * ms, "about 1 samples"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fewSamplesCaution(tt.outNs, tt.baseNs)
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("fewSamplesCaution(%d, %d) = %q, want %q", tt.outNs, tt.baseNs, got, tt.want)
			}
		})
	}
}
