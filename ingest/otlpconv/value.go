package otlpconv

import (
	"math"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Value types, pdata's.
const (
	valEmpty  = pcommon.ValueTypeEmpty
	valStr    = pcommon.ValueTypeStr
	valInt    = pcommon.ValueTypeInt
	valDouble = pcommon.ValueTypeDouble
	valBool   = pcommon.ValueTypeBool
	valMap    = pcommon.ValueTypeMap
	valSlice  = pcommon.ValueTypeSlice
	valBytes  = pcommon.ValueTypeBytes
)

// attrValue is one attribute value as either decoder hands it over: a
// pdata value (Convert) or protobuf bytes (ConvertProto). Scalars are held
// directly, so the per-attribute rules (redaction, truncation, derivation,
// JSON encoding) read both alike; composites keep their source.
//
// It is passed and returned by value once per attribute, so it is kept
// small (48 bytes): the wire's composite messages share str, and the type
// and the wire flag share a word.
type attrValue struct {
	typ  pcommon.ValueType
	wire bool
	str  string        // Str; on the wire, Bytes and the Slice (ArrayValue) or Map (KeyValueList) message
	num  uint64        // Int, Double bits or Bool (0/1)
	pv   pcommon.Value // Slice, Map or Bytes from pdata
}

func fromPdata(v pcommon.Value) attrValue {
	switch t := v.Type(); t {
	case valStr:
		return attrValue{typ: t, str: v.Str()}
	case valInt:
		return attrValue{typ: t, num: uint64(v.Int())}
	case valDouble:
		return attrValue{typ: t, num: math.Float64bits(v.Double())}
	case valBool:
		return attrValue{typ: t, num: boolBits(v.Bool())}
	case valEmpty:
		return attrValue{}
	default:
		return attrValue{typ: t, pv: v}
	}
}

func strValue(s string) attrValue { return attrValue{typ: valStr, str: s} }

func (v attrValue) intVal() int64      { return int64(v.num) }
func (v attrValue) doubleVal() float64 { return math.Float64frombits(v.num) }
func (v attrValue) boolVal() bool      { return v.num != 0 }

// bytesVal is the value of a Bytes attribute. On the wire it aliases the
// request body and is only read (base64-encoded into the arena).
func (v attrValue) bytesVal() []byte {
	if !v.wire {
		return v.pv.Bytes().AsRaw()
	}
	if v.str == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(v.str), len(v.str))
}
