package acceptance

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/tailscope/tailscope/store"
)

func TestDbgDump(t *testing.T) {
	sc := lookup(t, os.Getenv("DBG_SCENARIO"), 15, 80e9)
	ts := startTailscope(t)
	p := ts.play(t, sc, 3, nil)
	service, name := endpoint(t)
	st := ts.app.Store()
	samples, err := st.Samples(t.Context(), store.SampleQuery{Service: service, Endpoint: name, From: p.From, To: p.To})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]store.TraceID, len(samples))
	for i, s := range samples {
		ids[i] = s.TraceID
	}
	tr, err := st.Traces(t.Context(), ids)
	if err != nil {
		t.Fatal(err)
	}
	var all []store.Span
	for _, sp := range tr {
		all = append(all, sp...)
	}
	b, _ := json.Marshal(map[string]any{"from": p.From, "to": p.To, "spans": all})
	os.WriteFile("/tmp/dump-"+sc.Name+".json", b, 0o644)
}
