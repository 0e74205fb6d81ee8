package otlpconv_test

import (
	"encoding/json"
	"slices"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tailscope/tailscope/ingest/internal/otlptest"
	"github.com/tailscope/tailscope/ingest/otlpconv"
)

// Wire builders for requests written field by field.
func lenField(num protowire.Number, parts ...[]byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), slices.Concat(parts...))
}

func varintField(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}

func fixed64Field(num protowire.Number, v uint64) []byte {
	return protowire.AppendFixed64(protowire.AppendTag(nil, num, protowire.Fixed64Type), v)
}

// TestProtoWalkChecksWhatNoRowReads: ConvertProto checks the request as it
// decodes it, in one walk, so what no row reads must still be checked as
// pdata checks it: a bad field there refuses the whole request, as pdata
// refuses it. Each case is built twice, with a good and with a bad
// attribute (or field), and both decoders must accept the good one and
// refuse the bad one. FuzzProtoDecoderMatchesPdata explores the same at
// random; these are the places the walk skips by design.
func TestProtoWalkChecksWhatNoRowReads(t *testing.T) {
	good := lenField(9, lenField(1, []byte("k")), lenField(2, lenField(1, []byte("v")))) // a span's KeyValue
	// An array value whose element is a varint where an AnyValue message
	// belongs: pdata refuses the wire type.
	badKV := func(num protowire.Number) []byte {
		return lenField(num, lenField(1, []byte("k")), lenField(2, lenField(5, varintField(1, 7))))
	}
	kv := func(num protowire.Number, bad bool) []byte {
		if bad {
			return badKV(num)
		}
		return lenField(num, good[2:]) // the KeyValue message of good, under num
	}
	span := func(tid []byte, extra ...[]byte) []byte {
		return lenField(2, lenField(1, tid), lenField(2, goodSpan), lenField(5, []byte("GET /")),
			fixed64Field(7, otlptest.Base), fixed64Field(8, otlptest.Base+1000), slices.Concat(extra...))
	}
	scopeSpans := func(parts ...[]byte) []byte { return slices.Concat(parts...) }
	resource := func(parts ...[]byte) []byte {
		return lenField(1, lenField(1, lenField(1, []byte("service.name")), lenField(2, lenField(1, []byte("api")))), slices.Concat(parts...))
	}
	request := func(resourceSpans ...[]byte) []byte { return lenField(1, resourceSpans...) }

	for _, tt := range []struct {
		name  string
		build func(bad bool) []byte
	}{
		{"an attribute of a span the row rules refuse (zero trace id)", func(bad bool) []byte {
			return request(resource(), lenField(2, scopeSpans(span(make([]byte, 16), kv(9, bad)))))
		}},
		{"an attribute of an event", func(bad bool) []byte {
			return request(resource(), lenField(2, span(goodTrace, lenField(11, fixed64Field(1, otlptest.Base), lenField(2, []byte("e")), kv(3, bad)))))
		}},
		{"a link's span id", func(bad bool) []byte {
			sid := goodSpan2
			if bad {
				sid = sid[:7]
			}
			return request(resource(), lenField(2, span(goodTrace, lenField(13, lenField(1, goodTrace), lenField(2, sid)))))
		}},
		{"an attribute of a link", func(bad bool) []byte {
			return request(resource(), lenField(2, span(goodTrace, lenField(13, lenField(1, goodTrace), lenField(2, goodSpan2), kv(4, bad)))))
		}},
		{"the status's code wire type", func(bad bool) []byte {
			status := varintField(3, 2)
			if bad {
				status = lenField(3, []byte{2})
			}
			return request(resource(), lenField(2, span(goodTrace, lenField(15, status))))
		}},
		{"an attribute of the scope", func(bad bool) []byte {
			return request(resource(), lenField(2, lenField(1, lenField(1, []byte("lib")), kv(3, bad)), span(goodTrace)))
		}},
		{"an attribute of the resource", func(bad bool) []byte {
			return request(lenField(1, kv(1, bad)), lenField(2, span(goodTrace)))
		}},
		{"an entity reference of the resource", func(bad bool) []byte {
			ref := lenField(1, []byte("service"))
			if bad {
				ref = varintField(1, 1) // type is a string
			}
			return request(resource(lenField(3, ref)), lenField(2, span(goodTrace)))
		}},
		{"a deprecated span list pdata drops (after scope_spans)", func(bad bool) []byte {
			return request(resource(), lenField(2, span(goodTrace)), lenField(1000, span(goodTrace, kv(9, bad))))
		}},
		{"a deprecated span list pdata drops (before scope_spans)", func(bad bool) []byte {
			return request(resource(), lenField(1000, span(goodTrace, kv(9, bad))), lenField(2, span(goodTrace)))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range differentialConverters(t) {
				okBody, badBody := tt.build(false), tt.build(true)
				if _, err := otlpconv.DecodeProto(okBody); err != nil {
					t.Fatalf("pdata refuses the good request: %v", err)
				}
				if _, err := otlpconv.DecodeProto(badBody); err == nil {
					t.Fatal("pdata accepts the bad request: the case tests nothing")
				}
				if _, _, err := c.ConvertProto(okBody); err != nil {
					t.Errorf("ConvertProto refuses the good request: %v", err)
				}
				if rows, _, err := c.ConvertProto(badBody); err == nil {
					t.Errorf("ConvertProto accepts the bad request (%d rows); pdata refuses it", len(rows))
				}
				checkSameAsPdata(t, c, okBody)
			}
		})
	}
}

// TestStatementScrubbedByItsSystem: a statement is scrubbed by its span's
// database system — db.system.name when it is a string, else db.system,
// each key's first value, wherever they stand among the attributes — alike
// through both decoders, and alike for a span met first and for its copy,
// whose attributes the memo has met (it reads their keys from its entries).
func TestStatementScrubbedByItsSystem(t *testing.T) {
	const stmt = "SET user:42 'hunter2' EX 60"
	str := func(k, v string) []byte {
		return lenField(9, lenField(1, []byte(k)), lenField(2, lenField(1, []byte(v))))
	}
	num := func(k string, v uint64) []byte {
		return lenField(9, lenField(1, []byte(k)), lenField(2, varintField(3, v)))
	}
	scrubbed := func(t *testing.T, attrs ...[]byte) string {
		t.Helper()
		span := lenField(2, lenField(1, goodTrace), lenField(2, goodSpan), lenField(5, []byte("db")), varintField(6, 3),
			fixed64Field(7, otlptest.Base), fixed64Field(8, otlptest.Base+1000), slices.Concat(attrs...))
		resource := lenField(1, lenField(1, str("service.name", "api")[2:])) // a Resource of one KeyValue
		body := lenField(1, resource, lenField(2, span, span))
		c := differentialConverters(t)[0]
		checkSameAsPdata(t, c, body)
		rows, _, err := c.ConvertProto(body)
		if err != nil || len(rows) != 2 {
			t.Fatalf("ConvertProto: %d rows, %v", len(rows), err)
		}
		var stmts [2]string
		for i, r := range rows {
			var got map[string]any
			if err := json.Unmarshal(r.Attributes, &got); err != nil {
				t.Fatal(err)
			}
			stmts[i], _ = got["db.statement"].(string)
		}
		if stmts[0] != stmts[1] {
			t.Fatalf("the span's statement stored as %q, its copy's as %q", stmts[0], stmts[1])
		}
		return stmts[0]
	}
	st := str("db.statement", stmt)
	asRedis := scrubbed(t, str("db.system", "redis"), st)
	asSQL := scrubbed(t, str("db.system", "postgresql"), st)
	if asRedis == asSQL || asRedis == stmt {
		t.Fatalf("redis %q, SQL %q: the rules must differ and scrub the value for this test to tell them apart", asRedis, asSQL)
	}
	for _, tt := range []struct {
		name  string
		attrs [][]byte
		want  string
	}{
		{"db.system.name beats db.system", [][]byte{str("db.system", "postgresql"), st, str("db.system.name", "redis")}, asRedis},
		{"db.system.name beats db.system, the other way", [][]byte{str("db.system.name", "postgresql"), str("db.system", "redis"), st}, asSQL},
		{"a db.system.name that is no string", [][]byte{num("db.system.name", 7), st, str("db.system", "redis")}, asRedis},
		{"the first of repeated keys", [][]byte{str("db.system.name", "redis"), st, str("db.system.name", "postgresql")}, asRedis},
		{"the first of repeated keys, no string", [][]byte{num("db.system.name", 7), st, str("db.system.name", "redis"), str("db.system", "postgresql")}, asSQL},
		{"the first of repeated db.system", [][]byte{st, str("db.system", "redis"), str("db.system", "postgresql")}, asRedis},
		{"after the statement", [][]byte{st, str("db.system", "redis")}, asRedis},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := scrubbed(t, tt.attrs...); got != tt.want {
				t.Errorf("statement stored as %q, want %q", got, tt.want)
			}
		})
	}
}
