package analysistest

import (
	"encoding/binary"

	"github.com/tailscope/tailscope/store"
)

// TailSample is what a tail-sampling collector stores of spans: every
// trace whose root lasted at least cut nanoseconds, with weight 1, and one
// in oneIn of the others (chosen by trace id), with weight oneIn, so each
// kept span says how many it stands for (store.Span.Weight).
func TailSample(spans []store.Span, cut int64, oneIn int) []store.Span {
	root := map[store.TraceID]int64{}
	for _, sp := range spans {
		if sp.IsRoot() {
			root[sp.TraceID] = sp.DurationNano
		}
	}
	var kept []store.Span
	for _, sp := range spans {
		switch {
		case root[sp.TraceID] >= cut:
			sp.Weight = 1
		case binary.BigEndian.Uint64(sp.TraceID[8:])%uint64(oneIn) == 0:
			sp.Weight = float64(oneIn)
		default:
			continue
		}
		kept = append(kept, sp)
	}
	return kept
}
