package analysis

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// testEpoch is where hand-built test traces start.
var testEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// sid makes a span id from a small number (0 stays the zero id).
func sid(n int) store.SpanID {
	var id store.SpanID
	binary.BigEndian.PutUint64(id[:], uint64(n))
	return id
}

// tid makes a trace id from a small number.
func tid(n int) store.TraceID {
	var id store.TraceID
	binary.BigEndian.PutUint64(id[8:], uint64(n))
	id[0] = 1
	return id
}

// sp describes a span of a hand-built trace: times in milliseconds from
// testEpoch.
type sp struct {
	id, parent int
	service    string
	name       string
	dep        string
	start, end float64
	kind       store.SpanKind
	status     store.StatusCode
	attrs      map[string]any
	payload    int64
}

// build turns descriptions into spans of trace 1.
func build(tb testing.TB, descs ...sp) []store.Span {
	tb.Helper()
	out := make([]store.Span, len(descs))
	for i, d := range descs {
		if d.service == "" {
			d.service = "svc"
		}
		if d.name == "" {
			d.name = "op"
		}
		start := testEpoch.UnixNano() + int64(d.start*1e6)
		out[i] = store.Span{
			TraceID: tid(1), SpanID: sid(d.id), ParentSpanID: sid(d.parent),
			Service: d.service, Name: d.name, Dependency: d.dep, Kind: d.kind, StatusCode: d.status,
			StartUnixNano: start, DurationNano: int64((d.end - d.start) * 1e6),
			Attributes: store.AttributesOf(d.attrs), PayloadBytes: d.payload,
		}
	}
	return out
}

// ms converts milliseconds from testEpoch to a UnixNano.
func ms(v float64) UnixNano { return UnixNano(testEpoch.UnixNano() + int64(v*1e6)) }
