package postgres

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/tailscope/tailscope/store"
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

// A copyStream is the body of COPY spans (...) FROM STDIN (FORMAT binary):
// spans encoded straight from store.Span, sent with pgconn.CopyFrom.
//
// pgx's CopyFrom takes each row as []any and encodes every value through
// its type map; in BenchmarkIngestE2E that dispatch, with building the
// []any rows, was ~20% of tailscope's CPU per span. The span row has one
// fixed shape, so it is written here directly in PostgreSQL's documented
// binary COPY format ("COPY", File Formats): a header, per row a field
// count and per field a length (-1 for NULL) and the type's binary send
// form, and a trailer. The forms used are simple: bytea and text are their
// bytes, json is its text, smallint and bigint are big-endian integers, double precision its
// big-endian IEEE 754 bits.
type copyStream struct {
	b         []byte
	order     []int32 // encode's sort order, reused
	resources []int64 // the spans' resource ids (DB.resourceIDs), reused
	// names are the rollup names the write decided with
	// (decideRollupKeys): its rollups are built with the same snapshot.
	names sqlcommon.NameSet
}

// copySignature opens every binary COPY stream: the 11-byte signature, a
// flags field (no OIDs) and an empty header extension.
var copySignature = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// spanWriteColumns are the columns a stream fills: sqlcommon.SpanColumns
// with resource_id, the span's row in resources, in place of the inline
// resource, which new rows leave NULL (migration 00003).
var spanWriteColumns = strings.Replace(sqlcommon.SpanColumns, "resource,", "resource_id,", 1)

// spanFields is the number of columns of a span row.
var spanFields = int16(len(sqlcommon.SpanColumnNames))

// copyRowEstimate is the bytes a typical span row takes in the stream
// (~600 bytes of JSON plus fixed fields), to size the buffer once.
const copyRowEstimate = 900

// encode makes c the COPY stream of spans in spanWriteColumns order, sorted
// by primary key, reusing c's buffers, and returns the distinct days the
// spans start on; c.resources holds the spans' resource ids. Text is
// sanitised (sqlcommon.Clean, CleanJSON): PostgreSQL rejects NUL and
// invalid UTF-8, and one bad span must not fail the batch.
func (c *copyStream) encode(spans []store.Span) ([]int64, error) {
	// Key order gives concurrent writers of overlapping batches one lock
	// order (no deadlocks between them) and the primary key btree a
	// sequential walk within the batch.
	order := c.order[:0]
	for i := range spans {
		order = append(order, int32(i))
	}
	c.order = order
	slices.SortFunc(order, func(i, j int32) int {
		a, b := &spans[i], &spans[j]
		if c := bytes.Compare(a.TraceID[:], b.TraceID[:]); c != 0 {
			return c
		}
		if c := bytes.Compare(a.SpanID[:], b.SpanID[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.StartUnixNano, b.StartUnixNano)
	})
	c.b = slices.Grow(c.b[:0], len(copySignature)+len(spans)*copyRowEstimate+2)
	c.b = append(c.b, copySignature...)
	var days []int64
	for _, i := range order {
		s := &spans[i]
		if err := c.span(s, c.resources[i]); err != nil {
			return nil, fmt.Errorf("span %s/%s: %w", s.TraceID, s.SpanID, err)
		}
		if d := dayOf(s.StartUnixNano); !slices.Contains(days, d) {
			days = append(days, d)
		}
	}
	c.b = binary.BigEndian.AppendUint16(c.b, 0xffff) // trailer: field count -1
	return days, nil
}

// span appends one row in spanWriteColumns order; resource is the span's
// row in resources, 0 for none.
func (c *copyStream) span(s *store.Span, resource int64) error {
	events, links, err := sqlcommon.EncodeEventsLinks(s)
	if err != nil {
		return err
	}
	c.b = binary.BigEndian.AppendUint16(c.b, uint16(spanFields))
	c.bytes(s.TraceID[:])
	c.bytes(s.SpanID[:])
	if s.ParentSpanID.IsZero() {
		c.null()
	} else {
		c.bytes(s.ParentSpanID[:])
	}
	c.text(s.Service)
	c.text(s.Name)
	c.int16(int16(s.Kind))
	c.int64(s.StartUnixNano)
	c.int64(s.DurationNano)
	c.int16(int16(s.StatusCode))
	c.text(s.StatusMessage)
	c.json(s.Attributes)
	if resource == 0 {
		c.null()
	} else {
		c.int64(resource)
	}
	c.json(events)
	c.json(links)
	c.text(s.Tenant)
	c.text(s.Version)
	c.text(s.Dependency)
	c.int64(s.PayloadBytes)
	c.text(s.Host)
	c.float64(store.NormWeight(s.Weight))
	return nil
}

func (c *copyStream) null() { c.b = binary.BigEndian.AppendUint32(c.b, math.MaxUint32) }

func (c *copyStream) bytes(v []byte) {
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(len(v)))
	c.b = append(c.b, v...)
}

func (c *copyStream) text(v string) {
	v = sqlcommon.Clean(v)
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(len(v)))
	c.b = append(c.b, v...)
}

// json appends encoded JSON, NULL when there is none; json's binary form
// is its text.
func (c *copyStream) json(v []byte) {
	v = sqlcommon.CleanJSON(v)
	if len(v) == 0 {
		c.null()
		return
	}
	c.bytes(v)
}

func (c *copyStream) int16(v int16) {
	c.b = binary.BigEndian.AppendUint32(c.b, 2)
	c.b = binary.BigEndian.AppendUint16(c.b, uint16(v))
}

// float64 appends a double precision: its IEEE 754 bits, big-endian.
func (c *copyStream) float64(v float64) {
	c.b = binary.BigEndian.AppendUint32(c.b, 8)
	c.b = binary.BigEndian.AppendUint64(c.b, math.Float64bits(v))
}

func (c *copyStream) int64(v int64) {
	c.b = binary.BigEndian.AppendUint32(c.b, 8)
	c.b = binary.BigEndian.AppendUint64(c.b, uint64(v))
}
