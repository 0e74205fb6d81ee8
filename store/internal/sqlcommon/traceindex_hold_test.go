package sqlcommon

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/tailscope/tailscope/store"
)

// heldRowFor is a one-span part of trace t.
func heldRowFor(t byte, spans int64) IndexRow {
	return IndexRow{TraceID: store.TraceID{t}, FirstStart: 10, LastStart: 10, End: 20, Spans: spans,
		Services: []ServiceMax{{Service: "api", Duration: 10}}}
}

// flushRecorder is a write function that records what each flush wrote,
// or fails while fail is set.
type flushRecorder struct {
	wrote [][]byte // per flush, the first byte of each trace id written
	spans map[byte]int64
	fail  bool
}

func (f *flushRecorder) write(_ context.Context, rows []IndexRow) error {
	if f.fail {
		return errors.New("store down")
	}
	var ids []byte
	for _, r := range rows {
		ids = append(ids, r.TraceID[0])
		f.spans[r.TraceID[0]] += r.Spans
	}
	f.wrote = append(f.wrote, ids)
	return nil
}

// FlushAged writes a row at its second call after the row was first held,
// whatever was merged into it meanwhile; a failed call keeps every row
// with its age, and a Flush writes every row.
func TestIndexHoldFlushAged(t *testing.T) {
	ctx := context.Background()
	h := NewIndexHold()
	f := &flushRecorder{spans: map[byte]int64{}}
	aged := func(step string, wantWrote []byte, wantKept int) {
		t.Helper()
		f.wrote = nil
		kept, err := h.FlushAged(ctx, f.write)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		var got []byte
		if len(f.wrote) > 0 {
			got = f.wrote[0]
		}
		if !slices.Equal(got, wantWrote) || kept != wantKept {
			t.Errorf("%s: wrote %v, kept %d; want %v, %d", step, got, kept, wantWrote, wantKept)
		}
	}

	h.Add([]IndexRow{heldRowFor(1, 1), heldRowFor(2, 1)})
	aged("the first call", nil, 2)
	h.Add([]IndexRow{heldRowFor(1, 2), heldRowFor(3, 1)}) // a later part of 1, and a new trace
	aged("the second call", []byte{1, 2}, 1)
	if f.spans[1] != 3 {
		t.Errorf("trace 1 stored with %d spans, want 3 (its later part merged in memory)", f.spans[1])
	}

	// A failure keeps every row, and their ages: 3 was due, 4 was not.
	h.Add([]IndexRow{heldRowFor(4, 1)})
	f.fail = true
	if kept, err := h.FlushAged(ctx, f.write); err == nil || kept != 2 {
		t.Fatalf("a failed call: kept %d, %v; want 2 and the error", kept, err)
	}
	f.fail = false
	h.Add([]IndexRow{heldRowFor(3, 1)}) // merged into the kept, due row
	aged("the call after a failure", []byte{3}, 1)
	if f.spans[3] != 2 {
		t.Errorf("trace 3 stored with %d spans, want 2", f.spans[3])
	}
	aged("the next", []byte{4}, 0)

	// A failed Flush puts back rows that were due as due.
	h.Add([]IndexRow{heldRowFor(5, 1)})
	aged("trace 5 held", nil, 1)
	f.fail = true
	if err := h.Flush(ctx, f.write); err == nil {
		t.Fatal("a failed Flush returned no error")
	}
	f.fail = false
	aged("after a failed Flush", []byte{5}, 0)

	h.Add([]IndexRow{heldRowFor(6, 1)})
	f.wrote = nil
	if err := h.Flush(ctx, f.write); err != nil || len(f.wrote) != 1 || !slices.Equal(f.wrote[0], []byte{6}) || h.Len() != 0 {
		t.Errorf("Flush wrote %v, %v, %d left held; want [6], none left", f.wrote, err, h.Len())
	}
}
