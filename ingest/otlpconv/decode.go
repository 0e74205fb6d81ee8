package otlpconv

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// A payload pdata refuses is refused whole, as the OpenTelemetry Collector
// refuses it: ids of the wrong length, malformed protobuf or JSON. An
// earlier version rewrote spans with malformed ids so that only they were
// rejected; no OpenTelemetry SDK sends such ids, and the rewrite cost a
// second parse of every bad payload, a pre-release JSON library and a gRPC
// codec that reported success for messages it could not decode
// (docs/DESIGN.md, "Bad OTLP payloads").

// DecodeProto decodes an OTLP ExportTraceServiceRequest in protobuf form.
func DecodeProto(b []byte) (ptrace.Traces, error) {
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(b); err != nil {
		return ptrace.Traces{}, fmt.Errorf("otlpconv: decode protobuf: %w", err)
	}
	return req.Traces(), nil
}

// errJSONNotObject is a JSON body that is not an object: pdata reads
// `null` (and some other values) as an empty request, which would answer
// 200 to a client whose exporter is broken.
var errJSONNotObject = errors.New("otlpconv: decode json: the body must be a JSON object (an ExportTraceServiceRequest)")

// DecodeJSON decodes an OTLP ExportTraceServiceRequest in the OTLP JSON
// encoding (hex ids, int64s as strings or numbers). The body must be a JSON
// object.
func DecodeJSON(b []byte) (ptrace.Traces, error) {
	if first := firstNonSpace(b); first != '{' {
		return ptrace.Traces{}, errJSONNotObject
	}
	var u ptrace.JSONUnmarshaler
	td, err := u.UnmarshalTraces(b)
	if err != nil {
		return ptrace.Traces{}, fmt.Errorf("otlpconv: decode json: %w", err)
	}
	return td, nil
}

// firstNonSpace returns the first byte of b that is not JSON whitespace, or
// 0 when there is none.
func firstNonSpace(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c
	}
	return 0
}
