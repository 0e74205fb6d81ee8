package otlpconv

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// nextFieldCases are messages for nextField's fast path and its edges:
// one- and two-byte lengths (127, 128, 16383), a three-byte one, fixed64
// fields whole and cut short, a two-byte length whose second byte is
// missing, non-minimal varints, a wrong wire type, an unknown field, and
// fields in a row.
func nextFieldCases() [][]byte {
	str := func(n int) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), make([]byte, n))
	}
	fixed := protowire.AppendFixed64(protowire.AppendTag(nil, 7, protowire.Fixed64Type), 0x0123456789abcdef)
	out := [][]byte{
		str(0), str(1), str(127), str(128), str(300), str(16383), str(16384),
		fixed, fixed[:8], fixed[:1],
		str(128)[:2], str(128)[:3], str(300)[:100],
		{5<<3 | 2, 0x80, 0x00},       // a two-byte length of zero
		{5<<3 | 2, 0x81, 0x80, 0x00}, // a three-byte length of one, not minimal
		{6 << 3, 0x80, 0x01},         // a two-byte varint
		{6 << 3, 0x05},
		{7<<3 | 2, 0x01, 0x00},               // a fixed64 field sent as bytes
		{5<<3 | 1, 1, 2, 3, 4, 5, 6, 7, 8},   // bytes sent as a fixed64
		{15<<3 | 1, 1, 2, 3, 4, 5, 6, 7, 8},  // a field the spec has, fixed64
		{0x99, 0x06, 1, 2, 3, 4, 5, 6, 7, 8}, // field 99, unknown, in a two-byte tag
		{0x80},
	}
	// Fields in a row: a length read wrong would still fit in the message.
	out = append(out, append(append(str(128), str(300)...), fixed...), append(append(fixed, str(200)...), str(1)...))
	return out
}

// TestNextFieldFastPath holds nextField's fast path to the general reader
// on every prefix of the cases, read as span fields: the same field, end
// and error.
func TestNextFieldFastPath(t *testing.T) {
	for _, c := range nextFieldCases() {
		for n := 0; n <= len(c); n++ {
			checkNextField(t, string(c[:n]))
		}
	}
}

// FuzzNextFieldFastPath is TestNextFieldFastPath on any bytes.
func FuzzNextFieldFastPath(f *testing.F) {
	for _, c := range nextFieldCases() {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkNextField(t, string(b)) })
}

func checkNextField(t *testing.T, b string) {
	t.Helper()
	for _, sp := range []fieldSpec{specSpan, specKeyValue, specEvent} {
		for pos := 0; pos < len(b); {
			got, gotEnd, gotErr := nextField(b, pos, sp)
			want, wantEnd, wantErr := nextFieldSlow(b, pos, sp)
			if (gotErr == nil) != (wantErr == nil) || got != want || (gotErr == nil && gotEnd != wantEnd) {
				t.Fatalf("%x at %d: nextField = %+v, %d, %v; general reader %+v, %d, %v",
					b, pos, got, gotEnd, gotErr, want, wantEnd, wantErr)
			}
			if gotErr != nil {
				break
			}
			pos = gotEnd
		}
	}
}
