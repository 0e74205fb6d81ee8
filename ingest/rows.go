package ingest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/tailscope/tailscope/store"
)

// rowsVersion is the first byte of an encoded row batch. A log written by
// another version is refused by decodeRows rather than misread. Version 2
// added rowWeight; version 1 records, which cannot carry it, still decode
// (their spans' weight is 1), so an upgrade replays the log it finds.
const (
	rowsVersion   = 2
	rowsVersionV1 = 1
)

// Flags of an encoded span.
const (
	rowSameResource = 1 << iota // Resource equals the previous span's
	rowWeight                   // Weight is not 1: its float64 bits follow
)

// appendRows encodes spans — already converted, validated and redacted —
// as the write-ahead log's record: the log holds exactly the rows the
// client was told are stored, so replaying never depends on the clock or
// the configuration at replay time. Integers are varints, byte strings
// length-prefixed; a resource shared by consecutive spans is written once.
func appendRows(b []byte, spans []store.Span) []byte {
	b = append(b, rowsVersion)
	b = binary.AppendUvarint(b, uint64(len(spans)))
	var prevRes []byte
	for i := range spans {
		s := &spans[i]
		flags := byte(0)
		if i > 0 && bytes.Equal(s.Resource, prevRes) {
			flags |= rowSameResource
		}
		if s.Weight != 1 {
			flags |= rowWeight
		}
		b = append(b, flags)
		b = append(b, s.TraceID[:]...)
		b = append(b, s.SpanID[:]...)
		b = append(b, s.ParentSpanID[:]...)
		b = append(b, byte(s.Kind), byte(s.StatusCode))
		b = binary.AppendVarint(b, s.StartUnixNano)
		b = binary.AppendVarint(b, s.DurationNano)
		b = binary.AppendVarint(b, s.PayloadBytes)
		if flags&rowWeight != 0 {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.Weight))
		}
		for _, str := range [...]string{s.Service, s.Name, s.StatusMessage, s.Tenant, s.Version, s.Dependency, s.Host} {
			b = appendBytes(b, str)
		}
		b = appendBytes(b, s.Attributes)
		if flags&rowSameResource == 0 {
			b = appendBytes(b, s.Resource)
			prevRes = s.Resource
		}
		b = binary.AppendUvarint(b, uint64(len(s.Events)))
		for _, e := range s.Events {
			b = binary.AppendVarint(b, e.TimeUnixNano)
			b = appendBytes(b, e.Name)
			b = appendBytes(b, e.Attributes)
		}
		b = binary.AppendUvarint(b, uint64(len(s.Links)))
		for _, l := range s.Links {
			b = append(b, l.TraceID[:]...)
			b = append(b, l.SpanID[:]...)
			b = appendBytes(b, l.Attributes)
		}
	}
	return b
}

func appendBytes[T ~string | ~[]byte](b []byte, v T) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

var errBadRows = errors.New("ingest: malformed row record")

// rowDecoder reads what appendRows wrote. Decoded text and attributes
// share one copy of the record, so a span costs no allocation of its own
// beyond its events and links.
type rowDecoder struct {
	b    []byte // the record
	str  string // the record as a string: text fields are substrings
	keep []byte // a private copy: attribute fields are subslices
	off  int
	err  error
}

// decodeRows appends the spans of one record to dst.
func decodeRows(dst []store.Span, rec []byte) ([]store.Span, error) {
	if len(rec) == 0 || (rec[0] != rowsVersion && rec[0] != rowsVersionV1) {
		return dst, fmt.Errorf("%w: unknown version", errBadRows)
	}
	// One private copy serves both: the rows, like the converter's, are
	// read-only, so text fields may alias the bytes attributes slice.
	keep := bytes.Clone(rec)
	d := rowDecoder{b: rec, str: unsafe.String(unsafe.SliceData(keep), len(keep)), keep: keep, off: 1}
	n := d.uvarint()
	if d.err == nil && n > uint64(len(rec)) { // each span takes more than a byte
		return dst, fmt.Errorf("%w: %d spans in %d bytes", errBadRows, n, len(rec))
	}
	var prevRes store.Attributes
	for i := uint64(0); i < n && d.err == nil; i++ {
		var s store.Span
		flags := d.byte()
		d.fixed(s.TraceID[:])
		d.fixed(s.SpanID[:])
		d.fixed(s.ParentSpanID[:])
		s.Kind = store.SpanKind(d.byte())
		s.StatusCode = store.StatusCode(d.byte())
		s.StartUnixNano = d.varint()
		s.DurationNano = d.varint()
		s.PayloadBytes = d.varint()
		s.Weight = 1
		if flags&rowWeight != 0 {
			s.Weight = d.float64()
		}
		for _, p := range [...]*string{&s.Service, &s.Name, &s.StatusMessage, &s.Tenant, &s.Version, &s.Dependency, &s.Host} {
			*p = d.string()
		}
		s.Attributes = d.attrs()
		if flags&rowSameResource != 0 {
			s.Resource = prevRes
		} else {
			s.Resource = d.attrs()
			prevRes = s.Resource
		}
		if ne := d.count(); ne > 0 {
			s.Events = make([]store.Event, ne)
			for j := range s.Events {
				s.Events[j] = store.Event{TimeUnixNano: d.varint(), Name: d.string(), Attributes: d.attrs()}
			}
		}
		if nl := d.count(); nl > 0 {
			s.Links = make([]store.Link, nl)
			for j := range s.Links {
				d.fixed(s.Links[j].TraceID[:])
				d.fixed(s.Links[j].SpanID[:])
				s.Links[j].Attributes = d.attrs()
			}
		}
		dst = append(dst, s)
	}
	if d.err == nil && d.off != len(rec) {
		d.err = fmt.Errorf("%w: %d trailing bytes", errBadRows, len(rec)-d.off)
	}
	return dst, d.err
}

func (d *rowDecoder) fail() {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated at byte %d", errBadRows, d.off)
	}
	d.off = len(d.b)
}

func (d *rowDecoder) byte() byte {
	if d.off >= len(d.b) {
		d.fail()
		return 0
	}
	d.off++
	return d.b[d.off-1]
}

func (d *rowDecoder) fixed(dst []byte) {
	if len(d.b)-d.off < len(dst) {
		d.fail()
		return
	}
	d.off += copy(dst, d.b[d.off:])
}

func (d *rowDecoder) float64() float64 {
	var b [8]byte
	d.fixed(b[:])
	return math.Float64frombits(binary.LittleEndian.Uint64(b[:]))
}

func (d *rowDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

func (d *rowDecoder) varint() int64 {
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

// count reads an element count that the rest of the record can hold.
func (d *rowDecoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)-d.off) {
		d.fail()
		return 0
	}
	return int(n)
}

// span returns the bounds of the next length-prefixed field.
func (d *rowDecoder) span() (int, int) {
	n := d.count()
	if d.err != nil {
		return 0, 0
	}
	start := d.off
	d.off += n
	return start, d.off
}

func (d *rowDecoder) string() string {
	i, j := d.span()
	return d.str[i:j]
}

// attrs returns nil for an empty field, as the converter does.
func (d *rowDecoder) attrs() store.Attributes {
	i, j := d.span()
	if i == j {
		return nil
	}
	return store.Attributes(d.keep[i:j:j])
}
