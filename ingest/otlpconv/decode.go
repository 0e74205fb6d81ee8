package otlpconv

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/go-json-experiment/json/jsontext"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/protobuf/encoding/protowire"
)

// DecodeProto decodes an OTLP ExportTraceServiceRequest in protobuf form.
// When pdata refuses the payload and the only trouble is ids of the wrong
// length, those spans are rewritten (RepairProto) so that Convert rejects
// just them; any other malformation is an error.
func DecodeProto(b []byte) (ptrace.Traces, error) {
	req := ptraceotlp.NewExportRequest()
	err := req.UnmarshalProto(b)
	if err == nil {
		return req.Traces(), nil
	}
	fixed, n, rerr := RepairProto(b)
	if rerr != nil || n == 0 {
		return ptrace.Traces{}, fmt.Errorf("otlpconv: decode protobuf: %w", err)
	}
	req = ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(fixed); err != nil {
		return ptrace.Traces{}, fmt.Errorf("otlpconv: decode protobuf: %w", err)
	}
	return req.Traces(), nil
}

// DecodeJSON decodes an OTLP ExportTraceServiceRequest in the OTLP JSON
// encoding (hex ids, int64s as strings or numbers), repairing malformed ids
// as DecodeProto does (RepairJSON).
func DecodeJSON(b []byte) (ptrace.Traces, error) {
	var u ptrace.JSONUnmarshaler
	td, err := u.UnmarshalTraces(b)
	if err == nil {
		return td, nil
	}
	fixed, n, rerr := RepairJSON(b)
	if rerr != nil || n == 0 {
		return ptrace.Traces{}, fmt.Errorf("otlpconv: decode json: %w", err)
	}
	td, err2 := u.UnmarshalTraces(fixed)
	if err2 != nil {
		return ptrace.Traces{}, fmt.Errorf("otlpconv: decode json: %w", err)
	}
	return td, nil
}

// Id sizes on the wire.
const (
	traceIDLen = 16
	spanIDLen  = 8
)

// Protobuf field numbers of opentelemetry/proto/trace/v1/trace.proto and
// the collector service request.
const (
	fieldRequestResourceSpans      protowire.Number = 1
	fieldResourceSpansScopeSpans   protowire.Number = 2
	fieldResourceSpansDeprecatedSS protowire.Number = 1000
	fieldScopeSpansSpans           protowire.Number = 2
	fieldSpanTraceID               protowire.Number = 1
	fieldSpanSpanID                protowire.Number = 2
	fieldSpanParentSpanID          protowire.Number = 4
	fieldSpanLinks                 protowire.Number = 13
	fieldLinkTraceID               protowire.Number = 1
	fieldLinkSpanID                protowire.Number = 2
)

// Levels of the request → resource spans → scope spans chain.
const (
	protoLevelRequest = iota
	protoLevelRS
	protoLevelSS
)

var errWire = errors.New("malformed protobuf")

// RepairProto rewrites an ExportTraceServiceRequest so that every span with
// an id of the wrong length decodes as a span Convert rejects: a bad trace
// id is removed (so it reads as all-zero), a bad span or parent span id
// removes the span id. Links with a bad id are removed. It returns the
// rewritten payload and the number of spans and links it changed; with
// nothing to repair it returns b itself and 0.
func RepairProto(b []byte) ([]byte, int, error) {
	return repairProtoLevel(b, protoLevelRequest)
}

// repairProtoLevel filters one message of the request → resource spans →
// scope spans chain, descending into the fields that lead to spans.
func repairProtoLevel(b []byte, level int) ([]byte, int, error) {
	var out []byte // nil until something changes
	changed := 0
	last := 0 // end of the part of b already copied to out
	for pos := 0; pos < len(b); {
		num, typ, tagLen := protowire.ConsumeTag(b[pos:])
		if tagLen < 0 {
			return nil, 0, errWire
		}
		valLen := protowire.ConsumeFieldValue(num, typ, b[pos+tagLen:])
		if valLen < 0 {
			return nil, 0, errWire
		}
		end := pos + tagLen + valLen
		if typ == protowire.BytesType {
			val, _ := protowire.ConsumeBytes(b[pos+tagLen:])
			var (
				sub []byte
				n   int
				err error
			)
			switch {
			case level == protoLevelRequest && num == fieldRequestResourceSpans:
				sub, n, err = repairProtoLevel(val, protoLevelRS)
			case level == protoLevelRS && (num == fieldResourceSpansScopeSpans || num == fieldResourceSpansDeprecatedSS):
				sub, n, err = repairProtoLevel(val, protoLevelSS)
			case level == protoLevelSS && num == fieldScopeSpansSpans:
				sub, n, err = repairProtoSpan(val)
			}
			if err != nil {
				return nil, 0, err
			}
			if n > 0 {
				out = append(out, b[last:pos]...)
				out = protowire.AppendTag(out, num, protowire.BytesType)
				out = protowire.AppendBytes(out, sub)
				last = end
				changed += n
			}
		}
		pos = end
	}
	if changed == 0 {
		return b, 0, nil
	}
	return append(out, b[last:]...), changed, nil
}

// repairProtoSpan rewrites one Span message; see RepairProto.
func repairProtoSpan(b []byte) ([]byte, int, error) {
	badTrace, badSpan := false, false
	badLinks := 0
	err := walkProto(b, func(num protowire.Number, typ protowire.Type, val []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case fieldSpanTraceID:
			badTrace = badTrace || !idLenOK(val, traceIDLen)
		case fieldSpanSpanID, fieldSpanParentSpanID:
			badSpan = badSpan || !idLenOK(val, spanIDLen)
		case fieldSpanLinks:
			ok, err := protoLinkOK(val)
			if err != nil {
				return err
			}
			if !ok {
				badLinks++
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	if !badTrace && !badSpan && badLinks == 0 {
		return b, 0, nil
	}
	out := make([]byte, 0, len(b))
	err = walkProtoRaw(b, func(num protowire.Number, typ protowire.Type, val, field []byte) error {
		if typ == protowire.BytesType {
			switch {
			case num == fieldSpanTraceID && badTrace:
				return nil
			case (num == fieldSpanSpanID || num == fieldSpanParentSpanID) && badSpan:
				return nil
			case num == fieldSpanLinks:
				if ok, _ := protoLinkOK(val); !ok {
					return nil
				}
			}
		}
		out = append(out, field...)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	n := badLinks
	if badTrace || badSpan {
		n++
	}
	return out, n, nil
}

func protoLinkOK(b []byte) (bool, error) {
	ok := true
	err := walkProto(b, func(num protowire.Number, typ protowire.Type, val []byte) error {
		switch {
		case typ != protowire.BytesType:
		case num == fieldLinkTraceID:
			ok = ok && idLenOK(val, traceIDLen)
		case num == fieldLinkSpanID:
			ok = ok && idLenOK(val, spanIDLen)
		}
		return nil
	})
	return ok, err
}

// idLenOK accepts an absent (empty) id, which decodes as all-zero and is
// judged later, or one of exactly the right length.
func idLenOK(id []byte, want int) bool { return len(id) == 0 || len(id) == want }

func walkProto(b []byte, f func(num protowire.Number, typ protowire.Type, val []byte) error) error {
	return walkProtoRaw(b, func(num protowire.Number, typ protowire.Type, val, _ []byte) error {
		return f(num, typ, val)
	})
}

// walkProtoRaw calls f for each field of message b with its value (the
// payload for length-delimited fields) and the field's full encoding.
func walkProtoRaw(b []byte, f func(num protowire.Number, typ protowire.Type, val, field []byte) error) error {
	for pos := 0; pos < len(b); {
		num, typ, tagLen := protowire.ConsumeTag(b[pos:])
		if tagLen < 0 {
			return errWire
		}
		valLen := protowire.ConsumeFieldValue(num, typ, b[pos+tagLen:])
		if valLen < 0 {
			return errWire
		}
		val := b[pos+tagLen : pos+tagLen+valLen]
		if typ == protowire.BytesType {
			val, _ = protowire.ConsumeBytes(val)
		}
		if err := f(num, typ, val, b[pos:pos+tagLen+valLen]); err != nil {
			return err
		}
		pos += tagLen + valLen
	}
	return nil
}

// JSON member names pdata accepts for the fields on the way to span ids
// (lowerCamelCase per the OTLP JSON rules, snake_case as protojson allows).
var (
	jsonResourceSpans = []string{"resourceSpans", "resource_spans"}
	jsonScopeSpans    = []string{"scopeSpans", "scope_spans", "deprecatedScopeSpans", "deprecated_scope_spans"}
	jsonSpans         = []string{"spans"}
	jsonTraceID       = []string{"traceId", "trace_id"}
	jsonSpanID        = []string{"spanId", "span_id", "parentSpanId", "parent_span_id"}
	jsonLinks         = []string{"links"}
)

// jsonOpts keep the repair pass as lenient as pdata's decoder: it must not
// turn a payload pdata would accept into an error.
func jsonOpts() []jsontext.Options {
	return []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}
}

// RepairJSON is RepairProto for the OTLP JSON encoding: an id that is not
// a string of exactly 32 (trace) or 16 (span) hex digits is removed as
// RepairProto removes it. It streams, so its memory is about the size of b.
func RepairJSON(b []byte) ([]byte, int, error) {
	r := jsonRepair{
		dec: jsontext.NewDecoder(bytes.NewReader(b), jsonOpts()...),
	}
	r.enc = jsontext.NewEncoder(&r.out, jsonOpts()...)
	if err := r.object(jsonLevelRequest); err != nil {
		return nil, 0, fmt.Errorf("otlpconv: repair json: %w", err)
	}
	if _, err := r.dec.ReadToken(); err != io.EOF {
		return nil, 0, fmt.Errorf("otlpconv: repair json: trailing data")
	}
	if r.changed == 0 {
		return b, 0, nil
	}
	return r.out.Bytes(), r.changed, nil
}

type jsonLevel int

const (
	jsonLevelRequest jsonLevel = iota
	jsonLevelResourceSpans
	jsonLevelScopeSpans
)

type jsonRepair struct {
	dec     *jsontext.Decoder
	enc     *jsontext.Encoder
	out     bytes.Buffer
	changed int
}

func (r *jsonRepair) copyValue() error {
	v, err := r.dec.ReadValue()
	if err != nil {
		return err
	}
	return r.enc.WriteValue(v)
}

func (r *jsonRepair) copyToken() (jsontext.Token, error) {
	t, err := r.dec.ReadToken()
	if err != nil {
		return t, err
	}
	return t, r.enc.WriteToken(t)
}

// object copies one object of the chain down to the spans, descending into
// the member that leads to them when it is an array.
func (r *jsonRepair) object(level jsonLevel) error {
	if r.dec.PeekKind() != '{' {
		return r.copyValue() // pdata will report the type error
	}
	if _, err := r.copyToken(); err != nil {
		return err
	}
	for r.dec.PeekKind() != '}' {
		tok, err := r.copyToken()
		if err != nil {
			return err
		}
		name := tok.String() // tok is void after the next read
		var next func() error
		switch {
		case level == jsonLevelRequest && isOneOf(name, jsonResourceSpans):
			next = func() error { return r.object(jsonLevelResourceSpans) }
		case level == jsonLevelResourceSpans && isOneOf(name, jsonScopeSpans):
			next = func() error { return r.object(jsonLevelScopeSpans) }
		case level == jsonLevelScopeSpans && isOneOf(name, jsonSpans):
			next = r.span
		}
		if next == nil || r.dec.PeekKind() != '[' {
			if err := r.copyValue(); err != nil {
				return err
			}
			continue
		}
		if _, err := r.copyToken(); err != nil {
			return err
		}
		for r.dec.PeekKind() != ']' {
			if err := next(); err != nil {
				return err
			}
		}
		if _, err := r.copyToken(); err != nil {
			return err
		}
	}
	_, err := r.copyToken()
	return err
}

// span copies one span, dropping ids and links as RepairJSON describes.
func (r *jsonRepair) span() error {
	raw, err := r.dec.ReadValue()
	if err != nil {
		return err
	}
	if raw.Kind() != '{' {
		return r.enc.WriteValue(raw)
	}
	members, err := jsonMembers(raw)
	if err != nil {
		return err
	}
	badTrace, badSpan, badLinks := false, false, 0
	for _, m := range members {
		switch {
		case isOneOf(m.name, jsonTraceID):
			badTrace = badTrace || !jsonIDOK(m.value, traceIDLen)
		case isOneOf(m.name, jsonSpanID):
			badSpan = badSpan || !jsonIDOK(m.value, spanIDLen)
		case isOneOf(m.name, jsonLinks) && m.value.Kind() == '[':
			links, err := jsonElements(m.value)
			if err != nil {
				return err
			}
			for _, l := range links {
				if !jsonLinkOK(l) {
					badLinks++
				}
			}
		}
	}
	if !badTrace && !badSpan && badLinks == 0 {
		return r.enc.WriteValue(raw)
	}
	if badTrace || badSpan {
		r.changed++
	}
	r.changed += badLinks
	if err := r.enc.WriteToken(jsontext.BeginObject); err != nil {
		return err
	}
	for _, m := range members {
		switch {
		case badTrace && isOneOf(m.name, jsonTraceID), badSpan && isOneOf(m.name, jsonSpanID):
			continue
		}
		if err := r.enc.WriteToken(jsontext.String(m.name)); err != nil {
			return err
		}
		if !isOneOf(m.name, jsonLinks) || m.value.Kind() != '[' {
			if err := r.enc.WriteValue(m.value); err != nil {
				return err
			}
			continue
		}
		links, _ := jsonElements(m.value) // parsed above
		if err := r.enc.WriteToken(jsontext.BeginArray); err != nil {
			return err
		}
		for _, l := range links {
			if jsonLinkOK(l) {
				if err := r.enc.WriteValue(l); err != nil {
					return err
				}
			}
		}
		if err := r.enc.WriteToken(jsontext.EndArray); err != nil {
			return err
		}
	}
	return r.enc.WriteToken(jsontext.EndObject)
}

type jsonMember struct {
	name  string
	value jsontext.Value
}

func jsonMembers(obj jsontext.Value) ([]jsonMember, error) {
	d := jsontext.NewDecoder(bytes.NewReader(obj), jsonOpts()...)
	if _, err := d.ReadToken(); err != nil {
		return nil, err
	}
	var ms []jsonMember
	for d.PeekKind() != '}' {
		tok, err := d.ReadToken()
		if err != nil {
			return nil, err
		}
		name := tok.String() // tok is void after the next read
		v, err := d.ReadValue()
		if err != nil {
			return nil, err
		}
		ms = append(ms, jsonMember{name: name, value: v.Clone()})
	}
	return ms, nil
}

func jsonElements(arr jsontext.Value) ([]jsontext.Value, error) {
	d := jsontext.NewDecoder(bytes.NewReader(arr), jsonOpts()...)
	if _, err := d.ReadToken(); err != nil {
		return nil, err
	}
	var vs []jsontext.Value
	for d.PeekKind() != ']' {
		v, err := d.ReadValue()
		if err != nil {
			return nil, err
		}
		vs = append(vs, v.Clone())
	}
	return vs, nil
}

func jsonLinkOK(l jsontext.Value) bool {
	if l.Kind() != '{' {
		return true // not ours to judge; pdata reports it
	}
	ms, err := jsonMembers(l)
	if err != nil {
		return false
	}
	for _, m := range ms {
		switch m.name {
		case "traceId", "trace_id":
			if !jsonIDOK(m.value, traceIDLen) {
				return false
			}
		case "spanId", "span_id":
			if !jsonIDOK(m.value, spanIDLen) {
				return false
			}
		}
	}
	return true
}

// jsonIDOK accepts "" (absent, judged later) or exactly size bytes of hex,
// which is what pdata's decoder accepts.
func jsonIDOK(v jsontext.Value, size int) bool {
	if v.Kind() != '"' {
		return false
	}
	t, err := jsontext.NewDecoder(bytes.NewReader(v), jsonOpts()...).ReadToken()
	if err != nil {
		return false
	}
	s := t.String()
	if s == "" {
		return true
	}
	if len(s) != 2*size {
		return false
	}
	_, err = hex.DecodeString(s)
	return err == nil
}

func isOneOf(s string, set []string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}
