package otlpconv

import (
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

// The protobuf reading primitives of ConvertProto. They follow pdata's own
// (go.opentelemetry.io/collector/pdata/internal/proto, v1.71) rule for
// rule rather than protowire's, because pdata is the reference a payload
// must be accepted or refused by: a varint may run to ten bytes with any
// tenth byte below 0x80 (protowire refuses a tenth byte above 1), a field
// number is the tag shifted right and truncated to int32 (protowire refuses
// numbers above 2^29-1), and a group is skipped only up to its first
// non-group field, as pdata's ConsumeUnknown does. FuzzProtoDecoderMatchesPdata
// holds the two to the same answers. The wire type names are protowire's.

const (
	wireVarint     = int8(protowire.VarintType)
	wireI64        = int8(protowire.Fixed64Type)
	wireLen        = int8(protowire.BytesType)
	wireStartGroup = int8(protowire.StartGroupType)
	wireEndGroup   = int8(protowire.EndGroupType)
	wireI32        = int8(protowire.Fixed32Type)
)

// recursionLimit is pdata's: nested attribute messages deeper than this
// refuse the request.
const recursionLimit = 100

var (
	errWireOverflow   = errors.New("proto: integer overflow")
	errWireLength     = errors.New("proto: negative length found during unmarshaling")
	errWireDepth      = errors.New("proto: exceeded max recursion depth")
	errWireEndOfGroup = errors.New("proto: unexpected end of group")
	errWireTraceID    = errors.New("unmarshal: invalid TraceID length")
	errWireSpanID     = errors.New("unmarshal: invalid SpanID length")
)

func consumeVarint(b string, pos int) (uint64, int, error) {
	var num uint64
	for shift := uint(0); ; shift += 7 {
		if shift >= 64 {
			return 0, 0, errWireOverflow
		}
		if pos >= len(b) {
			return 0, 0, io.ErrUnexpectedEOF
		}
		c := b[pos]
		pos++
		num |= uint64(c&0x7F) << shift
		if c < 0x80 {
			return num, pos, nil
		}
	}
}

func consumeTag(b string, pos int) (int32, int8, int, error) {
	tag, pos, err := consumeVarint(b, pos)
	if err != nil {
		return 0, 0, 0, err
	}
	num := int32(tag >> 3)
	if num <= 0 {
		return 0, 0, 0, fmt.Errorf("proto: illegal field=%d (tag=%d, pos=%d)", num, tag, pos)
	}
	return num, int8(tag & 7), pos, nil
}

func consumeI64(b string, pos int) (uint64, int, error) {
	pos += 8
	if pos < 0 || pos > len(b) {
		return 0, 0, io.ErrUnexpectedEOF
	}
	return load64(b, pos-8), pos, nil
}

func consumeI32(b string, pos int) (uint32, int, error) {
	pos += 4
	if pos < 0 || pos > len(b) {
		return 0, 0, io.ErrUnexpectedEOF
	}
	i := pos - 4
	return uint32(b[i]) | uint32(b[i+1])<<8 | uint32(b[i+2])<<16 | uint32(b[i+3])<<24, pos, nil
}

func consumeLen(b string, pos int) (string, int, error) {
	num, pos, err := consumeVarint(b, pos)
	if err != nil {
		return "", 0, err
	}
	n := int(num)
	if n < 0 {
		return "", 0, errWireLength
	}
	end := pos + n
	if end < 0 || end > len(b) {
		return "", 0, io.ErrUnexpectedEOF
	}
	return b[pos:end], end, nil
}

// skipUnknown skips a field pdata does not know, exactly as its
// ConsumeUnknown does (including its early return inside a group).
func skipUnknown(b string, pos int, wt int8) (int, error) {
	var err error
	depth := 0
	for pos < len(b) {
		switch wt {
		case wireVarint:
			_, pos, err = consumeVarint(b, pos)
			return pos, err
		case wireI64:
			_, pos, err = consumeI64(b, pos)
			return pos, err
		case wireLen:
			_, pos, err = consumeLen(b, pos)
			return pos, err
		case wireStartGroup:
			depth++
		case wireEndGroup:
			if depth == 0 {
				return 0, errWireEndOfGroup
			}
			depth--
		case wireI32:
			_, pos, err = consumeI32(b, pos)
			return pos, err
		default:
			return 0, fmt.Errorf("proto: illegal wireType %d", wt)
		}
		if depth == 0 {
			return pos, nil
		}
		_, wt, pos, err = consumeTag(b, pos)
		if err != nil {
			return 0, err
		}
	}
	return 0, io.ErrUnexpectedEOF
}

// field is one field read off the wire: its number, and its value when
// the field is one ConvertProto reads.
type field struct {
	num int32
	wt  int8
	u   uint64 // varint, fixed64 or fixed32 value
	s   string // length-delimited value
}

// read reads the value of a field of wire type wt into f, or skips an
// unknown field, and returns f and the next position. A known field of
// another wire type refuses the message, as in pdata. Fields are values,
// never written through a pointer: a string written into memory the
// compiler cannot prove is the stack costs a write barrier while the
// garbage collector marks, and the barrier's buffer flushes were an
// eighth of the decoder's time.
func (f field) read(b string, pos int, known bool, wt int8) (field, int, error) {
	if !known {
		pos, err := skipUnknown(b, pos, f.wt)
		return f, pos, err
	}
	if f.wt != wt {
		return f, 0, fmt.Errorf("proto: wrong wireType = %d for field %d", f.wt, f.num)
	}
	var err error
	switch wt {
	case wireVarint:
		f.u, pos, err = consumeVarint(b, pos)
	case wireI64:
		f.u, pos, err = consumeI64(b, pos)
	case wireI32:
		var u uint32
		u, pos, err = consumeI32(b, pos)
		f.u = uint64(u)
	case wireLen:
		f.s, pos, err = consumeLen(b, pos)
	}
	return f, pos, err
}

// fieldSpec is the wire type of each field number a message reads; 0
// entries (and numbers past the end) are unknown fields. Wire type 0 is
// varint, so specs store wt+1.
type fieldSpec []int8

func spec(m map[int32]int8) fieldSpec {
	n := int32(0)
	for k := range m {
		n = max(n, k)
	}
	s := make(fieldSpec, n+1)
	for k, wt := range m {
		s[k] = wt + 1
	}
	return s
}

// The messages of ExportTraceServiceRequest, field by field (OTLP
// trace.proto and common.proto).
var (
	specRequest       = spec(map[int32]int8{1: wireLen})
	specResourceSpans = spec(map[int32]int8{1: wireLen, 2: wireLen, 3: wireLen, 1000: wireLen})
	specResource      = spec(map[int32]int8{1: wireLen, 2: wireVarint, 3: wireLen})
	specEntityRef     = spec(map[int32]int8{1: wireLen, 2: wireLen, 3: wireLen, 4: wireLen})
	specScopeSpans    = spec(map[int32]int8{1: wireLen, 2: wireLen, 3: wireLen})
	specScope         = spec(map[int32]int8{1: wireLen, 2: wireLen, 3: wireLen, 4: wireVarint})
	specSpan          = spec(map[int32]int8{1: wireLen, 2: wireLen, 3: wireLen, 4: wireLen, 5: wireLen, 6: wireVarint,
		7: wireI64, 8: wireI64, 9: wireLen, 10: wireVarint, 11: wireLen, 12: wireVarint, 13: wireLen, 14: wireVarint,
		15: wireLen, 16: wireI32})
	specStatus   = spec(map[int32]int8{2: wireLen, 3: wireVarint})
	specEvent    = spec(map[int32]int8{1: wireI64, 2: wireLen, 3: wireLen, 4: wireVarint})
	specLink     = spec(map[int32]int8{1: wireLen, 2: wireLen, 3: wireLen, 4: wireLen, 5: wireVarint, 6: wireI32})
	specKeyValue = spec(map[int32]int8{1: wireLen, 2: wireLen, 3: wireVarint})
	specAny      = spec(map[int32]int8{1: wireLen, 2: wireVarint, 3: wireVarint, 4: wireI64, 5: wireLen, 6: wireLen,
		7: wireLen, 8: wireVarint})
	specList = spec(map[int32]int8{1: wireLen}) // ArrayValue and KeyValueList
)

// nextField reads the field at pos of message b per sp.
func nextField(b string, pos int, sp fieldSpec) (field, int, error) {
	// Fast path: a one-byte tag of a known field of its declared type,
	// with a length of one or two bytes, a one-byte varint or a fixed64:
	// nearly every field of a span.
	if pos+1 < len(b) {
		if tag := b[pos]; tag < 0x80 && tag >= 8 {
			num, wt := int32(tag>>3), int8(tag&7)
			if int(num) < len(sp) && sp[num] == wt+1 {
				c := b[pos+1]
				switch wt {
				case wireLen:
					n, at := int(c), pos+2
					if c >= 0x80 && pos+2 < len(b) && b[pos+2] < 0x80 {
						n, at = int(c&0x7F)|int(b[pos+2])<<7, pos+3
					}
					if end := at + n; (c < 0x80 || at == pos+3) && end <= len(b) {
						return field{num: num, wt: wt, s: b[at:end]}, end, nil
					}
				case wireVarint:
					if c < 0x80 {
						return field{num: num, wt: wt, u: uint64(c)}, pos + 2, nil
					}
				case wireI64:
					if pos+9 <= len(b) {
						v := b[pos+1 : pos+9]
						u := uint64(v[0]) | uint64(v[1])<<8 | uint64(v[2])<<16 | uint64(v[3])<<24 |
							uint64(v[4])<<32 | uint64(v[5])<<40 | uint64(v[6])<<48 | uint64(v[7])<<56
						return field{num: num, wt: wt, u: u}, pos + 9, nil
					}
				}
			}
		}
	}
	return nextFieldSlow(b, pos, sp)
}

// nextFieldSlow is nextField without its fast path: any tag, length or
// varint (TestNextFieldFastPath holds the two to the same answers).
func nextFieldSlow(b string, pos int, sp fieldSpec) (field, int, error) {
	num, wt, pos, err := consumeTag(b, pos)
	if err != nil {
		return field{}, 0, err
	}
	f := field{num: num, wt: wt}
	if int(num) < len(sp) && sp[num] != 0 {
		return f.read(b, pos, true, sp[num]-1)
	}
	return f.read(b, pos, false, 0)
}

// keyOf returns the key of a KeyValue that validate accepted (its last
// key field) without decoding the value.
func keyOf(b string) string {
	if k, _, ok := keyValueShape(b); ok {
		return k // nearly every attribute: one key, one value
	}
	var (
		key string
		f   field
	)
	for pos := 0; pos < len(b); {
		var err error
		if f, pos, err = nextField(b, pos, specKeyValue); err != nil {
			break
		}
		if f.num == 1 {
			key = f.s
		}
	}
	return key
}

// checkID refuses an id pdata refuses: any length but 0 and n (16 for a
// trace id, 8 for a span id).
func checkID(s string, n int) error {
	switch {
	case len(s) == 0 || len(s) == n:
		return nil
	case n == 16:
		return errWireTraceID
	}
	return errWireSpanID
}

// msgKind names the messages validate walks; msgSpecs holds their specs.
// A small integer, not the spec's address: validate switches on it once
// per length-delimited field, and a switch on a dense integer is one
// jump, where one on addresses compared them in turn.
type msgKind uint8

const (
	msgRequest msgKind = iota
	msgResourceSpans
	msgResource
	msgEntityRef
	msgScopeSpans
	msgScope
	msgSpan
	msgStatus
	msgEvent
	msgLink
	msgKeyValue
	msgAny
	msgList   // ArrayValue
	msgKVList // KeyValueList: the same fields as ArrayValue, other values
)

var msgSpecs = [...]fieldSpec{
	msgRequest: specRequest, msgResourceSpans: specResourceSpans, msgResource: specResource,
	msgEntityRef: specEntityRef, msgScopeSpans: specScopeSpans, msgScope: specScope, msgSpan: specSpan,
	msgStatus: specStatus, msgEvent: specEvent, msgLink: specLink, msgKeyValue: specKeyValue,
	msgAny: specAny, msgList: specList, msgKVList: specList,
}

// noSub marks a field validate does not descend into.
const noSub = msgKind(255)

// validate walks message b of kind m as pdata's unmarshaler would and
// returns its error, if any; depth is the attribute nesting depth (-1 for
// messages without the recursion check). It returns the number of spans
// in b.
func validate(b string, m msgKind, depth int) (spans int, err error) {
	if depth >= 0 {
		if depth >= recursionLimit {
			return 0, errWireDepth
		}
		depth++
	}
	if m == msgKeyValue {
		if _, vb, ok := keyValueShape(b); ok {
			if _, ok := scalarValue(vb); ok {
				return 0, nil
			}
		}
	}
	sp := msgSpecs[m]
	var f field
	scope, deprecated := 0, 0
	for pos := 0; pos < len(b); {
		if f, pos, err = nextField(b, pos, sp); err != nil {
			return 0, err
		}
		if f.wt != wireLen || int(f.num) >= len(sp) || sp[f.num] == 0 {
			continue
		}
		sub, subDepth := noSub, -1
		switch m {
		case msgRequest:
			sub = msgResourceSpans
		case msgResourceSpans:
			switch f.num {
			case 1:
				sub = msgResource
			case 2, 1000:
				// Count each list's spans apart: pdata keeps the
				// deprecated list only when the current one is empty.
				n, err := validate(f.s, msgScopeSpans, -1)
				if err != nil {
					return 0, err
				}
				if f.num == 2 {
					scope++
					spans += n
				} else {
					deprecated += n
				}
			}
		case msgResource:
			switch f.num {
			case 1:
				sub, subDepth = msgKeyValue, 0
			case 3:
				sub = msgEntityRef
			}
		case msgScopeSpans:
			switch f.num {
			case 1:
				sub = msgScope
			case 2:
				spans++
				sub = msgSpan
			}
		case msgScope:
			if f.num == 3 {
				sub, subDepth = msgKeyValue, 0
			}
		case msgSpan:
			switch f.num {
			case 1:
				err = checkID(f.s, 16)
			case 2, 4:
				err = checkID(f.s, 8)
			case 9:
				sub, subDepth = msgKeyValue, 0
			case 11:
				sub = msgEvent
			case 13:
				sub = msgLink
			case 15:
				sub = msgStatus
			}
		case msgEvent:
			if f.num == 3 {
				sub, subDepth = msgKeyValue, 0
			}
		case msgLink:
			switch f.num {
			case 1:
				err = checkID(f.s, 16)
			case 2:
				err = checkID(f.s, 8)
			case 4:
				sub, subDepth = msgKeyValue, 0
			}
		case msgKeyValue:
			if f.num == 2 {
				sub, subDepth = msgAny, depth
			}
		case msgAny:
			switch f.num {
			case 5:
				sub, subDepth = msgList, depth
			case 6:
				sub, subDepth = msgKVList, depth
			}
		case msgList:
			sub, subDepth = msgAny, depth
		case msgKVList:
			sub, subDepth = msgKeyValue, depth
		}
		if err != nil {
			return 0, err
		}
		if sub != noSub {
			n, err := validate(f.s, sub, subDepth)
			if err != nil {
				return 0, err
			}
			spans += n
		}
	}
	if m == msgResourceSpans && scope == 0 {
		spans += deprecated
	}
	return spans, nil
}

// specKVList is specList under another name, for the readers of a
// KeyValueList (attrs.go).
var specKVList = spec(map[int32]int8{1: wireLen})

// anyValue decodes an AnyValue that validate accepted into v: the last
// field of the oneof wins, and a message without one keeps v, as pdata's
// unmarshal into an existing AnyValue does. Composite values keep their
// message bytes.
func anyValue(b string, v attrValue) attrValue {
	var f field
	for pos := 0; pos < len(b); {
		var err error
		if f, pos, err = nextField(b, pos, specAny); err != nil {
			return attrValue{}
		}
		switch f.num {
		case 1:
			v = attrValue{typ: valStr, str: f.s}
		case 2:
			v = attrValue{typ: valBool, num: boolBits(f.u != 0)}
		case 3:
			v = attrValue{typ: valInt, num: f.u}
		case 4:
			v = attrValue{typ: valDouble, num: f.u}
		case 5:
			v = attrValue{typ: valSlice, str: f.s, wire: true}
		case 6:
			v = attrValue{typ: valMap, str: f.s, wire: true}
		case 7:
			v = attrValue{typ: valBytes, str: f.s, wire: true}
		case 8:
			v = attrValue{} // string_value_strindex: pdata's Value has no type for it
		}
	}
	return v
}

func boolBits(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// keyValue decodes a KeyValue that validate accepted. Repeated value
// fields merge into one value, as in pdata.
func keyValue(b string) (string, attrValue) {
	if k, vb, ok := keyValueShape(b); ok {
		if v, ok := scalarValue(vb); ok {
			return k, v
		}
	}
	var (
		key string
		v   attrValue
		f   field
	)
	for pos := 0; pos < len(b); {
		var err error
		if f, pos, err = nextField(b, pos, specKeyValue); err != nil {
			break
		}
		switch f.num {
		case 1:
			key = f.s
		case 2:
			v = anyValue(f.s, v)
		}
	}
	return key, v
}

// keyValueShape splits a KeyValue of a short key and a short value, each
// once, in either order — the SDKs write the key first, pdata (the
// Collector) the value first — into the key and the AnyValue message; ok
// is false for any other KeyValue. When the value is a scalar
// (scalarValue), the message is valid as it stands, so validate and
// keyValue both try this path first: nearly every attribute takes it.
func keyValueShape(b string) (key, value string, ok bool) {
	const tagKey, tagValue = 1<<3 | byte(wireLen), 2<<3 | byte(wireLen)
	if len(b) <= 2 || b[1] >= 0x80 {
		return "", "", false
	}
	n := 2 + int(b[1])
	if n+2 > len(b) || b[n+1] >= 0x80 || n+2+int(b[n+1]) != len(b) {
		return "", "", false
	}
	switch {
	case b[0] == tagKey && b[n] == tagValue:
		return b[2:n], b[n+2:], true
	case b[0] == tagValue && b[n] == tagKey:
		return b[n+2:], b[2:n], true
	}
	return "", "", false
}

// scalarValue decodes an AnyValue made of one short string_value, one
// int_value or one one-byte bool_value field and nothing else, or reports
// that b is not one.
func scalarValue(b string) (attrValue, bool) {
	switch {
	case len(b) >= 2 && b[0] == 1<<3|byte(wireLen) && b[1] < 0x80 && 2+int(b[1]) == len(b):
		return attrValue{typ: valStr, str: b[2:]}, true
	case len(b) >= 2 && b[0] == 3<<3|byte(wireVarint):
		if u, end, err := consumeVarint(b, 1); err == nil && end == len(b) {
			return attrValue{typ: valInt, num: u}, true
		}
	case len(b) == 2 && b[0] == 2<<3|byte(wireVarint) && b[1] < 0x80:
		return attrValue{typ: valBool, num: boolBits(b[1] != 0)}, true
	}
	return attrValue{}, false
}
