package web

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/internal/browsertest"
	"github.com/tailscope/tailscope/internal/testenv"
	"github.com/tailscope/tailscope/store"
)

// topologyTraffic generates n traces over the fixture's last 50 minutes on a
// 32-node topology: services svc-00 … svc-19 (svc-00 and svc-01 are where
// requests enter; svc-i calls svc-3i+2 … svc-3i+4), each calling a
// PostgreSQL database pg-(i mod 6), every third Redis, every fifth an
// external host, and svc-03 publishing to a Kafka topic svc-19 consumes.
// Every 25th request waits 800 ms on pg-2: that edge is on the tail's
// critical path more than its share.
func topologyTraffic(n int) []store.Span {
	var out []store.Span
	var seq uint64
	ms := int64(time.Millisecond)
	t0 := fixtureNow().Add(-50 * time.Minute)
	for i := range n {
		var tid store.TraceID
		binary.BigEndian.PutUint64(tid[8:], uint64(i+1))
		binary.BigEndian.PutUint64(tid[:8], 0xfeed)
		slow := i%25 == 0
		id := func() store.SpanID {
			seq++
			var s store.SpanID
			binary.BigEndian.PutUint64(s[:], seq)
			return s
		}
		add := func(sp store.Span) {
			sp.TraceID = tid
			out = append(out, sp)
		}
		var serve func(svc int, parent store.SpanID, start int64) int64
		serve = func(svc int, parent store.SpanID, start int64) int64 {
			name := fmt.Sprintf("svc-%02d", svc)
			sid := id()
			at := start + ms
			for c := 3*svc + 2; c <= 3*svc+4 && c < 20; c++ {
				cl := id()
				end := serve(c, cl, at+ms)
				add(store.Span{SpanID: cl, ParentSpanID: sid, Service: name, Name: fmt.Sprintf("GET /svc-%02d", c), Kind: store.KindClient,
					StartUnixNano: at, DurationNano: end + ms - at, Dependency: fmt.Sprintf("svc-%02d", c)})
				at = end + ms
			}
			db := fmt.Sprintf("pg-%d", svc%6)
			dur := 3 * ms
			if slow && db == "pg-2" {
				dur = 800 * ms
			}
			add(store.Span{SpanID: id(), ParentSpanID: sid, Service: name, Name: "SELECT", Kind: store.KindClient, StartUnixNano: at, DurationNano: dur,
				Dependency: db, Attributes: store.AttributesOf(map[string]any{"db.system": "postgresql"})})
			at += dur
			if svc%3 == 0 {
				add(store.Span{SpanID: id(), ParentSpanID: sid, Service: name, Name: "GET", Kind: store.KindClient, StartUnixNano: at, DurationNano: ms,
					Dependency: "redis", Attributes: store.AttributesOf(map[string]any{"db.system": "redis"})})
				at += ms
			}
			if svc%5 == 0 {
				add(store.Span{SpanID: id(), ParentSpanID: sid, Service: name, Name: "POST /partner", Kind: store.KindClient, StartUnixNano: at, DurationNano: 10 * ms,
					Dependency: fmt.Sprintf("api.partner-%d.example", svc/5)})
				at += 10 * ms
			}
			if svc == 3 {
				prod, cons := id(), id()
				add(store.Span{SpanID: prod, ParentSpanID: sid, Service: name, Name: "publish orders", Kind: store.KindProducer, StartUnixNano: at, DurationNano: ms,
					Dependency: "kafka", Attributes: store.AttributesOf(map[string]any{"messaging.system": "kafka"})})
				add(store.Span{SpanID: cons, ParentSpanID: prod, Service: "svc-19", Name: "process orders", Kind: store.KindConsumer,
					StartUnixNano: at + 5*ms, DurationNano: 4 * ms})
				at += ms
			}
			kind := store.KindServer
			add(store.Span{SpanID: sid, ParentSpanID: parent, Service: name, Name: "GET /" + name, Kind: kind, StartUnixNano: start, DurationNano: at + ms - start})
			return at + ms
		}
		serve(i%2, store.SpanID{}, t0.Add(time.Duration(i)*5*time.Second).UnixNano())
	}
	return out
}

func newTopologyServer(t *testing.T) http.Handler {
	t.Helper()
	h, db := newWritableServer(t)
	if err := db.WriteSpans(context.Background(), topologyTraffic(600)); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestServiceMapPageAndAPI(t *testing.T) {
	h := newTopologyServer(t)
	w := serve(t, h, "GET", "/api/v1/servicemap?from=now-1h&traces=1000", "")
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body.String())
	}
	var m analysis.ServiceMap
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Nodes) != 32 {
		t.Errorf("%d nodes, want 32 (20 services, 6 databases, redis, 4 external hosts, kafka)", len(m.Nodes))
	}
	kinds := map[analysis.MapNodeKind]int{}
	for _, n := range m.Nodes {
		kinds[n.Kind]++
	}
	if kinds[analysis.NodeService] != 20 || kinds[analysis.NodeDatabase] != 6 || kinds[analysis.NodeCache] != 1 ||
		kinds[analysis.NodeExternal] != 4 || kinds[analysis.NodeQueue] != 1 {
		t.Errorf("node kinds %v", kinds)
	}
	for _, e := range m.Edges {
		pg2 := e.To == "dependency:pg-2"
		if pg2 && !e.Hot {
			t.Errorf("%s → %s: not hot (tail %v, typical %v)", e.From, e.To, e.TailShare, e.TypicalShare)
		}
		if e.Hot && !pg2 && !strings.HasPrefix(e.To, "service:") {
			t.Errorf("%s → %s is hot; only pg-2 and the calls waiting for it are slow", e.From, e.To)
		}
	}

	w = serve(t, h, "GET", "/servicemap?from=now-1h", "")
	if w.Code != 200 {
		t.Fatalf("page status %d", w.Code)
	}
	body := w.Body.String()
	if n := strings.Count(body, `data-testid="map-node"`); n != 32 {
		t.Errorf("page draws %d nodes, want 32", n)
	}
	if !strings.Contains(body, `data-hot="true"`) {
		t.Error("no hot edge drawn")
	}
	// Every node and edge is a link to a latency or outliers page.
	for _, m := range regexp.MustCompile(`<a href="([^"]*)" class="map-`).FindAllStringSubmatch(body, -1) {
		if !strings.HasPrefix(m[1], "/latency?") && !strings.HasPrefix(m[1], "/outliers?") {
			t.Errorf("map link %q opens neither latency nor outliers", m[1])
		}
	}
	if !strings.Contains(body, `href="/servicemap?`) || !strings.Contains(body, `aria-current="page"`) {
		t.Error("the map is not in the navigation")
	}

	for _, target := range []string{"/api/v1/servicemap?traces=0", "/api/v1/servicemap?traces=abc", "/api/v1/servicemap?traces=99999", "/api/v1/servicemap?from=now&to=now-1h"} {
		if w := serve(t, h, "GET", target, ""); w.Code != 400 {
			t.Errorf("%s: status %d, want 400", target, w.Code)
		}
	}
}

func TestOperationsPageAndAPI(t *testing.T) {
	h := newTopologyServer(t)
	w := serve(t, h, "GET", "/api/v1/operations?from=now-1h&group_by=db.system&sort=p99&dir=desc", "")
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body.String())
	}
	var rep analysis.REDReport
	if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	var pg, redis int64
	for i, o := range rep.Operations {
		kinds[o.Kind] = true
		if i > 0 && o.P99Ms > rep.Operations[i-1].P99Ms {
			t.Errorf("not sorted by p99 descending at row %d", i)
		}
		if o.Name == "SELECT" && o.Group == "postgresql" {
			pg += o.Count
		}
		if o.Name == "GET" && o.Group == "redis" {
			redis += o.Count
		}
	}
	for _, k := range []string{"server", "client", "producer", "consumer"} {
		if !kinds[k] {
			t.Errorf("no %s operation listed (kinds %v)", k, kinds)
		}
	}
	if pg == 0 || redis == 0 {
		t.Errorf("grouped by db.system: postgresql %d, redis %d spans", pg, redis)
	}
	if rep.Source != analysis.REDFromSpans {
		t.Errorf("grouped by an attribute: source %q, want %q", rep.Source, analysis.REDFromSpans)
	}

	w = serve(t, h, "GET", "/operations?from=now-1h&service=svc-03&sort=rate", "")
	if w.Code != 200 {
		t.Fatalf("page status %d", w.Code)
	}
	body := w.Body.String()
	if !strings.Contains(body, `data-testid="operations-table"`) || !strings.Contains(body, `data-name="publish orders"`) {
		t.Error("the table lacks svc-03's producer operation")
	}
	if strings.Contains(body, `data-service="svc-04"`) {
		t.Error("the service filter let svc-04 through")
	}
	if !strings.Contains(body, "Read from the per-operation rollups") {
		t.Error("the page does not say it read rollups")
	}
	if !strings.Contains(body, `aria-sort="descending"`) || !strings.Contains(body, "sort=rate&amp;") && !strings.Contains(body, "dir=asc") {
		t.Error("the current sort column does not link to the other direction")
	}
	for _, target := range []string{"/api/v1/operations?sort=nope", "/api/v1/operations?dir=up", "/api/v1/operations?limit=0",
		"/api/v1/operations?from=now-30d&group_by=db.system", "/api/v1/operations?from=now-91d",
		"/api/v1/operations?group_by=" + strings.Repeat("k", 300)} {
		if w := serve(t, h, "GET", target, ""); w.Code != 400 {
			t.Errorf("%s: status %d, want 400", target, w.Code)
		}
	}
	// Read from rollups, a month is allowed.
	if w := serve(t, h, "GET", "/api/v1/operations?from=now-30d", ""); w.Code != 200 {
		t.Errorf("a month from rollups: status %d, want 200: %s", w.Code, w.Body.String())
	}
	if w := serve(t, h, "GET", "/operations?sort=nope", ""); w.Code != 400 {
		t.Errorf("page with a bad sort: status %d, want 400", w.Code)
	}
}

// TestBrowserServiceMap: the map is reachable by keyboard (Tab reaches its
// links, Enter opens the latency page) and readable in both themes; the
// operations table sorts by its column links.
func TestBrowserServiceMap(t *testing.T) {
	testenv.Chromium(t)
	srv := httptest.NewServer(newTopologyServer(t))
	defer srv.Close()
	b := browsertest.New(t)
	for _, scheme := range []string{"light", "dark"} {
		b.Do(browsertest.ColorScheme(scheme), chromedp.Navigate(srv.URL+"/servicemap?from=now-1h"),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="service-map"]`)))
		n := browsertest.Get(b, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="map-node"]').length`))
		if n != 32 {
			t.Errorf("%s: %d nodes drawn, want 32", scheme, n)
		}
		// Hot edges are drawn in another colour than the others.
		colours := browsertest.Get(b, chromedp.Evaluate[[]string](`[...new Set([...document.querySelectorAll('[data-testid="map-edge"] .map-line')].map(p => getComputedStyle(p).stroke))]`))
		if len(colours) < 2 {
			t.Errorf("%s: edges drawn in %v; hot edges need their own colour", scheme, colours)
		}
		b.Screenshot("servicemap-" + scheme)
		b.Do(browsertest.ColorScheme(scheme), chromedp.Navigate(srv.URL+"/operations?from=now-1h&group_by=db.system"),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="operations-table"]`)))
		b.Screenshot("operations-" + scheme)
	}
	// Keyboard: Tab until a map link has focus, Enter opens its page.
	b.Do(browsertest.ColorScheme("light"), chromedp.Navigate(srv.URL+"/servicemap?from=now-1h"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="service-map"]`)))
	found := false
	for range 60 {
		b.Do(chromedp.KeyEvent("\t"))
		if browsertest.Get(b, chromedp.Evaluate[bool](`!!(document.activeElement && document.activeElement.closest('[data-testid="map-edge"],[data-testid="map-node"]'))`)) {
			found = true
			break
		}
	}
	if !found {
		t.Fatal("Tab never reaches a link of the map")
	}
	b.Do(chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="latency-series"]`)))
	if u := browsertest.Get(b, chromedp.Evaluate[string](`location.pathname`)); u != "/latency" {
		t.Errorf("Enter on a map link opened %s, want /latency", u)
	}
	// Sorting: the p99 header sorts the table largest first.
	b.Do(chromedp.Navigate(srv.URL+"/operations?from=now-1h"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="operations-table"]`)),
		chromedp.Click(chromedp.CSS(`th:nth-of-type(8) a`)), chromedp.WaitVisible(chromedp.CSS(`th[aria-sort="descending"]`)))
	p99 := browsertest.Get(b, chromedp.Evaluate[string](`document.querySelector('th[aria-sort="descending"]').innerText`))
	if !strings.HasPrefix(strings.TrimSpace(p99), "p99") {
		t.Errorf("sorted column %q, want p99", p99)
	}
}

// TestServiceMapAndOperationsEmpty: a window without spans is an empty
// state, not an error.
func TestServiceMapAndOperationsEmpty(t *testing.T) {
	h, _ := newWritableServer(t)
	for target, want := range map[string]string{
		"/servicemap?from=now-1h": `data-testid="no-map"`,
		"/operations?from=now-1h": `data-testid="no-operations"`,
	} {
		w := serve(t, h, "GET", target, "")
		if w.Code != 200 || !strings.Contains(w.Body.String(), want) {
			t.Errorf("%s: status %d, empty state shown: %v", target, w.Code, strings.Contains(w.Body.String(), want))
		}
	}
	w := serve(t, h, "GET", "/api/v1/servicemap?from=now-1h", "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"nodes":[]`) || !strings.Contains(w.Body.String(), `"edges":[]`) {
		t.Errorf("empty map JSON: %d %s", w.Code, w.Body.String())
	}
}
