package web

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/analysis/analysistest"
	"github.com/tailscope/tailscope/report"
)

// A report's analyses read each trace and each sample query once through
// its memo, and the report is the one they make reading the store
// directly. Without the memo the fixture's analyses read some of both
// more than once (the test checks so, or it would prove nothing).
func TestReportSpanMemo(t *testing.T) {
	f := newRVFixture(t)
	ctx := context.Background()
	s := New(Config{Store: rvFixedTimes{f.db}, Now: rvNow, Version: "test"})
	in, err := s.store.IncidentByID(ctx, f.incident.ID)
	if err != nil {
		t.Fatal(err)
	}
	build := func(src analysis.SpanSource) (string, []byte) {
		t.Helper()
		rep, err := s.buildReport(ctx, in, src)
		if err != nil {
			t.Fatal(err)
		}
		body, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		return report.Markdown(rep), body
	}
	direct := analysistest.CountTraces(f.db)
	wantMD, wantJSON := build(direct)
	memoed := analysistest.CountTraces(f.db)
	gotMD, gotJSON := build(analysis.NewSpanMemo(memoed, reportMemoRows))
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("the report read through the memo differs from the one read directly, near: %s", firstDiff(gotJSON, wantJSON))
	}
	if gotMD != wantMD {
		t.Errorf("report.md read through the memo differs, near: %s", firstDiff([]byte(gotMD), []byte(wantMD)))
	}
	again, queriesAgain := 0, 0
	for _, n := range direct.Reads() {
		if n > 1 {
			again++
		}
	}
	for _, n := range direct.SampleReads() {
		if n > 1 {
			queriesAgain++
		}
	}
	if again == 0 || queriesAgain == 0 {
		t.Fatalf("without the memo %d traces and %d sample queries are read more than once: the fixture does not exercise it", again, queriesAgain)
	}
	for q, n := range memoed.SampleReads() {
		if n > 1 {
			t.Errorf("samples %s read %d times through the memo, want once", q, n)
		}
	}
	if len(memoed.SampleReads()) != len(direct.SampleReads()) {
		t.Errorf("through the memo %d sample queries were read, directly %d", len(memoed.SampleReads()), len(direct.SampleReads()))
	}
	reads := memoed.Reads()
	if len(reads) != len(direct.Reads()) {
		t.Errorf("through the memo %d traces were read, directly %d", len(reads), len(direct.Reads()))
	}
	for id, n := range reads {
		if n > 1 {
			t.Errorf("trace %s read %d times through the memo, want once", id, n)
		}
	}
	t.Logf("%d traces, %d sample queries; without the memo %d and %d of them are read more than once", len(reads), len(direct.SampleReads()), again, queriesAgain)
}
